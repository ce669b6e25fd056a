import { RUNNER_NAMES, type Runner } from './runners.js';

/**
 * mcpbox's settings, as validated from any one file. Every key is optional: a file says only what it
 * changes, and layers merge user → project → command-line flags.
 */
export interface Settings {
  /** Image per runner, replacing the default image. */
  images?: Partial<Record<Runner, string>>;
  /** Base image per runner for building the default image (the air-gapped bootstrap's output). */
  baseImages?: Partial<Record<Runner, string>>;
  memory?: string;
  cpus?: string;
  pids?: number;
  network?: string;
  /** Names (value from mcpbox's environment) or NAME=VALUE pairs passed into every sandbox. */
  env?: string[];
  /** Seconds a server gets to exit after its input ends or a signal, before it is stopped. */
  grace?: number;
  /** Path of the docker (or compatible) CLI. */
  docker?: string;
  /** Host paths to mount (`PATH[:ro|rw]`), besides those detected in arguments. */
  mounts?: string[];
  /** Mount host paths named in arguments, and the working directory (default true). */
  autoMount?: boolean;
  /** Policy per package name, applied when a run installs that package. */
  packages?: Record<string, PackagePolicy>;
  /** Hours before an unpinned locked server is resolved again (default 24). */
  updateInterval?: number;
}

/** What a package's entry may set: the same settings, scoped to runs of that package. */
export type PackagePolicy = Pick<Settings, 'env' | 'network' | 'memory' | 'cpus' | 'pids' | 'mounts' | 'grace'> & { image?: string };

export interface ConfigProblem {
  file: string;
  key: string;
  message: string;
}

export const SIZE = /^\d+(?:\.\d+)?[bkmg]?$/i;
const ENV_ENTRY = /^[A-Za-z_][A-Za-z0-9_]*(?:=.*)?$/s;
const KNOWN_KEYS = ['images', 'baseImages', 'memory', 'cpus', 'pids', 'network', 'env', 'grace', 'docker', 'mounts', 'autoMount', 'packages', 'updateInterval'] as const;
const POLICY_KEYS = ['env', 'network', 'memory', 'cpus', 'pids', 'mounts', 'grace', 'image'] as const;
const MOUNT_ENTRY = /^.+?(?::(?:ro|rw))?$/s;

/** Pure: checks one file's contents. Problems name the file and the key. */
export function validateSettings(raw: unknown, file: string): { settings: Settings; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const problem = (key: string, message: string) => problems.push({ file, key, message });
  const settings: Settings = {};
  if (raw === null || raw === undefined) return { settings, problems };
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    problem('(root)', 'must be an object');
    return { settings, problems };
  }
  const input = raw as Record<string, unknown>;
  for (const key of Object.keys(input)) {
    if (!(KNOWN_KEYS as readonly string[]).includes(key)) problem(key, `unknown setting (known: ${KNOWN_KEYS.join(', ')})`);
  }

  for (const key of ['images', 'baseImages'] as const) {
    const value = input[key];
    if (value === undefined) continue;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      problem(key, `must be an object like { "npx": "image", "uvx": "image" }`);
      continue;
    }
    const byRunner: Partial<Record<Runner, string>> = {};
    for (const [runner, image] of Object.entries(value)) {
      if (!(RUNNER_NAMES as string[]).includes(runner)) problem(`${key}.${runner}`, `unknown runner (known: ${RUNNER_NAMES.join(', ')})`);
      else if (typeof image !== 'string' || image.trim() === '') problem(`${key}.${runner}`, 'must be an image name');
      else byRunner[runner as Runner] = image;
    }
    settings[key] = byRunner;
  }

  Object.assign(settings, validateScalars(input, '', problem));
  if (input.docker !== undefined) {
    if (typeof input.docker === 'string' && input.docker !== '') settings.docker = input.docker;
    else problem('docker', 'must be the path of the docker binary');
  }
  if (input.updateInterval !== undefined) {
    if (typeof input.updateInterval === 'number' && input.updateInterval > 0) settings.updateInterval = input.updateInterval;
    else problem('updateInterval', 'must be a positive number of hours');
  }
  if (input.autoMount !== undefined) {
    if (typeof input.autoMount === 'boolean') settings.autoMount = input.autoMount;
    else problem('autoMount', 'must be true or false');
  }
  if (input.packages !== undefined) {
    if (typeof input.packages !== 'object' || input.packages === null || Array.isArray(input.packages)) {
      problem('packages', 'must be an object keyed by package name');
    } else {
      const packages: Record<string, PackagePolicy> = {};
      for (const [name, value] of Object.entries(input.packages as Record<string, unknown>)) {
        const key = `packages.${name}`;
        if (typeof value !== 'object' || value === null || Array.isArray(value)) {
          problem(key, 'must be an object like { "env": ["TOKEN"], "network": "bridge" }');
          continue;
        }
        const entry = value as Record<string, unknown>;
        for (const k of Object.keys(entry)) {
          if (!(POLICY_KEYS as readonly string[]).includes(k)) problem(`${key}.${k}`, `unknown package setting (known: ${POLICY_KEYS.join(', ')})`);
        }
        const policy: PackagePolicy = validateScalars(entry, `${key}.`, problem);
        if (entry.image !== undefined) {
          if (typeof entry.image === 'string' && entry.image.trim() !== '' && !/\s/.test(entry.image)) policy.image = entry.image;
          else problem(`${key}.image`, 'must be an image name');
        }
        packages[name] = policy;
      }
      settings.packages = packages;
    }
  }
  return { settings, problems };
}

type Scalars = Pick<Settings, 'memory' | 'cpus' | 'pids' | 'network' | 'env' | 'grace' | 'mounts'>;

