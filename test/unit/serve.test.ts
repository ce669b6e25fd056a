import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { authorize, bearerToken, tokenDigest } from '../../src/serve/auth.js';
import type { ContainerChannel } from '../../src/serve/channel.js';
import { PrivateBackend, Session, SharedBackend } from '../../src/serve/sessions.js';
import { parseServeConfig, SERVE_DEFAULTS } from '../../src/serve/config.js';

const TOKEN = 'x'.repeat(32);

describe('serve configuration', () => {
  const parse = (raw: unknown, env: Record<string, string> = {}) => parseServeConfig(raw, 'servers.json', env);

  it('the mcpServers shape, with global tokens, defaults and ${env:NAME}', () => {
    const config = parse(
      {
        authTokens: ['${env:TOKEN}'],
        mcpServers: {
          github: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-github'], env: { GITHUB_PERSONAL_ACCESS_TOKEN: '${env:GH}' } },
          time: { command: '/home/me/.local/bin/uvx', args: ['mcp-server-time'], shared: true, maxSessions: 3, authTokens: ['y'.repeat(20)] },
        },
      },
      { TOKEN, GH: 'ghp_secret' },
    );
    expect(config).toEqual({
      maxSessions: SERVE_DEFAULTS.maxSessions,
      idleTimeout: SERVE_DEFAULTS.idleTimeout,
      servers: [
        { name: 'github', runner: 'npx', args: ['-y', '@modelcontextprotocol/server-github'], env: { GITHUB_PERSONAL_ACCESS_TOKEN: 'ghp_secret' }, authTokens: [TOKEN], shared: false, maxSessions: SERVE_DEFAULTS.serverMaxSessions },
        { name: 'time', runner: 'uvx', args: ['mcp-server-time'], env: {}, authTokens: ['y'.repeat(20)], shared: true, maxSessions: 3 },
      ],
    });
  });

  it.each([
    ['no servers', { authTokens: [TOKEN], mcpServers: {} }, /"mcpServers" must name at least one server/],
    ['no tokens', { mcpServers: { a: { command: 'npx', args: ['x'] } } }, /"mcpServers\.a" has no auth tokens/],
    ['short token', { authTokens: ['abc'], mcpServers: { a: { command: 'npx' } } }, /"authTokens\[0\]" is shorter than 16/],
    ['unset variable', { authTokens: ['${env:NOPE}'], mcpServers: { a: { command: 'npx' } } }, /NOPE, which is not set/],
    ['remote server', { authTokens: [TOKEN], mcpServers: { a: { url: 'https://x/mcp' } } }, /"mcpServers\.a" is a remote server/],
    ['other command', { authTokens: [TOKEN], mcpServers: { a: { command: 'python', args: ['s.py'] } } }, /"mcpServers\.a\.command" must be npx or uvx/],
    ['bad name', { authTokens: [TOKEN], mcpServers: { 'a/b': { command: 'npx' } } }, /a server name may hold letters/],
    ['bad limit', { authTokens: [TOKEN], maxSessions: 0, mcpServers: { a: { command: 'npx' } } }, /"maxSessions" must be a positive whole number/],
    ['unknown key', { authTokens: [TOKEN], mcpServers: { a: { command: 'npx', shard: true } } }, /"mcpServers\.a\.shard" unknown setting/],
  ])('refused: %s, naming the file and key', (_label, raw, message) => {
    expect(() => parse(raw)).toThrow(ConfigError);
    expect(() => parse(raw)).toThrow(message);
    expect(() => parse(raw)).toThrow(/^servers\.json: /);
  });
});

describe('bearer tokens', () => {
  const allowed = [tokenDigest(TOKEN), tokenDigest('z'.repeat(24))];
  it.each([
    [`Bearer ${TOKEN}`, 0],
    [`bearer ${'z'.repeat(24)}`, 1],
    [`Bearer ${TOKEN}x`, undefined],
    [TOKEN, undefined],
    ['Bearer', undefined],
    [undefined, undefined],
    ['Basic dXNlcjpwYXNz', undefined],
  ])('%s', (header, index) => {
    const found = authorize(header, allowed);
    expect(found ? allowed.findIndex((d) => d.equals(found)) : undefined).toBe(index);
  });

  it('reads the token from the header', () => {
    expect(bearerToken('Bearer abc ')).toBe('abc');
  });
});

