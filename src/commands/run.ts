import { join as shellJoin } from 'shlex';
import { settingsFor } from '../config/files.js';
import { applyPackagePolicies } from '../config/settings.js';
import { locateEngine } from '../engine/locate.js';
import type { CommandContext } from './context.js';
import { egressVolume, readEgressKey } from '../egress/proxy.js';
import { hostOwner, realHostFs } from '../host.js';
import { installedServer } from '../install/installs.js';
import { serverEgress } from '../lifecycle/egress.js';
import { type InstallRequest, installRequest, lockKey } from '../install/lock.js';
import { McpboxError } from '../errors.js';
import { createInterface } from 'node:readline';
import { refuseBeforeInstall } from '../install/before-install.js';
import { findLock, readLock } from '../install/lock-files.js';
import { launchSpec } from '../install/specs.js';
import { hostProbe } from '../lifecycle/processes.js';
import { leaveStandbyFor, type StartInput, startServer } from '../lifecycle/start.js';
import { copiesIn, makeCopies } from '../lifecycle/copies.js';
import { LEAVE_STANDBY, respawnToLeaveStandby, standbyWanted } from '../lifecycle/standby-run.js';
import { sweepSoon } from '../lifecycle/sweep.js';
import { stateDir } from '../paths.js';
import { parseRunnerArgs, type RunnerInvocation, RUNNERS, type RunnerSpec } from '../runners/table.js';
import { runArgv } from '../sandbox/argv.js';
import { planRun, type RunFlags, withFlags } from '../sandbox/plan.js';

export type { RunFlags } from '../sandbox/plan.js';

/** `mcpbox run [options] npx|uvx …`: plan the sandbox, then print it (--dry-run) or start the server in it. */
export async function run(runnerName: string, args: string[], flags: RunFlags, ctx: CommandContext): Promise<number> {
  const invocation = parseRunnerArgs(runnerName, args);
  const state = stateDir(ctx.env);
  // Before anything else: a near miss of a popular or installed name, a private scope from the public registry.
  if (!flags.dryRun) refuseBeforeInstall(invocation, ctx, state, { yes: Boolean(flags.yes), command: 'mcpbox run' });
  const configured = applyPackagePolicies(await settingsFor(ctx), invocation.runner, invocation.packages.map((p) => p.name));
  const settings = withFlags(configured, flags);
  // The project's own tool (npx tsc in a typescript project) runs as npx would run it, from the
  // project, mounted: nothing is installed or locked for it.
  const fs = ctx.fs ?? realHostFs;
  const local = (RUNNERS[invocation.runner] as RunnerSpec).localBin?.(invocation, ctx.cwd, (path) => fs.kind(path) === 'file');
  const plan = planRun(invocation, settings, local ? { ...flags, mount: [...flags.mount, local.root] } : flags, ctx);
  const request = flags.lock && !local ? installRequest(invocation) : undefined;
  const locked = request && { request, lockPath: findLock(ctx.cwd, state).path };

  if (flags.dryRun) {
    let bin = 'docker';
    try {
      bin = locateEngine({ env: ctx.env, configured: settings.docker, engine: settings.engine }).path;
    } catch {
      // A dry run prints the command even where no engine is installed.
    }
    const egress = serverEgress({ plan, settings, access: { volume: egressVolume(hostOwner(ctx), readEgressKey(state)) }, locked, lockPath: findLock(ctx.cwd, state).path, stateDir: state, log: ctx.log });
    let spec = egress.plan.spec;
    if (locked) {
      const server = installedServer(locked.request, { lockPath: locked.lockPath, stateDir: state, image: plan.spec.image });
      if (server) spec = launchSpec(egress.plan, locked.request, server.entry, server.record);
      else ctx.log.note(`${locked.request.specs.join(' ')} is not installed yet: a real run resolves, installs and locks it first, then starts it directly; shown is the command that resolves on every start`);
    }
    ctx.stdout.write(`${shellJoin([bin, ...runArgv(spec)])}\n`);
    return 0;
  }

  const leaving = ctx.env[LEAVE_STANDBY] === '1';
  if (locked && !leaving) await confirmInstall(invocation, locked, ctx);
  const { engine, env: engineEnv } = await ctx.openEngine(settings);
  const input = { engine, engineEnv, ctx, plan, settings, locked, lockPath: findLock(ctx.cwd, state).path, stateDir: state, stopOnEof: flags.stopOnEof && plan.client };
  if (copiesIn(plan.input)) return runWithCopies(input);
  if (leaving) return leaveStandbyFor(input);
  sweepSoon(engine, hostProbe(), ctx.log, state);
  const code = await startServer(input);
  // The next launch of this server attaches to one already running (src/lifecycle/standby.ts).
  if (locked && ctx.selfArgv && standbyWanted(settings, engine, { client: plan.client, tty: plan.spec.tty })) respawnToLeaveStandby(ctx.selfArgv, ctx.cwd, ctx.env, state);
  return code;
}

/**
 * --copy-in: the copies are made before the server starts and removed after it ends. No standby
 * either way: one left for the next run would hold this session's copies, or none.
 */
async function runWithCopies(input: StartInput): Promise<number> {
  const { engine } = input;
  const removeCopies = await makeCopies(engine, input.plan, input.ctx.log);
  try {
    sweepSoon(engine, hostProbe(), input.ctx.log, input.stateDir);
    return await startServer({ ...input, settings: { ...input.settings, standby: false } });
  } finally {
    await removeCopies();
  }
}

/**
 * Like npx: a package this lock doesn't have yet is confirmed at a terminal unless -y was given
 * (MCP client configurations say -y, and `wrap` keeps it); --no refuses it; with no terminal to ask
 * (a client, a script, CI) it goes ahead, as npx does.
 */
async function confirmInstall(invocation: RunnerInvocation, locked: { request: InstallRequest; lockPath: string }, ctx: CommandContext): Promise<void> {
  const asks = (RUNNERS[invocation.runner] as RunnerSpec).asksBeforeInstall;
  const given = new Set(invocation.options.map((o) => o.name));
  // npm's own setting counts too (npm_config_yes=true in the environment, as npx reads it).
  const yes = given.has(asks?.yes ?? '') || /^(?:true|1)$/i.test(ctx.env.npm_config_yes ?? ctx.env.NPM_CONFIG_YES ?? '');
  if (!asks || yes || readLock(locked.lockPath).servers[lockKey(locked.request)]) return;
  const specs = locked.request.specs.join(' ');
  if (given.has(asks.no)) throw new McpboxError('canceled', `${invocation.runner} canceled: ${specs} is not installed yet and ${asks.no} was given`, `drop ${asks.no}, or add -y`, 1);
  if (!ctx.stdin.isTTY || !process.stderr.isTTY) return;
  const prompt = createInterface({ input: ctx.stdin, output: process.stderr });
  const answer = await new Promise<string>((resolve) => prompt.question(`Need to install the following packages:\n  ${locked.request.specs.join('\n  ')}\nOk to proceed? (y) `, resolve));
  prompt.close();
  if (answer.trim() !== '' && !/^y(es)?$/i.test(answer.trim())) throw new McpboxError('canceled', `${invocation.runner} canceled: ${specs} was not installed`, 'answer y, or run it with -y', 1);
}