/** The settings a top-level file and a package entry share. */
function validateScalars(input: Record<string, unknown>, prefix: string, problem: (key: string, message: string) => void): Scalars {
  const out: Scalars = {};
  if (input.memory !== undefined) {
    if (typeof input.memory === 'string' && SIZE.test(input.memory)) out.memory = input.memory;
    else problem(`${prefix}memory`, 'must be a size like "512m" or "2g"');
  }
  if (input.cpus !== undefined) {
    const cpus = String(input.cpus);
    if ((typeof input.cpus === 'number' || typeof input.cpus === 'string') && /^\d+(?:\.\d+)?$/.test(cpus) && Number(cpus) > 0)
      out.cpus = cpus;
    else problem(`${prefix}cpus`, 'must be a positive number like 1 or 0.5');
  }
  if (input.pids !== undefined) {
    if (Number.isInteger(input.pids) && (input.pids as number) > 0) out.pids = input.pids as number;
    else problem(`${prefix}pids`, 'must be a positive whole number');
  }
  if (input.network !== undefined) {
    if (typeof input.network === 'string' && /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(input.network)) {
      if (input.network === 'host') problem(`${prefix}network`, '"host" would share the host\'s network stack; use "bridge" or a named network');
      else out.network = input.network;
    } else problem(`${prefix}network`, 'must be "bridge", "none" or a network name');
  }
  if (input.env !== undefined) {
    if (Array.isArray(input.env) && input.env.every((e) => typeof e === 'string' && ENV_ENTRY.test(e))) out.env = input.env as string[];
    else problem(`${prefix}env`, 'must be a list of variable names or NAME=VALUE pairs');
  }
  if (input.grace !== undefined) {
    if (typeof input.grace === 'number' && input.grace >= 0 && input.grace <= 300) out.grace = input.grace;
    else problem(`${prefix}grace`, 'must be a number of seconds between 0 and 300');
  }
  if (input.mounts !== undefined) {
    if (Array.isArray(input.mounts) && input.mounts.every((m) => typeof m === 'string' && MOUNT_ENTRY.test(m))) out.mounts = input.mounts as string[];
    else problem(`${prefix}mounts`, 'must be a list of paths, each optionally ending in :ro or :rw');
  }
  return out;
}

/** Later layers win for single values; lists add up; per-runner and per-package maps merge by key. */
export function mergeSettings(...layers: Settings[]): Settings {
  const merged: Settings = {};
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer) as [keyof Settings, unknown][]) {
      if (value === undefined) continue;
      if (key === 'env' || key === 'mounts') merged[key] = [...(merged[key] ?? []), ...(value as string[])];
      else if (key === 'images' || key === 'baseImages') merged[key] = { ...merged[key], ...(value as object) };
      else if (key === 'packages') {
        const packages = { ...merged.packages };
        for (const [name, policy] of Object.entries(value as Record<string, PackagePolicy>)) {
          const { image, ...rest } = policy;
          const combined = mergeSettings(packages[name] ?? {}, rest) as PackagePolicy;
          packages[name] = image === undefined ? combined : { ...combined, image };
        }
        merged.packages = packages;
      } else (merged as Record<string, unknown>)[key] = value;
    }
  }
  return merged;
}

/** Settings for a run that installs these packages: each matching package policy is one more layer. */
export function applyPackagePolicies(settings: Settings, runner: Runner, packageNames: readonly string[]): Settings {
  const layers: Settings[] = [];
  for (const name of packageNames) {
    const policy = settings.packages?.[name];
    if (!policy) continue;
    const { image, ...rest } = policy;
    layers.push(image === undefined ? rest : { ...rest, images: { [runner]: image } });
  }
  return layers.length === 0 ? settings : mergeSettings(settings, ...layers);
}

/** `env` entries with values (NAME=VALUE) anywhere in the file: secrets the file must keep private. */
export function secretEntries(settings: Settings): string[] {
  const lists = [settings.env ?? [], ...Object.values(settings.packages ?? {}).map((p) => p.env ?? [])];
  return lists.flat().filter((entry) => entry.includes('='));
}

/**
 * A project's configuration comes with the repository, so it may not reach outside it: no host
 * variables passed by name (they would hand your secrets to whatever the repository runs), no mounts
 * outside the project, no choice of docker binary. Pure; `resolve` makes a mount path absolute.
 */
export function projectProblems(settings: Settings, file: string, projectDir: string, resolve: (path: string) => string): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const inside = (path: string) => path === projectDir || path.startsWith(`${projectDir}/`);
  const check = (prefix: string, scoped: Pick<Settings, 'env' | 'mounts'>) => {
    for (const entry of scoped.env ?? []) {
      if (!entry.includes('=')) {
        problems.push({ file, key: `${prefix}env`, message: `passes the host variable ${entry} by name, which a project's configuration may not do (put it in your user configuration, or pass -e ${entry})` });
      }
    }
    for (const entry of scoped.mounts ?? []) {
      const path = resolve(entry.replace(/:(?:ro|rw)$/, ''));
      if (!inside(path)) problems.push({ file, key: `${prefix}mounts`, message: `mounts ${path}, outside the project ${projectDir}, which a project's configuration may not do` });
    }
  };
  check('', settings);
  for (const [name, policy] of Object.entries(settings.packages ?? {})) check(`packages.${name}.`, policy);
  if (settings.docker !== undefined) problems.push({ file, key: 'docker', message: "chooses the docker binary, which a project's configuration may not do" });
  return problems;
}

export function formatProblems(problems: readonly ConfigProblem[]): string {
  return problems.map((p) => `${p.file}: "${p.key}" ${p.message}`).join('; ');
}
