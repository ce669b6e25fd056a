#!/usr/bin/env node
// mcpbox compatibility suite: `npm run compat` (after `npm run build`, with an engine).
//
// Popular, real MCP servers from the npm registry and PyPI, each run twice through the MCP SDK's
// client: on the host (npx/uvx directly, in a throwaway HOME and cache: how a client runs it today)
// and under `mcpbox run` (a fresh state dir, the same config line). For each: initialize, list its
// tools, one harmless tool call that needs no outside network (servers whose every tool needs an
// outside host are only listed: this machine reaches package registries only), and for servers that
// keep state, the state read back after a restart. Prints a Markdown table; exits 1 when a server
// that works on the host does not work under mcpbox.
//   --subset        one server of each kind (what CI runs)
//   --only NAME     servers whose name contains NAME
//   --mcpbox-only   skip the host runs (marks them "—")
//   --json FILE     write the results
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { trackLeftovers } from './leftovers.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const MCPBOX = join(ROOT, 'bin', 'mcpbox.js');
const argv = process.argv.slice(2);
const option = (name) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
const SUBSET = argv.includes('--subset');
const ONLY = option('--only');
const MCPBOX_ONLY = argv.includes('--mcpbox-only');
const JSON_OUT = option('--json');

// Every run gets a fresh state dir: what its sessions leave (data and egress volumes, proxies,
// standbys) is removed at the end.
const cleanUp = trackLeftovers();

const work = mkdtempSync(join(tmpdir(), 'mcpbox-compat-'));
const repo = join(work, 'repo');
mkdirSync(repo);
execFileSync('git', ['init', '-q', repo]);
execFileSync('git', ['-C', repo, '-c', 'user.name=compat', '-c', 'user.email=compat@example.invalid', 'commit', '-q', '--allow-empty', '-m', 'first']);
const files = join(work, 'files');
mkdirSync(files);
writeFileSync(join(files, 'hello.txt'), 'hello from the host\n');
const dbDir = join(work, 'db');
mkdirSync(dbDir);
// As root, the paths a server writes belong to a user (mcpbox runs it as their owner, never as root).
// (The repository stays root's: git on the host, as root, refuses another user's repository; read-only use needs no owner.)
if (process.getuid?.() === 0) execFileSync('chown', ['-R', '1000:1000', files, dbDir]);

const text = (result) => (result?.content ?? []).map((c) => c.text ?? '').join('\n');
const token = 'dummy-token-for-listing-only';
const PAGE = 'data:text/html,<title>compat</title><h1>hello from compat</h1>';

/**
 * kind: what the suite shows it covers. call: [tool, args, expected substring]. state: [write call,
 * read call, expected substring], the read made in a second session. sessionEnv: names whose
 * values are given (dummy credentials).
 */
