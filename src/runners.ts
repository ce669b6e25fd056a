import { createRequire } from 'node:module';
import type npaType from 'npm-package-arg';
import { UsageError } from './errors.js';

/**
 * The runners mcpbox stands in for, as one typed table (the antfu/ni model): what the runner is called
 * inside the sandbox, which of its options it knows before the package, where its caches live, and how
 * a package spec is read. Translation is pure: the user's argv goes into the container verbatim; the
 * parse only learns which packages will be installed (labels, cache volume) and refuses what it can't read.
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

export interface RunnerSpec {
  /** The executable inside the container. */
  readonly executable: string;
  readonly options: readonly RunnerOption[];
  readonly parsePackage: (spec: string) => PackageRef;
  /** Environment that points the runner's caches at the cache volume; paths are under CACHE_DIR. */
  readonly cacheEnv: Readonly<Record<string, string>>;
  /** Environment that keeps the runner's own chatter (update notices, funding) quiet. */
  readonly quietEnv: Readonly<Record<string, string>>;
  /** Default image: images/<dir>/Dockerfile built on `base`; env names that override either. */
  readonly image: { readonly dir: string; readonly base: string; readonly imageEnv: string; readonly baseEnv: string };
  /** CA variable the runner's TLS stack reads; filled from any host bundle when the host set a different one. */
  readonly caEnv: string;
}

/** Mount point of the per-package cache volume inside the container. */
export const CACHE_DIR = '/mcpbox/cache';

const flag = (takesValue: boolean, role: RunnerOption['role'] | undefined, ...names: string[]): RunnerOption =>
  role ? { names, takesValue, role } : { names, takesValue };

// npm exec / npx: flags must come before the first positional (npm ≥ 7), so that is where parsing stops.
const NPX_OPTIONS: readonly RunnerOption[] = [
  flag(true, 'package', '-p', '--package'),
  flag(true, 'call', '-c', '--call'),
  flag(false, undefined, '-y', '--yes'),
  flag(false, undefined, '-n', '--no'),
  flag(false, 'info', '-v', '--version'),
  flag(false, 'info', '-h', '--help'),
  flag(false, undefined, '-q', '--quiet'),
  flag(false, undefined, '-s', '--silent'),
  flag(false, undefined, '-d', '--loglevel-info'),
  flag(true, undefined, '--loglevel'),
  flag(false, undefined, '--prefer-offline'),
  flag(false, undefined, '--prefer-online'),
  flag(false, undefined, '--offline'),
  flag(true, undefined, '--registry'),
  flag(true, undefined, '--cache'),
  flag(true, undefined, '--userconfig'),
  flag(true, undefined, '--node-options'),
  flag(true, undefined, '--shell'),
  flag(false, undefined, '--ignore-scripts'),
  flag(false, undefined, '--legacy-peer-deps'),
  flag(false, undefined, '--foreground-scripts'),
  flag(true, undefined, '-w', '--workspace'),
  flag(false, undefined, '--workspaces', '-ws'),
  flag(false, undefined, '--include-workspace-root'),
  flag(false, undefined, '--no-update-notifier'),
  flag(false, undefined, '--no-fund'),
  flag(false, undefined, '--no-audit'),
];

