import { applyPackagePolicies, supplyGates } from '../config/settings.js';
import { McpboxError, UsageError } from '../errors.js';
import { installRequest, runnerArgs } from '../install/lock.js';
import { findLock, readLock } from '../install/lock-files.js';
import { stateDir } from '../paths.js';
import { parseRunnerArgs } from '../runners/table.js';
import { settingsFor } from '../config/files.js';
import type { CommandContext } from './context.js';
import { egressAccessFor, prepare } from '../install/prepare.js';
import { DEFAULT_FLAGS, type GateFlags, planRun, withFlags } from '../sandbox/plan.js';

/**
 * `mcpbox update [package…]`: resolves locked servers again now (all of them, or those named), installs
 * what changed and rewrites the lock. Pinned servers resolve to what they already are.
 */
export async function update(names: string[], ctx: CommandContext, flags: GateFlags = {}): Promise<number> {
  const state = stateDir(ctx.env);
  const lock = findLock(ctx.cwd, state);
  const entries = Object.values(readLock(lock.path).servers);
  const chosen = names.length === 0 ? entries : entries.filter((e) => names.includes(e.name) || e.specs.some((s) => names.includes(s)));
  const unknown = names.filter((n) => !entries.some((e) => e.name === n || e.specs.includes(n)));
  if (unknown.length > 0) throw new UsageError(`not in ${lock.path}: ${unknown.join(', ')}`, 'run the server once with mcpbox run to lock it');
  if (chosen.length === 0) {
    ctx.log.info(`nothing to update: ${lock.path} locks no servers yet`);
    return 0;
  }
  const base = await settingsFor(ctx);
  const { engine, env: engineEnv } = await ctx.openEngine(base);
  const egress = egressAccessFor(engine, ctx, base, state, ctx.log);
  let failed = 0;
  for (const entry of chosen) {
    const invocation = parseRunnerArgs(entry.runner, runnerArgs(entry));
    const settings = withFlags(applyPackagePolicies(base, invocation.runner, invocation.packages.map((p) => p.name)), { ...DEFAULT_FLAGS, ...flags });
    // The install is what matters here, for the user a client's run would use: nothing of the host.
    const plan = planRun(invocation, settings, { ...DEFAULT_FLAGS, autoMount: false }, ctx);
    const request = installRequest(invocation)!;
    try {
      const { server } = await prepare(engine, engineEnv, plan, { request, lockPath: lock.path }, {
        hostEnv: ctx.env,
        log: ctx.log,
        stateDir: state,
        intervalHours: settings.updateInterval ?? 24,
        force: true,
        egress,
        installEgress: settings.installEgress,
        gates: supplyGates(settings),
      });
      const now = server!.entry.version;
      ctx.stdout.write(now === entry.version ? `${entry.name} ${now} (up to date)\n` : `${entry.name} ${entry.version} → ${now}\n`);
    } catch (error) {
      if (!(error instanceof McpboxError)) throw error;
      failed++;
      ctx.log.error(`${entry.name}: ${error.message}`, error.hint);
    }
  }
  return failed === 0 ? 0 : 1;
}
