import { posix } from 'node:path';
import { UsageError } from '../errors.js';
import type { HostFs } from '../host.js';
import { isWithin, refusalReason } from '../host-paths.js';

/**
 * Which host paths a server sees. Arguments that name existing host paths are bind-mounted at the
 * same path, so the server sees the paths the client sends; the working directory too, so terminal
 * use works in place. Some places are never mounted implicitly. Pure: the filesystem is passed in.
 */
export interface Bind {
  readonly source: string;
  readonly target: string;
  readonly readonly: boolean;
}

export interface MountPlan {
  readonly binds: readonly Bind[];
  /** The runner args to pass: `~` expanded as a shell would, and relative paths made absolute when the working directory isn't mounted. */
  readonly args: readonly string[];
  /** Working directory inside, when the host's is mounted (else the sandbox HOME). */
  readonly workdir: string | undefined;
  readonly notes: readonly string[];
  /** Where what the server writes would be lost: said louder than notes. */
  readonly warnings: readonly string[];
}

export interface MountPlanInput {
  readonly args: readonly string[];
  readonly cwd: string;
  readonly home: string;
  readonly autoMount: boolean;
  /**
   * Mount the working directory too (terminal and script use). Off for MCP clients, whose working
   * directory is incidental: a server gets the paths it is given, not its client's folder.
   */
  readonly mountCwd: boolean;
  /** `PATH[:ro|rw]` from --mount and settings; already absolute or relative to cwd. */
  readonly explicit: readonly string[];
  readonly fs: HostFs;
}

const within = isWithin;

/** `PATH[:ro|rw]` */
export function parseMountSpec(spec: string): { path: string; readonly: boolean } {
  const match = /^(.*):(ro|rw)$/.exec(spec);
  const path = match ? match[1]! : spec;
  if (path === '') throw new UsageError(`--mount "${spec}": no path`, 'use --mount PATH, --mount PATH:ro or --mount PATH:rw');
  return { path, readonly: match?.[2] === 'ro' };
}

type Candidate = { kind: 'home' | 'relative' | 'absolute'; path: string };

/** Absolute, `~` and `./`/`../` forms are paths; bare words never are (they may be package names). */
function pathCandidate(value: string): Candidate | undefined {
  if (value === '~' || value.startsWith('~/')) return { kind: 'home', path: value };
  if (value.startsWith('/')) return { kind: 'absolute', path: value };
  if (value === '.' || value === '..' || value.startsWith('./') || value.startsWith('../')) return { kind: 'relative', path: value };
  return undefined;
}

