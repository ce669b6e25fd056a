import { UsageError } from '../errors.js';
import { installRequest } from '../install/lock.js';
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
  }
  return 0;
}