const SERVERS = [
  { name: 'server-everything', kind: 'reference', subset: true, runner: 'npx', args: ['-y', '@modelcontextprotocol/server-everything'], call: ['echo', { message: 'compat' }, 'compat'] },
  { name: 'server-filesystem', kind: 'reference', runner: 'npx', args: ['-y', '@modelcontextprotocol/server-filesystem', files], call: ['read_text_file', { path: join(files, 'hello.txt') }, 'hello from the host'] },
  { name: 'server-sequential-thinking', kind: 'reference', runner: 'npx', args: ['-y', '@modelcontextprotocol/server-sequential-thinking'], call: ['sequentialthinking', { thought: 'one', nextThoughtNeeded: false, thoughtNumber: 1, totalThoughts: 1 }, 'thoughtNumber'] },
  { name: 'mcp-server-time', kind: 'reference', runner: 'uvx', args: ['mcp-server-time'], call: ['get_current_time', { timezone: 'UTC' }, 'UTC'] },
  { name: 'server-memory', kind: 'memory / knowledge base', subset: true, runner: 'npx', args: ['-y', '@modelcontextprotocol/server-memory'], state: [['create_entities', { entities: [{ name: 'compat-kept', entityType: 'test', observations: ['kept'] }] }], ['read_graph', {}], 'compat-kept'] },
  { name: 'basic-memory', kind: 'memory / knowledge base', runner: 'uvx', args: ['basic-memory', 'mcp'], state: [['write_note', { title: 'compat kept', content: 'kept across restarts', directory: 'compat' }], ['read_note', { identifier: 'compat kept' }], 'kept across restarts'] },
  { name: 'mcp-server-git', kind: 'git', subset: true, runner: 'uvx', args: ['mcp-server-git', '--repository', repo], call: ['git_status', { repo_path: repo }, 'branch'] },
  { name: 'mcp-server-sqlite', kind: 'sqlite', subset: true, runner: 'uvx', args: ['--with', 'mcp<2', 'mcp-server-sqlite', '--db-path', join(dbDir, 'compat.db')], state: [['create_table', { query: 'CREATE TABLE IF NOT EXISTS kept (x TEXT)' }], ['list_tables', {}], 'kept'] },
  { name: 'server-github (dummy token)', kind: 'API client', subset: true, runner: 'npx', args: ['-y', '@modelcontextprotocol/server-github'], env: { GITHUB_PERSONAL_ACCESS_TOKEN: token } },
  { name: 'notion-mcp-server (dummy token)', kind: 'API client', runner: 'npx', args: ['-y', '@notionhq/notion-mcp-server'], env: { NOTION_TOKEN: token } },
  { name: 'server-brave-search (dummy key)', kind: 'API client', runner: 'npx', args: ['-y', '@modelcontextprotocol/server-brave-search'], env: { BRAVE_API_KEY: token } },
  { name: 'server-slack (dummy token)', kind: 'API client', runner: 'npx', args: ['-y', '@modelcontextprotocol/server-slack'], env: { SLACK_BOT_TOKEN: token, SLACK_TEAM_ID: 'T0' } },
  { name: 'context7-mcp', kind: 'documentation / search', subset: true, runner: 'npx', args: ['-y', '@upstash/context7-mcp'] },
  { name: 'mcp-server-fetch', kind: 'documentation / search', runner: 'uvx', args: ['mcp-server-fetch'] },
  { name: 'desktop-commander', kind: 'settings in HOME', runner: 'npx', args: ['-y', '@wonderwhy-er/desktop-commander'], state: [['set_config_value', { key: 'fileReadLineLimit', value: 777 }], ['get_config', {}], '777'] },
  // A page that needs no network: the browser really starts, renders it, and the snapshot shows it.
  { name: '@playwright/mcp', kind: 'browser automation', subset: true, runner: 'npx', args: ['-y', '@playwright/mcp', '--headless'], call: ['browser_navigate', { url: PAGE }, 'hello from compat'] },
  { name: 'chrome-devtools-mcp', kind: 'browser automation', runner: 'npx', args: ['-y', 'chrome-devtools-mcp', '--headless'], call: ['new_page', { url: PAGE }, 'hello'] },
];

const chosen = SERVERS.filter((s) => (!SUBSET || s.subset) && (!ONLY || s.name.includes(ONLY)));

async function session(where, server, home) {
  const baseEnv = { PATH: process.env.PATH, ...Object.fromEntries(['NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY', 'https_proxy', 'http_proxy', 'no_proxy'].filter((k) => process.env[k]).map((k) => [k, process.env[k]])) };
  const env = where === 'host'
    ? { ...baseEnv, ...server.env, HOME: home, npm_config_cache: join(home, '.npm'), UV_CACHE_DIR: join(home, '.uv-cache'), UV_TOOL_DIR: join(home, '.uv-tools'), UV_PYTHON_INSTALL_DIR: join(home, '.uv-python') }
    : { ...process.env, ...server.env, MCPBOX_CONFIG: join(work, 'empty.json'), XDG_STATE_HOME: home };
  const forwarded = Object.keys(server.env ?? {}).flatMap((k) => ['-e', k]);
  const command = where === 'host' ? server.runner : process.execPath;
  const args = where === 'host' ? server.args : [MCPBOX, 'run', ...forwarded, server.runner, ...server.args];
  let stderr = '';
  const transport = new StdioClientTransport({ command, args, env, stderr: 'pipe', cwd: work });
  transport.stderr?.on('data', (chunk) => (stderr += chunk.toString()));
  const client = new Client({ name: 'mcpbox-compat', version: '1' });
  try {
    await client.connect(transport, { timeout: 300_000 });
  } catch (error) {
    await transport.close().catch(() => {});
    throw Object.assign(error, { stderr });
  }
  return { client, stderr: () => stderr, close: () => client.close().catch(() => {}) };
}