/** A stand-in for a container: records what it is sent; the test speaks for the server. */
function fakeChannel() {
  const sent: Record<string, unknown>[] = [];
  const channel = { sent, running: true, send: (m: JSONRPCMessage) => sent.push(m as unknown as Record<string, unknown>), onmessage: undefined as ((m: JSONRPCMessage) => void) | undefined, onclose: undefined as (() => void) | undefined };
  return channel;
}

function session(id: string, backend: SharedBackend | PrivateBackend, received: Record<string, unknown>[], calls: string[] = []) {
  const s = new Session({ id, server: 'srv', transport: 'streamable-http', token: tokenDigest(TOKEN), backend, events: { toolCall: (_s, tool) => calls.push(tool) } });
  s.downstream = { send: async (m, related) => void received.push({ ...(m as unknown as Record<string, unknown>), ...(related !== undefined && { related }) }) };
  return s;
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('a shared server, several sessions', () => {
  it('initializes once; each session gets the answer under its own id', async () => {
    const channel = fakeChannel();
    const backend = new SharedBackend(channel as unknown as ContainerChannel);
    const a: Record<string, unknown>[] = [];
    const b: Record<string, unknown>[] = [];
    const sa = session('a', backend, a);
    const sb = session('b', backend, b);
    const init = (id: number) => ({ jsonrpc: '2.0', id, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'c', version: '1' } } }) as JSONRPCMessage;
    sa.fromClient(init(1));
    sb.fromClient(init(7));
    expect(channel.sent.filter((m) => m.method === 'initialize')).toHaveLength(1);
    channel.onmessage!({ jsonrpc: '2.0', id: 'mcpbox-initialize', result: { protocolVersion: '2025-06-18', capabilities: {}, serverInfo: { name: 's', version: '1' } } } as JSONRPCMessage);
    await tick();
    expect(a).toEqual([expect.objectContaining({ id: 1, result: expect.objectContaining({ serverInfo: { name: 's', version: '1' } }) })]);
    expect(b).toEqual([expect.objectContaining({ id: 7 })]);
    expect(channel.sent.filter((m) => m.method === 'notifications/initialized')).toHaveLength(1);
    sa.fromClient({ jsonrpc: '2.0', method: 'notifications/initialized' } as JSONRPCMessage);
    expect(channel.sent.filter((m) => m.method === 'notifications/initialized')).toHaveLength(1);
  });

  it('renumbers requests, routes answers and progress back, broadcasts the rest, refuses requests to clients', async () => {
    const channel = fakeChannel();
    const backend = new SharedBackend(channel as unknown as ContainerChannel);
    const a: Record<string, unknown>[] = [];
    const b: Record<string, unknown>[] = [];
    const calls: string[] = [];
    const sa = session('a', backend, a, calls);
    const sb = session('b', backend, b, calls);
    sa.fromClient({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: {}, _meta: { progressToken: 'p1' } } } as JSONRPCMessage);
    sb.fromClient({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'add', arguments: {} } } as JSONRPCMessage);
    expect(calls).toEqual(['echo', 'add']);
    const [upA, upB] = channel.sent.map((m) => m.id);
    expect(upA).not.toBe(upB);
    channel.onmessage!({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 'p1', progress: 1 } } as JSONRPCMessage);
    channel.onmessage!({ jsonrpc: '2.0', id: upB, result: { content: [{ type: 'text', text: 'B' }] } } as JSONRPCMessage);
    channel.onmessage!({ jsonrpc: '2.0', id: upA, result: { content: [{ type: 'text', text: 'A' }] } } as JSONRPCMessage);
    channel.onmessage!({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' } as JSONRPCMessage);
    channel.onmessage!({ jsonrpc: '2.0', id: 99, method: 'sampling/createMessage', params: {} } as JSONRPCMessage);
    await tick();
    expect(a.map((m) => m.method ?? (m.result as { content: { text: string }[] }).content[0]!.text)).toEqual(['notifications/progress', 'A', 'notifications/tools/list_changed']);
    expect(a[0]).toMatchObject({ related: 1 });
    expect(a[1]).toMatchObject({ id: 1 });
    expect(b.map((m) => m.method ?? (m.result as { content: { text: string }[] }).content[0]!.text)).toEqual(['B', 'notifications/tools/list_changed']);
    expect(channel.sent.at(-1)).toMatchObject({ id: 99, error: { code: -32601 } });
  });

  it('a cancellation is renumbered too; a session that leaves gets nothing more', async () => {
    const channel = fakeChannel();
    const backend = new SharedBackend(channel as unknown as ContainerChannel);
    const a: Record<string, unknown>[] = [];
    const sa = session('a', backend, a);
    sa.fromClient({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'slow' } } as JSONRPCMessage);
    const up = channel.sent[0]!.id;
    sa.fromClient({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 5 } } as JSONRPCMessage);
    expect(channel.sent[1]).toMatchObject({ method: 'notifications/cancelled', params: { requestId: up } });
    await sa.end();
    channel.onmessage!({ jsonrpc: '2.0', id: up, result: {} } as JSONRPCMessage);
    channel.onmessage!({ jsonrpc: '2.0', method: 'notifications/message', params: {} } as JSONRPCMessage);
    await tick();
    expect(a).toEqual([]);
  });

  it('the shared container ending ends its sessions', () => {
    const channel = fakeChannel();
    const backend = new SharedBackend(channel as unknown as ContainerChannel);
    const ended: string[] = [];
    for (const id of ['a', 'b']) session(id, backend, []).onServerExit = () => ended.push(id);
    channel.onclose!();
    expect(ended).toEqual(['a', 'b']);
  });
});

