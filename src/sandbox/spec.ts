import { createHash } from 'node:crypto';
import { DEFAULT_LIMITS, type Settings } from '../config/settings.js';
import { LABEL } from '../engine/containers.js';
import { envFileFits } from '../engine/env-file.js';
import { EGRESS_DIR, forwarderPrelude, proxyEnvironment } from '../egress/forwarder.js';
import { CA_DIR, type CaSetup, type ForwardedVar } from './env.js';
import { type MountPlan, NOBODY } from './mounts.js';
import type { RunnerInvocation } from '../runners/table.js';
import { CACHE_DIR, RUNNERS } from '../runners/table.js';
import { HOME_DIR } from '../runners/types.js';
import { knownServerEnv } from './known-servers.js';

/**
 * The sandbox as data: what every container mcpbox starts looks like. Pure; src/engine/argv.ts turns
 * a ContainerSpec into the engine's argv.
 */
export interface SandboxPolicy {
  readonly memory: string;
  readonly cpus: string;
  readonly pids: number;
  readonly network: string;
  readonly tmpSize: string;
  readonly homeSize: string;
}

export const DEFAULT_POLICY: SandboxPolicy = {
  memory: DEFAULT_LIMITS.memory,
  cpus: DEFAULT_LIMITS.cpus,
  pids: DEFAULT_LIMITS.pids,
  network: 'bridge',
  tmpSize: '1g',
  homeSize: '256m',
};

export { HOME_DIR };

/** Where a server's locked install volume is mounted: written only by its install containers. */
export const INSTALL_DIR = '/mcpbox/install';

/** What a writable cache volume may hold before installs and unlocked runs refuse to start (see cacheCheck). */
export const DEFAULT_CACHE_LIMIT = '4g';


export function resolvePolicy(settings: Settings): SandboxPolicy {
  return {
    ...DEFAULT_POLICY,
    ...(settings.memory && { memory: settings.memory }),
    ...(settings.cpus && { cpus: settings.cpus }),
    ...(settings.pids && { pids: settings.pids }),
    ...(settings.network && { network: settings.network }),
  };
}

export type Mount =
  | { readonly type: 'bind'; readonly source: string; readonly target: string; readonly readonly: boolean }
  | { readonly type: 'volume'; readonly source: string; readonly target: string; readonly readonly: boolean }
  | { readonly type: 'tmpfs'; readonly target: string; readonly options: string };

/** A host directory copied into a volume of its own and mounted read-only at `target`. */
export interface HostCopy {
  readonly source: string;
  readonly target: string;
  readonly volume: string;
}

export interface ContainerEnvVar {
  readonly name: string;
  readonly value: string;
  /**
   * 'argv': fixed, non-secret settings written as NAME=VALUE. 'file': forwarded values, in the env
   * file only the engine CLI reads (src/engine/env-file.ts). 'environment': mcpbox's own values under
   * fixed names (an install's lock file), in the CLI's environment.
   */
  readonly via: 'argv' | 'file' | 'environment';
}

export interface ContainerSpec {
  readonly name: string;
  readonly image: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly policy: SandboxPolicy;
  /** uid:gid the server runs as: nobody, or the invoking user (see sandboxUser in src/mounts.ts). */
  readonly user: string;
  readonly mounts: readonly Mount[];
  readonly env: readonly ContainerEnvVar[];
  readonly workdir: string;
  readonly entrypoint: string;
  readonly args: readonly string[];
  readonly tty: boolean;
}

