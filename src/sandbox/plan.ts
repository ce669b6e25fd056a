import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Settings } from '../config/settings.js';
import { formatProblems, sizeInBytes, validateSettings } from '../config/settings.js';
import { parseEgress } from '../egress/policy.js';
import { engineCliOf, engineLocation, type EngineName, locateEngine } from '../engine/locate.js';
import { UsageError } from '../errors.js';
import { type HostContext, type HostFs, existingFile, hostOwner, isPipe, realHostFs } from '../host.js';
import { stateDir } from '../paths.js';
import { type RunnerInvocation, RUNNERS } from '../runners/table.js';
import { VERSION } from '../version.js';
import { CA_VARS, caSetup, type ForwardedVar, proxyVars, resolveForwardedEnv } from './env.js';
import { chooseImage, type ImageChoice } from './images.js';
import { knownArgs, knownVariant } from './known-servers.js';
import { type Bind, NOBODY, planMounts, sandboxUser } from './mounts.js';
import { containerLabels, containerName, type ContainerInput, type ContainerSpec, containerSpec, dataVolumeName, type HostCopy, DEFAULT_CACHE_LIMIT, resolvePolicy, shortHash } from './spec.js';

/**
 * Planning a server's container: everything that needs no engine (image, policy, environment,
 * mounts, user), shared by run, pull, update, serve and doctor.
 */
export interface RunFlags {
  env: string[];
  image?: string;
  network?: string;
  memory?: string;
  cpus?: string;
  pids?: string;
  grace?: string;
  /** none, open, learn, or HOST,HOST… */
  egress?: string;
  /** browser: the default image with Debian's chromium. */
  imageVariant?: string;
  /** The release-age cooldown for this run's resolves: "3d", "12h", 0. */
  minReleaseAge?: string;
  /** Install a package whose name is close to a popular or installed one (src/install/near-names.ts). */
  yes?: boolean;
  mount: string[];
  autoMount: boolean;
  /** An engine on another machine: copy what would be mounted into per-session volumes, read-only. */
  copyIn?: boolean;
  lock: boolean;
  stopOnEof: boolean;
  /** A plan for manifests, not for an engine (`mcpbox export`): where the engine runs doesn't matter. */
  export?: boolean;
  /** --no-inspect: the raw stdio path, without the tools relay (pins, audit) for this run. */
  inspect?: boolean;
  /** --no-standby: neither attach to a standby nor leave one for the next run (src/lifecycle/standby.ts). */
  standby?: boolean;
  dryRun: boolean;
  /** Decide rather than detect that an MCP client is on the other end (serve: no terminal, no working directory). */
  client?: boolean;
}

