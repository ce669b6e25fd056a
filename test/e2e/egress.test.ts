import { readFileSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { connect, containersOf, docker, FIXTURES, mcpbox, quietStateDir, removeStandbys, type Session, testEnv, textOf, waitFor } from './helpers.js';

/**
 * Egress, for real: a server in its sandbox reaches only the hosts it is allowed, through mcpbox's
 * proxy. Every host a test reaches or is refused is a package registry (this machine reaches nothing
 * else, and tests never send traffic anywhere else): pypi.org is "allowed", proxy.golang.org "not
 * allowed" (the proxy refuses it before any connection is made).
 */
const engine = inject('engine');
const NET_SERVER = readFileSync(join(FIXTURES, 'net-server.js'), 'utf8');
const ALLOWED = 'pypi.org';
const REFUSED = 'proxy.golang.org';
// An unlocked run of a tiny package: its egress list is the user's own (egress.json), keyed by it.
const PKG = 'is-number';
const args = (...flags: string[]) => [...flags, '-e', 'NET_SERVER', 'npx', '-p', `${PKG}@7.0.0`, '-c', 'node -e "$NET_SERVER"'];

/** The egress proxies on the engine, of every state dir (a test follows the one that appeared during it). */
const proxies = async () => (await docker(['ps', '-a', '--filter', 'label=dev.mcpbox.role=egress', '--format', '{{.Names}}'])).stdout.split('\n').filter(Boolean);

function setup() {
  const state = quietStateDir();
  // A short idle time, so the tests see the proxy go.
  return { state, env: testEnv({ XDG_STATE_HOME: state, NET_SERVER, MCPBOX_EGRESS_IDLE: '3' }) };
}

async function call(session: Session, tool: string, args: Record<string, unknown>) {
  return textOf(await session.client.callTool({ name: tool, arguments: args }));
}

describe.skipIf(!engine)('learn, then enforce', () => {
  const { state, env } = setup();

  it('the first session learns what it reaches and says so', async () => {
    const session = await connect(args(), env);
    try {
      expect(await call(session, 'fetch', { url: `https://${ALLOWED}/simple/` })).toBe('status 200');
      await waitFor(async () => session.stderr().includes(`learning egress for ${PKG}: ${ALLOWED}`), 10_000, 'the learning note');
    } finally {
      await session.close();
    }
    const learned = JSON.parse(readFileSync(join(state, 'mcpbox', 'egress.json'), 'utf8')) as Record<string, { hosts: string[] }>;
    expect(learned[PKG]!.hosts).toEqual([ALLOWED]);
  });

  it('later sessions: the learned host works, another is refused and reported with the fix', async () => {
    const session = await connect(args(), env);
    try {
      expect(await call(session, 'fetch', { url: `https://${ALLOWED}/simple/` })).toBe('status 200');
      expect(await call(session, 'fetch', { url: `https://${REFUSED}/` })).toMatch(/^failed/);
      await waitFor(async () => session.stderr().includes(`blocked ${PKG} → ${REFUSED}:443 (not in its egress list; allow with: mcpbox allow ${PKG} ${REFUSED})`), 10_000, 'the blocked note');
    } finally {
      await session.close();
    }
  });

  it('mcpbox allow adds the host; mcpbox egress shows it; the next session reaches it', async () => {
    const allowed = await mcpbox(['allow', PKG, REFUSED], { env });
    expect(allowed.exitCode, allowed.stderr).toBe(0);
    const listed = await mcpbox(['egress', PKG], { env });
    expect(listed.stdout.split('\n')[0]).toBe(`${PKG}: ${[ALLOWED, REFUSED].sort().join(', ')}`);
    const session = await connect(args(), env);
    try {
      expect(await call(session, 'fetch', { url: `https://${REFUSED}/` })).toBe('status 200');
    } finally {
      await session.close();
    }
  });

  it('mcpbox egress --log lists what was allowed and refused, with times', async () => {
    const log = await mcpbox(['egress', '--log', PKG], { env });
    expect(log.stdout).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\S+  ${PKG}  allowed  ${ALLOWED}$`, 'm'));
    expect(log.stdout).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\S+  ${PKG}  refused  ${REFUSED}  \\(not in its egress list\\)$`, 'm'));
  });
});

