import { randomBytes } from 'node:crypto';
import { type Settings, applyPackagePolicies, supplyGates } from '../config/settings.js';
import { LABEL } from '../engine/containers.js';
import type { DockerEngine } from '../engine/docker.js';
import type { HostContext } from '../host.js';
import { refuseBeforeInstall } from '../install/before-install.js';
import { installRequest, lockKey } from '../install/lock.js';
import { readLock } from '../install/lock-files.js';
import type { EgressAccess } from '../egress/access.js';
import { claimDataVolume, dataVolumeAlongside } from '../lifecycle/data.js';
import { serverEgress } from '../lifecycle/egress.js';
import type { Logger } from '../log.js';
import { prepare } from '../install/prepare.js';
import { launchSpec } from '../install/specs.js';
import { parseRunnerArgs } from '../runners/table.js';
import { inspects, sessionRelay } from '../tools/session.js';
import { engineLaunch } from '../sandbox/argv.js';
import { DEFAULT_FLAGS, dataOwner, planRun, respec } from '../sandbox/plan.js';
import { tokenDigest } from './auth.js';
import { ContainerChannel } from './channel.js';
import type { ServedServer } from './config.js';
import { short } from './http.js';
import type { SharedBackend } from './sessions.js';

/** One of serve's servers, prepared: its tokens, and how to start a container of it for a session. */
export interface ServedTarget {
  readonly server: ServedServer;
  readonly tokens: readonly Buffer[];
  readonly container: (session: string) => ContainerChannel;
  /** The one container of a `shared` server, while it runs. */
  shared?: SharedBackend;
}

export type ServeLog = (event: string, fields: Record<string, unknown>, text: string) => void;

export interface ServePreparation {
  readonly engine: DockerEngine;
  readonly engineEnv: Readonly<Record<string, string>>;
  readonly settings: Settings;
  readonly ctx: HostContext;
  readonly lockPath: string;
  readonly stateDir: string;
  readonly log: ServeLog;
  readonly egress: EgressAccess;
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
    // A container per session: a fresh name and labels on the prepared plan, its own egress grant.
    const container = (session: string) => {
      const named = respec(plan, {
        name: `mcpbox-serve-${server.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').slice(0, 40)}-${randomBytes(3).toString('hex')}`,
        labels: { ...plan.input.labels, [LABEL.startedAt]: new Date().toISOString(), [LABEL.served]: server.name, [LABEL.session]: session },
      });
      claimDataVolume(named, at.stateDir);
      const locks = { lockPath: at.lockPath, stateDir: at.stateDir };
      const egress = serverEgress({ plan: named, settings, access: at.egress, locked: request && { request, lockPath: at.lockPath }, ...locks, log: serveLogger(log, server.name, session, 'egress') });
      if (egress.proxied) void at.egress.ensure().catch((error: Error) => log('egress-error', { server: server.name, message: error.message }, `the egress proxy could not start: ${error.message}`));
      const spec = request && locked ? launchSpec(egress.plan, request, locked.entry, locked.record) : egress.plan.spec;
      // The pin as it is now: an earlier session may have made it.
      const entry = request && locked ? (readLock(at.lockPath).servers[lockKey(request)] ?? locked.entry) : undefined;
      const places = { stateDir: at.stateDir, server: request?.name ?? server.name, lockPath: at.lockPath, session: short(session), ...(request && locked && { lock: { path: at.lockPath, key: lockKey(request) } }) };
      const relay = inspects(settings) ? sessionRelay(places, entry, settings, serveLogger(log, server.name, session, 'tools')) : undefined;
      const channel = new ContainerChannel(engine, engineLaunch(spec, engineEnv, (lines) => engine.envFile(lines)), spec.name, relay);
      channel.onstderr = (line) => log('server-stderr', { server: server.name, session: short(session), line }, `[${server.name} ${short(session)}] ${line}`);
      const finish = egress.watch();
      void channel.exited.then(() => finish(true));
      return channel;
    };
    targets.set(server.name, { server, tokens: server.authTokens.map(tokenDigest), container });
  }
  return targets;
}

/** mcpbox's messages about one session's server (egress decisions, tools), as serve's log lines. */
function serveLogger(log: ServeLog, server: string, session: string, event: 'egress' | 'tools'): Logger {
  const say = (level: string) => (message: string) => log(event, { server, session: short(session), level, message }, `[${server} ${short(session)}] ${message}`);
  return { info: say('info'), note: say('note'), warn: say('warn'), error: (message) => say('error')(message) };
}
