import { homedir } from 'node:os';
import { join } from 'node:path';
import type { HostEnv } from './env.js';

/** Where mcpbox keeps its own state (sweep stamps, lock files): XDG state dir, or LOCALAPPDATA. */
export function stateDir(env: HostEnv, home = homedir()): string {
  if (env.XDG_STATE_HOME) return join(env.XDG_STATE_HOME, 'mcpbox');
  if (process.platform === 'win32' && env.LOCALAPPDATA) return join(env.LOCALAPPDATA, 'mcpbox', 'state');
  return join(home, '.local', 'state', 'mcpbox');
}
