import { UsageError } from '../errors.js';
import { installRequest } from '../install/lock.js';
import { findLock } from '../install/lock-files.js';
import { createLogger } from '../log.js';
import { stateDir } from '../paths.js';
import { isRunner, parseRunnerArgs, RUNNER_NAMES, RUNNERS } from '../runners/table.js';
import { applyPackagePolicies } from '../config/settings.js';
import { settingsFor } from '../config/files.js';
import type { CommandContext } from './context.js';
import { egressAccessFor, prepare } from '../install/prepare.js';
import { DEFAULT_FLAGS, dataOwner, planRun } from '../sandbox/plan.js';
import { ensureDataVolume } from '../lifecycle/data.js';

/**
 * `mcpbox pull <npx|uvx> [package…]`: everything a first run would do, ahead of time — build or pull
 * the image, create the cache volume, resolve, install and lock each package — so a client's first
 * initialize doesn't time out. Progress goes to stderr when it is a terminal; stdout gets one line
 * per package.
 */
export async function pull(runner: string, packages: string[], ctx: CommandContext): Promise<number> {
  if (!isRunner(runner)) throw new UsageError(`unknown runner "${runner}"`, `mcpbox pull ${RUNNER_NAMES.join('|')} [package…]`);
  const log = process.stderr.isTTY ? ctx.log : createLogger({ quiet: true });
  const quietCtx = { ...ctx, log };
  const base = await settingsFor(ctx);
  const { engine, env: engineEnv } = await ctx.openEngine(base.docker, log);
  const state = stateDir(ctx.env);
  const lock = findLock(ctx.cwd, state);
  const egress = egressAccessFor(engine, ctx, base, state, log);

  const specs = packages.length === 0 ? [undefined] : packages;
  for (const spec of specs) {
    const invocation = parseRunnerArgs(runner, spec === undefined ? ['--version'] : RUNNERS[runner].lock.argsForPackage(spec));
    const settings = applyPackagePolicies(base, invocation.runner, invocation.packages.map((p) => p.name));
    const plan = planRun(invocation, settings, { ...DEFAULT_FLAGS, autoMount: false }, quietCtx);
    const request = installRequest(invocation);
    if (spec !== undefined && !request) ctx.log.warn(`${spec} is not a registry package mcpbox can lock: it resolves on every start (only its image and cache volume are prepared)`);
    const { server } = await prepare(engine, engineEnv, plan, request ? { request, lockPath: lock.path } : undefined, {
      hostEnv: ctx.env,
      log,
      stateDir: state,
      intervalHours: settings.updateInterval ?? 24,
      egress,
      installEgress: settings.installEgress,
    });
    // Its data volume too, so the first session asks the engine nothing more.
    await ensureDataVolume(engine, plan, state, dataOwner(ctx));
    ctx.stdout.write(
      server ? `${runner} ${server.entry.name}@${server.entry.version} ready (${server.entry.executable}, locked in ${lock.path})\n` : `${runner} ${spec ?? plan.spec.image} ready\n`,
    );
  }
  return 0;
}
