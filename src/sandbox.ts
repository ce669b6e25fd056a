import { createHash } from 'node:crypto';
import type { Settings } from './config.js';
import type { CaSetup, ForwardedVar } from './env.js';
import { type MountPlan, NOBODY } from './mounts.js';
import type { RunnerInvocation } from './runners.js';
import { CACHE_DIR, RUNNERS } from './runners.js';

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
  memory: '2g',
  cpus: '2',
  pids: 512,
  network: 'bridge',
  tmpSize: '1g',
  homeSize: '256m',
};

export const HOME_DIR = '/home/mcpbox';

/** Label keys; `managed` marks a container (or volume) as mcpbox's. */
export const LABEL = {
  managed: 'dev.mcpbox.managed',
  ownerPid: 'dev.mcpbox.owner-pid',
  ownerHost: 'dev.mcpbox.owner-host',
  startedAt: 'dev.mcpbox.started-at',
  runner: 'dev.mcpbox.runner',
  package: 'dev.mcpbox.package',
  version: 'dev.mcpbox.version',
  /** 'install' for the containers that install packages; absent for servers. */
  role: 'dev.mcpbox.role',
  /** mcpbox serve: the server name and the HTTP session a container serves. */
  served: 'dev.mcpbox.served',
  session: 'dev.mcpbox.session',
} as const;

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

export interface ContainerEnvVar {
  readonly name: string;
  readonly value: string;
  /** 'argv': fixed, non-secret settings written as NAME=VALUE; 'environment': value handed to the engine CLI's env. */
  readonly via: 'argv' | 'environment';
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
  /** Variables the engine CLI reads itself: a forwarded one of these can't travel by environment. */
  readonly engineVars: ReadonlySet<string>;
  readonly tty: boolean;
  readonly user: string;
  /** Host paths mounted at their own paths, the args as the server gets them, the working directory. */
  readonly host: Pick<MountPlan, 'binds' | 'args' | 'workdir'>;
  /** Fixed variables that describe the invoking user (USER, LOGNAME) when the server runs as them. */
  readonly identity?: Readonly<Record<string, string>>;
  /** Run something else than the runner: an installed server's launcher, or an install. */
  readonly command?: {
    readonly entrypoint: string;
    readonly args: readonly string[];
    /** Mount the cache volume read-only: a locked server can't change its own installed code. */
    readonly cacheReadonly?: boolean;
    readonly network?: string;
  };
}

export function containerSpec(input: ContainerInput): ContainerSpec {
  const { invocation, policy } = input;
  const runner = RUNNERS[invocation.runner];
  const volume = cacheVolumeName(invocation, input.user);
  const mounts: Mount[] = [
    // npx and uv run binaries they unpack under /tmp, so it must allow exec.
    { type: 'tmpfs', target: '/tmp', options: `rw,exec,nosuid,nodev,size=${policy.tmpSize},mode=1777` },
    { type: 'tmpfs', target: HOME_DIR, options: `rw,exec,nosuid,nodev,size=${policy.homeSize},mode=1777` },
    volume
      ? { type: 'volume', source: volume, target: CACHE_DIR, readonly: input.command?.cacheReadonly ?? false }
      : { type: 'tmpfs', target: CACHE_DIR, options: `rw,nosuid,nodev,size=${policy.tmpSize},mode=1777` },
    ...input.ca.mounts.map((m): Mount => ({ type: 'bind', source: m.hostPath, target: m.containerPath, readonly: true })),
    ...input.host.binds.map((b): Mount => ({ type: 'bind', source: b.source, target: b.target, readonly: b.readonly })),
  ];

  const fixed: Record<string, string> = { HOME: HOME_DIR, ...input.identity, ...runner.cacheEnv, ...runner.quietEnv, ...input.ca.env };
  const forwardedNames = new Set(input.forwarded.map((v) => v.name));
  const env: ContainerEnvVar[] = [
    ...Object.entries(fixed)
      .filter(([name]) => !forwardedNames.has(name))
      .map(([name, value]): ContainerEnvVar => ({ name, value, via: 'argv' })),
    ...input.forwarded.map(
      ({ name, value }): ContainerEnvVar => ({ name, value, via: input.engineVars.has(name) ? 'argv' : 'environment' }),
    ),
  ];

  return {
    name: input.name,
    image: input.image,
    labels: input.labels,
    policy: input.command?.network ? { ...policy, network: input.command.network } : policy,
    user: input.user,
    mounts,
    env,
    // The host's working directory when it is mounted; else HOME, where the server may write.
    workdir: input.host.workdir ?? HOME_DIR,
    entrypoint: input.command?.entrypoint ?? invocation.executable,
    args: input.command?.args ?? input.host.args,
    tty: input.tty,
  };
}

/**
 * One cache volume per set of packages, so one server can't poison the npm or uv cache another
 * server installs from, and per uid, so files one uid cached never block another. Invocations that
 * install nothing get a throwaway tmpfs instead.
 */
export function cacheVolumeName(invocation: RunnerInvocation, user: string = NOBODY): string | undefined {
  if (invocation.packages.length === 0) return undefined;
  const names = [...new Set(invocation.packages.map((p) => p.name))].sort();
  const key = names.join(' ');
  const slug = slugify(names.join('+')).slice(0, 48);
  const uid = user === NOBODY ? '' : `-u${user.split(':')[0]}`;
  return `mcpbox-${invocation.runner}-${slug}-${shortHash(key)}${uid}`;
}

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
