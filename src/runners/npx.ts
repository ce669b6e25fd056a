import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type npaType from 'npm-package-arg';
import { UsageError } from '../errors.js';
import type { InstallReport } from './report.js';
import { CACHE_DIR, type Described, flag, type Lockable, type PackageRef, type RunnerInvocation, type RunnerOption, type RunnerSpec } from './types.js';

/** npx (npm exec): its option grammar, npm's package specs, and how npm installs are locked. */
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

const NPX_LOCKABLE = new Set(['--yes', '--no', '--package', '--quiet', '--silent', '--no-fund', '--no-audit', '--no-update-notifier', '--fund', '--audit', '--update-notifier', '--prefer-offline', '--prefer-online']);

export const NPX = {
  executable: 'npx',
  options: NPX_OPTIONS,
  parsePackage: parseNpmSpec,
  // With -p, the positional is the command (a bin of those packages); otherwise it is the package.
  packages: (positional, roles) => {
    const listed = roles.get('package') ?? [];
    const packages = [...(listed.length === 0 && positional !== undefined ? [parseNpmSpec(positional)] : []), ...listed.map(parseNpmSpec)];
    return { packages, complete: packages.length > 0 || roles.has('call') };
  },
  negatable: true,
  strictBooleans: false,
  usage: 'mcpbox run npx -y <package> [args…], e.g. mcpbox run npx -y @modelcontextprotocol/server-everything',
  cacheEnv: { npm_config_cache: `${CACHE_DIR}/npm` },
  // npm never falls back from a scope's registry to the public one. Its retries (2) wait 10 then 60
  // s by default: 71 s before a TLS error is reported, past a client's initialize timeout.
  resolutionEnv: { npm_config_fetch_retry_mintimeout: '2000', npm_config_fetch_retry_maxtimeout: '5000' },
  quietEnv: {
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
    NO_UPDATE_NOTIFIER: '1',
  },
  image: {
    dir: 'npx',
    // Pinned by digest: a tag can be moved to other content. Updated with mcpbox releases.
    base: 'node:22-bookworm-slim@sha256:43ac6c60b8f89723f746e8a92ce91abd5017e627ce1ddfe4238355d3a30b772c',
    imageEnv: 'MCPBOX_NPX_IMAGE',
    baseEnv: 'MCPBOX_NPX_BASE_IMAGE',
    browser: { baseEnv: 'MCPBOX_NPX_BROWSER_BASE_IMAGE', packages: 'chromium fonts-liberation' },
  },
  caEnv: 'NODE_EXTRA_CA_CERTS',
  registries: ['registry.npmjs.org'],
  localBin: npxLocalBin,
  asksBeforeInstall: { yes: '--yes', no: '--no' },
  registryOptions: ['--registry'],
  // A scope's own registry: npm fetches that scope from it alone, never from the public registry.
  registryOptionPattern: /^--@[a-z0-9-~][a-z0-9-._~]*:registry$/,
  lock: {
    options: NPX_LOCKABLE,
    request: npxRequest,
    lockfile: 'package-lock.json',
    binDir: 'node_modules/.bin',
    script: 'npx-install.sh',
    gate: { script: 'npm-gate.cjs', variable: 'npm_gate_js' },
    scriptArgs: () => [],
    describe: describeNpmInstall,
    lockfileProblem: npmLockProblem,
    versionOf: (lockfile, name) => {
      try {
        return (JSON.parse(lockfile) as { packages?: Record<string, { version?: string }> }).packages?.[`node_modules/${name}`]?.version;
      } catch {
        return undefined;
      }
    },
    argsFor: (ask) => (ask.command === undefined ? ['-y', ask.specs[0]!] : ['-y', ...ask.specs.flatMap((s) => ['--package', s]), ask.command]),
    argsForPackage: (spec) => ['-y', spec],
  },
} as const satisfies RunnerSpec;

/**
 * npx runs a project's own bin before anything from the registry: `npx tsc` in a project with
 * typescript runs its node_modules/.bin/tsc (found walking up from the working directory). Only for
 * a bare name without -p or -c, as npx does.
 */