export interface ContainerInput {
  readonly invocation: RunnerInvocation;
  readonly policy: SandboxPolicy;
  readonly image: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly ca: CaSetup;
  /** Variables named with -e, settings.env, and the host's proxy settings. */
  readonly forwarded: readonly ForwardedVar[];
  readonly tty: boolean;
  readonly user: string;
  /** The invoking host user (uid, or name where there is none): volumes are never shared between users. */
  readonly owner: string;
  /** KiB the writable cache volume may hold; undefined: no check. */
  readonly cacheLimitKb?: number;
  /**
   * Egress enforced by mcpbox's proxy (src/egress/): no network of the container's own, the proxy's
   * socket volume read-only, a forwarder on 127.0.0.1:3128 and this run's signed policy.
   */
  readonly egress?: { readonly volume: string; readonly token: string } | undefined;
  /**
   * The server's persistent data volume, mounted as its HOME (XDG dirs included), so what it keeps
   * there survives restarts as it would on the host; absent: HOME is a throwaway tmpfs.
   */
  readonly data?: string | undefined;
  /** Host paths mounted at their own paths, the args as the server gets them, the working directory. */
  readonly host: Pick<MountPlan, 'binds' | 'args' | 'workdir'>;
  /**
   * --copy-in on an engine on another machine: host directories copied into this session's own
   * volumes (src/lifecycle/copies.ts), mounted read-only where the binds would have been.
   */
  readonly copies?: readonly HostCopy[];
  /** Fixed variables that describe the invoking user (USER, LOGNAME) when the server runs as them. */
  readonly identity?: Readonly<Record<string, string>>;
  /** Run something else than the runner: an installed server's launcher, or an install. */
  readonly command?: {
    readonly entrypoint: string;
    readonly args: readonly string[];
    /**
     * The server's install volume: read-write for its install containers, read-only for the server
     * (a locked server can't change its own installed code), never mounted by anything else.
     */
    readonly install?: { readonly volume: string; readonly readonly: boolean };
    /** A throwaway cache (tmpfs) instead of the cache volume: a locked server installs nothing. */
    readonly cacheTmpfs?: boolean;
    readonly network?: string;
    /** mcpbox's own values under fixed names (not secrets, not the user's): by the CLI's environment. */
    readonly env?: Readonly<Record<string, string>>;
  };
}

/**
 * An env file holds one line per variable: a value with a line break (a PEM key, say) or longer than
 * a line may be travels base64-encoded, and this prelude restores it inside before the real command.
 */