// uv tool run / uvx. Everything after the command is the command's.
const UVX_OPTIONS: readonly RunnerOption[] = [
  flag(true, 'from', '--from'),
  flag(true, 'package', '-w', '--with'),
  flag(true, undefined, '--with-editable'),
  flag(true, undefined, '--with-requirements'),
  flag(true, undefined, '--with-executables-from'),
  flag(true, undefined, '-c', '--constraints', '--constraint'),
  flag(true, undefined, '--overrides', '--override'),
  flag(true, undefined, '-p', '--python'),
  flag(true, undefined, '-i', '--index-url'),
  flag(true, undefined, '--extra-index-url'),
  flag(true, undefined, '--index'),
  flag(true, undefined, '--default-index'),
  flag(true, undefined, '-f', '--find-links'),
  flag(true, undefined, '--index-strategy'),
  flag(true, undefined, '--keyring-provider'),
  flag(true, undefined, '--resolution'),
  flag(true, undefined, '--prerelease'),
  flag(true, undefined, '--exclude-newer'),
  flag(true, undefined, '--exclude-newer-package'),
  flag(true, undefined, '--fork-strategy'),
  flag(true, undefined, '--link-mode'),
  flag(true, undefined, '-P', '--upgrade-package'),
  flag(true, undefined, '--reinstall-package'),
  flag(true, undefined, '--refresh-package'),
  flag(true, undefined, '--no-build-package'),
  flag(true, undefined, '--no-binary-package'),
  flag(true, undefined, '--config-setting', '-C'),
  flag(true, undefined, '--env-file'),
  flag(true, undefined, '--python-preference'),
  flag(true, undefined, '--color'),
  flag(true, undefined, '--allow-insecure-host', '--trusted-host'),
  flag(true, undefined, '--cache-dir'),
  flag(true, undefined, '--config-file'),
  flag(true, undefined, '--directory'),
  flag(true, undefined, '--project'),
  flag(false, undefined, '--isolated'),
  flag(false, undefined, '--no-env-file'),
  flag(false, undefined, '-U', '--upgrade'),
  flag(false, undefined, '--reinstall'),
  flag(false, undefined, '--refresh'),
  flag(false, undefined, '--no-sources'),
  flag(false, undefined, '--no-build'),
  flag(false, undefined, '--no-binary'),
  flag(false, undefined, '--no-build-isolation'),
  flag(false, undefined, '--compile-bytecode'),
  flag(false, undefined, '--no-deps'),
  flag(false, undefined, '-n', '--no-cache'),
  flag(false, undefined, '--offline'),
  flag(false, undefined, '--no-progress'),
  flag(false, undefined, '--native-tls'),
  flag(false, undefined, '--managed-python'),
  flag(false, undefined, '--no-managed-python'),
  flag(false, undefined, '--no-python-downloads'),
  flag(false, undefined, '--no-config'),
  flag(false, undefined, '-q', '--quiet'),
  flag(false, undefined, '-v', '--verbose'),
  flag(false, 'info', '-V', '--version'),
  flag(false, 'info', '-h', '--help'),
];

export const RUNNERS = {
  npx: {
    executable: 'npx',
    options: NPX_OPTIONS,
    parsePackage: parseNpmSpec,
    cacheEnv: { npm_config_cache: `${CACHE_DIR}/npm` },
    quietEnv: {
      npm_config_update_notifier: 'false',
      npm_config_fund: 'false',
      npm_config_audit: 'false',
      NO_UPDATE_NOTIFIER: '1',
    },
    image: { dir: 'npx', base: 'node:22-bookworm-slim', imageEnv: 'MCPBOX_NPX_IMAGE', baseEnv: 'MCPBOX_NPX_BASE_IMAGE' },
    caEnv: 'NODE_EXTRA_CA_CERTS',
  },
  uvx: {
    executable: 'uvx',
    options: UVX_OPTIONS,
    parsePackage: parsePythonSpec,
    cacheEnv: {
      UV_CACHE_DIR: `${CACHE_DIR}/uv/cache`,
      UV_TOOL_DIR: `${CACHE_DIR}/uv/tools`,
      UV_TOOL_BIN_DIR: `${CACHE_DIR}/uv/bin`,
      UV_PYTHON_INSTALL_DIR: `${CACHE_DIR}/uv/python`,
    },
    quietEnv: { UV_NO_PROGRESS: '1' },
    image: {
      dir: 'uvx',
      base: 'ghcr.io/astral-sh/uv:python3.12-bookworm-slim',
      imageEnv: 'MCPBOX_UVX_IMAGE',
      baseEnv: 'MCPBOX_UVX_BASE_IMAGE',
    },
    caEnv: 'SSL_CERT_FILE',
  },
} as const satisfies Record<Runner, RunnerSpec>;

export const RUNNER_NAMES = Object.keys(RUNNERS) as Runner[];

