import { type Settings, supplyGates } from '../config/settings.js';
import type { DockerEngine } from '../engine/docker.js';
import type { HostContext } from '../host.js';
import { installedServer } from '../install/installs.js';
import type { InstallRequest } from '../install/lock.js';
import type { EgressAccess } from '../egress/access.js';
import { egressAccessFor, prepare } from '../install/prepare.js';
import { serverEgress } from './egress.js';
import { launchSpec } from '../install/specs.js';
import { type LockEntry, lockKey, resolveDue } from '../install/lock.js';
import { inspects, type SessionPlaces, sessionRelay } from '../tools/session.js';
import { engineLaunch } from '../sandbox/argv.js';
import { dataOwner, type RunPlan } from '../sandbox/plan.js';
import type { ContainerSpec } from '../sandbox/spec.js';
import { claimDataVolume, dataReady, dataVolumeAlongside } from './data.js';
import { eofWatcher } from './eof-watch.js';
import { supervise } from './supervise.js';
import type { EgressPolicy } from '../egress/policy.js';
import { type ClaimedStandby, claimStandby, leaveStandby, STANDBY_FOR, standbyWanted } from './standby-run.js';

/**
 * `mcpbox run`'s way to its server: a warm start when the server is locked, installed here and not
 * due for a refresh (the container starts at once; its image and install volume are checked while
 * it comes up); otherwise, or when that check fails before the client's input was read, prepare
 * (image, volumes, install) and start. Returns the exit code.
 */
export interface StartInput {
  readonly engine: DockerEngine;
  readonly engineEnv: Readonly<Record<string, string>>;
  readonly ctx: HostContext;
  readonly plan: RunPlan;
  readonly settings: Settings;
  /** The locked request and where its lock is; absent for what resolves on every start. */
  readonly locked: { readonly request: InstallRequest; readonly lockPath: string } | undefined;
  /** The lock in use (where learned egress lists of locked servers are). */
  readonly lockPath: string;
  readonly stateDir: string;
  /** Apply the end-of-input rule (a client's pipe, unless --no-stop-on-eof). */
  readonly stopOnEof: boolean;
}

/** About when a warm server has answered its client's initialize (see npm run bench). */
const STARTED_MS = 700;

export async function startServer(input: StartInput): Promise<number> {
  const { engine, ctx, settings, locked } = input;
  const access = egressAccessFor(engine, ctx, settings, input.stateDir, ctx.log);
  const egress = serverEgress({ plan: input.plan, settings, access, locked, lockPath: input.lockPath, stateDir: input.stateDir, log: ctx.log });
  const plan = egress.plan;
  if (egress.proxied) await access.prepareSocket();
  // The proxy is seen to (started if need be) and followed once the server is up: its forwarder
  // waits for the proxy, so nothing of it is on the way to the first byte.
  // A claimed standby's token carries its own run id: the session follows the proxy's log for that one.
  let standbyRun: (() => string | undefined) | undefined;
  const finishEgress = egress.watch(STARTED_MS, () => standbyRun?.());
  let ran = false;
  try {
    const code = await startIn(input, plan, access, { policy: egress.policy, onClaim: (claimed) => (standbyRun = claimed.egressRun) });
    ran = true;
    return code;
  } finally {
    await finishEgress(ran);
  }
}

/** What a warm start needs to claim a standby: the server's egress policy (part of its key), and who to tell. */
interface StandbyUse {
  readonly policy: EgressPolicy;
  readonly onClaim: (claimed: ClaimedStandby) => void;
}

async function startIn(input: StartInput, plan: RunPlan, access: EgressAccess, standby: StandbyUse): Promise<number> {
  const { engine, ctx, settings, locked } = input;
  const { image } = plan.spec;
  const intervalHours = settings.updateInterval ?? 24;
  const start = starter(input);

  const installed = locked && !plan.spec.tty ? installedServer(locked.request, { lockPath: locked.lockPath, stateDir: input.stateDir, image }) : undefined;
  const warm = warmServer(input, plan, installed);
  if (locked && warm && standbyWanted(settings, engine, { client: plan.client, tty: plan.spec.tty })) {
    const spec = launchSpec(plan, locked.request, warm.entry, warm.record);
    const claimed = await claimStandby({ engine, spec, egress: standby.policy, stateDir: input.stateDir, sessionName: spec.name, pid: ctx.pid, image, install: warm.record });
    if (claimed) {
      standby.onClaim(claimed);
      const outcome = await start(spec, claimed.verify, warm.entry, claimed.name);
      if (outcome !== 'retry') return outcome;
      ctx.log.note(`not using the standby of this server (${claimed.why()}): starting afresh`);
    }
  }
  if (locked && warm) {
    let why = '';
    const volume = warm.record.volume;
    const verify = () =>
      engine.inspect([image, volume]).then(({ missing, volumeIds }) => {
        if (missing.has(image)) why = `the image ${image} is gone (nothing was read from the client yet)`;
        else if (volumeIds.get(volume) !== warm.record.volumeId) {
          why = `the install volume ${volume} was removed or recreated since the last run, so its install is gone; the client's first message went to this failed start (if the client is still waiting, restart the server)`;
        }
        return why ? 'retry' : 'ok';
      });
    const outcome = await start(launchSpec(plan, locked.request, warm.entry, warm.record), verify, warm.entry);
    if (outcome !== 'retry') return outcome;
    ctx.log.warn(`${why}: preparing it again`);
  }

  const prepared = await prepare(engine, input.engineEnv, plan, locked, {
    hostEnv: ctx.env,
    log: ctx.log,
    stateDir: input.stateDir,
    intervalHours,
    egress: access,
    installEgress: settings.installEgress,
    gates: supplyGates(settings),
    alongside: dataVolumeAlongside(engine, plan, input.stateDir, dataOwner(ctx)),
  });
  const spec = prepared.server && locked ? launchSpec(plan, locked.request, prepared.server.entry, prepared.server.record) : plan.spec;
  // After an install, the last line is not "installing…": the server is starting.
  if (prepared.server && !installed) ctx.log.info(`starting ${prepared.server.entry.name}@${prepared.server.entry.version}`);
  const outcome = await start(spec, undefined, prepared.server?.entry);
  // Only a checked (warm) start can ask to be retried.
  if (outcome === 'retry') throw new Error('unexpected retry of a checked start');
  return outcome;
}

