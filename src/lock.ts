import type { Runner, RunnerInvocation } from './runners.js';
import { parseNpmSpec, parsePythonSpec } from './runners.js';

/**
 * Resolve once, start in container time. The first run of a server resolves its package spec to an
 * exact dependency tree inside the sandbox and installs it into the package's cache volume; the lock
 * records that tree. Later runs start the installed executable directly, no registry involved. Pure.
 */

/** What a lockable invocation asks for, canonically. */
export interface InstallRequest {
  readonly runner: Runner;
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
  /** Where the server's own arguments start in the runner argv. */
  readonly serverArgsFrom: number;
}

export interface LockEntry {
  readonly runner: Runner;
  readonly specs: readonly string[];
  readonly command?: string;
  readonly python?: string;
  /** The first package's exact version and registry integrity (npm: dist.integrity; PyPI: sha256 of the artifacts). */
  readonly name: string;
  readonly version: string;
  readonly integrity: string;
  /** The executable inside the install. */
  readonly executable: string;
  /** sha256 of `lockfile`: the whole tree, as installed. */
  readonly tree: string;
  /** npm's package-lock.json or uv's hash-pinned requirements.txt, byte for byte. */
  readonly lockfile: string;
  readonly pinned: boolean;
  readonly resolvedAt: string;
}

export interface LockFile {
  readonly lockfileVersion: 1;
  readonly servers: Readonly<Record<string, LockEntry>>;
}

/** Machine-local: where a locked tree is installed, per image and uid (not part of a shared lock). */
export interface InstallRecord {
  /** The install volume: written only by this server's install containers. */
  readonly volume: string;
  /** The volume's id label: a recreated volume has lost its installs. */
  readonly volumeId: string;
  readonly dir: string;
  readonly tree: string;
  /** Fingerprints of the installed files (images/scripts/tree-hash.sh), checked before every start. */
  readonly signature: string;
  readonly content: string;
  /** The executable the launcher starts, as verified against the installed bins. */
  readonly executable: string;
}

export const EMPTY_LOCK: LockFile = { lockfileVersion: 1, servers: {} };

const NPX_LOCKABLE = new Set(['--yes', '--package', '--quiet', '--silent', '--no-fund', '--no-audit', '--no-update-notifier', '--fund', '--audit', '--update-notifier', '--prefer-offline', '--prefer-online']);
const UVX_LOCKABLE = new Set(['--from', '--with', '--python', '--quiet']);

/**
 * The invocations mcpbox installs and locks: registry packages with the plain options. Anything
 * else (npx -c, git or file specs, index or registry overrides, uvx --with-editable, …) runs through
 * the runner as typed, resolving each time.
 */
export function installRequest(invocation: RunnerInvocation): InstallRequest | undefined {
  if (invocation.info || !invocation.positional || invocation.packages.length === 0) return undefined;
  const optionNames = invocation.options.map((o) => o.name);
  const serverArgsFrom = invocation.positional.index + 1;
  if (invocation.runner === 'npx') {
    if (!optionNames.every((n) => NPX_LOCKABLE.has(n))) return undefined;
    const specs = invocation.packages.map((p) => p.spec);
    if (!invocation.packages.every((p) => p.kind === 'version' || p.kind === 'range' || p.kind === 'tag')) return undefined;
    const withPackages = optionNames.includes('--package');
    return {
      runner: 'npx',
      specs,
      command: withPackages ? invocation.positional.value : undefined,
      python: undefined,
      name: invocation.packages[0]!.name,
      pinned: invocation.packages.every((p) => p.kind === 'version'),
      serverArgsFrom,
    };
  }
  if (!optionNames.every((n) => UVX_LOCKABLE.has(n))) return undefined;
  const from = invocation.options.find((o) => o.name === '--from')?.value;
  const withs = invocation.options.filter((o) => o.name === '--with').map((o) => o.value!);
  const main = from ?? invocation.positional.value;
  const requirements = [main, ...withs].map(pythonRequirement);
  if (requirements.some((r) => r === undefined)) return undefined;
  const command = from ? invocation.positional.value : parsePythonSpec(invocation.positional.value).name;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(command)) return undefined;
  return {
    runner: 'uvx',
    specs: requirements as string[],
    command,
    python: invocation.options.find((o) => o.name === '--python')?.value,
    name: parsePythonSpec(main).name,
    pinned: requirements.every((r) => /==[^=,;<>~!*]+$/.test(r!.replace(/\s/g, ''))),
    serverArgsFrom,
  };
}

/** uvx's `pkg@1.2` → `pkg==1.2`, `pkg@latest` → `pkg`; URLs and paths aren't locked. */
function pythonRequirement(spec: string): string | undefined {
  const ref = parsePythonSpec(spec);
  if (ref.name === spec && /[/:\\]/.test(spec)) return undefined;
  const at = /^([^@\s]+)\s*@\s*([^\s/:]+)$/.exec(spec.trim());
  if (at) return at[2] === 'latest' ? at[1]! : `${at[1]!}==${at[2]!}`;
  return spec.trim();
}

