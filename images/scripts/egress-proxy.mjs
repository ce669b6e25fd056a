// mcpbox's egress proxy. It runs in a hardened container of its own (src/egress/proxy.ts starts it),
// one per invoking user, and is the only way out for sandboxed servers: they run with no network at
// all (--network none) and reach it through a unix socket in a volume, by way of a tiny forwarder
// inside their container (FORWARD_NODE / FORWARD_PYTHON below) that listens on 127.0.0.1:3128.
//
// Each connection starts with `MCPBOX-EGRESS <token>\n`: the run's policy, signed by mcpbox with a
// key only it and this proxy hold. A server can replay its own token, never forge another. Then the
// connection is plain HTTP proxying: CONNECT host:port (checked against the policy, the address the
// name resolves to re-checked, the TLS SNI compared with the host), or an absolute-URI request for
// plain HTTP (checked by its host). Every decision is a JSON line on stdout, which mcpbox follows.
//
// Exports its pure parts for tests; starts only with MCPBOX_EGRESS_SERVE=1.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { chmodSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import { connect as netConnect, createServer as createNetServer, isIP } from 'node:net';

export const SOCKET = '/mcpbox/egress/proxy.sock';
const PREAMBLE = 'MCPBOX-EGRESS ';

/** `v1.<payload>.<signature>`, both base64url; the payload's policy when the signature is right. */
export function verifyToken(key, token) {
  const parts = String(token).trim().split('.');
  if (parts.length !== 3 || parts[0] !== 'v1') return undefined;
  const expected = createHmac('sha256', key).update(`v1.${parts[1]}`).digest();
  const given = Buffer.from(parts[2], 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  try {
    const policy = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    return policy && (policy.m === 'learn' || policy.m === 'allow') && Array.isArray(policy.h) ? policy : undefined;
  } catch {
    return undefined;
  }
}

/** An allowlist entry: `host` (port 443), `host:port`, `*.domain` (subdomains, not the apex), IP literals. */
export function parseEntry(entry) {
  let text = String(entry).trim().toLowerCase().replace(/\.$/, '');
  let port = 443;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed) return { host: bracketed[1], port: bracketed[2] ? Number(bracketed[2]) : port };
  const withPort = /^([^:]+):(\d+)$/.exec(text);
  if (withPort) {
    text = withPort[1];
    port = Number(withPort[2]);
  }
  return { host: text, port };
}

export function hostAllowed(entries, host, port) {
  const name = String(host).toLowerCase().replace(/\.$/, '').replace(/^\[|\]$/g, '');
  return entries.some((entry) => {
    const e = parseEntry(entry);
    if (e.port !== port) return false;
    return e.host.startsWith('*.') ? name.endsWith(e.host.slice(1)) && name !== e.host.slice(2) : name === e.host;
  });
}

const V4_REFUSED = [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
];
const v4 = (ip) => ip.split('.').reduce((n, part) => (n << 8) + Number(part), 0) >>> 0;

/** Loopback, private, link-local (cloud metadata: 169.254.169.254), CGNAT, multicast, reserved. */
export function isRefusedAddress(address) {
  const ip = String(address).toLowerCase();
  if (isIP(ip) === 4) {
    const n = v4(ip);
    return V4_REFUSED.some(([base, bits]) => (n >>> (32 - bits)) === (v4(base) >>> (32 - bits)));
  }
  if (isIP(ip) !== 6) return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
  if (mapped) return isRefusedAddress(mapped[1]);
  return ip === '::' || ip === '::1' || /^f[cd]/.test(ip) || /^fe[89ab]/.test(ip) || ip.startsWith('ff');
}

/** The server name of a TLS ClientHello: a string, '' when it has none, undefined when this isn't one. */
export function sniOf(buffer) {
  try {
    if (buffer[0] !== 0x16 || buffer[5] !== 0x01) return undefined;
    let at = 9 + 2 + 32; // record header (5) + handshake header (4), version, random
    at += 1 + buffer[at]; // session id
    at += 2 + buffer.readUInt16BE(at); // cipher suites
    at += 1 + buffer[at]; // compression methods
    const end = at + 2 + buffer.readUInt16BE(at);
    at += 2;
    while (at + 4 <= end) {
      const type = buffer.readUInt16BE(at);
      const length = buffer.readUInt16BE(at + 2);
      if (type === 0 && length > 5) return buffer.toString('ascii', at + 9, at + 9 + buffer.readUInt16BE(at + 7)).toLowerCase();
      at += 4 + length;
    }
    return '';
  } catch {
    return undefined;
  }
}