describe.skipIf(!engine)('the modes', () => {
  const { env } = setup();
  let registryAddress: string;
  beforeAll(async () => {
    registryAddress = (await lookup(ALLOWED)).address;
    // npx keeps the package in its cache volume: a run with no network can take it from there (--offline).
    await mcpbox(['run', '--egress', 'open', 'npx', '-p', `${PKG}@7.0.0`, '-c', 'true'], { env });
  });

  it('an allowlist: its host only; no name resolves inside; a direct connection goes nowhere', async () => {
    const session = await connect(args('--egress', ALLOWED), env);
    try {
      expect(await call(session, 'fetch', { url: `https://${ALLOWED}/simple/` })).toBe('status 200');
      expect(await call(session, 'fetch', { url: `https://${REFUSED}/` })).toMatch(/^failed/);
      expect(await call(session, 'resolve', { name: ALLOWED })).toMatch(/^failed: (EAI_AGAIN|ENOTFOUND)/);
      expect(await call(session, 'connect', { host: registryAddress, port: 443 })).toMatch(/^failed: (ENETUNREACH|EHOSTUNREACH|ECONNREFUSED)/);
      const [container] = await containersOf(session.pid);
      expect((await docker(['inspect', '--format', '{{.HostConfig.NetworkMode}}', container!])).stdout).toBe('none');
    } finally {
      await session.close();
    }
  });

  it('rebinding: an allowed name that resolves to loopback is refused; a listener on this host\'s 127.0.0.1 is never reached', async () => {
    const { createServer } = await import('node:http');
    let hits = 0;
    const listener = createServer((_req, res) => (hits++, res.end('reached'))).listen(0, '127.0.0.1');
    await new Promise((resolve) => listener.once('listening', resolve));
    const port = (listener.address() as { port: number }).port;
    // ip6-localhost (Docker's /etc/hosts: ::1) isn't in the server's NO_PROXY, so it goes to the proxy.
    const session = await connect(args('--egress', `ip6-localhost:${port},localhost:${port}`), env);
    try {
      expect(await call(session, 'fetch', { url: `http://ip6-localhost:${port}/` })).toMatch(/^(failed|status 403)/);
      expect(await call(session, 'fetch', { url: `http://localhost:${port}/` })).toMatch(/^failed/);
      await waitFor(async () => /blocked is-number → ip6-localhost:\d+ \(ip6-localhost resolves to ::1: loopback/.test(session.stderr()), 10_000, 'the blocked note');
    } finally {
      await session.close();
      listener.close();
    }
    expect(hits).toBe(0);
  });

  it('none: nothing at all, not even the proxy', async () => {
    const session = await connect(['--egress', 'none', '-e', 'NET_SERVER', 'npx', '--offline', '-p', `${PKG}@7.0.0`, '-c', 'node -e "$NET_SERVER"'], env);
    try {
      expect(await call(session, 'fetch', { url: `https://${ALLOWED}/simple/` })).toMatch(/^failed/);
      expect(await call(session, 'resolve', { name: ALLOWED })).toMatch(/^failed/);
      const [container] = await containersOf(session.pid);
      const inspected = JSON.parse((await docker(['inspect', container!])).stdout)[0];
      expect(inspected.HostConfig.NetworkMode).toBe('none');
      expect(JSON.stringify(inspected.Mounts)).not.toContain('/mcpbox/egress');
    } finally {
      await session.close();
    }
  });

  it('open: the network as it was (an explicit choice)', async () => {
    const session = await connect(args('--egress', 'open'), env);
    try {
      expect(await call(session, 'fetch', { url: `https://${REFUSED}/` })).toBe('status 200');
      expect(await call(session, 'resolve', { name: ALLOWED })).toMatch(/^resolved /);
    } finally {
      await session.close();
    }
  });
});

describe.skipIf(!engine)('installs reach their registries only', () => {
  const { state, env } = setup();
  afterAll(async () => {
    await docker(['volume', 'rm', '--force', ...(await docker(['volume', 'ls', '-q', '--filter', 'name=mcpbox-npx-puppeteer'])).stdout.split('\n').filter(Boolean)]);
  });

  it('a postinstall that reaches another host fails, naming the host; nothing is locked or left', async () => {
    // puppeteer's postinstall downloads a browser (honouring the proxy variables): the proxy refuses
    // those hosts before connecting anywhere.
    const result = await mcpbox(['run', 'npx', '-y', 'puppeteer@23.11.1', '--version'], { env });
    expect(result.exitCode).toBe(75);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/could not install puppeteer@23\.11\.1 \(exit 1\): it tried to reach (storage\.googleapis\.com:443|googlechromelabs\.github\.io:443).*, which an install may not \(only its registries\) \(hint: .*installEgress/);
    expect(() => readFileSync(join(state, 'mcpbox', 'mcpbox.lock'))).toThrow();
    expect(await containersOf(result.pid)).toEqual([]);
  });
});

describe.skipIf(!engine)('serve: the same policy per server', () => {
  it('a served server reaches its allowed host only; the refusal is in serve\'s log; shutdown leaves no proxy behind', async () => {
    const { chmodSync, mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { execa } = await import('execa');
    const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
    const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
    const { MCPBOX, WORKDIR } = await import('./helpers.js');
    const dir = mkdtempSync(join(tmpdir(), 'mcpbox-serve-egress-'));
    const token = `tok-${'5a5a5a5a'.repeat(4)}`;
    const servers = join(dir, 'servers.json');
    writeFileSync(servers, JSON.stringify({ authTokens: [token], mcpServers: { net: { command: 'npx', args: ['-p', `${PKG}@7.0.0`, '-c', 'node -e "$NET_SERVER"'], env: { NET_SERVER } } } }));
    chmodSync(servers, 0o600);
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ packages: { [PKG]: { egress: [ALLOWED] } } }));
    const { env } = setup();
    // Proxies of other state dirs (earlier tests') leave on their own idle time: this serve's is the new one.
    const before = new Set(await proxies());
    let mine: string[] = [];
    const child = execa(process.execPath, [MCPBOX, 'serve', '--config', servers, '--port', '0', '--log-format', 'json'], { cwd: WORKDIR, env: { ...env, MCPBOX_CONFIG: config }, reject: false, stdin: 'ignore', buffer: false });
    let logs = '';
    child.stderr!.on('data', (chunk: Buffer) => (logs += chunk.toString()));
    const port = await waitFor(async () => Number(/"event":"listening"[^\n]*"port":(\d+)/.exec(logs)?.[1]) || undefined, 300_000, 'serve to listen');
    const client = new Client({ name: 'e2e', version: '0' });
    const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/servers/net/mcp`), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
    await client.connect(transport);
    try {
      expect(textOf(await client.callTool({ name: 'fetch', arguments: { url: `https://${ALLOWED}/simple/` } }))).toBe('status 200');
      expect(textOf(await client.callTool({ name: 'fetch', arguments: { url: `https://${REFUSED}/` } }))).toMatch(/^failed/);
      await waitFor(async () => logs.includes(`blocked ${PKG} → ${REFUSED}:443`), 10_000, 'the refusal in serve\'s log');
      mine = (await proxies()).filter((name) => !before.has(name));
      expect(mine).toHaveLength(1);
    } finally {
      await transport.terminateSession().catch(() => {});
      await client.close();
      child.kill('SIGTERM');
      await child;
    }
    // Standbys other tests left keep their own proxies up: no server may run for this one.
    await removeStandbys();
    await waitFor(async () => !(await proxies()).includes(mine[0]!), 30_000, 'the proxy to leave');
  });
});

