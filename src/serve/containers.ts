import { randomBytes } from 'node:crypto';
import { type Settings, standbyIdleSeconds } from '../config/settings.js';
import { LABEL } from '../engine/containers.js';
import { type InstallRequest, type LockEntry, lockKey } from '../install/lock.js';
import { readLock } from '../install/lock-files.js';
import type { LockedServer } from '../install/installs.js';
import { launchSpec } from '../install/specs.js';
import { claimDataVolume } from '../lifecycle/data.js';
import { serverEgress } from '../lifecycle/egress.js';
import { standbySpec } from '../lifecycle/standby.js';
import { standbyWanted } from '../lifecycle/standby-run.js';
import type { EgressAccess } from '../egress/access.js';
import type { DockerEngine } from '../engine/docker.js';
import type { HostContext } from '../host.js';
import type { Logger } from '../log.js';
import { engineLaunch } from '../sandbox/argv.js';
import { respec, type RunPlan } from '../sandbox/plan.js';
import type { Relay } from '../tools/relay.js';
import { inspects, sessionRelay, type SessionPlaces } from '../tools/session.js';
import { ContainerChannel } from './channel.js';
import type { ServedServer } from './config.js';
import { short } from './http.js';
import { ServeStandby, type StandbyContainer } from './standby.js';

export type ServeLog = (event: string, fields: Record<string, unknown>, text: string) => void;

/** Where serve's containers start, and what they are told. */
export interface ServeSite {
  readonly engine: DockerEngine;
  readonly engineEnv: Readonly<Record<string, string>>;
  readonly ctx: HostContext;
  readonly lockPath: string;
  readonly stateDir: string;
  readonly log: ServeLog;
  readonly egress: EgressAccess;
  /** The grace period a container gets to end (a standby's too). */
  readonly graceMs: number;
}

export interface ServedContainers {
  /** A session's container: the waiting standby when one is ready, else one started now. */
  readonly forSession: (session: string) => ContainerChannel;
  /** The standby, for a server that has them: the first is left once every server is prepared; serve's shutdown stops it. */
  readonly standby?: ServeStandby;
}

/**
 * How serve starts the containers of one prepared server: a fresh name and labels on the prepared
 * plan, its own egress grant and, for a protected session, the tools relay. A locked, private
 * server (not `shared`) keeps a standby (src/serve/standby.ts) unless `standby` is off for it.
 */
export function servedContainers(
  server: ServedServer,
  prepared: { plan: RunPlan; settings: Settings; request: InstallRequest | undefined; locked: LockedServer | undefined },
  at: ServeSite,
): ServedContainers {
  const { plan, settings, request, locked } = prepared;
  const { engine, log } = at;
  const idleSeconds = standbyIdleSeconds(settings);
  const start = (holder: { session: string }, standby: boolean): ContainerChannel => {
    const name = `mcpbox-serve-${server.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').slice(0, 40)}-${randomBytes(3).toString('hex')}`;
    // A standby's session is not known yet: its label is left out (serve's log pairs them: session-start).
    const labels = { ...plan.input.labels, [LABEL.startedAt]: new Date().toISOString(), [LABEL.served]: server.name, ...(!standby && { [LABEL.session]: holder.session }) };
    const named = respec(plan, { name, labels });
    claimDataVolume(named, at.stateDir);
    const locks = { lockPath: at.lockPath, stateDir: at.stateDir };
    const egress = serverEgress({ plan: named, settings, access: at.egress, locked: request && { request, lockPath: at.lockPath }, ...locks, log: serveLogger(log, server.name, holder, 'egress') });
    if (egress.proxied) void at.egress.ensure().catch((error: Error) => log('egress-error', { server: server.name, message: error.message }, `the egress proxy could not start: ${error.message}`));
    const spec = request && locked ? launchSpec(egress.plan, request, locked.entry, locked.record) : egress.plan.spec;
    const launched = standby ? standbySpec(spec, spec.name, idleSeconds, undefined) : spec;
    const channel = new ContainerChannel(engine, engineLaunch(launched, at.engineEnv, (lines) => engine.envFile(lines)), spec.name);
    channel.onstderr = stderrLines(log, server.name, holder);
    const finish = egress.watch();
    void channel.exited.then(() => finish(true));
    return channel;
  };
  // The session's side: the relay with the pin as it is now (an earlier session may have made it).
  const connect = ({ channel, holder }: StandbyContainer, session: string): ContainerChannel => {
    const entry = request && locked ? (readLock(at.lockPath).servers[lockKey(request)] ?? locked.entry) : undefined;
    const places = { stateDir: at.stateDir, server: request?.name ?? server.name, lockPath: at.lockPath, session: short(session), ...(request && locked && { lock: { path: at.lockPath, key: lockKey(request) } }) };
    channel.connect(relayFor(settings, places, entry, serveLogger(log, server.name, holder, 'tools')));
    return channel;
  };
  const fresh = (session: string) => {
    const holder = { session: short(session) };
    return connect({ channel: start(holder, false), holder }, session);
  };
  if (!request || !locked || server.shared || !standbyWanted(settings, engine, { client: true, tty: false })) return { forSession: fresh };

  const standby = new ServeStandby({
    engine,
    idleSeconds,
    ownerPid: at.ctx.pid,
    graceMs: at.graceMs,
    start: () => {
      const holder = { session: 'standby' };
      return { channel: start(holder, true), holder };
    },
    say: (event, text) => log(event, { server: server.name }, `[${server.name}] ${text}`),
  });
  return {
    standby,
    forSession: (session) => {
      const claimed = standby.claim(short(session));
      if (claimed) return connect(claimed, session);
      const channel = fresh(session);
      standby.leave();
      return channel;
    },
  };
}

/** A session's server's stderr, as serve's log lines (its holder's session: a standby's is named once claimed). */
export function stderrLines(log: ServeLog, server: string, holder: { readonly session: string }): (line: string) => void {
  return (line) => log('server-stderr', { server, session: holder.session, line }, `[${server} ${holder.session}] ${line}`);
}

/** The tools relay between a session and its server, when the settings inspect tools (pins, policy, audit). */
export function relayFor(settings: Settings, places: SessionPlaces, entry: LockEntry | undefined, log: Logger): Relay | undefined {
  return inspects(settings) ? sessionRelay(places, entry, settings, log) : undefined;
}

/** mcpbox's messages about one session's server (egress decisions, tools), as serve's log lines. */
export function serveLogger(log: ServeLog, server: string, holder: { readonly session: string }, event: 'egress' | 'tools'): Logger {
  const say = (level: string) => (message: string) => log(event, { server, session: holder.session, level, message }, `[${server} ${holder.session}] ${message}`);
  return { info: say('info'), note: say('note'), warn: say('warn'), error: (message) => say('error')(message) };
}