/** Whether NO_PROXY (comma list of names, .domains, *) says to bypass the upstream proxy for `host`. */
function bypassUpstream(noProxy, host) {
  return String(noProxy ?? '')
    .split(',')
    .map((e) => e.trim().toLowerCase().replace(/:\d+$/, ''))
    .filter(Boolean)
    .some((e) => e === '*' || host === e.replace(/^\./, '') || host.endsWith(e.startsWith('.') ? e : `.${e}`));
}

/**
 * Names resolved in the last half minute (and lookups under way), so that an install's hundreds of
 * connections to one registry don't queue for getaddrinfo's few threads. The addresses are checked
 * on every use, cached or not.
 */
const resolved = new Map();
function resolveCached(host) {
  const hit = resolved.get(host);
  if (hit && hit.expires > Date.now()) return hit.addresses;
  const addresses = lookup(host, { all: true });
  resolved.set(host, { addresses, expires: Date.now() + 30_000 });
  addresses.catch(() => resolved.delete(host));
  return addresses;
}

/**
 * Where a connection to host:port may go: the address to dial (a name's addresses are re-checked:
 * an allowed name that resolves to loopback or a private range is refused, unless the policy names
 * that very address), or through the upstream proxy. Throws with the reason when refused.
 */
async function route(policy, host, port, options) {
  const literal = isIP(host.replace(/^\[|\]$/g, '')) ? host.replace(/^\[|\]$/g, '') : undefined;
  const named = policy.m === 'allow' && hostAllowed(policy.h, host, port);
  if (policy.m === 'allow' && !named) throw new Error('not in its egress list');
  if (literal) {
    if (isRefusedAddress(literal) && !named) throw new Error(`${literal} is a loopback, private or link-local address`);
    return { address: literal };
  }
  const upstream = options.upstream && !bypassUpstream(options.noProxy, host) ? options.upstream : undefined;
  let addresses;
  try {
    addresses = await resolveCached(host);
  } catch (error) {
    // Behind a corporate proxy the name may resolve only there.
    if (upstream) return { upstream };
    throw new Error(`cannot resolve ${host} (${error.code ?? error.message})`);
  }
  const usable = addresses.map((a) => a.address).filter((a) => !isRefusedAddress(a));
  if (usable.length === 0) throw new Error(`${host} resolves to ${addresses.map((a) => a.address).join(', ')}: loopback, private or link-local`);
  return upstream ? { upstream } : { address: usable[0] };
}

/** A TCP connection to host:port, directly or by CONNECT through the upstream proxy. */
function dial(target, host, port) {
  return new Promise((resolve, reject) => {
    if (!target.upstream) {
      const socket = netConnect({ host: target.address, port });
      socket.once('connect', () => resolve(socket)).once('error', reject);
      return;
    }
    const up = new URL(target.upstream);
    const socket = netConnect({ host: up.hostname, port: Number(up.port || 80) });
    const auth = up.username ? `Proxy-Authorization: Basic ${Buffer.from(`${decodeURIComponent(up.username)}:${decodeURIComponent(up.password)}`).toString('base64')}\r\n` : '';
    socket.once('error', reject);
    socket.once('connect', () => socket.write(`CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n${auth}\r\n`));
    let head = Buffer.alloc(0);
    const onData = (chunk) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      if (!/^HTTP\/1\.[01] 200/.test(head.toString('latin1', 0, 16))) return reject(new Error(`the upstream proxy said ${head.toString('latin1', 0, head.indexOf('\r\n'))}`));
      if (head.length > end + 4) socket.unshift(head.subarray(end + 4));
      resolve(socket);
    };
    socket.on('data', onData);
  });
}

