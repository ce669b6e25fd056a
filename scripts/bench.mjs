#!/usr/bin/env node
// mcpbox benchmark: `npm run bench` (after `npm run build`, with a Docker engine).
//
// Side by side, on the same server, in one run:
//   host npx                 npx -y <pkg> straight on the host (the thing mcpbox replaces; npx only,
//                            in a throwaway HOME and npm cache)
//   docker + npx             docker run <mcpbox's flags> … npx -y <pkg>, warm npm cache
//   docker + installed       docker run <mcpbox's flags> … <installed entry point>: the floor
//   mcpbox cold              mcpbox run, lock entry and cache volume removed first
//   mcpbox warm, standby     mcpbox run, locked and installed, its standby waiting (the last session
//                            left it; the bench waits for it, untimed): attached, not started
//   mcpbox warm              the same with --no-standby: a container started for the session; the
//                            client's messages through the tools relay (pins, audit)
//   mcpbox warm, --no-inspect     the same on the raw path: the docker CLI holds the client's stdio
//   mcpbox warm, egress proxied   the same with --egress <a registry>: through the egress proxy
// For each: time to the initialize response, ping round trip p50/p99, pipelined ping throughput,
// 1 MB echo round trip (servers with an echo tool), stdin close → exit, and mcpbox's own RSS.
// Every figure is the median over N sessions (the 1 MB echo: the last one's); RSS is the maximum.
// Ratios are against "docker + installed". Then `mcpbox serve`: a Streamable HTTP session's
// initialize (POST to its answer) with serve's standby waiting, and with standby off.
// Options: --runs N (sessions per row, default 7), --only npx|uvx|serve, --json FILE (raw numbers).
import { spawn, execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir, cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { trackLeftovers } from './leftovers.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const MCPBOX = join(ROOT, 'bin', 'mcpbox.js');
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i === -1 ? fallback : args[i + 1];
};
const RUNS = Number(option('--runs', 7));
const ONLY = option('--only', undefined);
const JSON_OUT = option('--json', undefined);

const state = mkdtempSync(join(tmpdir(), 'mcpbox-bench-state-'));
// Its fresh state dir makes the bench's data and egress volumes its own: removed at the end.
const cleanUp = trackLeftovers();
const config = join(state, 'config.json');
writeFileSync(config, '{}\n');
const env = { ...process.env, MCPBOX_CONFIG: config, XDG_STATE_HOME: state };
const INIT = { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'mcpbox-bench', version: '1' } };

// `registry`: a host for the egress-enforced row (the server's traffic through mcpbox's egress proxy).
const SERVERS = [
  { runner: 'npx', label: '@modelcontextprotocol/server-everything', args: ['-y', '@modelcontextprotocol/server-everything'], echo: 'echo', registry: 'registry.npmjs.org' },
  { runner: 'uvx', label: 'mcp-server-time', args: ['mcp-server-time'], echo: undefined, registry: 'pypi.org' },
];