export function isRunner(name: string): name is Runner {
  return Object.hasOwn(RUNNERS, name);
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

/** Reads a runner's argv (everything after `npx`/`uvx`) without changing it. Throws UsageError. */
export function parseRunnerArgs(runnerName: string, args: readonly string[]): RunnerInvocation {
  if (!isRunner(runnerName)) {
    throw new UsageError(
      `unknown runner "${runnerName}"`,
      `mcpbox runs ${RUNNER_NAMES.join(' or ')}, e.g. mcpbox run npx -y @modelcontextprotocol/server-everything`,
    );
  }
  const spec: RunnerSpec = RUNNERS[runnerName];
  const byRole = new Map<string, string[]>();
  const used: { name: string; value: string | undefined }[] = [];
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      i++;
      break;
    }
    if (!arg.startsWith('-') || arg === '-') break;
    const consumed = readOption(runnerName, spec.options, args, i, byRole, used);
    i += consumed - 1;
  }
  const positional = args[i];
  const info = byRole.has('info');
  const packages: PackageRef[] = [];
  const from = byRole.get('from');
  const listed = byRole.get('package') ?? [];

  if (runnerName === 'npx') {
    // With -p, the positional is the command (a bin of those packages); otherwise it is the package.
    if (listed.length === 0 && positional !== undefined) packages.push(spec.parsePackage(positional));
    packages.push(...listed.map(spec.parsePackage));
    if (packages.length === 0 && !byRole.has('call') && !info) throw missingPackage(runnerName);
  } else {
    if (from) packages.push(...from.map(spec.parsePackage));
    else if (positional !== undefined) packages.push(spec.parsePackage(positional));
    packages.push(...listed.map(spec.parsePackage));
    if (positional === undefined && !info) throw missingPackage(runnerName);
  }
  return {
    runner: runnerName,
    executable: spec.executable,
    args: [...args],
    packages,
    info: info && packages.length === 0,
    options: used,
    ...(positional !== undefined && { positional: { index: i, value: positional } }),
  };
}

/** Returns how many argv entries the option at `i` used (1 or 2). */
function readOption(
  runner: Runner,
  options: readonly RunnerOption[],
  args: readonly string[],
  i: number,
  byRole: Map<string, string[]>,
  used: { name: string; value: string | undefined }[],
): number {
  const arg = args[i]!;
  const record = (option: RunnerOption, value: string) => {
    const long = option.names.find((n) => n.startsWith('--')) ?? option.names[0]!;
    used.push({ name: long, value: option.takesValue ? value : undefined });
    if (!option.role) return;
    byRole.set(option.role, [...(byRole.get(option.role) ?? []), value]);
  };
  const lookup = (name: string) => options.find((o) => o.names.includes(name));

  if (arg.startsWith('--')) {
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    const inline = eq === -1 ? undefined : arg.slice(eq + 1);
    // npm accepts --no-<flag> for any boolean flag.
    const option = lookup(name) ?? (runner === 'npx' && name.startsWith('--no-') ? negatable(lookup(`--${name.slice(5)}`)) : undefined);
    if (!option) throw unknownOption(runner, name);
    if (!option.takesValue) {
      if (inline !== undefined && runner === 'uvx') throw new UsageError(`uvx option ${name} takes no value`);
      record(option, 'true');
      return 1;
    }
    if (inline !== undefined) {
      record(option, inline);
      return 1;
    }
    const value = args[i + 1];
    if (value === undefined) throw new UsageError(`${runner} option ${name} needs a value`);
    record(option, value);
    return 2;
  }

  const exact = lookup(arg);
  if (exact) {
    if (!exact.takesValue) {
      record(exact, 'true');
      return 1;
    }
    const value = args[i + 1];
    if (value === undefined) throw new UsageError(`${runner} option ${arg} needs a value`);
    record(exact, value);
    return 2;
  }
  // -pVALUE, or a cluster of boolean short flags (-yq, -qq).
  const head = lookup(arg.slice(0, 2));
  if (head?.takesValue) {
    record(head, arg.slice(2));
    return 1;
  }
  for (const letter of arg.slice(1)) {
    const option = lookup(`-${letter}`);
    if (!option || option.takesValue) throw unknownOption(runner, arg);
    record(option, 'true');
  }
  return 1;
}

function negatable(option: RunnerOption | undefined): RunnerOption | undefined {
  return option && !option.takesValue ? { names: option.names, takesValue: false } : undefined;
}

