import type { EngineName } from '../engine/locate.js';
import { type EgressSetting, narrowEgress, validEgressEntry } from '../egress/policy.js';
import { ENV_NAME } from '../host.js';
import { RUNNER_NAMES, type Runner } from '../runners/table.js';

/**
 * mcpbox's settings, as validated from any one file. Every key is optional: a file says only what it
 * changes, and layers merge user → project → command-line flags.
 */
export interface Settings {
  /** Image per runner, replacing the default image. */
  images?: Partial<Record<Runner, string>>;
  /** Base image per runner (and `npx-browser` for the browser variant) for building the default images (the air-gapped bootstrap's output). */
  baseImages?: Partial<Record<Runner | `${Runner}-browser`, string>>;
  /** The default image's variant: `browser` (Debian's chromium). Per package, or for all runs. */
  imageVariant?: 'browser';
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
  /** Which engine's CLI to look for: docker (the default; podman when there is no docker) or podman. */
  engine?: EngineName;
  /** Host paths to mount (`PATH[:ro|rw]`), besides those detected in arguments. */
  mounts?: string[];
  /** Mount host paths named in arguments, and the working directory (default true). */
  autoMount?: boolean;
  /** Policy per package name, applied when a run installs that package. */
  packages?: Record<string, PackagePolicy>;
  /**
   * A project file's package policies: kept apart from `packages` because they may only tighten
   * (see narrowSettings). Never read from a file under this name.
   */
  projectPackages?: Record<string, PackagePolicy>;
  /** Hours before an unpinned locked server is resolved again (default 24). */
  updateInterval?: number;
  /** What a package's cache volume may hold (default 4g): a size-limited volume where the engine can, else a check at start. */
  cacheLimit?: string;
  /** Where servers may connect: none, open, learn (the default) or a list of hosts (src/egress/policy.ts). */
  egress?: EgressSetting;
  /** Hosts installs may reach besides the registries (prebuilt binaries, say): user configuration only. */
  installEgress?: string[];
  /** How long a version must have been published before an unpinned spec resolves to it: "3d" (default), "12h", 0. */
  minReleaseAge?: string | number;
  /** npm registry signatures and provenance: warn (default), require or off (src/install/gates.ts). */
  provenance?: ProvenancePolicy;
  /** A server's tools that differ from its pin: hidden and refused (block, the default), said (warn), or not compared (off). */
  toolChanges?: ToolChangesPolicy;
  /** Which tools a server may offer and be called with (src/tools/policy.ts). */
  tools?: ToolPolicy;
  /** Start a locked server's next container ahead, waiting for its client (default true; src/lifecycle/standby.ts). */
  standby?: boolean;
  /** How long a standby waits for a client before it ends itself: "10m" (default), "90s", "1h". */
  standbyIdle?: string;
}

export type ToolChangesPolicy = 'block' | 'warn' | 'off';

/** `tools: { allow: [...] }` or `{ deny: [...] }`: names of a server's tools. */
export interface ToolPolicy {
  readonly allow?: readonly string[];
  readonly deny?: readonly string[];
}

/** What a package's entry may set: the same settings, scoped to runs of that package. */
export type PackagePolicy = Pick<Settings, 'env' | 'network' | 'memory' | 'cpus' | 'pids' | 'mounts' | 'grace' | 'egress' | 'imageVariant' | 'minReleaseAge' | 'provenance' | 'toolChanges' | 'tools' | 'standby'> & { image?: string };

export interface ConfigProblem {
  file: string;
  key: string;
  message: string;
}

export const SIZE = /^\d+(?:\.\d+)?[bkmg]?$/i;

/** An image reference as the engine reads one; never starting with "-", which the CLI would take for a flag. */
export const IMAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9._\-/:@+]*$/;

/** The sandbox's limits when no setting names them (src/sandbox.ts builds its policy on these). */
export const DEFAULT_LIMITS = { memory: '2g', cpus: '2', pids: 512, grace: 2 } as const;

