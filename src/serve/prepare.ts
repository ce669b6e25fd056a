import { randomBytes } from 'node:crypto';
import { type Settings, applyPackagePolicies } from '../config/settings.js';
import { LABEL } from '../engine/containers.js';
import type { DockerEngine } from '../engine/docker.js';
import type { HostContext } from '../host.js';
import { installRequest } from '../install/lock.js';
import { prepare } from '../install/prepare.js';
import { launchSpec } from '../install/specs.js';
import { parseRunnerArgs } from '../runners/table.js';
import { engineLaunch } from '../sandbox/argv.js';
import { DEFAULT_FLAGS, planRun, respec } from '../sandbox/plan.js';
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
}

/**
 * Everything a session needs, before the port opens: each server planned with the same sandbox as
 * `run` (settings, package policies), its image built and its package installed and locked, so
 * sessions start warm.
 */
export async function prepareServed(servers: readonly ServedServer[], at: ServePreparation): Promise<Map<string, ServedTarget>> {
  const { engine, engineEnv, ctx, log } = at;
  const targets = new Map<string, ServedTarget>();
  for (const server of servers) {
    const invocation = parseRunnerArgs(server.runner, [...server.args]);
    const settings = applyPackagePolicies(at.settings, invocation.runner, invocation.packages.map((p) => p.name));
    const env = Object.entries(server.env).map(([name, value]) => `${name}=${value}`);
    const plan = planRun(invocation, settings, { ...DEFAULT_FLAGS, env, client: true }, ctx);
    const request = installRequest(invocation);
    log('prepare', { server: server.name }, `preparing ${server.name} (${server.runner} ${server.args.join(' ')})`);
    const { server: locked } = await prepare(engine, engineEnv, plan, request ? { request, lockPath: at.lockPath } : undefined, {
      hostEnv: ctx.env,
      log: ctx.log,
      stateDir: at.stateDir,
      intervalHours: settings.updateInterval ?? 24,
    });
    // A container per session: a fresh name and labels on the prepared plan.
    const container = (session: string) => {
      const sessionPlan = respec(plan, {
        name: `mcpbox-serve-${server.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').slice(0, 40)}-${randomBytes(3).toString('hex')}`,
        labels: { ...plan.input.labels, [LABEL.startedAt]: new Date().toISOString(), [LABEL.served]: server.name, [LABEL.session]: session },
      });
      const spec = request && locked ? launchSpec(sessionPlan, request, locked.entry, locked.record) : sessionPlan.spec;
      const channel = new ContainerChannel(engine, engineLaunch(spec, engineEnv, (lines) => engine.envFile(lines)), spec.name);
      channel.onstderr = (line) => log('server-stderr', { server: server.name, session: short(session), line }, `[${server.name} ${short(session)}] ${line}`);
      return channel;
    };
    targets.set(server.name, { server, tokens: server.authTokens.map(tokenDigest), container });
  }
  return targets;
}