function unknownOption(runner: Runner, name: string): UsageError {
  return new UsageError(
    `unknown ${runner} option ${name} before the package`,
    `options for the server go after the package; see \`${runner} --help\` for ${runner}'s own`,
  );
}

function missingPackage(runner: Runner): UsageError {
  return new UsageError(
    `no package named for ${runner}`,
    runner === 'npx'
      ? 'mcpbox run npx -y <package> [args…], e.g. mcpbox run npx -y @modelcontextprotocol/server-everything'
      : 'mcpbox run uvx <package> [args…], e.g. mcpbox run uvx mcp-server-time',
  );
}

// npm's rules for a registry package name (validate-npm-package-name), and an exact semver version.
const NPM_NAME = /^(?:@[a-z0-9-~][a-z0-9-._~]*\/)?[a-z0-9-~][a-z0-9-._~]*$/;
const EXACT_VERSION = /^v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;
const TAG = /^[A-Za-z][A-Za-z0-9._-]*$/;

/**
 * npm package specs. The common registry forms (`name`, `name@1.2.3`, `@scope/name@^1`, `name@latest`)
 * are read here; everything else (git, URLs, paths, aliases, odd names) goes to npm-package-arg,
 * which is loaded only then: it and its dependencies cost start-up time on every run otherwise.
 */
export function parseNpmSpec(spec: string): PackageRef {
  const at = spec.indexOf('@', 1);
  const name = at === -1 ? spec : spec.slice(0, at);
  const version = at === -1 ? '' : spec.slice(at + 1);
  if (NPM_NAME.test(name) && name.length <= 214) {
    if (version === '' || version === '*' || version === 'latest') return version === '' || version === '*' ? { name, spec, kind: 'tag' } : { name, spec, version, kind: 'tag' };
    if (EXACT_VERSION.test(version)) return { name, spec, version, kind: 'version' };
    if (TAG.test(version) && !/^v?\d/.test(version)) return { name, spec, version, kind: 'tag' };
    if (/^[\d^~<>=*xX .|-]+$/.test(version) || /^[\^~]?v?\d/.test(version)) return { name, spec, version, kind: 'range' };
  }
  return parseWithNpa(spec);
}

let npa: typeof npaType | undefined;

function parseWithNpa(spec: string): PackageRef {
  npa ??= createRequire(import.meta.url)('npm-package-arg') as typeof npaType;
  let parsed: npaType.Result;
  try {
    parsed = npa(spec);
  } catch (error) {
    throw new UsageError(`"${spec}" is not a valid npm package spec: ${(error as Error).message}`);
  }
  const alias = parsed.type === 'alias';
  const registry = alias ? (parsed as unknown as { subSpec: npaType.Result }).subSpec : parsed;
  if (!registry.registry || !registry.name) return { name: spec, spec, kind: 'other' };
  const version = registry.rawSpec !== '' && registry.rawSpec !== '*' ? registry.rawSpec : undefined;
  // An alias installs under its own name: not one mcpbox locks.
  const kind = alias ? 'other' : (registry.type as PackageRef['kind']);
  return version === undefined ? { name: registry.name, spec, kind } : { name: registry.name, spec, version, kind };
}

// name [extras] then nothing, `@ version` (uv), `@ url` (PEP 508 direct reference) or specifiers.
const REQUIREMENT = /^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[[^\]]*\])?\s*(?:@\s*(\S+)|([<>=!~][^;]*))?\s*(?:;.*)?$/s;

/** PEP 508 requirement (plus uv's `name@version`), enough to name the package; paths and URLs stay whole. */
export function parsePythonSpec(spec: string): PackageRef {
  const match = REQUIREMENT.exec(spec.trim());
  if (!match) return { name: spec, spec };
  const name = match[1]!.toLowerCase().replace(/[-_.]+/g, '-');
  const at = match[2];
  const pinned = at && !/[/:]/.test(at) ? at : /^===?\s*([^\s,]+)\s*$/.exec(match[3] ?? '')?.[1];
  return pinned ? { name, spec, version: pinned } : { name, spec };
}
