// Types for egress-proxy.mjs, which runs as plain JavaScript in the proxy's container (the tests import it).
export interface ProxyPolicy {
  readonly r: string;
  readonly s: string;
  readonly m: 'learn' | 'allow';
  readonly h: readonly string[];
}
export declare const SOCKET: string;
export declare function verifyToken(key: Buffer, token: string): ProxyPolicy | undefined;
export declare function parseEntry(entry: string): { host: string; port: number };
export declare function hostAllowed(entries: readonly string[], host: string, port: number): boolean;
export declare function isRefusedAddress(address: string): boolean;
export declare function sniOf(buffer: Buffer): string | undefined;
export declare function startProxy(options: {
  socket: string;
  key: Buffer;
  idleMs: number;
  upstream?: string;
  noProxy?: string;
  log: (event: Record<string, unknown>) => void;
  ready?: () => void;
  onIdle?: () => void;
}): { close(): void };