async function callExpect(client, [tool, args, expected]) {
  const result = await client.callTool({ name: tool, arguments: args }, undefined, { timeout: 60_000 });
  const body = text(result);
  if (result.isError || (expected && !body.includes(expected))) throw new Error(`${tool}: ${body.slice(0, 200)}`);
}

/** One server in one place: 'works', 'lists' (tools listed; nothing callable offline), or the failure. */
async function check(where, server) {
  const home = mkdtempSync(join(work, `${where}-`));
  const first = await session(where, server, home).catch((error) => ({ error }));
  if (first.error) return { ok: false, detail: `no initialize: ${first.error.message.split('\n')[0]}`, stderr: first.error.stderr };
  try {
    const { tools } = await first.client.listTools();
    if (tools.length === 0) return { ok: false, detail: 'no tools' };
    if (server.call) await callExpect(first.client, server.call);
    if (server.state) await callExpect(first.client, [...server.state[0], undefined]);
  } catch (error) {
    return { ok: false, detail: error.message.split('\n')[0], stderr: first.stderr() };
  } finally {
    await first.close();
  }
  if (!server.state) return { ok: true, detail: server.call ? `${server.call[0]} ok` : 'tools listed (its tools need outside hosts)' };
  const second = await session(where, server, home).catch((error) => ({ error }));
  if (second.error) return { ok: false, detail: `no restart: ${second.error.message.split('\n')[0]}`, stderr: second.error.stderr };
  try {
    await callExpect(second.client, [...server.state[1], server.state[2]]);
    return { ok: true, detail: `${server.state[0][0]}, restart, ${server.state[1][0]}: kept` };
  } catch (error) {
    return { ok: false, detail: `after a restart: ${error.message.split('\n')[0]}`, stderr: second.stderr() };
  } finally {
    await second.close();
  }
}

writeFileSync(join(work, 'empty.json'), '{}\n');
const results = [];
for (const server of chosen) {
  process.stderr.write(`compat: ${server.name} …`);
  const host = MCPBOX_ONLY ? undefined : await check('host', server);
  const boxed = await check('mcpbox', server);
  process.stderr.write(` host ${host ? (host.ok ? 'ok' : 'FAIL') : '—'}, mcpbox ${boxed.ok ? 'ok' : 'FAIL'}\n`);
  if (!boxed.ok && boxed.stderr) process.stderr.write(`${boxed.stderr.split('\n').slice(-6).join('\n')}\n`);
  results.push({ server: server.name, kind: server.kind, runner: server.runner, host, mcpbox: boxed });
}

const mark = (r) => (r === undefined ? '—' : r.ok ? 'works' : 'fails');
console.log(`mcpbox compatibility, ${new Date().toISOString().slice(0, 10)}${SUBSET ? ' (subset)' : ''}\n`);
console.log('| server | kind | runner | on the host | under mcpbox | what was checked |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const r of results) {
  const detail = r.mcpbox.ok ? r.mcpbox.detail : `mcpbox: ${r.mcpbox.detail}`;
  console.log(`| ${r.server} | ${r.kind} | ${r.runner} | ${mark(r.host)} | ${mark(r.mcpbox)} | ${detail.replace(/\|/g, '\\|')}${r.host && !r.host.ok ? ` (host: ${r.host.detail.replace(/\|/g, '\\|')})` : ''} |`);
}
if (JSON_OUT) writeFileSync(JSON_OUT, `${JSON.stringify(results, null, 2)}\n`);
rmSync(work, { recursive: true, force: true });
cleanUp();
const regressions = results.filter((r) => !r.mcpbox.ok && (r.host === undefined || r.host.ok));
process.exit(regressions.length > 0 ? 1 : 0);
