import { fstatSync, realpathSync, statSync } from 'node:fs';
import type { Logger } from './log.js';

/**
 * What mcpbox takes from the host it runs on: the process (CommandContext), its environment, its
 * filesystem. The ground floor: every command gets these passed in, so tests can stand in for them.
 */
export type HostEnv = Readonly<Record<string, string | undefined>>;

/** A variable name as shells and the engine accept one: -e NAME, settings, serve's env. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** What a command takes from the process it runs in (src/commands/context.ts adds the engine). */
export interface HostContext {
  readonly env: HostEnv;
  readonly cwd: string;
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean; fd?: number };
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly log: Logger;
  readonly pid: number;
  readonly home: string;
  readonly platform: NodeJS.Platform;
  /** The invoking user (POSIX), for running as them when their files are mounted read-write. */
  readonly uid?: number | undefined;
  readonly gid?: number | undefined;
  readonly username?: string | undefined;
  /** The host's files; the real ones unless a test stands in. */
  readonly fs?: HostFs;
}

export interface HostFs {
  /** The path with symlinks resolved, or undefined when nothing is there. */
  realpath(path: string): string | undefined;
  kind(path: string): 'dir' | 'file' | 'socket' | 'other' | undefined;
  /** Who owns it (POSIX); undefined when nothing is there. */
  owner?(path: string): { uid: number; gid: number } | undefined;
}

export const realHostFs: HostFs = {
  realpath: (path) => {
    try {
      return realpathSync(path);
    } catch {
      return undefined;
    }
  },
  kind: (path) => {
    try {
      const stat = statSync(path);
      return stat.isDirectory() ? 'dir' : stat.isFile() ? 'file' : stat.isSocket() ? 'socket' : 'other';
    } catch {
      return undefined;
    }
  },
  owner: (path) => {
    try {
      const { uid, gid } = statSync(path);
      return { uid, gid };
    } catch {
      return undefined;
    }
  },
};

/** A regular file's real path, or undefined. */
export function existingFile(fs: HostFs, path: string): string | undefined {
  const real = fs.realpath(path);
  return real && fs.kind(real) === 'file' ? real : undefined;
}

/** A client's pipe or socket: its end means the client is done with the server. */
export function isPipe(stream: { fd?: number }): boolean {
  try {
    const stat = fstatSync(stream.fd ?? 0);
    return stat.isFIFO() || stat.isSocket();
  } catch {
    return false;
  }
}

/** The invoking host user, for volume names: the uid, or the user name where there is none (Windows). */
export function hostOwner(ctx: Pick<HostContext, 'uid' | 'username'>): string {
  return ctx.uid !== undefined ? String(ctx.uid) : (ctx.username ?? 'user');
}
