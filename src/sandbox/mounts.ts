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
  const absolute = (path: string) => posix.resolve(cwd, path === '~' ? home : path.startsWith('~/') ? posix.join(home, path.slice(2)) : path);
  const add = (real: string, literal: string, readonly: boolean) => {
    for (const target of new Set([real, literal])) {
      if (!binds.some((b) => b.target === target)) binds.push({ source: real, target, readonly });
    }
  };
  const covered = (real: string) => binds.some((b) => b.source === b.target && within(real, b.source));

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
    if (!real) {
      notes.push(`${value} does not exist on this host: passed through, not mounted`);
      return undefined;
    }
    if (!covered(real)) {
      const reason = refusalReason(real, home, fs);
      if (reason) {
        throw new UsageError(
          `refusing to mount ${value} into the sandbox: ${reason}`,
          real === '/' ? 'name the directories the server needs instead' : `pass --mount ${literal} to mount it anyway, or --no-auto-mount to mount nothing`,
        );
      }
      add(real, literal, false);
    }
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

  return { binds, args, workdir, notes };
}

/**
 * Who the server runs as: nobody, except on Linux when it may write into the invoking (non-root)
 * user's mounted files, which must then stay theirs. Never root either way.
 */
export function sandboxUser(input: { platform: NodeJS.Platform; uid: number | undefined; gid: number | undefined; binds: readonly Bind[] }): string {
  const { platform, uid, gid, binds } = input;
  const writes = binds.some((b) => !b.readonly);
  if (platform === 'linux' && writes && uid !== undefined && gid !== undefined && uid !== 0) return `${uid}:${gid}`;
  return NOBODY;
}

export const NOBODY = '65534:65534';