/** A minimal JSON-RPC client over a child's stdio: no SDK in the measured path. */
class Peer {
  constructor(command, argv, options = {}) {
    this.t0 = performance.now();
    this.child = spawn(command, argv, { stdio: ['pipe', 'pipe', 'ignore'], env: options.env ?? env, cwd: options.cwd ?? tmpdir() });
    this.pending = new Map();
    this.buffer = '';
    this.nextId = 1;
    this.exited = new Promise((resolve) => this.child.on('exit', () => resolve(performance.now())));
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (chunk) => {
      this.buffer += chunk;
      let newline;
      while ((newline = this.buffer.indexOf('\n')) !== -1) {
        const line = this.buffer.slice(0, newline);
        this.buffer = this.buffer.slice(newline + 1);
        if (!line.trim()) continue;
        const message = JSON.parse(line);
        const waiter = this.pending.get(message.id);
        if (waiter) {
          this.pending.delete(message.id);
          waiter(message);
        }
      }
    });
  }
  request(method, params = {}) {
    const id = this.nextId++;
    const reply = new Promise((resolve) => this.pending.set(id, resolve));
    this.child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
    return reply;
  }
  async initialize() {
    const reply = await Promise.race([this.request('initialize', INIT), this.exited.then(() => { throw new Error('exited before answering initialize'); })]);
    const tti = performance.now() - this.t0;
    this.child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })}\n`);
    return { tti, reply };
  }
  async close() {
    const t = performance.now();
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    const exitedAt = await this.exited;
    clearTimeout(timer);
    return exitedAt - t;
  }
}

const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};
const median = (values) => percentile(values, 50);

function rssOf(pid) {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
  } catch {
    return undefined;
  }
}

async function session(make, { echo, measureRss, full }) {
  const peer = make();
  const { tti } = await peer.initialize();
  let rss = 0;
  const sample = () => {
    if (measureRss) rss = Math.max(rss, rssOf(peer.child.pid) ?? 0);
  };
  const rtts = [];
  for (let i = 0; i < 300; i++) {
    const t = performance.now();
    await peer.request('ping');
    rtts.push(performance.now() - t);
    if (i % 50 === 0) sample();
  }
  const n = 1000;
  const t = performance.now();
  await Promise.all(Array.from({ length: n }, () => peer.request('ping')));
  const throughput = n / ((performance.now() - t) / 1000);
  sample();
  let mb;
  if (echo && full) {
    const message = 'x'.repeat(1024 * 1024);
    const times = [];
    for (let i = 0; i < 5; i++) {
      const t1 = performance.now();
      const reply = await peer.request('tools/call', { name: echo, arguments: { message } });
      times.push(performance.now() - t1);
      if (!JSON.stringify(reply).includes(message.slice(0, 1000))) throw new Error('1 MB echo came back wrong');
    }
    mb = median(times);
    sample();
  }
  const closeToExit = await peer.close();
  return { tti, p50: percentile(rtts, 50), p99: percentile(rtts, 99), throughput, mb, closeToExit, rss: measureRss ? rss : undefined };
}

function docker(argv) {
  return execFileSync('docker', argv, { encoding: 'utf8', env }).trim();
}

/** mcpbox's own flags for this server, from --dry-run: the fair baseline for the raw docker rows. */
function mcpboxArgv(server, extra = []) {
  const line = execFileSync(process.execPath, [MCPBOX, 'run', '--dry-run', ...extra, server.runner, ...server.args], { encoding: 'utf8', env, cwd: tmpdir(), stdio: ['ignore', 'pipe', 'ignore'] });
  return JSON.parse(execFileSync(process.execPath, ['-e', `import('shlex').then(({split})=>console.log(JSON.stringify(split(process.argv[1]))))`, line.trim()], { encoding: 'utf8', cwd: ROOT }));
}

function installRecord(server) {
  const installs = JSON.parse(readFileSync(join(state, 'mcpbox', 'installs.json'), 'utf8'));
  const key = Object.keys(installs).find((k) => k.startsWith(`${server.runner} `) && k.includes(server.label));
  const lock = JSON.parse(readFileSync(join(state, 'mcpbox', 'mcpbox.lock'), 'utf8'));
  const entry = Object.entries(lock.servers).find(([k]) => k.startsWith(`${server.runner} `) && k.includes(server.label))[1];
  return { ...installs[key], executable: entry.executable };
}

const standbyNames = () => docker(['ps', '--filter', 'label=dev.mcpbox.role=standby', '--format', '{{.Names}}']).split('\n').filter((n) => n.startsWith('mcpbox-standby-'));
const removeStandbys = () => standbyNames().length > 0 && docker(['rm', '--force', ...standbyNames()]);

/** Until a standby runs (the last session's end leaves one), and a moment more for its server to load. */
async function standbyReady() {
  for (let i = 0; i < 300 && standbyNames().length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 100));
  await new Promise((resolve) => setTimeout(resolve, 2500));
}

/** `runs` full sessions; each figure is the median over them (the 1 MB echo: the last session). */
async function measure(label, make, options, runs = RUNS) {
  process.stderr.write(`  ${label} …`);
  const sessions = [];
  for (let i = 0; i < runs; i++) {
    await options.before?.();
    sessions.push(await session(make, { ...options, full: i === runs - 1 }));
  }
  const of = (key) => median(sessions.map((s) => s[key]).filter((v) => v !== undefined));
  const result = {
    tti: of('tti'),
    p50: of('p50'),
    p99: of('p99'),
    throughput: of('throughput'),
    mb: sessions.at(-1).mb,
    closeToExit: of('closeToExit'),
    rss: options.measureRss ? Math.max(...sessions.map((s) => s.rss ?? 0)) : undefined,
    runs,
  };
  process.stderr.write(` ${result.tti.toFixed(0)} ms\n`);
  return result;
}

const results = {};
for (const server of SERVERS.filter((s) => !ONLY || s.runner === ONLY)) {
  process.stderr.write(`\n${server.runner} ${server.label}\n`);
  const rows = {};
  const echo = server.echo;
  const mcpbox = () => new Peer(process.execPath, [MCPBOX, 'run', server.runner, ...server.args]);

  // Cold: first time ever, in a fresh state dir with the server's cache volume removed.
  const argvForVolume = mcpboxArgv(server);
  const volume = argvForVolume.find((a) => a.startsWith('type=volume,'))?.match(/source=([^,]+)/)?.[1];
  if (volume) docker(['volume', 'rm', '--force', volume]);
  rmSync(join(state, 'mcpbox'), { recursive: true, force: true });
  rows['mcpbox cold'] = await measure('mcpbox cold', mcpbox, { echo, measureRss: true }, 1);
  // Each session first waits (untimed) for the standby the last one left, and for its server to load.
  rows['mcpbox warm, standby'] = await measure('mcpbox warm, standby', mcpbox, { echo, measureRss: true, before: standbyReady });
  removeStandbys();
  const fresh = () => new Peer(process.execPath, [MCPBOX, 'run', '--no-standby', server.runner, ...server.args]);
  rows['mcpbox warm'] = await measure('mcpbox warm', fresh, { echo, measureRss: true });
  const raw = () => new Peer(process.execPath, [MCPBOX, 'run', '--no-standby', '--no-inspect', server.runner, ...server.args]);
  rows['mcpbox warm, --no-inspect'] = await measure('mcpbox warm, --no-inspect', raw, { echo, measureRss: true });
  // The same warm start with its egress through the proxy (these servers' default is none): the
  // forwarder in the container, the proxy alongside (already running after the first session).
  const proxied = () => new Peer(process.execPath, [MCPBOX, 'run', '--no-standby', '--egress', server.registry, server.runner, ...server.args]);
  rows['mcpbox warm, egress proxied'] = await measure('mcpbox warm, egress proxied', proxied, { echo, measureRss: true });

  // The raw rows use exactly mcpbox's flags (from its dry run), minus the launcher.
  const warmArgv = mcpboxArgv(server);
  const [bin, ...rest] = warmArgv;
  const image = rest[rest.indexOf('--entrypoint') + 2];
  const flags = rest.slice(0, rest.indexOf('--entrypoint')).filter((a, i, all) => a !== '--name' && all[i - 1] !== '--name');
  const record = installRecord(server);
  rows['docker + installed'] = await measure(
    'docker + installed',
    () => new Peer(bin, [...flags.map((f) => f.replace(/,readonly$/, ',readonly')), '--env', `PATH=${record.dir}/${server.runner === 'npx' ? 'node_modules/.bin' : 'venv/bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`, '--entrypoint', record.executable, image]),
    { echo },
  );
  // The runner itself resolving on every start: the flags of an unlocked run (its cache volume, warm).
  const unlocked = mcpboxArgv(server, ['--no-lock', '--egress', 'open']).slice(1);
  const rwFlags = unlocked.slice(0, unlocked.indexOf('--entrypoint')).filter((a, i, all) => a !== '--name' && all[i - 1] !== '--name');
  rows[`docker + ${server.runner}`] = await measure(`docker + ${server.runner}`, () => new Peer(bin, [...rwFlags, '--entrypoint', server.runner, image, ...server.args]), { echo });

  if (server.runner === 'npx') {
    const home = mkdtempSync(join(tmpdir(), 'mcpbox-bench-host-'));
    const hostEnv = { ...process.env, HOME: home, npm_config_cache: join(home, '.npm'), npm_config_update_notifier: 'false' };
    // One untimed run fills that cache: the host row is warm, like the others.
    const warmup = new Peer('npx', server.args, { env: hostEnv, cwd: home });
    await warmup.initialize();
    await warmup.close();
    rows['host npx'] = await measure('host npx (on the host!)', () => new Peer('npx', server.args, { env: hostEnv, cwd: home }), { echo });
    rmSync(home, { recursive: true, force: true });
  }
  results[`${server.runner} ${server.label}`] = rows;
  // The sessions above left standbys for a state dir that goes with the bench.
  removeStandbys();
}

