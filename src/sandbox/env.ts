import { UsageError } from '../errors.js';
import { ENV_NAME, type HostEnv } from '../host.js';

/**
 * What crosses from the host environment into a sandbox: only what was named. Values travel in the
 * environment of the engine CLI (`docker run -e NAME`), never in its argv, so `ps` shows no secret.
 */
export interface ForwardedVar {
  readonly name: string;
  readonly value: string;
}

export type { HostEnv };

/** `-e NAME` (value from mcpbox's environment) and `-e NAME=VALUE`; later entries win. */
export function resolveForwardedEnv(entries: readonly string[], hostEnv: HostEnv): { vars: ForwardedVar[]; unset: string[] } {
  const vars = new Map<string, string>();
  const unset: string[] = [];
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    const name = eq === -1 ? entry : entry.slice(0, eq);
    if (!ENV_NAME.test(name)) throw new UsageError(`-e ${entry}: "${name}" is not a valid variable name`, 'use -e NAME or -e NAME=VALUE');
    if (eq !== -1) vars.set(name, entry.slice(eq + 1));
    else if (hostEnv[name] !== undefined) vars.set(name, hostEnv[name]);
    else unset.push(name);
  }
  return { vars: [...vars].map(([name, value]) => ({ name, value })), unset };
}

/** Proxy settings are carried (by name: their URLs may hold credentials). */
export const PROXY_VARS = ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'no_proxy', 'all_proxy'] as const;

export function proxyVars(hostEnv: HostEnv): ForwardedVar[] {
  return PROXY_VARS.filter((name) => hostEnv[name]).map((name) => ({ name, value: hostEnv[name]! }));
}

/** Host variables that name a CA bundle, for runtimes behind a TLS-intercepting proxy. */
export const CA_VARS = ['NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE'] as const;

/** Where the host's bundles appear inside the sandbox (read-only). */
export const CA_DIR = '/mcpbox/ca';

export interface CaSetup {
  /** Host file → container path, one per distinct file. */
  readonly mounts: readonly { readonly hostPath: string; readonly containerPath: string }[];
  /** Variables to set inside, each naming a mounted bundle. */
  readonly env: Readonly<Record<string, string>>;
  /** Variables that named files that don't exist. */
  readonly missing: readonly string[];
  /**
   * --copy-in on an engine on another machine: the bundles copied into this volume (one per session,
   * src/lifecycle/copies.ts), mounted read-only at CA_DIR instead of the files.
   */
  readonly volume?: string;
}

/**
 * Mirrors each CA variable the host sets to the same variable inside, pointing at the mounted file.
 * The runner's own variable (NODE_EXTRA_CA_CERTS for node, SSL_CERT_FILE for uv) is filled from the
 * first host bundle when the host set only another one, so a Python user's SSL_CERT_FILE also
 * reaches npm and a Node user's NODE_EXTRA_CA_CERTS also reaches uv.
 */
export function caSetup(hostEnv: HostEnv, runnerCaVar: string, resolve: (path: string) => string | undefined): CaSetup {
  const mounts: { hostPath: string; containerPath: string }[] = [];
  const env: Record<string, string> = {};
  const missing: string[] = [];
  for (const name of CA_VARS) {
    const path = hostEnv[name];
    if (!path) continue;
    const real = resolve(path);
    if (!real) {
      missing.push(name);
      continue;
    }
    let mount = mounts.find((m) => m.hostPath === real);
    if (!mount) {
      mount = { hostPath: real, containerPath: `${CA_DIR}/${mounts.length + 1}-${basename(real)}` };
      mounts.push(mount);
    }
    env[name] = mount.containerPath;
  }
  if (!env[runnerCaVar] && mounts[0]) env[runnerCaVar] = mounts[0].containerPath;
  return { mounts, env, missing };
}

function basename(path: string): string {
  const base = path.split(/[\\/]/).pop() ?? 'ca.pem';
  return base.replace(/[^A-Za-z0-9._-]/g, '_') || 'ca.pem';
}