function npxLocalBin(invocation: RunnerInvocation, cwd: string, isFile: (path: string) => boolean): { root: string; bin: string } | undefined {
  const ref = invocation.packages[0];
  if (invocation.info || !invocation.positional || invocation.packages.length !== 1 || ref!.spec !== invocation.positional.value) return undefined;
  if (ref!.kind !== 'tag' || ref!.version !== undefined || invocation.options.some((o) => o.name === '--package' || o.name === '--call')) return undefined;
  const bin = ref!.name.replace(/^@[^/]+\//, '');
  for (let dir = cwd; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', '.bin', bin);
    if (isFile(candidate)) return { root: dir, bin: candidate };
    if (dirname(dir) === dir) return undefined;
  }
}

/** npx with registry packages (exact, range or tag) and plain options only. */
function npxRequest(invocation: RunnerInvocation): Lockable | undefined {
  const optionNames = invocation.options.map((o) => o.name);
  if (!invocation.positional || !optionNames.every((n) => NPX_LOCKABLE.has(n))) return undefined;
  if (!invocation.packages.every((p) => p.kind === 'version' || p.kind === 'range' || p.kind === 'tag')) return undefined;
  return {
    specs: invocation.packages.map((p) => p.spec),
    command: optionNames.includes('--package') ? invocation.positional.value : undefined,
    python: undefined,
    name: invocation.packages[0]!.name,
    pinned: invocation.packages.every((p) => p.kind === 'version'),
  };
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

/** Reads npm's package-lock.json for the first package's version, integrity and executable (npx's rules). */
export function describeNpmInstall(request: Pick<Lockable, 'name' | 'command'>, report: InstallReport): Described {
  const lock = JSON.parse(report.lockfile) as { packages?: Record<string, { version?: string; integrity?: string; bin?: Record<string, string> }> };
  const entry = lock.packages?.[`node_modules/${request.name}`];
  if (!entry?.version || !entry.integrity) throw new Error(`${request.name} is not in the installed package-lock.json`);
  let executable = request.command;
  if (executable === undefined) {
    const bins = Object.keys(entry.bin ?? {});
    const unscoped = request.name.replace(/^@[^/]+\//, '');
    executable = bins.length === 1 ? bins[0] : bins.includes(unscoped) ? unscoped : undefined;
    if (executable === undefined) {
      throw new Error(`could not determine the executable to run for ${request.name} (it has ${bins.length ? bins.join(', ') : 'no bins'}): use npx -p ${request.name} <command>`);
    }
  }
  if (!report.bins.includes(executable)) throw new Error(`${executable} is not an executable of ${request.name} (found: ${report.bins.join(', ') || 'none'})`);
  return { version: entry.version, integrity: entry.integrity, executable };
}

export function npmLockProblem(lockfile: string, request: Pick<Lockable, 'specs'>): string | undefined {
  let packages: Record<string, { version?: unknown; integrity?: unknown; link?: unknown; inBundle?: unknown; dependencies?: Record<string, unknown> }>;
  try {
    packages = (JSON.parse(lockfile) as { packages: typeof packages }).packages;
    if (typeof packages !== 'object' || packages === null) throw new Error('no "packages"');
  } catch (error) {
    return `its package-lock.json does not parse: ${(error as Error).message}`;
  }
  const wanted = request.specs.map((spec) => parseNpmSpec(spec).name).sort();
  const roots = Object.keys(packages['']?.dependencies ?? {}).sort();
  if (wanted.join(' ') !== roots.join(' ')) return `its package-lock.json installs ${roots.join(', ') || 'nothing'}, not ${wanted.join(', ')}`;
  for (const [path, entry] of Object.entries(packages)) {
    if (path === '') continue;
    if (!path.startsWith('node_modules/') || path.split('/').includes('..')) return `its package-lock.json has an entry at ${path}`;
    if (entry.link) return `its package-lock.json links ${path} to a local path`;
    if (entry.inBundle === true) continue; // shipped inside its parent's tarball, which is checked
    if (typeof entry.version !== 'string' || !/^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?$/.test(entry.version)) return `${path} is not locked to a registry version`;
    if (typeof entry.integrity !== 'string' || !/^sha(?:256|384|512)-[A-Za-z0-9+/=]+$/.test(entry.integrity)) return `${path} has no registry integrity (not a registry package)`;
  }
  return undefined;
}

