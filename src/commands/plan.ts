import { randomBytes } from 'node:crypto';
import { fstatSync, realpathSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Settings } from '../config.js';
import { formatProblems, sizeInBytes, validateSettings } from '../config.js';
import type { DockerEngine } from '../engine/docker.js';
import { caSetup, type ForwardedVar, proxyVars, resolveForwardedEnv } from '../env.js';
import { UsageError } from '../errors.js';
import { chooseImage, type ImageChoice, sandboxScript } from '../images.js';
import { type LockedServer, lockedServer } from '../installs.js';
import { type InstallRecord, type InstallRequest, type LockEntry, lockKey } from '../lock.js';
import type { Logger } from '../log.js';
import { type HostFs, NOBODY, planMounts, sandboxUser } from '../mounts.js';
import { type RunnerInvocation, RUNNERS } from '../runners.js';
import {
  cacheVolumeName,
  DEFAULT_CACHE_LIMIT,
  installVolumeName,
  containerLabels,
  containerName,
  type ContainerInput,
  type ContainerSpec,
  containerSpec,
  LABEL,
  resolvePolicy,
} from '../sandbox.js';
import { VERSION } from '../version.js';
import type { CommandContext } from './context.js';

/**
 * Planning a server's container (everything that needs no engine) and preparing what it needs (image,
 * cache volume, the locked install), shared by `run`, `update` and `pull`.
 */
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
  lock: boolean;
  stopOnEof: boolean;
  dryRun: boolean;
  /** Decide rather than detect that an MCP client is on the other end (serve: no terminal, no working directory). */
  client?: boolean;
}

/** The defaults commander gives `run`, for commands that plan a server without its flags. */
export const DEFAULT_FLAGS: RunFlags = { env: [], mount: [], autoMount: true, lock: true, stopOnEof: true, dryRun: false };

export interface RunPlan {
  /** The container as the runner would run it (resolving on every start). */
  readonly spec: ContainerSpec;
  /** What it was built from, for the launch and install variants. */
  readonly input: ContainerInput;
  readonly choice: ImageChoice;
  readonly client: boolean;
  /** The proxies: all an install container gets of the host environment. */
  readonly proxies: readonly ForwardedVar[];
}

/** Everything about the container that needs no engine: image, policy, environment, mounts, user. */
export function planRun(invocation: RunnerInvocation, settings: Settings, flags: RunFlags, ctx: CommandContext): RunPlan {
  const runner = RUNNERS[invocation.runner];
  const choice = chooseImage(invocation.runner, flags.image, ctx.env, settings);

  const forwarded = resolveForwardedEnv([...(settings.env ?? []), ...flags.env], ctx.env);
  for (const name of forwarded.unset) ctx.log.note(`-e ${name}: not set in mcpbox's environment, so not passed`);
  const forwardedNames = new Set(forwarded.vars.map((v) => v.name));
  const proxies = proxyVars(ctx.env);
  const ca = caSetup(ctx.env, runner.caEnv, existingFile);
  for (const name of ca.missing) ctx.log.warn(`${name} names ${ctx.env[name]}, which does not exist: not mounted`);

  // An MCP client talks over a pipe or socket; a terminal, a script or CI over anything else.
  const tty = flags.client === undefined && Boolean(ctx.stdin.isTTY && ctx.stdout.isTTY);
  const client = flags.client ?? (!tty && isPipe(ctx.stdin));
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

  const input: ContainerInput = {
    invocation,
    policy: resolvePolicy(settings),
    image: choice.image,
    name: containerName(invocation, randomBytes(3).toString('hex')),
    labels: containerLabels(invocation, { pid: ctx.pid, host: hostname(), startedAt: new Date(), version: VERSION }),
    ca,
    forwarded: [...forwarded.vars, ...proxies.filter((v) => !forwardedNames.has(v.name))],
    tty,
    user,
    owner: hostOwner(ctx),
    cacheLimitKb: Math.floor(sizeInBytes(settings.cacheLimit ?? DEFAULT_CACHE_LIMIT) / 1024),
    host,
    ...(user !== NOBODY && ctx.username && { identity: { USER: ctx.username, LOGNAME: ctx.username } }),
  };
  return { spec: containerSpec(input), input, choice, client, proxies };
}

/** The same plan with some of its container's inputs replaced (a fresh name and labels per serve session). */
export function respec(plan: RunPlan, overrides: Partial<ContainerInput>): RunPlan {
  const input = { ...plan.input, ...overrides };
  return { ...plan, input, spec: containerSpec(input) };
}

/** The invoking host user, for volume names: the uid, or the user name where there is none (Windows). */
export function hostOwner(ctx: Pick<CommandContext, 'uid' | 'username'>): string {
  return ctx.uid !== undefined ? String(ctx.uid) : (ctx.username ?? 'user');
}

/** The install volume of a locked request in this plan's image, for this plan's user. */
export function installVolume(plan: RunPlan, request: InstallRequest): string {
  return installVolumeName(plan.input.invocation, lockKey(request), plan.spec.image, plan.spec.user, plan.input.owner);
}

