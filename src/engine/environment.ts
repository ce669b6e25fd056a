import type { HostEnv } from '../host.js';

/**
 * What the docker CLI itself reads: where the engine is (contexts, DOCKER_HOST, TLS, ssh agent for
 * ssh:// hosts, XDG_RUNTIME_DIR for rootless sockets, rootless Podman's store), plus what processes need on each platform.
 */
export const ENGINE_ENV: ReadonlySet<string> = new Set([
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'LANG',
  'TMPDIR',
  'XDG_RUNTIME_DIR',
  'XDG_CONFIG_HOME',
  'DOCKER_HOST',
  'DOCKER_CONTEXT',
  'DOCKER_CONFIG',
  'DOCKER_CERT_PATH',
  'DOCKER_TLS_VERIFY',
  'DOCKER_API_VERSION',
  'DOCKER_BUILDKIT',
  'BUILDKIT_PROGRESS',
  'SSH_AUTH_SOCK',
  'CONTAINER_HOST',
  // Rootless Podman's store, and where its configuration is: without them a user who moved them
  // would get an empty store (no images) under mcpbox.
  'XDG_DATA_HOME',
  'CONTAINERS_CONF',
  'CONTAINERS_STORAGE_CONF',
  'CONTAINERS_REGISTRIES_CONF',
  // Windows
  'SystemRoot',
  'SYSTEMROOT',
  'USERPROFILE',
  'APPDATA',
  'LOCALAPPDATA',
  'ProgramData',
  'ProgramFiles',
  'PATHEXT',
  'TEMP',
  'TMP',
]);

/** The engine CLI's environment: its own configuration from the host's, nothing else of it. */
export function engineEnvironment(hostEnv: HostEnv): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ENGINE_ENV) {
    const value = hostEnv[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}