/** "10m" → 600 (seconds); undefined when it isn't a duration of at least 5 s and at most a day. */
export function parseStandbyIdle(text: string): number | undefined {
  const match = /^(\d+)([smh])$/.exec(text.trim());
  if (!match) return undefined;
  const seconds = Number(match[1]) * { s: 1, m: 60, h: 3600 }[match[2] as 's' | 'm' | 'h'];
  return seconds >= 5 && seconds <= 86_400 ? seconds : undefined;
}

/** How long a standby waits for its client (the standbyIdle setting; 10 minutes by default: a client restarting its servers comes back within minutes). */
export function standbyIdleSeconds(settings: Pick<Settings, 'standbyIdle'>): number {
  return (settings.standbyIdle && parseStandbyIdle(settings.standbyIdle)) || 600;
}

/** "512m" → bytes; the engine's own reading of a size (a bare number is bytes). */
export function sizeInBytes(size: string): number {
  const match = /^(\d+(?:\.\d+)?)([bkmg]?)$/i.exec(size);
  if (!match) return Number.NaN;
  const unit = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[match[2]!.toLowerCase() as '' | 'b' | 'k' | 'm' | 'g'];
  return Number(match[1]) * unit;
}
const KNOWN_KEYS = ['images', 'baseImages', 'imageVariant', 'memory', 'cpus', 'pids', 'network', 'env', 'grace', 'docker', 'mounts', 'autoMount', 'packages', 'updateInterval', 'cacheLimit', 'egress', 'installEgress', 'minReleaseAge', 'provenance', 'toolChanges', 'tools', 'engine', 'standby', 'standbyIdle'] as const;
const POLICY_KEYS = ['env', 'network', 'memory', 'cpus', 'pids', 'mounts', 'grace', 'image', 'egress', 'imageVariant', 'minReleaseAge', 'provenance', 'toolChanges', 'tools', 'standby'] as const;
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
    const byRunner: Record<string, string> = {};
    // baseImages also names the browser variant's base ("npx-browser").
    const known = key === 'baseImages' ? [...RUNNER_NAMES, ...RUNNER_NAMES.map((r) => `${r}-browser`)] : [...RUNNER_NAMES];
    for (const [runner, image] of Object.entries(value)) {
      if (!known.includes(runner)) problem(`${key}.${runner}`, `unknown runner (known: ${known.join(', ')})`);
      else if (typeof image !== 'string' || !IMAGE_NAME.test(image)) problem(`${key}.${runner}`, 'must be an image name');
      else byRunner[runner] = image;
    }
    settings[key] = byRunner;
  }

  Object.assign(settings, validateScalars(input, '', problem));
  if (input.docker !== undefined) {
    if (typeof input.docker === 'string' && input.docker !== '') settings.docker = input.docker;
    else problem('docker', 'must be the path of the docker binary');
  }
  if (input.engine !== undefined) {
    if (input.engine === 'docker' || input.engine === 'podman') settings.engine = input.engine;
    else problem('engine', 'must be "docker" or "podman"');
  }
  if (input.updateInterval !== undefined) {
    if (typeof input.updateInterval === 'number' && input.updateInterval > 0) settings.updateInterval = input.updateInterval;
    else problem('updateInterval', 'must be a positive number of hours');
  }
  if (input.standbyIdle !== undefined) {
    if (typeof input.standbyIdle === 'string' && parseStandbyIdle(input.standbyIdle) !== undefined) settings.standbyIdle = input.standbyIdle;
    else problem('standbyIdle', 'must be a duration like "10m", "90s" or "1h" (at least 5s)');
  }
  if (input.cacheLimit !== undefined) {
    if (typeof input.cacheLimit === 'string' && SIZE.test(input.cacheLimit) && sizeInBytes(input.cacheLimit) >= 64 * 1024 ** 2) settings.cacheLimit = input.cacheLimit;
    else problem('cacheLimit', 'must be a size of at least 64m, like "2g"');
  }
  if (input.installEgress !== undefined) {
    if (Array.isArray(input.installEgress) && input.installEgress.every((h) => typeof h === 'string' && validEgressEntry(h))) settings.installEgress = input.installEgress as string[];
    else problem('installEgress', 'must be a list of hosts like ["github.com", "*.githubusercontent.com"]');
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
          if (typeof entry.image === 'string' && IMAGE_NAME.test(entry.image)) policy.image = entry.image;
          else problem(`${key}.image`, 'must be an image name');
        }
        packages[name] = policy;
      }
      settings.packages = packages;
    }
  }
  return { settings, problems };
}

