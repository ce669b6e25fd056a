import { validEgressEntry } from '../egress/policy.js';
import { RUNNERS } from '../runners/table.js';
import type { Lockable, Runner, RunnerInvocation } from '../runners/types.js';

/**
 * Resolve once, start in container time. The first run of a server resolves its package spec to an
 * exact dependency tree inside the sandbox and installs it into the server's install volume; the
 * lock records that tree. Later runs start the installed executable directly, no registry involved.
 * Pure.
 */

/** What a lockable invocation asks for, canonically: what its runner says it installs, and where the server's own arguments start. */
export interface InstallRequest extends Lockable {
  readonly runner: Runner;
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
  /** The release-age cooldown's cutoff the tree was resolved at (src/install/gates.ts); absent: none. */
  readonly resolvedBefore?: string;
  /** npm: the registry signatures over the tree when it was resolved, and which requested packages carry provenance. */
  readonly signatures?: {
    readonly status: 'verified' | 'partial' | 'unavailable' | 'invalid';
    readonly verified: number;
    readonly packages: number;
    readonly provenance: readonly string[];
  };
  /** What the server offers, pinned in its first session (src/tools/pin.ts); changes are refused until accepted. */
  readonly tools?: {
    readonly names?: string;
    readonly tools?: PinnedItems;
    readonly prompts?: PinnedItems;
    readonly resourceTemplates?: PinnedItems;
    readonly version?: string;
  };
  /** The hosts the server may reach: learned in its first session, or edited with mcpbox allow/deny. */
  readonly egress?: readonly string[];
}

/** Pinned tools, prompts or resource templates by name: each one's hash, its fields' hashes, its description's length. */
type PinnedItems = Readonly<Record<string, { readonly hash: string; readonly fields: Readonly<Record<string, string>>; readonly descriptionLength: number }>>;

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

/**
 * The invocations mcpbox installs and locks: registry packages with the plain options (each runner
 * says which, RunnerSpec.lock.request). Anything else (npx -c, git or file specs, index or registry
 * overrides, uvx --with-editable, …) runs through the runner as typed, resolving each time.
 */
export function installRequest(invocation: RunnerInvocation): InstallRequest | undefined {
  if (invocation.info || !invocation.positional || invocation.packages.length === 0) return undefined;
  const lockable = RUNNERS[invocation.runner].lock.request(invocation);
  return lockable && { ...lockable, runner: invocation.runner, serverArgsFrom: invocation.positional.index + 1 };
}

/** The runner argv that asks for exactly what a lock entry locked. */
export function runnerArgs(entry: Pick<LockEntry, 'runner' | 'specs' | 'command' | 'python'>): string[] {
  return RUNNERS[entry.runner].lock.argsFor(entry);
}

/** The lock's key for a request: runner, specs, command and python, nothing of the server's args. */
export function lockKey(request: Pick<InstallRequest, 'runner' | 'specs' | 'command' | 'python'>): string {
  const parts = [request.runner, ...request.specs];
  if (request.command !== undefined) parts.push(`=> ${request.command}`);
  if (request.python !== undefined) parts.push(`(python ${request.python})`);
  return parts.join(' ');
}

/**
 * Whether a start resolves a locked server again rather than running what is locked: forced (mcpbox
 * update) or due for its refresh. The one rule for the install, the cold start's early egress and
 * the warm path (with nothing locked, each resolves anyway).
 */
export function resolveDue(entry: Pick<LockEntry, 'pinned' | 'resolvedAt'>, when: { readonly now: Date; readonly intervalHours: number; readonly force?: boolean }): boolean {
  return Boolean(when.force) || needsRefresh(entry, when.now, when.intervalHours);
}

export function needsRefresh(entry: Pick<LockEntry, 'pinned' | 'resolvedAt'>, now: Date, intervalHours: number): boolean {
  if (entry.pinned) return false;
  const resolved = Date.parse(entry.resolvedAt);
  return Number.isNaN(resolved) || now.getTime() - resolved >= intervalHours * 3_600_000;
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
  if (entry.egress !== undefined && !(Array.isArray(entry.egress) && entry.egress.every((h) => typeof h === 'string' && validEgressEntry(h)))) return 'its egress list holds something that is not a host';
  return RUNNERS[request.runner].lock.lockfileProblem(entry.lockfile, request);
}