const PROXY_NAMES = new Set(['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'NO_PROXY', 'NPM_CONFIG_PROXY', 'NPM_CONFIG_HTTPS_PROXY', 'NODE_USE_ENV_PROXY']);

const DECODE_ENV_PRELUDE =
  'for n in $MCPBOX_ENCODED_ENV; do v=$(eval "printf %s \\"\\$MCPBOX_ENV_B64_$n\\"" | base64 -d; printf x); export "$n=${v%x}"; unset "MCPBOX_ENV_B64_$n"; done; unset MCPBOX_ENCODED_ENV;';

/**
 * Where no engine can bound a volume's size (no XFS project quota), this bounds it at start: a run
 * that may write the cache refuses to start once it holds more than its limit (exit 75, a message).
 */
function cacheCheckPrelude(volume: string, limitKb: number): string {
  return (
    `u=$(du -sk ${CACHE_DIR} 2>/dev/null | cut -f1); if [ "\${u:-0}" -gt ${limitKb} ]; then ` +
    `echo "mcpbox: the cache volume ${volume} holds $((u / 1024)) MiB, over its limit of ${Math.floor(limitKb / 1024)} MiB ` +
    `(hint: docker volume rm ${volume} empties it; the cacheLimit setting raises the limit)" >&2; exit 75; fi;`
  );
}

export function containerSpec(input: ContainerInput): ContainerSpec {
  const { invocation, policy } = input;
  const volume = input.command?.cacheTmpfs ? undefined : cacheVolumeName(invocation, input.user, input.owner);
  const { env, encoded } = sandboxEnv(input);
  const entrypoint = input.command?.entrypoint ?? invocation.executable;
  const args = input.command?.args ?? input.host.args;
  // sh in front of the command: restore encoded values; check the cache of a run that may grow it.
  const preludes = [
    ...(input.egress ? [forwarderPrelude()] : []),
    ...(encoded.length > 0 ? [DECODE_ENV_PRELUDE] : []),
    ...(volume && !input.command && input.cacheLimitKb ? [cacheCheckPrelude(volume, input.cacheLimitKb)] : []),
  ];
  return {
    name: input.name,
    image: input.image,
    labels: input.labels,
    policy: input.egress ? { ...policy, network: 'none' } : input.command?.network ? { ...policy, network: input.command.network } : policy,
    user: input.user,
    mounts: sandboxMounts(input, volume),
    env,
    // The host's working directory when it is mounted; else HOME, where the server may write.
    workdir: input.host.workdir ?? HOME_DIR,
    ...(preludes.length > 0 ? { entrypoint: 'sh', args: ['-c', `${preludes.join(' ')} exec "$@"`, 'mcpbox', entrypoint, ...args] } : { entrypoint, args }),
    tty: input.tty,
  };
}

function sandboxMounts(input: ContainerInput, volume: string | undefined): Mount[] {
  const { policy } = input;
  const install = input.command?.install;
  // A /tmp of the host's the user mounted by name (--mount /tmp) is /tmp: one mount per path (Podman
  // refuses two; Docker let the tmpfs hide the host's).
  const hostTmp = [...input.host.binds, ...(input.copies ?? [])].some((b) => b.target === '/tmp');
  return [
    // npx and uv run binaries they unpack under /tmp, so it must allow exec.
    ...(hostTmp ? [] : [{ type: 'tmpfs', target: '/tmp', options: `rw,exec,nosuid,nodev,size=${policy.tmpSize},mode=1777` } as const]),
    input.data
      ? { type: 'volume', source: input.data, target: HOME_DIR, readonly: false }
      : { type: 'tmpfs', target: HOME_DIR, options: `rw,exec,nosuid,nodev,size=${policy.homeSize},mode=1777` },
    volume
      ? { type: 'volume', source: volume, target: CACHE_DIR, readonly: false }
      : { type: 'tmpfs', target: CACHE_DIR, options: `rw,nosuid,nodev,size=${policy.tmpSize},mode=1777` },
    ...(install ? [{ type: 'volume', source: install.volume, target: INSTALL_DIR, readonly: install.readonly } as const] : []),
    ...(input.egress ? [{ type: 'volume', source: input.egress.volume, target: EGRESS_DIR, readonly: true } as const] : []),
    ...(input.ca.volume
      ? [{ type: 'volume', source: input.ca.volume, target: CA_DIR, readonly: true } as const]
      : input.ca.mounts.map((m): Mount => ({ type: 'bind', source: m.hostPath, target: m.containerPath, readonly: true }))),
    ...input.host.binds.map((b): Mount => ({ type: 'bind', source: b.source, target: b.target, readonly: b.readonly })),
    ...(input.copies ?? []).map((c): Mount => ({ type: 'volume', source: c.volume, target: c.target, readonly: true })),
  ];
}

/** Fixed settings by argv; forwarded values by the env file (encoded when a line can't hold them); mcpbox's own by environment. */
function sandboxEnv(input: ContainerInput): { env: ContainerEnvVar[]; encoded: ForwardedVar[] } {
  const runner = RUNNERS[input.invocation.runner];
  const own = input.command?.env ?? {};
  const fixed: Record<string, string> = {
    HOME: HOME_DIR,
    ...input.identity,
    ...runner.cacheEnv,
    ...runner.resolutionEnv,
    ...runner.quietEnv,
    ...input.ca.env,
    // What well-known servers need to keep their data in HOME (servers only: they have a data volume).
    ...(input.data && knownServerEnv(input.invocation.packages.map((p) => p.name))),
    ...(input.cacheLimitKb && { MCPBOX_CACHE_LIMIT_KB: String(input.cacheLimitKb) }),
    ...(input.egress && proxyEnvironment()),
  };
  // Through the egress proxy, the proxy variables are mcpbox's: none forwarded may point elsewhere.
  const forwarded = input.egress ? input.forwarded.filter((v) => !PROXY_NAMES.has(v.name.toUpperCase())) : input.forwarded;
  const overridden = new Set([...forwarded.map((v) => v.name), ...Object.keys(own)]);
  const encoded = forwarded.filter((v) => !envFileFits(v.value));
  const env: ContainerEnvVar[] = [
    ...Object.entries(fixed)
      .filter(([name]) => !overridden.has(name))
      .map(([name, value]): ContainerEnvVar => ({ name, value, via: 'argv' })),
    ...forwarded.map(({ name, value }): ContainerEnvVar =>
      envFileFits(value) ? { name, value, via: 'file' } : { name: `MCPBOX_ENV_B64_${name}`, value: Buffer.from(value).toString('base64'), via: 'file' },
    ),
    ...(input.egress ? [{ name: 'MCPBOX_EGRESS_TOKEN', value: input.egress.token, via: 'file' as const }] : []),
    ...(encoded.length > 0 ? [{ name: 'MCPBOX_ENCODED_ENV', value: encoded.map((v) => v.name).join(' '), via: 'argv' as const }] : []),
    ...Object.entries(own).map(([name, value]): ContainerEnvVar => ({ name, value, via: 'environment' })),
  ];
  return { env, encoded };
}

/**
 * One cache volume per set of packages, so one server can't poison the npm or uv cache another
 * server installs from; per invoking user (volume names are engine-wide: another user of the same
 * engine never shares yours); and per uid inside, so files one uid cached never block another.
 * Invocations that install nothing get a throwaway tmpfs instead.
 */
export function cacheVolumeName(invocation: RunnerInvocation, user: string, owner: string): string | undefined {
  if (invocation.packages.length === 0) return undefined;
  const names = [...new Set(invocation.packages.map((p) => p.name))].sort();
  return `${volumeStem(invocation.runner, names)}-${shortHash(`${names.join(' ')}\0${owner}`)}${uidSuffix(user)}`;
}

/**
 * A locked server's install volume: per lock key, image and invoking user (made as nobody, read by
 * any uid). `readable-by-all`: trees from before installs were user-independent may be private to
 * the uid that made them, so those volumes are never reused.
 */
export function installVolumeName(invocation: RunnerInvocation, lockKey: string, image: string, owner: string): string {
  const names = [...new Set(invocation.packages.map((p) => p.name))].sort();
  return `${volumeStem(invocation.runner, names)}-${shortHash(`${lockKey}\0${image}\0${owner}\0readable-by-all`)}-install`;
}

/**
 * A server's data volume: per set of packages and invoking user, never per version, image or uid
 * inside (what a server keeps must survive refreshes, new images and a change of the uid it runs as;
 * src/lifecycle/data.ts hands the files over when that changes). Never shared between packages.
 */
export function dataVolumeName(invocation: RunnerInvocation, owner: string): string | undefined {
  if (invocation.packages.length === 0 || invocation.info) return undefined;
  const names = [...new Set(invocation.packages.map((p) => p.name))].sort();
  return `${volumeStem(invocation.runner, names)}-${shortHash(`data\0${names.join(' ')}\0${owner}`)}-data`;
}

const volumeStem = (runner: string, names: readonly string[]) => `mcpbox-${runner}-${slugify(names.join('+')).slice(0, 48)}`;
const uidSuffix = (user: string) => (user === NOBODY ? '' : `-u${user.split(':')[0]}`);

export function containerName(invocation: RunnerInvocation, random: string): string {
  const first = invocation.packages[0]?.name;
  return first ? `mcpbox-${invocation.runner}-${slugify(first).slice(0, 40)}-${random}` : `mcpbox-${invocation.runner}-${random}`;
}

export function containerLabels(
  invocation: RunnerInvocation,
  owner: { pid: number; host: string; startedAt: Date; version: string },
): Record<string, string> {
  return {
    [LABEL.managed]: 'true',
    [LABEL.ownerPid]: String(owner.pid),
    [LABEL.ownerHost]: owner.host,
    [LABEL.startedAt]: owner.startedAt.toISOString(),
    [LABEL.runner]: invocation.runner,
    [LABEL.package]: invocation.packages.map((p) => p.spec).join(' '),
    [LABEL.version]: owner.version,
  };
}

function slugify(text: string): string {
  return (
    text
      .toLowerCase()
      .replace(/^@/, '')
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '') || 'x'
  );
}

export function shortHash(text: string, length = 8): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}