describe('DNS-rebinding protection', () => {
  it.each([
    ['127.0.0.1', {}, '127.0.0.1:9090', undefined, true],
    ['127.0.0.1', {}, 'localhost:9090', undefined, true],
    ['127.0.0.1', {}, 'evil.example:9090', undefined, false],
    ['127.0.0.1', {}, undefined, undefined, false],
    ['127.0.0.1', {}, '127.0.0.1:9090', 'http://localhost:9090', true],
    ['127.0.0.1', {}, '127.0.0.1:9090', 'https://evil.example', false],
    ['127.0.0.1', {}, '127.0.0.1:9090', 'null', false],
    ['127.0.0.1', { allowedOrigins: ['https://app.example.com'] }, '127.0.0.1:9090', 'https://app.example.com', true],
    ['0.0.0.0', {}, 'mcp.example.com', undefined, true],
    ['0.0.0.0', {}, 'mcp.example.com', 'https://evil.example', false],
    ['0.0.0.0', { allowedHosts: ['mcp.example.com'] }, 'mcp.example.com:443', 'https://mcp.example.com', true],
    ['0.0.0.0', { allowedHosts: ['mcp.example.com'] }, 'evil.example', undefined, false],
    ['::1', {}, '[::1]:9090', undefined, true],
    ['10.0.0.5', {}, '10.0.0.5:9090', undefined, true],
    ['10.0.0.5', {}, 'rebound.example:9090', undefined, false],
  ] as const)('bound to %s with %j: Host %s, Origin %s → allowed %s', async (bind, configured, host, origin, allowed) => {
    const { originPolicy, rebindingRefusal } = await import('../../src/serve/origin.js');
    expect(rebindingRefusal(originPolicy(bind, configured), host, origin) === undefined).toBe(allowed);
  });
});

describe('a server that ends by itself', () => {
  it("answers the client's open requests with an error before the session ends, not at the client's timeout", async () => {
    const channel = fakeChannel();
    const backend = new PrivateBackend(channel as unknown as ContainerChannel, 0);
    const received: Record<string, unknown>[] = [];
    const s = session('p1', backend, received);
    const order: string[] = [];
    s.onServerExit = () => order.push(`exit after ${received.length}`);
    s.fromClient({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} } as JSONRPCMessage);
    s.fromClient({ jsonrpc: '2.0', id: 2, method: 'tools/list' } as JSONRPCMessage);
    s.fromClient({ jsonrpc: '2.0', method: 'notifications/initialized' } as JSONRPCMessage);
    channel.onmessage!({ jsonrpc: '2.0', id: 1, result: {} } as JSONRPCMessage);
    channel.onclose!();
    await tick();
    expect(received).toEqual([{ jsonrpc: '2.0', id: 1, result: {} }, { jsonrpc: '2.0', id: 2, error: { code: -32000, message: "srv ended before it answered (serve's log has its last words)" } }]);
    expect(order).toEqual(['exit after 2']);
  });
});
