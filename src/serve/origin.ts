/**
 * DNS-rebinding protection, as the MCP specification asks of local HTTP servers: a web page whose
 * name an attacker points at 127.0.0.1 reaches serve with its own name in Host and its own origin in
 * Origin, so both are checked before anything else. Pure.
 *
 * Hosts: bound to loopback, only the loopback names (and the bound address); bound to one address,
 * that address and loopback; bound to every interface (0.0.0.0, ::), any name unless `allowedHosts`
 * says which (a VPS behind a TLS proxy sees its public name). Origins: a request without one (every
 * non-browser client) passes; one with an origin passes when its host is an allowed host or it is in
 * `allowedOrigins`.
 */
export interface OriginPolicy {
  /** Host names allowed in Host (no port); undefined: any. */
  readonly hosts: ReadonlySet<string> | undefined;
  /** Exact origins allowed besides those whose host is an allowed (or loopback) host. */
  readonly origins: ReadonlySet<string>;
}

const LOOPBACK = ['localhost', '127.0.0.1', '[::1]', '::1'];
const WILDCARD = new Set(['0.0.0.0', '::', '[::]', '']);

export function originPolicy(bindHost: string, configured: { allowedHosts?: readonly string[]; allowedOrigins?: readonly string[] }): OriginPolicy {
  const origins = new Set((configured.allowedOrigins ?? []).map((o) => o.replace(/\/+$/, '').toLowerCase()));
  if (configured.allowedHosts) return { hosts: new Set([...LOOPBACK, ...configured.allowedHosts.map((h) => h.toLowerCase())]), origins };
  if (WILDCARD.has(bindHost)) return { hosts: undefined, origins };
  return { hosts: new Set([...LOOPBACK, bindHost.toLowerCase(), bracketed(bindHost)]), origins };
}

/** Why a request is refused (403), or undefined. */
export function rebindingRefusal(policy: OriginPolicy, host: string | undefined, origin: string | undefined): string | undefined {
  if (policy.hosts && !policy.hosts.has(hostname(host ?? ''))) return `Host ${JSON.stringify(host ?? '')} is not one this server answers to (allowedHosts)`;
  if (origin === undefined) return undefined;
  const normalised = origin.replace(/\/+$/, '').toLowerCase();
  if (policy.origins.has(normalised)) return undefined;
  let originHost: string;
  try {
    originHost = new URL(normalised).host;
  } catch {
    return `Origin ${JSON.stringify(origin)} is not allowed (allowedOrigins)`;
  }
  const allowedHosts = policy.hosts ?? new Set(LOOPBACK);
  return allowedHosts.has(hostname(originHost)) ? undefined : `Origin ${JSON.stringify(origin)} is not allowed (allowedOrigins)`;
}

/** `name:port` → name; `[::1]:9090` → [::1]. */
function hostname(host: string): string {
  const lower = host.trim().toLowerCase();
  if (lower.startsWith('[')) return lower.slice(0, lower.indexOf(']') + 1);
  const colon = lower.lastIndexOf(':');
  return colon === -1 || lower.indexOf(':') !== colon ? lower : lower.slice(0, colon);
}

const bracketed = (host: string) => (host.includes(':') && !host.startsWith('[') ? `[${host.toLowerCase()}]` : host.toLowerCase());
