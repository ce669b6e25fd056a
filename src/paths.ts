import { homedir } from 'node:os';
import { join } from 'node:path';
import type { HostEnv } from './env.js';

/** Where mcpbox keeps its own state (sweep stamps, lock files): XDG state dir, or LOCALAPPDATA. */
export function stateDir(env: HostEnv, home = homedir()): string {
  if (env.XDG_STATE_HOME) return join(env.XDG_STATE_HOME, 'mcpbox');
  if (process.platform === 'win32' && env.LOCALAPPDATA) return join(env.LOCALAPPDATA, 'mcpbox', 'state');
  return join(home, '.local', 'state', 'mcpbox');
}

/**
 * A private directory for what lives only while mcpbox runs (the FIFOs that carry values to the
 * engine): the user's runtime dir (a tmpfs on most Linux desktops), else under the state dir.
 */
export function runtimeDir(env: HostEnv, home = homedir()): string {
  if (env.XDG_RUNTIME_DIR && process.platform !== 'win32') return join(env.XDG_RUNTIME_DIR, 'mcpbox');
  return join(stateDir(env, home), 'run');
}

/** `path` is `dir` or lies inside it (both absolute, POSIX). */
export function isWithin(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir === '/' ? '/' : `${dir}/`);
}