/**
 * `mcpbox serve` with the npx server: `runs` sessions' initialize over Streamable HTTP (the POST to
 * its answer), each session ended before the next. With its standby, each first waits (untimed)
 * for the one the last session left, and for its server to load.
 */
async function serveSessions(standby, runs = RUNS) {
  const token = `bench-${'0123456789abcdef'.repeat(2)}`;
  const servers = join(state, 'servers.json');
  writeFileSync(servers, JSON.stringify({ authTokens: [token], mcpServers: { everything: { command: 'npx', args: SERVERS[0].args } } }));
  chmodSync(servers, 0o600);
  const serveConfig = join(state, `serve-${standby ? 'standby' : 'fresh'}.json`);
  writeFileSync(serveConfig, JSON.stringify({ standby }));
  const child = spawn(process.execPath, [MCPBOX, 'serve', '--config', servers, '--port', '0', '--log-format', 'json'], { env: { ...env, MCPBOX_CONFIG: serveConfig }, stdio: ['ignore', 'ignore', 'pipe'] });
  let logs = '';
  child.stderr.on('data', (chunk) => (logs += chunk));
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  let port;
  for (let i = 0; i < 3000 && !port; i++, await sleep(100)) port = Number(/"event":"listening"[^\n]*"port":(\d+)/.exec(logs)?.[1]) || undefined;
  if (!port) throw new Error(`serve did not listen:\n${logs}`);
  const url = `http://127.0.0.1:${port}/servers/everything/mcp`;
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  const waiting = () => docker(['ps', '--filter', 'label=dev.mcpbox.role=standby', '--filter', `label=dev.mcpbox.owner-pid=${child.pid}`, '--format', '{{.Names}}']).split('\n').filter((n) => n && !n.includes('-standby-by-'));
  const times = [];
  try {
    for (let i = 0; i < runs; i++) {
      if (standby) {
        for (let j = 0; j < 300 && waiting().length === 0; j++) await sleep(100);
        await sleep(2500);
      }
      const t0 = performance.now();
      const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: INIT }) });
      const body = await response.text();
      times.push(performance.now() - t0);
      if (!body.includes('serverInfo')) throw new Error(`no initialize answer: ${response.status} ${body.slice(0, 200)}`);
      await fetch(url, { method: 'DELETE', headers: { ...headers, 'mcp-session-id': response.headers.get('mcp-session-id') } });
    }
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.on('exit', resolve));
  }
  return { tti: median(times), runs };
}

