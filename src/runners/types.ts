import type { InstallReport } from './report.js';

/**
 * The shape of a runner mcpbox stands in for (npx, uvx): everything runner-specific is a field of its
 * entry in the one table, src/runners/table.ts. Adding a runner is one entry (a module like npx.ts)
 * plus its install script in images/scripts/.
 */
export type Runner = 'npx' | 'uvx';

export interface RunnerOption {
  /** Every spelling: `-p`, `--package`. */
  readonly names: readonly string[];
  readonly takesValue: boolean;
  /**
   * package: the value is a package the runner installs.
   * from: (uvx) the value is the package, the positional is the command.
   * call: (npx -c) the value is a shell line; no positional needed.
   * info: prints something and exits; no package needed.
   */
  readonly role?: 'package' | 'from' | 'call' | 'info';
}

export interface PackageRef {
  /** Registry name (normalised for PyPI), or the raw spec for git/url/path specs. */
  readonly name: string;
  /** Exactly as the user wrote it. */
  readonly spec: string;
  /** Version or tag when the spec names one (`1.2.3`, `latest`). */
  readonly version?: string;
  /** npm: 'version' (exact), 'range' or 'tag' for the registry; anything else is not from the registry. */
  readonly kind?: 'version' | 'range' | 'tag' | 'other';
}

export interface RunnerInvocation {
  readonly runner: Runner;
  readonly executable: string;
  /** The user's runner arguments, untouched. */
  readonly args: readonly string[];
  /** Packages the runner will install, in the order given. */
  readonly packages: readonly PackageRef[];
  /** True for `--version`/`--help` style invocations that install nothing. */
  readonly info: boolean;
  /** The runner options given before the positional, by their long name (`--package`), with values. */
  readonly options: readonly { readonly name: string; readonly value: string | undefined }[];
  /** The first positional (npx: the package, or with -p the command; uvx: the command) and where it is. */
  readonly positional?: { readonly index: number; readonly value: string };
}

/** What a lockable invocation installs, canonically (src/install/lock.ts adds where the server's args start). */
export interface Lockable {
  /** npx: package specs; uvx: requirements (the --from or command package first, then --with). */
  readonly specs: readonly string[];
  /** npx -p form or uvx: the executable to run; undefined = the package's default bin (npx). */
  readonly command: string | undefined;
  /** uvx --python */
  readonly python: string | undefined;
  /** The package whose version the lock reports (the first spec's name). */
  readonly name: string;
  /** Exact versions only: never re-resolved. */
  readonly pinned: boolean;
}

/** The first package of an install: its exact version, registry integrity and the executable to run. */
export interface Described {
  readonly version: string;
  readonly integrity: string;
  readonly executable: string;
}