/** The supply-chain flags of run, pull and update. */
export type GateFlags = Pick<RunFlags, 'minReleaseAge' | 'yes'>;

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
export function planRun(invocation: RunnerInvocation, settings: Settings, flags: RunFlags, ctx: HostContext): RunPlan {
  const runner = RUNNERS[invocation.runner];
  const names = invocation.packages.map((p) => p.name);
  // --image-variant and settings (withFlags puts the flag there), else what a known server needs.
  const choice = chooseImage(invocation.runner, flags.image, ctx.env, settings, settings.imageVariant ?? knownVariant(names));

  const forwarded = resolveForwardedEnv([...(settings.env ?? []), ...flags.env], ctx.env);
  for (const name of forwarded.unset) ctx.log.note(`-e ${name}: not set in mcpbox's environment, so not passed`);
  const forwardedNames = new Set(forwarded.vars.map((v) => v.name));
  const proxies = proxyVars(ctx.env);
  const fs = ctx.fs ?? realHostFs;
  const name = containerName(invocation, randomBytes(3).toString('hex'));
  // An engine on another machine mounts none of this one's files (src/engine/locate.ts, engineLocation).
  const remote = flags.export ? undefined : remoteEngine(ctx.env, settings);
  const ca = remote && !flags.copyIn ? { mounts: [], env: {}, missing: [] } : caSetup(ctx.env, runner.caEnv, (path) => existingFile(fs, path));
  for (const name of ca.missing) ctx.log.warn(`${name} names ${ctx.env[name]}, which does not exist: not mounted`);

  // An MCP client talks over a pipe or socket both ways; a terminal, a script or CI over anything
  // else. Output to a terminal is a person reading (`echo x | npx cowsay`): a terminal tool, whose
  // input ending means only that, never "go away".
  const tty = flags.client === undefined && Boolean(ctx.stdin.isTTY && ctx.stdout.isTTY);
  const client = flags.client ?? (!ctx.stdout.isTTY && isPipe(ctx.stdin));
  let host = planMounts({
    args: [...invocation.args, ...knownArgs(names, invocation.args)],
    mountCwd: !client && !remote,
    cwd: ctx.cwd,
    home: ctx.home,
    // A Windows host's paths have no same-path equivalent in a Linux container.
    autoMount: (settings.autoMount ?? true) && flags.autoMount && ctx.platform !== 'win32',
    explicit: [...(settings.mounts ?? []), ...flags.mount],
    fs,
  });
  for (const note of host.notes) ctx.log.note(note);
  for (const warning of host.warnings) ctx.log.warn(warning);
  const copies = remote ? remoteCopies(remote, host.binds, Boolean(flags.copyIn), fs, name) : [];
  if (flags.copyIn && !remote && !flags.export) ctx.log.note('--copy-in: the engine is on this machine, so paths are mounted as usual');
  if (copies.length > 0) {
    host = { ...host, binds: [] };
    ctx.log.note(`the engine is on another machine (${remote}): ${copies.length === 1 ? copies[0]!.source : `${copies.length} paths`} copied in read-only for this session; what the server writes there is refused, not lost`);
  }
  if (remote && !client) ctx.log.note(`the engine is on another machine (${remote}): the working directory is not mounted`);
  const caVars = CA_VARS.filter((name) => ctx.env[name]);
  if (remote && !flags.copyIn && caVars.length > 0) ctx.log.warn(`the engine is on another machine (${remote}): ${caVars.join(', ')} can't be mounted there, so the sandbox trusts its image's CA certificates only (--copy-in copies them in)`);
  const { user, note: userNote, notePath } = sandboxUser({ platform: ctx.platform, uid: ctx.uid, gid: ctx.gid, binds: host.binds, owner: fs.owner });
  // Said for paths the server was given, and for the working directory to a person at a terminal
  // (root in a devcontainer or WSL): tools that write there would fail with EACCES.
  if (userNote && (notePath !== ctx.cwd || tty)) ctx.log.note(userNote);

  const input: ContainerInput = {
    invocation,
    policy: resolvePolicy(settings),
    image: choice.image,
    name,
    labels: containerLabels(invocation, { pid: ctx.pid, host: hostname(), startedAt: new Date(), version: VERSION }),
    // Copied in, the bundles are a volume of this session's (src/lifecycle/copies.ts).
    ca: remote && ca.mounts.length > 0 ? { ...ca, volume: `${name}-copy-ca` } : ca,
    forwarded: [...forwarded.vars, ...proxies.filter((v) => !forwardedNames.has(v.name))],
    tty,
    user,
    owner: hostOwner(ctx),
    data: dataVolumeName(invocation, dataOwner(ctx)),
    cacheLimitKb: Math.floor(sizeInBytes(settings.cacheLimit ?? DEFAULT_CACHE_LIMIT) / 1024),
    host,
    ...(copies.length > 0 && { copies }),
    ...(user !== NOBODY && ctx.uid !== 0 && ctx.username && { identity: { USER: ctx.username, LOGNAME: ctx.username } }),
  };
  return { spec: containerSpec(input), input, choice, client, proxies };
}

/**
 * What an engine on another machine gets of the paths a run would mount: nothing (refused, unless
 * --copy-in), or a copy of each directory in a volume of this session's (`<container>-copy-<i>`).
 * A file on its own is refused: a volume is mounted as a directory.
 */
