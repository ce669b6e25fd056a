import { join as shellJoin } from 'shlex';
import { applyPackagePolicies } from '../config.js';
import { engineLaunch, runArgv } from '../engine/argv.js';
import { locateEngine } from '../engine/locate.js';
import { eofWatcher } from '../eof-watch.js';
import { type InstallRequest, installRequest, lockKey, needsRefresh } from '../lock.js';
import { findLock, installKey, readInstalls, readLock } from '../lock-files.js';
import { supervise } from '../lifecycle.js';
import { stateDir } from '../paths.js';
import { hostProbe } from '../processes.js';
import { parseRunnerArgs } from '../runners.js';
import type { ContainerSpec } from '../sandbox.js';
import { installedAsLocked } from '../installs.js';
import { sweepSoon } from '../sweep.js';
import { type CommandContext, openEngine, settingsFor } from './context.js';
import { launchSpec, planRun, prepare, type RunFlags, withFlags } from './plan.js';

export type { RunFlags } from './plan.js';

export async function run(runnerName: string, args: string[], flags: RunFlags, ctx: CommandContext): Promise<number> {
  const invocation = parseRunnerArgs(runnerName, args);
  const configured = applyPackagePolicies(await settingsFor(ctx), invocation.runner, invocation.packages.map((p) => p.name));
  const settings = withFlags(configured, flags);
  const plan = planRun(invocation, settings, flags, ctx);
  const request = flags.lock ? installRequest(invocation) : undefined;
  const state = stateDir(ctx.env);
  const lock = request && findLock(ctx.cwd, state);

  if (flags.dryRun) {
    let bin = 'docker';
    try {
      bin = locateEngine({ env: ctx.env, configured: settings.docker }).path;
    } catch {
      // A dry run prints the command even where no engine is installed.
    }
    let spec = plan.spec;
    if (request && lock) {
      const server = installedServer(request, lock.path, state, plan.spec.image, plan.spec.user);
      if (server) spec = launchSpec(plan, request, server.entry, server.record);
      else ctx.log.note(`${request.specs.join(' ')} is not installed yet: a real run resolves, installs and locks it first, then starts it directly; shown is the command that resolves on every start`);
    }
    ctx.stdout.write(`${shellJoin([bin, ...runArgv(spec)])}\n`);
    return 0;
  }

  const { engine, env: engineEnv } = openEngine(ctx, settings);
  const { image } = plan.spec;
  const intervalHours = settings.updateInterval ?? 24;
  sweepSoon(engine, hostProbe(), ctx.log, state);
  const watchEof = eofWatcher(ctx.env);
  const start = (spec: ContainerSpec, verify?: () => Promise<'ok' | 'retry'>) => {
    // The engine CLI's own environment (PATH with its directory first); values go in the env file.
    const launch = engineLaunch(spec, ctx.env, engineEnv, (lines) => engine.envFile(lines));
    return supervise({
      engine,
      argv: launch.argv,
      env: launch.env,
      envFile: launch.envFile,
      name: spec.name,
      stdin: ctx.stdin,
      tty: spec.tty,
      stopOnEof: flags.stopOnEof && plan.client,
      graceMs: (settings.grace ?? 2) * 1000,
      memory: spec.policy.memory,
      log: ctx.log,
      watchEof,
      ...(verify && { verify }),
    });
  };

  // Warm start: locked, installed here, not due for a refresh. The server starts at once, and the
  // image and cache volume are checked while the container comes up (a missing image fails before
  // anything reads the client's input, so the slow path below can take over).
  const installed = request && lock && !plan.spec.tty ? installedServer(request, lock.path, state, image, plan.spec.user) : undefined;
  const warm = installed && !needsRefresh(installed.entry, new Date(), intervalHours) ? installed : undefined;
  if (warm) {
    let why = '';
    const volume = warm.record.volume;
    const verify = () => engine.inspect([image, volume]).then(({ missing, volumeIds }) => {
      if (missing.has(image)) why = `the image ${image} is gone (nothing was read from the client yet)`;
      else if (volumeIds.get(volume) !== warm.record.volumeId) {
        why = `the install volume ${volume} was removed or recreated since the last run, so its install is gone; the client's first message went to this failed start (if the client is still waiting, restart the server)`;
      }
      return why ? 'retry' : 'ok';
    });
    const outcome = await start(launchSpec(plan, request!, warm.entry, warm.record), verify);
    if (outcome !== 'retry') return outcome;
    ctx.log.warn(`${why}: preparing it again`);
  }

  const prepared = await prepare(engine, engineEnv, plan, request && lock ? { request, lockPath: lock.path } : undefined, {
    hostEnv: ctx.env,
    log: ctx.log,
    stateDir: state,
    intervalHours,
  });
  if (prepared.server && request) {
    return started(await start(launchSpec(plan, request, prepared.server.entry, prepared.server.record)));
  }
  return started(await start(plan.spec));
}

/** Only a warm start can ask to be retried. */
function started(outcome: number | 'retry'): number {
  if (outcome === 'retry') throw new Error('unexpected retry of a checked start');
  return outcome;
}

/** The lock entry and install record of a server installed here, in this image, for this user. */
function installedServer(request: InstallRequest, lockPath: string, state: string, image: string, user: string) {
  const key = lockKey(request);
  const entry = readLock(lockPath).servers[key];
  const record = readInstalls(state)[installKey(key, image, user)];
  return entry && record && installedAsLocked(record, entry) ? { entry, record } : undefined;
}