/** The lock's key for a request: runner, specs, command and python, nothing of the server's args. */
export function lockKey(request: Pick<InstallRequest, 'runner' | 'specs' | 'command' | 'python'>): string {
  const parts = [request.runner, ...request.specs];
  if (request.command !== undefined) parts.push(`=> ${request.command}`);
  if (request.python !== undefined) parts.push(`(python ${request.python})`);
  return parts.join(' ');
}

export function needsRefresh(entry: Pick<LockEntry, 'pinned' | 'resolvedAt'>, now: Date, intervalHours: number): boolean {
  if (entry.pinned) return false;
  const resolved = Date.parse(entry.resolvedAt);
  return Number.isNaN(resolved) || now.getTime() - resolved >= intervalHours * 3_600_000;
}

export interface InstallReport {
  readonly tree: string;
  readonly dir: string;
  readonly signature: string;
  readonly content: string;
  readonly bins: readonly string[];
  readonly lockfile: string;
}

/** The install scripts' stdout: five header lines, then the lockfile itself. */
export function parseInstallReport(stdout: string): InstallReport {
  const header = /^MCPBOX-TREE ([0-9a-f]{64})\nMCPBOX-DIR (\/\S+)\nMCPBOX-STAT ([0-9a-f]{64})\nMCPBOX-CONTENT ([0-9a-f]{64})\nMCPBOX-BINS ?([^\n]*)\n/.exec(stdout);
  if (!header) throw new Error(`the install script reported nothing usable: ${JSON.stringify(stdout.slice(0, 200))}`);
  return {
    tree: header[1]!,
    dir: header[2]!,
    signature: header[3]!,
    content: header[4]!,
    bins: header[5]!.split(' ').filter(Boolean),
    lockfile: stdout.slice(header[0].length),
  };
}

/**
 * Why a lock entry can't be installed as it is, or undefined. A lock may come with a repository, so
 * it is read as untrusted: it must lock what its key asks for, name a plain executable, and hold a
 * tree of registry packages only (every npm package with a version and an integrity, which npm
 * checks against what the registry serves; requirements pinned by version and hash, with no option
 * lines such as --index-url that would fetch from elsewhere). Pure.
 */
export function lockEntryProblem(request: InstallRequest, entry: LockEntry, sha256: (text: string) => string): string | undefined {
  const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
  if (entry.runner !== request.runner || !same(entry.specs, request.specs) || entry.name !== request.name || entry.command !== request.command || entry.python !== request.python) {
    return `it locks ${entry.runner} ${entry.specs.join(' ')}, not what its key names`;
  }
  if (typeof entry.executable !== 'string' || !/^[A-Za-z0-9@_+][A-Za-z0-9@._+-]*$/.test(entry.executable)) return `its executable ${JSON.stringify(entry.executable)} is not a plain command name`;
  if (typeof entry.lockfile !== 'string' || sha256(entry.lockfile) !== entry.tree) return 'its tree hash does not match its lock file';
  return request.runner === 'npx' ? npmLockProblem(entry.lockfile, request) : requirementsProblem(entry.lockfile);
}

function npmLockProblem(lockfile: string, request: Pick<InstallRequest, 'specs'>): string | undefined {
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

const REQUIREMENT_LINE = /^[A-Za-z0-9][A-Za-z0-9._-]*(?:\[[A-Za-z0-9,._ -]*\])?==[^\s;\\]+(?:\s*;[^\\]*)?(?:\s*\\)?$/;
const HASH_LINE = /^--hash=sha256:[0-9a-f]{64}(?:\s*\\)?$/;

function requirementsProblem(lockfile: string): string | undefined {
  for (const raw of lockfile.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || REQUIREMENT_LINE.test(line) || HASH_LINE.test(line)) continue;
    return `its requirements.txt holds ${JSON.stringify(line.slice(0, 80))}, which is neither a pinned requirement nor a hash`;
  }
  return undefined;
}

export interface Described {
  readonly version: string;
  readonly integrity: string;
  readonly executable: string;
}

/** Reads npm's package-lock.json for the first package's version, integrity and executable (npx's rules). */
export function describeNpmInstall(request: Pick<InstallRequest, 'name' | 'command'>, report: InstallReport): Described {
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

/** Reads uv's hash-pinned requirements.txt for the first package's version and hashes. */
export function describeUvInstall(request: Pick<InstallRequest, 'name' | 'command'>, report: InstallReport): Described {
  const normalise = (name: string) => name.toLowerCase().replace(/[-_.]+/g, '-');
  const blocks = report.lockfile.split(/\n(?=\S)/);
  const block = blocks.find((b) => {
    const head = /^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==/.exec(b);
    return head && normalise(head[1]!) === request.name;
  });
  const version = block && /==([^\s\\;]+)/.exec(block)?.[1];
  if (!block || !version) throw new Error(`${request.name} is not in the resolved requirements`);
  const hashes = [...block.matchAll(/--hash=(sha256:[0-9a-f]{64})/g)].map((m) => m[1]!).sort();
  const executable = request.command!;
  if (!report.bins.includes(executable)) {
    throw new Error(`${request.name} provides no executable ${executable} (found: ${report.bins.filter((b) => !/^(python|pip|activate|deactivate)/.test(b)).join(', ') || 'none'})`);
  }
  return { version, integrity: hashes.join(' '), executable };
}
