import { applyPackagePolicies, type Settings, supplyGates } from '../config/settings.js';
import { refuseBeforeInstall } from '../install/before-install.js';
import { installRequest } from '../install/lock.js';
import { dataVolumeAlongside } from '../lifecycle/data.js';
import { prepare } from '../install/prepare.js';
import { parseRunnerArgs } from '../runners/table.js';
import { DEFAULT_FLAGS, dataOwner, planRun } from '../sandbox/plan.js';
import { tokenDigest } from './auth.js';
import type { ContainerChannel } from './channel.js';
import type { ServedServer } from './config.js';
import { type ServeSite, servedContainers } from './containers.js';
import type { SharedBackend } from './sessions.js';
import type { ServeStandby } from './standby.js';

/** One of serve's servers, prepared: its tokens, and how to start a container of it for a session. */
export interface ServedTarget {
  readonly server: ServedServer;
  readonly tokens: readonly Buffer[];
  readonly container: (session: string) => ContainerChannel;
  /** Its standby, if it keeps one (src/serve/standby.ts). */
  readonly standby?: ServeStandby;
  /** The one container of a `shared` server, while it runs. */
  shared?: SharedBackend;
}

/** What prepareServed works with: where serve's containers start (src/serve/containers.ts), and the settings. */
export interface ServePreparation extends ServeSite {
  readonly settings: Settings;
}

/**
 * Everything a session needs, before the port opens: each server planned with the same sandbox as
 * `run` (settings, package policies), its image built and its package installed and locked, so
 * sessions start warm.
 */
export async function prepareServed(servers: readonly ServedServer[], at: ServePreparation): Promise<Map<string, ServedTarget>> {
  const { engine, engineEnv, ctx, log } = at;
  const targets = new Map<string, ServedTarget>();
  await at.egress.prepareSocket();
  for (const server of servers) {
    const invocation = parseRunnerArgs(server.runner, [...server.args]);
    const settings = applyPackagePolicies(at.settings, invocation.runner, invocation.packages.map((p) => p.name));
    const env = Object.entries(server.env).map(([name, value]) => `${name}=${value}`);
    const plan = planRun(invocation, settings, { ...DEFAULT_FLAGS, env, client: true }, ctx);
    const request = installRequest(invocation);
    // A near miss of a popular or installed name is never served (pull it with --yes once, if it is meant); nor a private scope from the public registry.
    refuseBeforeInstall(invocation, ctx, at.stateDir, { yes: false, command: 'mcpbox pull' });
    log('prepare', { server: server.name }, `preparing ${server.name} (${server.runner} ${server.args.join(' ')})`);
    const { server: locked } = await prepare(engine, engineEnv, plan, request ? { request, lockPath: at.lockPath } : undefined, {
      hostEnv: ctx.env,
      log: ctx.log,
      stateDir: at.stateDir,
      intervalHours: settings.updateInterval ?? 24,
      egress: at.egress,
      installEgress: settings.installEgress,
      gates: supplyGates(settings),
      alongside: dataVolumeAlongside(engine, plan, at.stateDir, dataOwner(ctx)),
    });
    const containers = servedContainers(server, { plan, settings, request, locked }, at);
    targets.set(server.name, { server, tokens: server.authTokens.map(tokenDigest), container: containers.forSession, ...(containers.standby && { standby: containers.standby }) });
  }
  // Once every server is prepared (a failure above starts nothing): each first standby.
  for (const target of targets.values()) target.standby?.leave();
  return targets;
}
