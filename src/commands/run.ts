import { randomBytes } from 'node:crypto';
import { fstatSync, realpathSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join as shellJoin } from 'shlex';
import type { Settings } from '../config.js';
import { applyPackagePolicies, formatProblems, validateSettings } from '../config.js';
import { engineEnvironment, ENGINE_ENV, runArgv } from '../engine/argv.js';
import { locateEngine } from '../engine/locate.js';
import { caSetup, proxyVars, resolveForwardedEnv } from '../env.js';
import { UsageError } from '../errors.js';
import { chooseImage } from '../images.js';
import { supervise } from '../lifecycle.js';
import { type HostFs, NOBODY, planMounts, sandboxUser } from '../mounts.js';
import { stateDir } from '../paths.js';
import { hostProbe } from '../processes.js';
import { parseRunnerArgs, RUNNERS } from '../runners.js';
import { cacheVolumeName, containerLabels, containerName, containerSpec, LABEL, resolvePolicy } from '../sandbox.js';
import { sweepSoon } from '../sweep.js';
import { VERSION } from '../version.js';
import { type CommandContext, openEngine, settingsFor } from './context.js';

export interface RunFlags {
  env: string[];
  image?: string;
  network?: string;
  memory?: string;
  cpus?: string;
  pids?: string;
  grace?: string;
  mount: string[];
  autoMount: boolean;
  stopOnEof: boolean;
  dryRun: boolean;
}

export async function run(runnerName: string, args: string[], flags: RunFlags, ctx: CommandContext): Promise<number> {
  const invocation = parseRunnerArgs(runnerName, args);
  const configured = applyPackagePolicies(await settingsFor(ctx), invocation.runner, invocation.packages.map((p) => p.name));
  const settings = withFlags(configured, flags);
  const policy = resolvePolicy(settings);
  const runner = RUNNERS[invocation.runner];
  const choice = chooseImage(invocation.runner, flags.image, ctx.env, settings);

  const forwarded = resolveForwardedEnv([...(settings.env ?? []), ...flags.env], ctx.env);
  for (const name of forwarded.unset) ctx.log.note(`-e ${name}: not set in mcpbox's environment, so not passed`);
  const forwardedNames = new Set(forwarded.vars.map((v) => v.name));
  const carried = [...forwarded.vars, ...proxyVars(ctx.env).filter((v) => !forwardedNames.has(v.name))];
  const ca = caSetup(ctx.env, runner.caEnv, existingFile);
  for (const name of ca.missing) ctx.log.warn(`${name} names ${ctx.env[name]}, which does not exist: not mounted`);

  // An MCP client talks over a pipe or socket; a terminal, a script or CI over anything else.
  const tty = Boolean(ctx.stdin.isTTY && ctx.stdout.isTTY);
  const client = !tty && isPipe(ctx.stdin);
  const host = planMounts({
    args: invocation.args,
    mountCwd: !client,
    cwd: ctx.cwd,
    home: ctx.home,
    // A Windows host's paths have no same-path equivalent in a Linux container.
    autoMount: (settings.autoMount ?? true) && flags.autoMount && ctx.platform !== 'win32',
    explicit: [...(settings.mounts ?? []), ...flags.mount],
    fs: hostFs,
  });
  for (const note of host.notes) ctx.log.note(note);
  const user = sandboxUser({ platform: ctx.platform, uid: ctx.uid, gid: ctx.gid, binds: host.binds });

  const name = containerName(invocation, randomBytes(3).toString('hex'));
  const labels = containerLabels(invocation, { pid: ctx.pid, host: hostname(), startedAt: new Date(), version: VERSION });
  const spec = containerSpec({
    invocation,
    policy,
    image: choice.image,
    name,
    labels,
    ca,
    forwarded: carried,
    engineVars: ENGINE_ENV,
    tty,
    user,
    host,
    ...(user !== NOBODY && ctx.username && { identity: { USER: ctx.username, LOGNAME: ctx.username } }),
  });
  const argv = runArgv(spec);

  if (flags.dryRun) {
    let bin = 'docker';
    try {
      bin = locateEngine({ env: ctx.env, configured: settings.docker }).path;
    } catch {
      // A dry run prints the command even where no engine is installed.
    }
    ctx.stdout.write(`${shellJoin([bin, ...argv])}\n`);
    return 0;
  }

  const { engine, env: baseEnv } = openEngine(ctx, settings);

  const volume = cacheVolumeName(invocation, user);
  const missing = await engine.missing(volume ? [choice.image, volume] : [choice.image]);
  if (missing.has(choice.image)) {
    if (choice.build) {
      ctx.log.info(`building ${choice.image} from ${choice.build.context} on ${choice.build.base} (first use only)`);
      await engine.build({
        tag: choice.image,
        context: choice.build.context,
        buildArgs: { BASE_IMAGE: choice.build.base },
        labels: { [LABEL.managed]: 'true', 'dev.mcpbox.base-image': choice.build.base },
      });
    } else {
      ctx.log.info(`pulling ${choice.image}`);
      await engine.pull(choice.image);
    }
  }
  if (volume && missing.has(volume)) {
    await engine.prepareVolume(volume, choice.image, { volume: { [LABEL.managed]: 'true', [LABEL.runner]: invocation.runner }, container: labels });
  }

  sweepSoon(engine, hostProbe(), ctx.log, stateDir(ctx.env));
  return supervise({
    engine,
    argv,
    // The base environment (PATH with the CLI's own directory) plus the forwarded values.
    env: { ...engineEnvironment(ctx.env, spec), ...baseEnv },
    name,
    stdin: ctx.stdin,
    tty,
    stopOnEof: flags.stopOnEof && client,
    graceMs: (settings.grace ?? 2) * 1000,
    log: ctx.log,
  });
}

/** Flags are one more settings layer, checked by the same rules as files. */
function withFlags(settings: Settings, flags: RunFlags): Settings {
  const raw: Record<string, unknown> = {};
  if (flags.memory !== undefined) raw.memory = flags.memory;
  if (flags.cpus !== undefined) raw.cpus = flags.cpus;
  if (flags.pids !== undefined) raw.pids = Number(flags.pids);
  if (flags.network !== undefined) raw.network = flags.network;
  if (flags.grace !== undefined) raw.grace = Number(flags.grace);
  const { settings: fromFlags, problems } = validateSettings(raw, 'command line');
  if (problems.length > 0) throw new UsageError(formatProblems(problems).replace(/"(\w+)"/, '--$1'));
  return { ...settings, ...fromFlags };
}

const hostFs: HostFs = {
  realpath: (path) => {
    try {
      return realpathSync(path);
    } catch {
      return undefined;
    }
  },
  kind: (path) => {
    try {
      const stat = statSync(path);
      return stat.isDirectory() ? 'dir' : stat.isFile() ? 'file' : stat.isSocket() ? 'socket' : 'other';
    } catch {
      return undefined;
    }
  },
};

function existingFile(path: string): string | undefined {
  try {
    const real = realpathSync(path);
    return statSync(real).isFile() ? real : undefined;
  } catch {
    return undefined;
  }
}

/** A client's pipe or socket: its end means the client is done with the server. */
function isPipe(stream: { fd?: number }): boolean {
  try {
    const stat = fstatSync(stream.fd ?? 0);
    return stat.isFIFO() || stat.isSocket();
  } catch {
    return false;
  }
}