/** Warm: installed, not due for a refresh, and its data volume already its user's (else prepare sees to it). */
function warmServer<T extends { entry: LockEntry }>(input: StartInput, plan: RunPlan, installed: T | undefined): T | undefined {
  const intervalHours = input.settings.updateInterval ?? 24;
  return installed && !resolveDue(installed.entry, { now: new Date(), intervalHours }) && dataReady(plan, input.stateDir) ? installed : undefined;
}

/**
 * Starts a spec under supervision: its env file, stdin, signals, the end-of-input rule, the
 * watchdog. `attach`: the name of a claimed standby of that spec, attached to instead of started.
 */
function starter(input: StartInput): (spec: ContainerSpec, verify?: () => Promise<'ok' | 'retry'>, entry?: LockEntry, attach?: string) => Promise<number | 'retry'> {
  const { engine, ctx, settings } = input;
  const watchEof = eofWatcher(ctx.env);
  // `entry`: the locked server's lock entry, already read on the way here (its tools pin).
  return (spec, verify, entry, attach) => {
    claimDataVolume(input.plan, input.stateDir);
    const launch = attach ? { argv: ['attach', attach], env: { ...input.engineEnv }, envFile: undefined } : engineLaunch(spec, input.engineEnv, (lines) => engine.envFile(lines));
    return supervise({
      engine,
      argv: launch.argv,
      env: launch.env,
      envFile: launch.envFile,
      name: attach ?? spec.name,
      holdInput: Boolean(attach),
      stdin: ctx.stdin,
      tty: spec.tty,
      stopOnEof: input.stopOnEof,
      graceMs: graceMs(settings),
      memory: spec.policy.memory,
      log: ctx.log,
      watchEof,
      ...(verify && { verify }),
      ...(protects(input) && { relay: { ...sessionRelay(sessionPlaces(input), entry, settings, ctx.log), stdout: ctx.stdout } }),
    });
  };
}

/**
 * An MCP client's session goes through the tools relay (src/tools/relay.ts): pins, tool policy,
 * audit. A terminal's doesn't (a person, not a model, reads it), and neither does one with
 * `toolChanges: off` and no tool policy: its data path stays the raw one (the engine CLI holds the
 * client's stdin and stdout), without an audit.
 */
function protects(input: StartInput): boolean {
  return input.plan.client && !input.plan.spec.tty && inspects(input.settings);
}

function sessionPlaces(input: StartInput): SessionPlaces {
  const server = input.locked?.request.name ?? input.plan.input.invocation.packages[0]?.name ?? input.plan.input.invocation.runner;
  return { stateDir: input.stateDir, server, lockPath: input.lockPath, ...(input.locked && { lock: { path: input.locked.lockPath, key: lockKey(input.locked.request) } }) };
}

/** The grace period a server gets after its input ends or a signal (the `grace` setting, 2 s by default). */
export function graceMs(settings: Pick<Settings, 'grace'>): number {
  return (settings.grace ?? 2) * 1000;
}

/**
 * `mcpbox run` with LEAVE_STANDBY set (src/lifecycle/standby-run.ts, respawnToLeaveStandby): plans
 * as the run that just ended did and, when its server is warm here, leaves the standby of its spec
 * for the next launch instead of serving a client. Says what it did (to standby.log).
 */
export async function leaveStandbyFor(input: StartInput): Promise<number> {
  const { engine, ctx, settings, locked } = input;
  if (!locked || !standbyWanted(settings, engine, { client: input.plan.client, tty: input.plan.spec.tty })) return 0;
  const only = ctx.env[STANDBY_FOR];
  if (only !== undefined && !only.split('\n').includes(lockKey(locked.request))) return 0;
  const access = egressAccessFor(engine, ctx, settings, input.stateDir, ctx.log);
  const egress = serverEgress({ plan: input.plan, settings, access, locked, lockPath: input.lockPath, stateDir: input.stateDir, log: ctx.log });
  const plan = egress.plan;
  const warm = warmServer(input, plan, installedServer(locked.request, { lockPath: locked.lockPath, stateDir: input.stateDir, image: plan.spec.image }));
  if (!warm) return 0;
  // Its server may connect as it starts, before any client: the proxy must be there for it.
  if (egress.proxied) {
    await access.prepareSocket();
    await access.ensure();
  }
  const spec = launchSpec(plan, locked.request, warm.entry, warm.record);
  const outcome = await leaveStandby({ engine, spec, egress: egress.policy, stateDir: input.stateDir, engineEnv: input.engineEnv, settings, egressRun: egress.run });
  ctx.log.info(`${new Date().toISOString()} standby of ${locked.request.specs.join(' ')}: ${outcome}`);
  return 0;
}