export function startProxy(options) {
  const policies = new WeakMap();
  let open = 0;
  let last = Date.now();
  const log = (policy, fields) => options.log({ t: new Date().toISOString(), run: policy.r, server: policy.s, mode: policy.m, ...fields });

  const http = createHttpServer();
  http.on('connect', (req, client, head) => {
    const policy = policies.get(client);
    const [host, portText] = splitHostPort(req.url, 443);
    const port = Number(portText);
    route(policy, host, port, options)
      .then(async (target) => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        const first = head.length > 0 ? head : await firstChunk(client);
        const sni = first ? sniOf(first) : undefined;
        if (sni && !isIP(host) && sni !== host.toLowerCase()) throw new Error(`its TLS server name ${sni} is not the host it asked for`);
        const upstream = await dial(target, host, port);
        log(policy, { host, port, action: 'allowed' });
        if (first) upstream.write(first);
        client.pipe(upstream).pipe(client);
        upstream.on('error', () => client.destroy());
        client.on('error', () => upstream.destroy());
      })
      .catch((error) => {
        log(policy, { host, port, action: 'refused', reason: error.message });
        if (client.writable) client.end(client.bytesWritten > 0 ? undefined : `HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nmcpbox: ${host}:${port} refused: ${error.message}\n`);
      });
  });
  http.on('request', (req, res) => {
    const policy = policies.get(req.socket);
    let url;
    try {
      url = new URL(req.url);
    } catch {
      res.writeHead(400).end('mcpbox egress: absolute URLs only\n');
      return;
    }
    const host = url.hostname;
    const port = Number(url.port || 80);
    route(policy, host, port, options)
      .then((target) => {
        log(policy, { host, port, action: 'allowed' });
        const upstream = target.upstream ? new URL(target.upstream) : undefined;
        const forward = httpRequest(
          upstream
            ? { host: upstream.hostname, port: Number(upstream.port || 80), path: req.url, method: req.method, headers: req.headers }
            : { host: target.address, port, path: `${url.pathname}${url.search}`, method: req.method, headers: { ...req.headers, host: url.host } },
          (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          },
        );
        forward.on('error', (error) => res.headersSent ? res.destroy() : res.writeHead(502).end(`mcpbox egress: ${error.message}\n`));
        req.pipe(forward);
      })
      .catch((error) => {
        log(policy, { host, port, action: 'refused', reason: error.message });
        res.writeHead(403, { 'Content-Type': 'text/plain', Connection: 'close' }).end(`mcpbox: ${host}:${port} refused: ${error.message}\n`);
      });
  });

  const server = createNetServer((socket) => {
    open++;
    last = Date.now();
    socket.on('close', () => {
      open--;
      last = Date.now();
    });
    socket.on('error', () => {});
    let pending = Buffer.alloc(0);
    const onData = (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      const newline = pending.indexOf(10);
      if (newline === -1) {
        if (pending.length > 8192) socket.destroy();
        return;
      }
      socket.off('data', onData);
      const line = pending.toString('utf8', 0, newline);
      const policy = line.startsWith(PREAMBLE) ? verifyToken(options.key, line.slice(PREAMBLE.length)) : undefined;
      if (!policy) {
        socket.destroy();
        return;
      }
      policies.set(socket, policy);
      if (pending.length > newline + 1) socket.unshift(pending.subarray(newline + 1));
      http.emit('connection', socket);
    };
    socket.on('data', onData);
  });
  rmSync(options.socket, { force: true });
  server.listen(options.socket, () => {
    // Servers run as nobody or as the invoking user: any of them may connect; the token decides.
    chmodSync(options.socket, 0o666);
    options.ready?.();
  });
  // Gone once no server has used it for a while: the next run that needs it starts it again.
  const idle = setInterval(() => {
    if (open > 0 || Date.now() - last < options.idleMs) return;
    clearInterval(idle);
    server.close();
    rmSync(options.socket, { force: true });
    options.onIdle?.();
  }, Math.min(1000, options.idleMs));
  return { close: () => (clearInterval(idle), server.close()) };
}

function splitHostPort(authority, fallback) {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(authority);
  if (bracketed) return [bracketed[1], bracketed[2] ?? String(fallback)];
  const colon = authority.lastIndexOf(':');
  return colon === -1 ? [authority, String(fallback)] : [authority.slice(0, colon), authority.slice(colon + 1)];
}

/** The client's first bytes after 200 (its TLS ClientHello), or undefined when it sends none for a while. */
function firstChunk(socket) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.off('data', onData);
      resolve(undefined);
    }, 10_000);
    const onData = (chunk) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      resolve(chunk);
    };
    socket.on('data', onData);
  });
}

if (process.env.MCPBOX_EGRESS_SERVE === '1') {
  const upstream = process.env.MCPBOX_EGRESS_UPSTREAM || undefined;
  startProxy({
    socket: SOCKET,
    key: Buffer.from(process.env.MCPBOX_EGRESS_KEY ?? '', 'hex'),
    idleMs: Number(process.env.MCPBOX_EGRESS_IDLE_MS || 60_000),
    upstream,
    noProxy: process.env.MCPBOX_EGRESS_NO_PROXY,
    log: (event) => process.stdout.write(`${JSON.stringify(event)}\n`),
    ready: () => process.stdout.write(`${JSON.stringify({ t: new Date().toISOString(), action: 'ready' })}\n`),
    onIdle: () => process.exit(0),
  });
}
