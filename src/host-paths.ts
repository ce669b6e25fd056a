import { posix } from 'node:path';
import type { HostFs } from './host.js';

/**
 * Which host paths mcpbox never mounts implicitly, and why: the same rules for paths named in a
 * server's arguments, the working directory and a project's mounts. Pure.
 */
const SYSTEM_DIRS = ['/etc', '/usr', '/var', '/proc', '/sys', '/dev', '/boot', '/run', '/private/etc', '/private/var'];
// Temporary directories that live under system trees (macOS puts $TMPDIR under /private/var/folders).
const TEMP_DIRS = ['/var/tmp', '/var/folders', '/private/var/folders', '/private/tmp'];
const CREDENTIAL_PATHS = ['.ssh', '.gnupg', '.aws', '.azure', '.kube', '.docker', '.config/gcloud', '.config/gh', '.netrc', '.npmrc', '.pypirc', '.git-credentials', '.password-store'];
// The shared temporary directories themselves (not what is inside them): other programs keep their
// sockets there (ssh-agent's, X11's), and the sandbox has its own /tmp.
const SHARED_TEMP = ['/tmp', '/private/tmp', '/var/tmp'];
const ENGINE_SOCKETS = /^(?:docker|podman|containerd|dockershim)\.sock$|^docker_engine$/;

/** `path` is `dir` or lies inside it (both absolute, POSIX). */
export function isWithin(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir === '/' ? '/' : `${dir}/`);
}

/** Why a host path is never mounted implicitly, or undefined when it may be. */
export function refusalReason(real: string, home: string, fs: Pick<HostFs, 'kind'>): string | undefined {
  if (real === '/') return 'it is the root filesystem';
  if (real === home) return 'it is your whole home directory';
  // /home, /Users, ~/..: everything in home (credentials included) is inside it.
  if (isWithin(home, real)) return `it contains your home directory (${home})`;
  if (SHARED_TEMP.includes(real)) return "it is the shared temporary directory: other programs keep their sockets there (ssh-agent's, say)";
  if (ENGINE_SOCKETS.test(posix.basename(real)) || fs.kind(real) === 'socket') return 'it is a socket (an engine socket would hand over the host)';
  const system = SYSTEM_DIRS.find((dir) => isWithin(real, dir));
  if (system && !TEMP_DIRS.some((dir) => isWithin(real, dir))) return `it is inside ${system}, a system directory`;
  const credentials = CREDENTIAL_PATHS.map((p) => posix.join(home, p)).find((dir) => isWithin(real, dir));
  if (credentials) return `it holds credentials (${credentials})`;
  return undefined;
}
