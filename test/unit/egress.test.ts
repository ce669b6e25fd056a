import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// The proxy itself, as it runs in its container.
import { hostAllowed, isRefusedAddress, sniOf, startProxy, verifyToken } from '../../images/scripts/egress-proxy.mjs';
import { canonicalEntry, effectiveEgress, mintToken, narrowEgress, parseEgress, validEgressEntry } from '../../src/egress/policy.js';
import { forwarderPrelude } from '../../src/egress/forwarder.js';

const KEY = Buffer.alloc(32, 7);

describe('egress policy', () => {
  it.each([
    ['none', 'none'],
    ['open', 'open'],
    ['learn', 'learn'],
    ['api.github.com,*.githubusercontent.com', ['api.github.com', '*.githubusercontent.com']],
    ['example.com:8443', ['example.com:8443']],
    ['[::1]:8080', ['[::1]:8080']],
  ])('--egress %s', (value, expected) => {
    expect(parseEgress(value)).toEqual(expected);
  });

  it.each(['https://example.com', 'example.com/path', '*', '*example.com', 'a..b', 'host:0', 'host:70000', 'exa mple.com', ''])('not an entry: %j', (value) => {
    expect(parseEgress(value)).toBeUndefined();
    if (value) expect(validEgressEntry(value)).toBe(false);
  });

  it.each([
    [{ packages: ['x'] }, { mode: 'learn', hosts: [] }],
    [{ packages: ['x'], learned: ['a.example'] }, { mode: 'allow', hosts: ['a.example'] }],
    [{ packages: ['x'], learned: [] }, { mode: 'allow', hosts: [] }],
    [{ packages: ['@modelcontextprotocol/server-filesystem'] }, { mode: 'none', hosts: [] }],
    [{ packages: ['@modelcontextprotocol/server-github'] }, { mode: 'allow', hosts: ['api.github.com'] }],
    [{ packages: ['@modelcontextprotocol/server-filesystem'], setting: 'open' }, { mode: 'open', hosts: [] }],
    [{ packages: ['x'], setting: ['h.example'], learned: ['a.example'] }, { mode: 'allow', hosts: ['h.example'] }],
    [{ packages: ['x'], setting: 'open', network: 'none' }, { mode: 'none', hosts: [] }],
    [{ packages: ['x'], network: 'my-net' }, { mode: 'open', hosts: [] }],
  ] as const)('%j → %j', (inputs, policy) => {
    expect(effectiveEgress(inputs as Parameters<typeof effectiveEgress>[0])).toEqual(policy);
  });

  it.each([
    ['learn', 'none', 'none'],
    ['learn', ['a'], ['a']],
    ['open', 'learn', 'learn'],
    ['none', 'open', 'none'],
    [['a', 'b'], ['b', 'c'], ['b']],
    [['a'], 'learn', ['a']],
  ] as const)('a project narrows %j with %j to %j', (base, project, expected) => {
    expect(narrowEgress(base as never, project as never)).toEqual(expected);
  });

  it('entries are written without the default port', () => {
    expect([canonicalEntry('API.example.com', 443), canonicalEntry('h', 8080), canonicalEntry('::1', 443)]).toEqual(['api.example.com', 'h:8080', '[::1]']);
  });
});

describe('the proxy reads grants only mcpbox can sign', () => {
  it('a grant mcpbox mints is what the proxy reads', () => {
    const token = mintToken(KEY, { run: 'r1', server: 'pkg', mode: 'allow', hosts: ['a.example'] });
    expect(verifyToken(KEY, token)).toEqual({ r: 'r1', s: 'pkg', m: 'allow', h: ['a.example'] });
  });

  it('another key, a changed payload or garbage: nothing', () => {
    const token = mintToken(KEY, { run: 'r1', server: 'pkg', mode: 'allow', hosts: ['a.example'] });
    const [, payload, signature] = token.split('.');
    const widened = Buffer.from(JSON.stringify({ r: 'r1', s: 'pkg', m: 'learn', h: [] })).toString('base64url');
    expect(verifyToken(Buffer.alloc(32, 8), token)).toBeUndefined();
    expect(verifyToken(KEY, `v1.${widened}.${signature}`)).toBeUndefined();
    expect(verifyToken(KEY, `v1.${payload}.`)).toBeUndefined();
    expect(verifyToken(KEY, 'garbage')).toBeUndefined();
  });
});

