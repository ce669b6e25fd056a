import { homedir } from 'node:os';
import { join } from 'node:path';
import type { HostEnv } from './host.js';
import { fileURLToPath } from 'node:url';

/**
 * images/ ships in the npm package beside dist/ (and beside src/ in a checkout): this module sits
 * one level below the package root in both, so the path is the same.
 */
export const IMAGES_DIR = fileURLToPath(new URL('../images/', import.meta.url));

/** The air-gapped bootstrap of the base images (ships in the npm package too: `mcpbox images bootstrap`). */
export const BOOTSTRAP_SCRIPT = fileURLToPath(new URL('../scripts/bootstrap-base-images.sh', import.meta.url));

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