export function planMounts(input: MountPlanInput): MountPlan {
  const { cwd, home, fs } = input;
  const binds: Bind[] = [];
  const notes: string[] = [];
  const warnings: string[] = [];
  const absolute = (path: string) => posix.resolve(cwd, path === '~' ? home : path.startsWith('~/') ? posix.join(home, path.slice(2)) : path);
  const add = (real: string, literal: string, readonly: boolean) => {
    for (const target of new Set([real, literal])) {
      if (!binds.some((b) => b.target === target)) binds.push({ source: real, target, readonly });
    }
  };
  const covered = (real: string) => binds.some((b) => b.source === b.target && within(real, b.source));

  /**
   * A directory is mounted as named; a file by its directory, so what the server writes beside it
   * (SQLite's journal, an editor's temp file) lands there too, as on the host; only the file itself
   * when the directory may not be mounted (your home, say).
   */
  const mountExisting = (value: string, literal: string, real: string) => {
    if (covered(real)) return;
    const refuse = (reason: string) => {
      throw new UsageError(
        `refusing to mount ${value} into the sandbox: ${reason}`,
        real === '/' ? 'name the directories the server needs instead' : `pass --mount ${literal} to mount it anyway, or --no-auto-mount to mount nothing`,
      );
    };
    const reason = refusalReason(real, home, fs);
    const kind = fs.kind(real);
    if (kind === 'socket') refuse(reason ?? 'it is a socket');
    if (kind === 'dir' || kind === undefined) {
      if (reason) refuse(reason);
      add(real, literal, false);
      return;
    }
    const dir = posix.dirname(real);
    const dirReason = covered(dir) ? undefined : refusalReason(dir, home, fs);
    if (!dirReason) {
      // The directory at its own path, and at the path as written when that is a link to it; a file
      // that is itself a link (elsewhere) is also bound at its own name.
      const literalDir = posix.dirname(literal);
      const dirAsWritten = fs.realpath(literalDir) === dir;
      if (!covered(dir)) add(dir, dirAsWritten ? literalDir : dir, false);
      if (!dirAsWritten && !binds.some((b) => b.target === literal)) binds.push({ source: real, target: literal, readonly: false });
      return;
    }
    if (reason) refuse(reason);
    notes.push(`mounting only the file ${value}, not its directory (${dirReason}): a server that writes beside it (a database journal) can't`);
    add(real, literal, false);
  };

  /**
   * A path the server will create (`--db-path ~/notes/new.db`): its nearest existing directory is
   * mounted, by the same refusals, so the file lands on the host as it would without the sandbox.
   */
  const mountToBe = (value: string, literal: string) => {
    let dir = posix.dirname(literal);
    while (dir !== '/' && !fs.realpath(dir)) dir = posix.dirname(dir);
    const real = fs.realpath(dir);
    if (!real || real === '/' || fs.kind(real) !== 'dir') {
      notes.push(`${value} does not exist on this host: passed through, not mounted`);
      return;
    }
    if (covered(real)) return;
    const reason = refusalReason(real, home, fs);
    if (!reason) {
      add(real, dir, false);
      return;
    }
    warnings.push(
      `${value} does not exist yet, and ${dir}, where it would be created, is not mounted (${reason}): ` +
        `what the server writes there is lost when it exits (hint: create a directory for it, e.g. mkdir ${posix.join(dir, 'mcp-data')}, and name a path in it; or --mount ${dir})`,
    );
  };

  for (const spec of input.explicit) {
    const { path, readonly } = parseMountSpec(spec);
    const literal = absolute(path);
    const real = fs.realpath(literal);
    if (!real) throw new UsageError(`--mount ${path}: nothing there on this host`, 'mount an existing file or directory');
    if (real === '/') throw new UsageError('--mount /: the root filesystem cannot be mounted at its own path', 'mount the directories the server needs');
    if (fs.kind(real) === 'socket') notes.push(`mounting the socket ${real} as asked: whatever listens on it is now reachable from the sandbox`);
    add(real, literal, readonly);
  }

  if (input.autoMount && input.mountCwd && cwd.startsWith('/')) {
    const real = fs.realpath(cwd);
    const reason = real ? refusalReason(real, home, fs) : 'it does not exist';
    if (real && !reason) {
      if (!covered(real)) add(real, cwd, false);
    } else if (!real || !covered(real)) {
      notes.push(`not mounting the working directory ${cwd}: ${reason}`);
    }
  }

  // First pass: mount what the arguments name (refusing what must not be mounted implicitly).
  const found = input.args.map((arg) => {
    if (!input.autoMount) return undefined;
    const eq = arg.startsWith('-') ? arg.indexOf('=') : -1;
    if (arg.startsWith('-') && eq === -1) return undefined;
    const value = eq === -1 ? arg : arg.slice(eq + 1);
    const candidate = pathCandidate(value);
    if (!candidate) return undefined;
    const literal = absolute(candidate.path);
    const real = fs.realpath(literal);
    if (real) mountExisting(value, literal, real);
    else mountToBe(value, literal);
    return { prefix: eq === -1 ? '' : arg.slice(0, eq + 1), candidate, literal };
  });

  // The server works in the host's working directory when that is mounted (by any rule).
  const realCwd = cwd.startsWith('/') ? fs.realpath(cwd) : undefined;
  const workdir = realCwd && covered(realCwd) ? cwd : undefined;

  // Second pass: `~` is the host's home, which the sandbox doesn't share; relative paths resolve
  // in place only when the working directory is there.
  const args = input.args.map((arg, i) => {
    const hit = found[i];
    if (!hit) return arg;
    const rewrite = hit.candidate.kind === 'home' || (hit.candidate.kind === 'relative' && workdir === undefined);
    return rewrite ? `${hit.prefix}${hit.literal}` : arg;
  });

  return { binds, args, workdir, notes, warnings };
}

/**
 * Who the server runs as: nobody, except on Linux when it may write into mounted files, which must
 * then stay their owner's: the invoking user's uid, or, when mcpbox runs as root, the owner of the
 * first writable path (a server as root still never runs as uid 0: a root-owned path stays read-only
 * to it, and `note` says so).
 */
export function sandboxUser(input: {
  platform: NodeJS.Platform;
  uid: number | undefined;
  gid: number | undefined;
  binds: readonly Bind[];
  owner?: ((path: string) => { uid: number; gid: number } | undefined) | undefined;
}): { user: string; note?: string; notePath?: string } {
  const { platform, uid, gid, binds } = input;
  const writable = binds.filter((b) => !b.readonly);
  if (platform !== 'linux' || writable.length === 0 || uid === undefined || gid === undefined) return { user: NOBODY };
  if (uid !== 0) return { user: `${uid}:${gid}` };
  const first = writable[0]!;
  const owner = input.owner?.(first.source);
  if (owner && owner.uid !== 0) return { user: `${owner.uid}:${owner.gid}` };
  return {
    user: NOBODY,
    notePath: first.target,
    note: `${first.source} belongs to root and the sandbox never runs as root: the server can read it but not write it (hint: chown it to a user, or run mcpbox as that user)`,
  };
}

export const NOBODY = '65534:65534';