type Scalars = Pick<Settings, 'memory' | 'cpus' | 'pids' | 'network' | 'env' | 'grace' | 'mounts' | 'egress' | 'imageVariant' | 'minReleaseAge' | 'provenance' | 'toolChanges' | 'tools' | 'standby'>;

/** The settings a top-level file and a package entry share. */
function validateScalars(input: Record<string, unknown>, prefix: string, problem: (key: string, message: string) => void): Scalars {
  const out: Scalars = {};
  if (input.memory !== undefined) {
    // 0 means "no limit" to the engine: never a limit mcpbox passes on.
    if (typeof input.memory === 'string' && SIZE.test(input.memory) && sizeInBytes(input.memory) >= 4 * 1024 ** 2) out.memory = input.memory;
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
    if (Array.isArray(input.env) && input.env.every((e) => typeof e === 'string' && ENV_NAME.test(e.split('=', 1)[0]!))) out.env = input.env as string[];
    else problem(`${prefix}env`, 'must be a list of variable names or NAME=VALUE pairs');
  }
  if (input.grace !== undefined) {
    if (typeof input.grace === 'number' && input.grace >= 0 && input.grace <= 300) out.grace = input.grace;
    else problem(`${prefix}grace`, 'must be a number of seconds between 0 and 300');
  }
  if (input.minReleaseAge !== undefined) {
    if (parseReleaseAge(input.minReleaseAge) !== undefined) out.minReleaseAge = input.minReleaseAge as string | number;
    else problem(`${prefix}minReleaseAge`, 'must be an age like "3d", "12h", "90m" or 0 (a bare number is days)');
  }
  if (input.provenance !== undefined) {
    if (input.provenance === 'warn' || input.provenance === 'require' || input.provenance === 'off') out.provenance = input.provenance;
    else problem(`${prefix}provenance`, 'must be "warn", "require" or "off"');
  }
  if (input.toolChanges !== undefined) {
    if (input.toolChanges === 'block' || input.toolChanges === 'warn' || input.toolChanges === 'off') out.toolChanges = input.toolChanges;
    else problem(`${prefix}toolChanges`, 'must be "block", "warn" or "off"');
  }
  if (input.tools !== undefined) {
    const tools = input.tools as Record<string, unknown>;
    const names = (list: unknown) => list === undefined || (Array.isArray(list) && list.every((n) => typeof n === 'string' && n !== ''));
    if (typeof tools === 'object' && tools !== null && !Array.isArray(tools) && Object.keys(tools).every((k) => k === 'allow' || k === 'deny') && names(tools.allow) && names(tools.deny)) {
      out.tools = { ...(tools.allow !== undefined && { allow: tools.allow as string[] }), ...(tools.deny !== undefined && { deny: tools.deny as string[] }) };
    } else problem(`${prefix}tools`, 'must be like { "allow": ["tool", …] } or { "deny": ["tool", …] }');
  }
  if (input.standby !== undefined) {
    if (typeof input.standby === 'boolean') out.standby = input.standby;
    else problem(`${prefix}standby`, 'must be true or false');
  }
  if (input.imageVariant !== undefined) {
    if (input.imageVariant === 'browser') out.imageVariant = 'browser';
    else problem(`${prefix}imageVariant`, 'must be "browser"');
  }
  if (input.mounts !== undefined) {
    if (Array.isArray(input.mounts) && input.mounts.every((m) => typeof m === 'string' && MOUNT_ENTRY.test(m))) out.mounts = input.mounts as string[];
    else problem(`${prefix}mounts`, 'must be a list of paths, each optionally ending in :ro or :rw');
  }
  if (input.egress !== undefined) {
    const value = input.egress;
    if (value === 'none' || value === 'open' || value === 'learn') out.egress = value;
    else if (Array.isArray(value) && value.every((h) => typeof h === 'string' && validEgressEntry(h.toLowerCase()))) out.egress = value.map((h: string) => h.toLowerCase());
    else problem(`${prefix}egress`, 'must be "none", "open", "learn" or a list of hosts like ["api.github.com", "*.githubusercontent.com", "example.com:8443"]');
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

/**
 * Settings for a run that installs these packages: each matching package policy is one more layer,
 * the user's merged in, a project's only narrowing.
 */
export function applyPackagePolicies(settings: Settings, runner: Runner, packageNames: readonly string[]): Settings {
  const layers: Settings[] = [];
  for (const name of packageNames) {
    const policy = settings.packages?.[name];
    if (!policy) continue;
    const { image, ...rest } = policy;
    layers.push(image === undefined ? rest : { ...rest, images: { [runner]: image } });
  }
  let applied = layers.length === 0 ? settings : mergeSettings(settings, ...layers);
  for (const name of packageNames) {
    const policy = settings.projectPackages?.[name];
    if (policy) applied = narrowSettings(applied, policy);
  }
  return applied;
}

/** `env` entries with values (NAME=VALUE) anywhere in the file: secrets the file must keep private. */
export function secretEntries(settings: Settings): string[] {
  const lists = [settings.env ?? [], ...Object.values(settings.packages ?? {}).map((p) => p.env ?? [])];
  return lists.flat().filter((entry) => entry.includes('='));
}

/**
 * Variables that change how a runtime loads code, where it installs from or where it connects: a
 * project may not set them (NODE_OPTIONS=--require …, LD_PRELOAD, a proxy that reads the server's
 * traffic, a registry that serves other packages). Case-insensitive: npm reads npm_config_* in any case.
 */
export const LOADER_ENV =
  /^(?:LD_\w+|DYLD_\w+|NODE_OPTIONS|NODE_PATH|NODE_EXTRA_CA_CERTS|NODE_TLS_REJECT_UNAUTHORIZED|NODE_USE_ENV_PROXY|PYTHON\w*|PERL5\w*|PERLLIB|RUBY\w*|GEM_\w+|BASH_ENV|ENV|SHELLOPTS|PS4|IFS|PATH|HOME|JAVA_TOOL_OPTIONS|_JAVA_OPTIONS|JDK_JAVA_OPTIONS|GCONV_PATH|MALLOC_\w+|npm_config_\w+|UV_\w+|PIP_\w+|SSL_CERT_\w+|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|GIT_\w+|(?:HTTPS?|ALL|NO|FTP)_PROXY)$/i;

/** What a project check needs of the host: paths as written, resolved through symlinks, refused or not. */
export interface ProjectPlace {
  /** The project directory, symlinks resolved. */
  readonly realDir: string;
  /** A mount entry's path made absolute (relative to the file). */
  readonly resolve: (path: string) => string;
  /** The path with symlinks resolved, or undefined when nothing is there. */
  readonly realpath: (path: string) => string | undefined;
  /** Why a (real) path is never mounted implicitly (src/mounts.ts's rules), or undefined. */
  readonly refusal: (real: string) => string | undefined;
}

/**
 * A project's configuration comes with the repository, so it may only narrow the sandbox: no host
 * variables by name (they would hand your secrets to whatever the repository runs), no variables that
 * change how code is loaded or where it connects, no mounts outside the project (after resolving
 * symlinks) or of anything mcpbox would refuse to mount, no images, no networks but "none" and
 * "bridge", no docker binary. Its limits only ever tighten (narrowSettings). Pure: the host is passed in.
 */
export function projectProblems(settings: Settings, file: string, place: ProjectPlace): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const refuse = (key: string, message: string) => problems.push({ file, key, message });
  const inside = (path: string) => path === place.realDir || path.startsWith(`${place.realDir}/`);
  const check = (prefix: string, scoped: PackagePolicy) => {
    for (const entry of scoped.env ?? []) {
      const name = entry.split('=', 1)[0]!;
      if (!entry.includes('=')) {
        refuse(`${prefix}env`, `passes the host variable ${entry} by name, which a project's configuration may not do (put it in your user configuration, or pass -e ${entry})`);
      } else if (LOADER_ENV.test(name)) {
        refuse(`${prefix}env`, `sets ${name}, which changes how the server's code is loaded or where it connects; a project's configuration may not set it`);
      }
    }
    for (const entry of scoped.mounts ?? []) {
      const path = place.resolve(entry.replace(/:(?:ro|rw)$/, ''));
      const real = place.realpath(path);
      // Nothing there yet: checked as written (mcpbox run refuses a mount of nothing).
      if (real === undefined) {
        if (!inside(path)) refuse(`${prefix}mounts`, `mounts ${path}, outside the project ${place.realDir}, which a project's configuration may not do`);
        continue;
      }
      const reason = place.refusal(real);
      if (!inside(real)) refuse(`${prefix}mounts`, `mounts ${path}${real === path ? '' : ` (really ${real})`}, outside the project ${place.realDir}, which a project's configuration may not do`);
      else if (reason) refuse(`${prefix}mounts`, `mounts ${real}, which mcpbox never mounts implicitly: ${reason}`);
    }
    if (scoped.network !== undefined && scoped.network !== 'none' && scoped.network !== 'bridge') {
      refuse(`${prefix}network`, `joins the network "${scoped.network}"; a project's configuration may only choose "none" (or "bridge")`);
    }
    if (scoped.image !== undefined) refuse(`${prefix}image`, "chooses an image, which a project's configuration may not do (the image decides what runs)");
    if (scoped.imageVariant !== undefined) refuse(`${prefix}imageVariant`, "chooses an image, which a project's configuration may not do (the image decides what runs)");
  };
  check('', settings);
  for (const [name, policy] of Object.entries(settings.packages ?? {})) check(`packages.${name}.`, policy);
  for (const key of ['images', 'baseImages'] as const) {
    if (settings[key] !== undefined) refuse(key, "chooses an image, which a project's configuration may not do (the image decides what runs)");
  }
  if (settings.docker !== undefined) refuse('docker', "chooses the docker binary, which a project's configuration may not do");
  if (settings.engine !== undefined) refuse('engine', "chooses the container engine, which a project's configuration may not do");
  if (settings.installEgress !== undefined) refuse('installEgress', "lets installs reach more hosts, which a project's configuration may not do");
  return problems;
}

type Narrowable = Pick<Settings, 'memory' | 'cpus' | 'pids' | 'grace' | 'network' | 'autoMount' | 'cacheLimit' | 'egress' | 'minReleaseAge' | 'provenance' | 'toolChanges' | 'tools' | 'standby' | 'standbyIdle'>;

const TOOL_CHANGES_STRICTNESS: Record<ToolChangesPolicy, number> = { off: 0, warn: 1, block: 2 };

/** A project's tool policy on the user's: only narrower (allow lists intersect, deny lists add up). */
export function narrowToolPolicy(user: ToolPolicy | undefined, project: ToolPolicy | undefined): ToolPolicy | undefined {
  if (!project) return user;
  if (!user) return project;
  const allow = user.allow && project.allow ? user.allow.filter((n) => project.allow!.includes(n)) : (user.allow ?? project.allow);
  const deny = [...new Set([...(user.deny ?? []), ...(project.deny ?? [])])];
  return { ...(allow && { allow }), ...(deny.length > 0 && { deny }) };
}

const PROVENANCE_STRICTNESS: Record<ProvenancePolicy, number> = { off: 0, warn: 1, require: 2 };

/** The tighter of two settings: lower limits, "none" over any network, no automatic mounts over some. */
function tighter(base: Narrowable, project: Narrowable): Narrowable {
  const out: Narrowable = {};
  if (project.memory !== undefined && sizeInBytes(project.memory) < sizeInBytes(base.memory ?? DEFAULT_LIMITS.memory)) out.memory = project.memory;
  if (project.cpus !== undefined && Number(project.cpus) < Number(base.cpus ?? DEFAULT_LIMITS.cpus)) out.cpus = project.cpus;
  if (project.pids !== undefined && project.pids < (base.pids ?? DEFAULT_LIMITS.pids)) out.pids = project.pids;
  if (project.grace !== undefined && project.grace < (base.grace ?? DEFAULT_LIMITS.grace)) out.grace = project.grace;
  if (project.network === 'none') out.network = 'none';
  if (project.autoMount === false) out.autoMount = false;
  if (project.cacheLimit !== undefined && sizeInBytes(project.cacheLimit) < sizeInBytes(base.cacheLimit ?? '4g')) out.cacheLimit = project.cacheLimit;
  if (project.egress !== undefined) out.egress = narrowEgress(base.egress ?? 'learn', project.egress);
  // A longer cooldown and a stricter provenance policy narrow; a shorter or looser one is ignored.
  if (project.minReleaseAge !== undefined && parseReleaseAge(project.minReleaseAge)! > supplyGates(base).minReleaseAgeHours) out.minReleaseAge = project.minReleaseAge;
  if (project.provenance !== undefined && PROVENANCE_STRICTNESS[project.provenance] > PROVENANCE_STRICTNESS[supplyGates(base).provenance]) out.provenance = project.provenance;
  if (project.toolChanges !== undefined && TOOL_CHANGES_STRICTNESS[project.toolChanges] > TOOL_CHANGES_STRICTNESS[base.toolChanges ?? 'block']) out.toolChanges = project.toolChanges;
  if (project.tools !== undefined) out.tools = narrowToolPolicy(base.tools, project.tools)!;
  // A project may turn standbys off (no server code before a client asks) or shorten their wait; never the reverse.
  if (project.standby === false) out.standby = false;
  if (project.standbyIdle !== undefined && parseStandbyIdle(project.standbyIdle)! < standbyIdleSeconds(base)) out.standbyIdle = project.standbyIdle;
  return out;
}

/**
 * A project layer on top of the user's settings: it may only narrow. Limits are the tighter of the
 * two (a project asking for more memory than you allow gets yours), a network only ever becomes
 * "none"; literal variables and mounts inside the project add up; its package policies are kept
 * apart and applied the same way (applyPackagePolicies). Pure; `project` passed projectProblems.
 */
export function narrowSettings(base: Settings, project: Settings | PackagePolicy): Settings {
  const out: Settings = { ...base, ...tighter(base, project) };
  if (project.env) out.env = [...(base.env ?? []), ...project.env];
  if (project.mounts) out.mounts = [...(base.mounts ?? []), ...project.mounts];
  if ('updateInterval' in project && project.updateInterval !== undefined) out.updateInterval = project.updateInterval;
  if ('packages' in project && project.packages) {
    out.projectPackages = mergeSettings({ packages: base.projectPackages ?? {} }, { packages: project.packages }).packages!;
  }
  return out;
}

/** The supply-chain gates (src/install/gates.ts says what each does). */
export type ProvenancePolicy = 'warn' | 'require' | 'off';

export interface SupplyGates {
  /** Hours a version must have been published before an unpinned spec may resolve to it (0: off). */
  readonly minReleaseAgeHours: number;
  readonly provenance: ProvenancePolicy;
}

export const DEFAULT_GATES: SupplyGates = { minReleaseAgeHours: 72, provenance: 'warn' };

const AGE = /^(\d+(?:\.\d+)?)\s*(m|min|mins|minutes?|h|hours?|d|days?|w|weeks?)?$/i;

/** "3d", "72h", "90m", "2 weeks", 3 (days), "0": hours, or undefined when it isn't an age. */
export function parseReleaseAge(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value * 24 : undefined;
  if (typeof value !== 'string') return undefined;
  const match = AGE.exec(value.trim());
  if (!match) return undefined;
  const unit = (match[2] ?? 'd').toLowerCase()[0]!;
  return Number(match[1]) * ({ m: 1 / 60, h: 1, d: 24, w: 168 } as Record<string, number>)[unit]!;
}

/** The supply-chain gates these settings ask for (src/install/gates.ts). */
export function supplyGates(settings: Pick<Settings, 'minReleaseAge' | 'provenance'>): SupplyGates {
  return {
    minReleaseAgeHours: settings.minReleaseAge === undefined ? DEFAULT_GATES.minReleaseAgeHours : (parseReleaseAge(settings.minReleaseAge) ?? DEFAULT_GATES.minReleaseAgeHours),
    provenance: settings.provenance ?? DEFAULT_GATES.provenance,
  };
}

export function formatProblems(problems: readonly ConfigProblem[]): string {
  return problems.map((p) => `${p.file}: "${p.key}" ${p.message}`).join('; ');
}