/**
 * A locked server: the installed executable, started directly after the launcher checks the tree
 * (its lock file, then the fingerprints of its files). Its install volume is read-only; its cache a
 * throwaway: a locked server installs nothing.
 */
export function launchSpec(plan: RunPlan, request: InstallRequest, entry: LockEntry, record: InstallRecord): ContainerSpec {
  const lockfile = request.runner === 'npx' ? 'package-lock.json' : 'requirements.txt';
  const serverArgs = plan.input.host.args.slice(request.serverArgsFrom);
  const script = `${sandboxScript('tree-hash.sh')}\n${sandboxScript('launch.sh')}`;
  return containerSpec({
    ...plan.input,
    command: {
      entrypoint: 'sh',
      args: ['-c', script, 'mcpbox-launch', record.dir, lockfile, record.tree, record.signature, record.content, entry.executable, ...serverArgs],
      install: { volume: record.volume, readonly: true },
      cacheTmpfs: true,
    },
  });
}

/**
 * The install container: no host files, no variables but the proxies, a network to reach the
 * registry, the cache volume and the install volume, both writable.
 */
export function installSpec(plan: RunPlan, volume: string, args: readonly string[], installEnv: Readonly<Record<string, string>>): ContainerSpec {
  const { input } = plan;
  return containerSpec({
    ...input,
    name: `${input.name}-install`,
    labels: { ...input.labels, [LABEL.role]: 'install' },
    forwarded: plan.proxies,
    tty: false,
    host: { binds: [], args: [], workdir: undefined },
    identity: {},
    command: {
      entrypoint: 'sh',
      args,
      network: input.policy.network === 'none' ? 'bridge' : input.policy.network,
      env: installEnv,
      install: { volume, readonly: false },
    },
  });
}

/** Flags are one more settings layer, checked by the same rules as files. */
export function withFlags(settings: Settings, flags: RunFlags): Settings {
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
  const real = hostFs.realpath(path);
  return real && hostFs.kind(real) === 'file' ? real : undefined;
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

export interface PrepareOptions {
  readonly hostEnv: Readonly<Record<string, string | undefined>>;
  readonly log: Logger;
  readonly stateDir: string;
  readonly intervalHours: number;
  /** Resolve again whatever the lock says (mcpbox update). */
  readonly force?: boolean;
}

/**
 * Everything a server needs before it starts: its image (built or pulled), its cache volume (created
 * and opened to the sandbox user) and, for a lockable request, its locked install.
 */
export async function prepare(
  engine: DockerEngine,
  engineEnv: Readonly<Record<string, string>>,
  plan: RunPlan,
  locked: { request: InstallRequest; lockPath: string } | undefined,
  options: PrepareOptions,
): Promise<{ server?: LockedServer }> {
  const { image } = plan.spec;
  const { invocation } = plan.input;
  const cache = cacheVolumeName(invocation, plan.spec.user, plan.input.owner);
  const install = locked && cache ? installVolume(plan, locked.request) : undefined;
  const volumes = [cache, install].filter((v): v is string => v !== undefined);
  const inspected = await engine.inspect([image, ...volumes]);
  if (inspected.missing.has(image)) await provideImage(engine, plan, options.log);
  const ids = new Map<string, string>();
  for (const volume of volumes) {
    const known = inspected.volumeIds.get(volume);
    if (known && !inspected.missing.has(volume)) {
      ids.set(volume, known);
      continue;
    }
    const role: Record<string, string> = volume === install ? { [LABEL.role]: 'install' } : {};
    const labels = { volume: { [LABEL.managed]: 'true', [LABEL.runner]: invocation.runner, ...role }, container: plan.spec.labels };
    ids.set(volume, await engine.prepareVolume(volume, image, labels, plan.input.cacheLimitKb));
  }
  if (!locked || !install) return {};
  const server = await lockedServer(
    {
      engine,
      engineEnv,
      hostEnv: options.hostEnv,
      image,
      volume: install,
      volumeId: ids.get(install)!,
      user: plan.spec.user,
      log: options.log,
      spec: (installArgs, installEnv) => installSpec(plan, install, installArgs, installEnv),
    },
    locked.request,
    { lockPath: locked.lockPath, stateDir: options.stateDir, intervalHours: options.intervalHours, now: new Date(), ...(options.force && { force: true }) },
  );
  return { server };
}

/** Builds mcpbox's default image, or pulls a chosen one. */
async function provideImage(engine: DockerEngine, plan: RunPlan, log: Logger): Promise<void> {
  const { image } = plan.spec;
  if (plan.choice.build) {
    log.info(`building ${image} from ${plan.choice.build.context} on ${plan.choice.build.base} (first use only)`);
    await engine.build({
      tag: image,
      context: plan.choice.build.context,
      buildArgs: { BASE_IMAGE: plan.choice.build.base },
      labels: { [LABEL.managed]: 'true', 'dev.mcpbox.base-image': plan.choice.build.base },
    });
  } else {
    log.info(`pulling ${image}`);
    await engine.pull(image);
  }
}