export interface RunnerSpec {
  /** The executable inside the container. */
  readonly executable: string;
  readonly options: readonly RunnerOption[];
  readonly parsePackage: (spec: string) => PackageRef;
  /**
   * The packages an invocation installs, from its first positional and its options by role; with
   * `complete` false when the package (or the command) it needs is missing.
   */
  readonly packages: (positional: string | undefined, roles: ReadonlyMap<string, readonly string[]>) => { packages: PackageRef[]; complete: boolean };
  /** npm accepts --no-<flag> for any boolean flag. */
  readonly negatable: boolean;
  /** uv refuses a value on a boolean flag (`--offline=true`). */
  readonly strictBooleans: boolean;
  /** How to name a package, for the message when none is. */
  readonly usage: string;
  /** Environment that points the runner's caches at the cache volume; paths are under CACHE_DIR. */
  readonly cacheEnv: Readonly<Record<string, string>>;
  /**
   * Environment that fixes how the runner reaches its registries, whatever a project's own config
   * files say: which index is asked for a name (uv.toml's index-strategy), how long a failing fetch
   * is retried (a TLS error never heals; a client gives up on initialize after 60 s).
   */
  readonly resolutionEnv: Readonly<Record<string, string>>;
  /** Environment that keeps the runner's own chatter (update notices, funding) quiet. */
  readonly quietEnv: Readonly<Record<string, string>>;
  /** Default image: images/<dir>/Dockerfile built on `base`; env names that override either. */
  readonly image: {
    readonly dir: string;
    readonly base: string;
    readonly imageEnv: string;
    readonly baseEnv: string;
    /**
     * The browser variant (`--image-variant browser`): the same Dockerfile with Debian's chromium
     * added (EXTRA_PACKAGES), on the runner's base unless `baseEnv` or baseImages["<runner>-browser"] names another.
     */
    readonly browser?: { readonly baseEnv: string; readonly packages: string };
  };
  /** CA variable the runner's TLS stack reads; filled from any host bundle when the host set a different one. */
  readonly caEnv: string;
  /** The hosts its installs (and its resolution at run time) need: all an install container may reach. */
  readonly registries: readonly string[];
  /**
   * The project's own executable the invocation runs instead of a registry package, as the runner
   * itself would (npx: the nearest node_modules/.bin/<name> up from the working directory, for a
   * bare name), with the directory that holds node_modules; undefined for uvx, which never uses a
   * project's environment.
   */
  readonly localBin?: (invocation: RunnerInvocation, cwd: string, isFile: (path: string) => boolean) => { readonly root: string; readonly bin: string } | undefined;
  /**
   * npx's rule (npm exec): a package not installed yet is confirmed on a terminal unless `yes` was
   * given; `no` refuses; without a terminal it goes ahead. uvx never asks.
   */
  readonly asksBeforeInstall?: { readonly yes: string; readonly no: string };
  /** Its options that name another registry or index (by URL): a run that names one may reach it. */
  readonly registryOptions: readonly string[];
  /** Registry options by pattern (npm's --@scope:registry=URL): options that take a value, and registry options. */
  readonly registryOptionPattern?: RegExp;
  readonly lock: RunnerLock;
}

/** How a runner's packages are installed once and locked (src/install/). */
export interface RunnerLock {
  /** Runner options a locked invocation may carry; any other makes it run through the runner as typed. */
  readonly options: ReadonlySet<string>;
  /** What an invocation installs, or undefined when it isn't one mcpbox locks. */
  readonly request: (invocation: RunnerInvocation) => Lockable | undefined;
  /** The tree's lock file, as the install script writes it: npm's package-lock.json, uv's requirements.txt. */
  readonly lockfile: string;
  /** Where the installed tree keeps its executables. */
  readonly binDir: string;
  /** The install script in images/scripts/, and its arguments before the specs. */
  readonly script: 'npx-install.sh' | 'uvx-install.sh';
  readonly scriptArgs: (ask: Pick<Lockable, 'python'>) => string[];
  /** Its supply-chain gate (src/install/gates.ts), embedded in the install script as this variable. */
  readonly gate: { readonly script: 'npm-gate.cjs' | 'uv-gate.py'; readonly variable: string };
  /** Reads the installed lock file for the first package. Throws when it isn't there. */
  readonly describe: (ask: Pick<Lockable, 'name' | 'command'>, report: InstallReport) => Described;
  /** The version of a top-level package in an installed lock file, or undefined. */
  readonly versionOf: (lockfile: string, name: string) => string | undefined;
  /** Why a lock file (from a lock that may have come with a repository) can't be installed, or undefined. */
  readonly lockfileProblem: (lockfile: string, ask: Pick<Lockable, 'specs'>) => string | undefined;
  /** The runner argv that asks for exactly what a lock entry locked (mcpbox update). */
  readonly argsFor: (ask: { readonly specs: readonly string[]; readonly command?: string | undefined; readonly python?: string | undefined }) => string[];
  /** The runner argv that installs one package spec (mcpbox pull). */
  readonly argsForPackage: (spec: string) => string[];
}

/** The sandbox user's HOME in mcpbox's images: a server's data volume, or a tmpfs. */
export const HOME_DIR = '/home/mcpbox';

/** Mount point of the per-package cache volume inside the container. */
export const CACHE_DIR = '/mcpbox/cache';

export const flag = (takesValue: boolean, role: RunnerOption['role'] | undefined, ...names: string[]): RunnerOption =>
  role ? { names, takesValue, role } : { names, takesValue };