if (!ONLY || ONLY === 'serve') {
  process.stderr.write('\nmcpbox serve, @modelcontextprotocol/server-everything\n');
  const rows = {};
  for (const [label, standby] of [['serve, standby', true], ['serve, standby off', false]]) {
    process.stderr.write(`  ${label} …`);
    rows[label] = await serveSessions(standby);
    process.stderr.write(` ${rows[label].tti.toFixed(0)} ms\n`);
  }
  results.serve = rows;
}

const fmt = (v, digits = 0) => (v === undefined ? '—' : v.toFixed(digits));
const floor = (rows) => rows['docker + installed'];
const lines = [];
lines.push(`mcpbox benchmark, ${new Date().toISOString().slice(0, 10)}, ${cpus().length} CPUs (${cpus()[0]?.model.trim()}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, docker ${docker(['version', '--format', '{{.Server.Version}}'])}, node ${process.version}`);
lines.push(`medians of ${RUNS} sessions per row (cold: 1); a session: initialize, 300 sequential pings, 1000 pipelined, then (npx) five 1 MB echoes, then stdin closed`);
for (const [name, rows] of Object.entries(results).filter(([name]) => name !== 'serve')) {
  lines.push('', `${name}`, '');
  lines.push('| | initialize ms | × floor | ping p50 ms | ping p99 ms | p50 × floor | pipelined ping/s | 1 MB echo ms | stdin close → exit ms | mcpbox RSS MB |');
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  const base = floor(rows);
  for (const label of ['host npx', `docker + ${name.split(' ')[0]}`, 'docker + installed', 'mcpbox cold', 'mcpbox warm, standby', 'mcpbox warm', 'mcpbox warm, --no-inspect', 'mcpbox warm, egress proxied']) {
    const r = rows[label];
    if (!r) continue;
    lines.push(`| ${label} | ${fmt(r.tti)} | ${fmt(r.tti / base.tti, 2)} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${fmt(r.p50 / base.p50, 2)} | ${fmt(r.throughput)} | ${fmt(r.mb)} | ${fmt(r.closeToExit)} | ${fmt(r.rss)} |`);
  }
  const [relayed, direct] = [rows['mcpbox warm'], rows['mcpbox warm, --no-inspect']];
  const delta = (a, b) => (a === undefined || b === undefined ? '—' : `${a >= b ? '+' : ''}${fmt(((a - b) / b) * 100, 1)}%`);
  const standby = rows['mcpbox warm, standby'];
  if (standby) lines.push('', `standby: initialize ${fmt(standby.tti / base.tti, 2)}× a raw docker run of the installed server (goal ≤ 0.5×), ${fmt(standby.tti / relayed.tti, 2)}× a warm start without it`);
  if (relayed && direct) lines.push('', `tools relay against --no-inspect: initialize ${delta(relayed.tti, direct.tti)}, ping p50 ${delta(relayed.p50, direct.p50)}, 1 MB echo ${delta(relayed.mb, direct.mb)}`);
}
if (results.serve) {
  const [withStandby, without] = [results.serve['serve, standby'], results.serve['serve, standby off']];
  lines.push('', 'mcpbox serve, a Streamable HTTP session of @modelcontextprotocol/server-everything', '');
  lines.push('| | initialize ms (POST to answer) |', '| --- | ---: |');
  lines.push(`| serve, standby | ${fmt(withStandby.tti)} |`, `| serve, standby off | ${fmt(without.tti)} |`);
  lines.push('', `serve's standby: a session's initialize in ${fmt(withStandby.tti / without.tti, 2)}× the time without it`);
}
// hyperfine (Debian's package) times the CLI's own start; without it that line is left out.
const hyperfine = (() => {
  try {
    return execFileSync('hyperfine', ['--version'], { encoding: 'utf8' }).length > 0;
  } catch {
    process.stderr.write('no hyperfine: the start-up line is left out (apt install hyperfine)\n');
    return false;
  }
})();
if (hyperfine) {
  const out = join(state, 'startup.json');
  execFileSync('hyperfine', ['-N', '-w', '5', '-r', '40', '--export-json', out, `${process.execPath} -e ''`, `${process.execPath} ${MCPBOX} --version`], { stdio: 'ignore' });
  const [bare, cli] = JSON.parse(readFileSync(out, 'utf8')).results;
  lines.push('', `start-up: node -e '' ${fmt(bare.mean * 1000)} ms, mcpbox --version ${fmt(cli.mean * 1000)} ms (+${fmt((cli.mean - bare.mean) * 1000)} ms)`);
  results.startup = { bare: bare.mean * 1000, cli: cli.mean * 1000 };
}
process.stdout.write(`${lines.join('\n')}\n`);
if (JSON_OUT) writeFileSync(JSON_OUT, `${JSON.stringify(results, null, 2)}\n`);
cleanUp();
rmSync(state, { recursive: true, force: true });
