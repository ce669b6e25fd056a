import { createHmac } from 'node:crypto';

/**
 * Where a sandboxed server may connect (src/egress/: the policy; the proxy that enforces it is
 * images/scripts/egress-proxy.mjs). Pure.
 *
 * - none: no network at all (--network none);
 * - allow: only the listed hosts, through mcpbox's egress proxy;
 * - learn: any public host, through the proxy, recording each; its next sessions allow exactly those;
 * - open: the network as it is (the `network` setting, bridge by default): explicit opt-in only.
 */
export type EgressMode = 'none' | 'open' | 'learn' | 'allow';

export interface EgressPolicy {
  readonly mode: EgressMode;
  /** allow: the hosts; learn: nothing yet. */
  readonly hosts: readonly string[];
}

/** What a setting, flag or built-in default says: a mode, or a list of hosts. */
export type EgressSetting = 'none' | 'open' | 'learn' | readonly string[];

/**
 * An allowlist entry: `host` (port 443), `host:port`, `*.domain` (its subdomains, not the apex), an
 * IPv4 address, or `[IPv6]` with an optional port. Lower case; no scheme, path or wildcard elsewhere.
 */
const HOST_ENTRY = /^(?:(?:\*\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?|\[[0-9a-f:.]+\])(?::\d{1,5})?$/;

export function validEgressEntry(entry: string): boolean {
  const port = /:(\d+)$/.exec(entry)?.[1];
  return HOST_ENTRY.test(entry) && (port === undefined || (Number(port) > 0 && Number(port) < 65536));
}

/** `--egress none|open|learn|HOST,HOST…`; undefined when it is none of these. */
export function parseEgress(value: string): EgressSetting | undefined {
  const text = value.trim().toLowerCase();
  if (text === 'none' || text === 'open' || text === 'learn') return text;
  const hosts = text.split(',').map((h) => h.trim()).filter(Boolean);
  return hosts.length > 0 && hosts.every(validEgressEntry) ? hosts : undefined;
}

/** The canonical way to write an entry: port 443 left out. */
export function canonicalEntry(host: string, port: number): string {
  const name = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host.toLowerCase();
  return port === 443 ? name : `${name}:${port}`;
}

/** none < a list < learn < open: how much each lets a server reach. */
const rank = (setting: EgressSetting) => (setting === 'none' ? 0 : Array.isArray(setting) ? 1 : setting === 'learn' ? 2 : 3);

/** A project's egress may only narrow: the tighter of the two; two lists, the hosts in both. */
export function narrowEgress(base: EgressSetting, project: EgressSetting): EgressSetting {
  if (Array.isArray(base) && Array.isArray(project)) return base.filter((h) => project.includes(h));
  return rank(project) < rank(base) ? project : base;
}

/**
 * Well-known servers whose answer is known: they need no network, or exactly these hosts. Below
 * anything the user's settings say for the package or for every server.
 */
export const BUILT_IN_EGRESS: Readonly<Record<string, EgressSetting>> = {
  '@modelcontextprotocol/server-everything': 'none',
  '@modelcontextprotocol/server-filesystem': 'none',
  '@modelcontextprotocol/server-memory': 'none',
  '@modelcontextprotocol/server-sequential-thinking': 'none',
  'mcp-server-time': 'none',
  '@modelcontextprotocol/server-github': ['api.github.com'],
};

export interface EgressInputs {
  /** --egress */
  readonly flag?: EgressSetting | undefined;
  /** The egress setting, package policies and a project's narrowing applied. */
  readonly setting?: EgressSetting | undefined;
  /** The network setting (or --network): `none` means no network whatever egress says. */
  readonly network?: string | undefined;
  /** The packages the run installs, for the built-in defaults. */
  readonly packages: readonly string[];
  /** What earlier sessions learned (the lock entry, or the user's egress.json); undefined: never learned. */
  readonly learned?: readonly string[] | undefined;
}

/**
 * The policy a run gets: --egress, else the settings, else a built-in default, else `open` when the
 * network setting names a network of its own, else learn. A learned list turns learn into allow.
 */
export function effectiveEgress(inputs: EgressInputs): EgressPolicy {
  if (inputs.network === 'none') return { mode: 'none', hosts: [] };
  const builtIn = inputs.packages.map((p) => BUILT_IN_EGRESS[p]).find((s) => s !== undefined);
  const namedNetwork = inputs.network !== undefined && inputs.network !== 'bridge' ? 'open' : undefined;
  const setting: EgressSetting = inputs.flag ?? inputs.setting ?? builtIn ?? namedNetwork ?? 'learn';
  if (Array.isArray(setting)) return { mode: 'allow', hosts: setting };
  if (setting === 'learn' && inputs.learned !== undefined) return { mode: 'allow', hosts: inputs.learned };
  return { mode: setting as EgressMode, hosts: [] };
}

/** What a run's token carries to the proxy: who it is (for the logs) and what it may reach. */
export interface EgressGrant {
  readonly run: string;
  readonly server: string;
  readonly mode: 'learn' | 'allow';
  readonly hosts: readonly string[];
}

/** `v1.<payload>.<signature>` as the proxy's verifyToken reads it. */
export function mintToken(key: Buffer, grant: EgressGrant): string {
  const payload = Buffer.from(JSON.stringify({ r: grant.run, s: grant.server, m: grant.mode, h: grant.hosts })).toString('base64url');
  const signature = createHmac('sha256', key).update(`v1.${payload}`).digest('base64url');
  return `v1.${payload}.${signature}`;
}
