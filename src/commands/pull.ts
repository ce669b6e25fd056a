import { existsSync, readFileSync } from 'node:fs';
import { join, sep } from 'node:path';
import { UsageError } from '../errors.js';
import { installRequest, lockKey } from '../install/lock.js';
import { refuseBeforeInstall } from '../install/before-install.js';
import { findLock } from '../install/lock-files.js';
import { createLogger } from '../log.js';
import { stateDir } from '../paths.js';
import { isRunner, parseRunnerArgs, RUNNER_NAMES, RUNNERS } from '../runners/table.js';
import { applyPackagePolicies, supplyGates } from '../config/settings.js';
import { settingsFor } from '../config/files.js';
import type { CommandContext } from './context.js';
import { egressAccessFor, prepare } from '../install/prepare.js';
import { DEFAULT_FLAGS, dataOwner, type GateFlags, planRun, withFlags } from '../sandbox/plan.js';
import { dataVolumeAlongside } from '../lifecycle/data.js';
import { respawnToLeaveStandby, STANDBY_FOR } from '../lifecycle/standby-run.js';
import { clientFiles } from '../clients/table.js';
import { type WrappedLaunch, wrappedLaunches } from '../clients/launches.js';

/**
 * `mcpbox pull <npx|uvx> [package…]`: everything a first run would do, ahead of time — build or pull
 * the image, create the cache volume, resolve, install and lock each package — so a client's first
 * initialize doesn't time out. Progress goes to stderr when it is a terminal; stdout gets one line
 * per package.
 */
export async function pull(runner: string, packages: string[], ctx: CommandContext, flags: GateFlags = {}): Promise<number> {
  if (!isRunner(runner)) throw new UsageError(`unknown runner "${runner}"`, `mcpbox pull ${RUNNER_NAMES.join('|')} [package…]`);
  const log = process.stderr.isTTY ? ctx.log : createLogger({ quiet: true });
  const quietCtx = { ...ctx, log };
  const base = await settingsFor(ctx);
  const { engine, env: engineEnv } = await ctx.openEngine(base, log);
  const state = stateDir(ctx.env);
  const lock = findLock(ctx.cwd, state);
  const egress = egressAccessFor(engine, ctx, base, state, log);

  const specs = packages.length === 0 ? [undefined] : packages;
  const pulled: { key: string; name: string }[] = [];
  for (const spec of specs) {
    const invocation = parseRunnerArgs(runner, spec === undefined ? ['--version'] : RUNNERS[runner].lock.argsForPackage(spec));
    const settings = withFlags(applyPackagePolicies(base, invocation.runner, invocation.packages.map((p) => p.name)), { ...DEFAULT_FLAGS, ...flags });
    const plan = planRun(invocation, settings, { ...DEFAULT_FLAGS, autoMount: false }, quietCtx);
    const request = installRequest(invocation);
    refuseBeforeInstall(invocation, ctx, state, { yes: Boolean(flags.yes), command: 'mcpbox pull' });
    if (spec !== undefined && !request) ctx.log.warn(`${spec} is not a registry package mcpbox can lock: it resolves on every start (only its image and cache volume are prepared)`);
    const { server } = await prepare(engine, engineEnv, plan, request ? { request, lockPath: lock.path } : undefined, {
      hostEnv: ctx.env,
      log,
      stateDir: state,
      intervalHours: settings.updateInterval ?? 24,
      egress,
      installEgress: settings.installEgress,
      gates: supplyGates(settings),
      // Its data volume too, so the first session asks the engine nothing more.
      alongside: dataVolumeAlongside(engine, plan, state, dataOwner(ctx)),
    });
    ctx.stdout.write(
      server ? `${runner} ${server.entry.name}@${server.entry.version} ready (${server.entry.executable}, locked in ${lock.path})\n` : `${runner} ${spec ?? plan.spec.image} ready\n`,
    );
    if (server && request) pulled.push({ key: lockKey(request), name: server.entry.name });
  }
  const left = leaveStandbysForClients(ctx, state, pulled);
  if (left > 0) log.info(`starting standbys for ${left} client entr${left === 1 ? 'y' : 'ies'} of ${pulled.map((p) => p.name).join(', ')} (see ${join(state, 'standby.log')})`);
  return 0;
}

/**
 * After a pull, the servers its clients start through mcpbox wait for them as after a session: a
 * `mcpbox run` of each wrapped entry of a pulled server, as its client starts it (its arguments, its
 * env block's values, its project), leaving a standby (src/lifecycle/standby-run.ts). Each decides
 * for itself, as a run would, whether its server is installed here and gets a standby.
 */
function leaveStandbysForClients(ctx: CommandContext, stateDir: string, pulled: readonly { key: string; name: string }[]): number {
  if (!ctx.selfCommand || pulled.length === 0) return 0;
  const ofPulled = (args: readonly string[]) => args.some((arg) => pulled.some(({ name }) => arg === name || (arg.startsWith(name) && /^[@=<>~!]/.test(arg.slice(name.length)))));
  let started = 0;
  for (const { file } of clientFiles({ home: ctx.home, platform: ctx.platform, env: ctx.env, cwd: ctx.cwd }, existsSync)) {
    let launches: WrappedLaunch[];
    try {
      launches = wrappedLaunches(readFileSync(file, 'utf8'), file);
    } catch {
      continue; // A malformed client config is wrap's to report: a pull goes on without it.
    }
    // The client starts a user-level entry in no project of ours (the home directory is the neutral
    // place); a project's files (.mcp.json, .cursor/, .vscode/) in that project.
    const where = file.startsWith(join(ctx.cwd, sep)) ? ctx.cwd : ctx.home;
    for (const launch of launches.filter((l) => ofPulled(l.runArgs))) {
      const env = { ...ctx.env, ...launch.env, [STANDBY_FOR]: pulled.map((p) => p.key).join('\n') };
      respawnToLeaveStandby([...ctx.selfCommand, 'run', ...launch.runArgs], launch.project ?? where, env, stateDir);
      started++;
    }
  }
  return started;
}