describe('the proxy: hosts and addresses', () => {
  it.each([
    [['api.github.com'], 'api.github.com', 443, true],
    [['api.github.com'], 'API.GITHUB.COM.', 443, true],
    [['api.github.com'], 'api.github.com', 80, false],
    [['api.github.com:80'], 'api.github.com', 80, true],
    [['*.githubusercontent.com'], 'raw.githubusercontent.com', 443, true],
    [['*.githubusercontent.com'], 'githubusercontent.com', 443, false],
    [['github.com'], 'api.github.com', 443, false],
    [['github.com'], 'evilgithub.com', 443, false],
  ] as const)('%j allows %s:%i: %s', (entries, host, port, allowed) => {
    expect(hostAllowed(entries, host, port)).toBe(allowed);
  });

  it.each(['127.0.0.1', '10.1.2.3', '172.17.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1'])('refuses %s', (address) => {
    expect(isRefusedAddress(address)).toBe(true);
  });

  it.each(['203.0.113.80', '8.8.8.8', '2606:4700::1111'])('lets %s through', (address) => {
    expect(isRefusedAddress(address)).toBe(false);
  });

  it('reads the server name of a real TLS ClientHello', async () => {
    const hello = await new Promise<Buffer>((resolve) => {
      const listener = createServer((socket) => {
        socket.once('data', (chunk: Buffer) => {
          resolve(chunk);
          socket.destroy();
          listener.close();
        });
      }).listen(0, '127.0.0.1', () => {
        const client = tlsConnect({ host: '127.0.0.1', port: (listener.address() as { port: number }).port, servername: 'registry.npmjs.org' });
        client.on('error', () => {});
      });
    });
    expect(sniOf(hello)).toBe('registry.npmjs.org');
    expect(sniOf(Buffer.from('GET / HTTP/1.1\r\n'))).toBeUndefined();
  });
});

describe('the proxy, live on a unix socket (loopback targets only)', () => {
  let dir: string;
  let socketPath: string;
  let target: Server;
  let targetPort: number;
  let proxy: { close(): void };
  const events: Record<string, unknown>[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mcpbox-proxy-'));
    socketPath = join(dir, 'proxy.sock');
    // A service on this host's loopback that no server may reach by name.
    target = createServer((socket) => socket.end('TARGET REACHED\n'));
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', () => resolve()));
    targetPort = (target.address() as { port: number }).port;
    await new Promise<void>((resolve) => {
      proxy = startProxy({ socket: socketPath, key: KEY, idleMs: 60_000, log: (event: Record<string, unknown>) => events.push(event), ready: resolve });
    });
  });
  afterAll(() => {
    proxy?.close();
    target?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A client as the forwarder connects: the grant, then CONNECT. What comes back. */
  async function tunnel(hosts: string[], mode: 'allow' | 'learn', authority: string, preamble = true): Promise<string> {
    const { connect } = await import('node:net');
    const token = mintToken(KEY, { run: `t-${authority}`, server: 'test', mode, hosts });
    return new Promise((resolve) => {
      const socket = connect(socketPath, () => {
        socket.write(`${preamble ? `MCPBOX-EGRESS ${token}\n` : ''}CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
      });
      let text = '';
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        if (text.includes('200 Connection Established')) socket.write('hello\n');
      });
      socket.on('close', () => resolve(text));
      socket.on('error', () => resolve(text));
      setTimeout(() => socket.destroy(), 3000);
    });
  }

  it('a name that resolves to loopback (rebinding) is refused, though allowed by name; the listener is never reached', async () => {
    const answer = await tunnel([`localhost:${targetPort}`], 'allow', `localhost:${targetPort}`);
    expect(answer).toMatch(/^HTTP\/1\.1 403 Forbidden/);
    expect(answer).not.toContain('TARGET REACHED');
    expect(events.at(-1)).toMatchObject({ host: 'localhost', action: 'refused', reason: expect.stringMatching(/resolves to .*loopback/) });
  });

  it('learn mode learns no loopback either', async () => {
    expect(await tunnel([], 'learn', `127.0.0.1:${targetPort}`)).toMatch(/403 Forbidden/);
  });

  it('an address allowed explicitly is reached', async () => {
    expect(await tunnel([`127.0.0.1:${targetPort}`], 'allow', `127.0.0.1:${targetPort}`)).toContain('TARGET REACHED');
    expect(events.at(-1)).toMatchObject({ host: '127.0.0.1', port: targetPort, action: 'allowed', server: 'test' });
  });

  it('a host not in the list is refused, and said so', async () => {
    expect(await tunnel(['registry.npmjs.org'], 'allow', 'pypi.org:443')).toMatch(/403 Forbidden[\s\S]*pypi\.org:443 refused: not in its egress list/);
  });

  it('a connection without a grant gets nothing at all', async () => {
    expect(await tunnel([`127.0.0.1:${targetPort}`], 'allow', `127.0.0.1:${targetPort}`, false)).toBe('');
  });
});

describe('the in-container forwarder', () => {
  it("holds none of the container's stdio: node would make the server's stdout non-blocking (EAGAIN for a big write)", () => {
    const prelude = forwarderPrelude();
    expect(prelude.match(/<\/dev\/null >\/dev\/null 2>&1 &/g)).toHaveLength(2);
  });
});