describe.skipIf(!engine)('nothing of egress is left behind', () => {
  // Standbys other tests left keep their proxies up: these tests are about no server running.
  // Proxies of other state dirs (earlier tests') leave on their own idle time: each test follows its own.
  let before = new Set<string>();
  const mine = async () => (await proxies()).filter((name) => !before.has(name));
  beforeEach(async () => {
    await removeStandbys();
    before = new Set(await proxies());
  });

  it('prune removes the proxy at once when no server runs', async () => {
    const { env } = setup();
    const session = await connect(args('--egress', ALLOWED), env);
    expect(await call(session, 'fetch', { url: `https://${ALLOWED}/simple/` })).toBe('status 200');
    await session.close();
    const [running] = await mine();
    if (running === undefined) return; // it left by itself already
    const pruned = await mcpbox(['prune'], { env });
    expect(pruned.stdout).toContain(`removed ${running}`);
    expect(await proxies()).not.toContain(running);
  });

  it('a server quiet for longer than the proxy idle time still reaches its hosts: the proxy stays while a server runs', async () => {
    // A locked server started directly (no npm around it holding a connection): uvx mcp-server-fetch.
    const { env } = setup();
    // No standby left after it: the next test is about no server running.
    const session = await connect(['--no-standby', '--egress', ALLOWED, 'uvx', 'mcp-server-fetch'], env);
    try {
      await new Promise((resolve) => setTimeout(resolve, 7000)); // the idle time here is 3 s
      const page = await call(session, 'fetch', { url: `https://${ALLOWED}/simple/mcp-server-fetch/`, max_length: 300, raw: true });
      expect(page).toContain('Links for mcp-server-fetch');
    } finally {
      await session.close();
    }
  });

  it('the proxy leaves once no server needs it, also after mcpbox is SIGKILLed mid-session', async () => {
    const { env } = setup();
    const session = await connect(args('--egress', ALLOWED), env);
    expect(await call(session, 'fetch', { url: `https://${ALLOWED}/simple/` })).toBe('status 200');
    const [running] = await mine();
    expect(running).toBeDefined();
    process.kill(session.pid, 'SIGKILL');
    await waitFor(async () => (await containersOf(session.pid)).length === 0, 10_000, 'the watchdog to remove the server');
    await waitFor(async () => !(await proxies()).includes(running!), 30_000, 'the proxy to leave when idle');
    await session.close().catch(() => {});
    const networks = (await docker(['network', 'ls', '--filter', 'label=dev.mcpbox.managed=true', '--format', '{{.Name}}'])).stdout.trim();
    expect(networks).toBe('');
  });
});