export function remoteCopies(remote: string, binds: readonly Bind[], copyIn: boolean, fs: Pick<HostFs, 'kind'>, container: string): HostCopy[] {
  if (binds.length === 0) return [];
  const first = binds[0]!.source;
  if (!copyIn) {
    throw new UsageError(
      `the engine is on another machine (${remote}): ${first} is a path of this one, which it can't mount`,
      "--copy-in copies it in read-only for the session; or run without it (--no-auto-mount, and no --mount or mounts setting), or with a local engine (MCPBOX_LOCAL_ENGINE=1 if that engine does see this machine's files)",
    );
  }
  const file = binds.find((b) => fs.kind(b.source) !== 'dir');
  if (file) throw new UsageError(`--copy-in: ${file.source} is a file on its own, and a copy is mounted as a directory`, 'name its directory instead, or use a local engine');
  return binds.map((b, i) => ({ source: b.source, target: b.target, volume: `${container}-copy-${i}` }));
}

/** `DOCKER_HOST=tcp://…` when the engine the settings choose is on another machine; undefined when it is this one's. */
function remoteEngine(env: HostContext['env'], settings: Pick<Settings, 'docker' | 'engine'>): string | undefined {
  const locations = { docker: engineLocation(env, 'docker'), podman: engineLocation(env, 'podman') };
  // Which CLI runs matters only when one of them would reach another machine: then it is looked up.
  if (!locations.docker.remote && !locations.podman.remote) return undefined;
  let cli: EngineName = 'docker';
  try {
    cli = engineCliOf(locateEngine({ env, configured: settings.docker, engine: settings.engine }).path);
  } catch {
    // No engine found: opening it says so, later.
  }
  const location = locations[cli];
  return location.remote ? `${location.via}=${location.endpoint}` : undefined;
}

/**
 * Whose data a server's data volume holds: this user's mcpbox, by its state dir (where the record
 * of each data volume's uid is), so two state dirs on one engine (a test's, say) never share data.
 */
export function dataOwner(ctx: Pick<HostContext, 'uid' | 'username' | 'env' | 'home'>): string {
  return `${hostOwner(ctx)}-${shortHash(stateDir(ctx.env, ctx.home))}`;
}

/** The same plan with some of its container's inputs replaced (a fresh name and labels per serve session). */
export function respec(plan: RunPlan, overrides: Partial<ContainerInput>): RunPlan {
  const input = { ...plan.input, ...overrides };
  return { ...plan, input, spec: containerSpec(input) };
}

/** Flags are one more settings layer, checked by the same rules as files. */
export function withFlags(settings: Settings, flags: RunFlags): Settings {
  const raw: Record<string, unknown> = {};
  if (flags.memory !== undefined) raw.memory = flags.memory;
  if (flags.cpus !== undefined) raw.cpus = flags.cpus;
  if (flags.pids !== undefined) raw.pids = Number(flags.pids);
  if (flags.network !== undefined) raw.network = flags.network;
  if (flags.grace !== undefined) raw.grace = Number(flags.grace);
  if (flags.imageVariant !== undefined) raw.imageVariant = flags.imageVariant;
  if (flags.minReleaseAge !== undefined) raw.minReleaseAge = flags.minReleaseAge;
  if (flags.standby === false) raw.standby = false;
  if (flags.inspect === false) {
    // Only the relay enforces a tool policy: leaving it out must not quietly lift one.
    if (settings.tools !== undefined) throw new UsageError('--no-inspect: a tools setting (allow/deny) applies to this server, and only the relay enforces it', 'drop --no-inspect, or the tools setting');
    raw.toolChanges = 'off';
  }
  if (flags.egress !== undefined) {
    const egress = parseEgress(flags.egress);
    if (egress === undefined) throw new UsageError(`--egress ${flags.egress}: not none, open, learn or a list of hosts`, 'e.g. --egress none, --egress api.github.com,*.githubusercontent.com');
    raw.egress = egress;
  }
  const { settings: fromFlags, problems } = validateSettings(raw, 'command line');
  if (problems.length > 0) throw new UsageError(formatProblems(problems).replace(/"(\w+)"/, '--$1'));
  return { ...settings, ...fromFlags };
}
