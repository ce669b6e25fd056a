import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import type { InstallRecord, LockEntry, LockFile } from '../../src/install/lock.js';
import { connect, containersOf, docker, mcpbox, quietStateDir, serverProcesses, testEnv, textOf } from './helpers.js';

const engine = inject('engine');
const EVERYTHING = '@modelcontextprotocol/server-everything';
const INITIALIZE =
  '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"0"}}}\n';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

function lockOf(state: string): LockFile {
  return JSON.parse(readFileSync(join(state, 'mcpbox', 'mcpbox.lock'), 'utf8')) as LockFile;
}
function writeLock(state: string, lock: LockFile) {
  writeFileSync(join(state, 'mcpbox', 'mcpbox.lock'), JSON.stringify(lock, null, 2));
}
function installsOf(state: string): Record<string, InstallRecord> {
  return JSON.parse(readFileSync(join(state, 'mcpbox', 'installs.json'), 'utf8')) as Record<string, InstallRecord>;
}
function entryOf(state: string, key: string): LockEntry {
  const entry = lockOf(state).servers[key];
  if (!entry) throw new Error(`no lock entry ${key}: ${Object.keys(lockOf(state).servers).join(', ')}`);
  return entry;
}

/** One client session: initialize, call a tool, close; returns what the tool said. */
async function callOnce(args: string[], env: Record<string, string>, tool: { name: string; arguments: Record<string, unknown> }) {
  const session = await connect(args, env);
  try {
    const [container] = await containersOf(session.pid);
    const result = await session.client.callTool(tool);
    const network = (await docker(['inspect', '--format', '{{.HostConfig.NetworkMode}}', container!])).stdout;
    const processes = await serverProcesses(container!);
    return { text: textOf(result), network, processes, stderr: session.stderr(), container: container! };
  } finally {
    await session.close();
  }
}

describe.skipIf(!engine)('npx: resolve once, then start the locked install directly', () => {
  const state = quietStateDir();
  const env = testEnv({ XDG_STATE_HOME: state });
  const key = `npx ${EVERYTHING}`;
  const echo = { name: 'echo', arguments: { message: 'locked' } };

  beforeAll(async () => {
    // A removed cache volume makes this a real first run: resolve, install (scripts run in the sandbox), lock.
    const dry = await mcpbox(['run', '--dry-run', 'npx', '-y', EVERYTHING], { env });
    const volume = /source=(mcpbox-npx-[^,\s]+)/.exec(dry.stdout)![1]!;
    await docker(['volume', 'rm', '--force', volume]);
  });

  it('the first run resolves, installs inside the sandbox and writes the lock', async () => {
    const first = await callOnce(['npx', '-y', EVERYTHING], env, echo);
    expect(first.text).toContain('locked');
    expect(first.stderr).toMatch(/resolving and installing @modelcontextprotocol\/server-everything \(first run only\)/);
    const entry = entryOf(state, key);
    expect(entry).toMatchObject({ runner: 'npx', name: EVERYTHING, executable: 'mcp-server-everything', pinned: false });
    expect(entry.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(entry.integrity).toMatch(/^sha512-[A-Za-z0-9+/]+=*$/);
    expect(entry.tree).toBe(sha256(entry.lockfile));
    expect(JSON.parse(entry.lockfile).packages[`node_modules/${EVERYTHING}`]).toMatchObject({ version: entry.version, integrity: entry.integrity });
    const record = Object.entries(installsOf(state)).find(([k]) => k.startsWith(`${key} |`))![1];
    expect(record.tree).toBe(entry.tree);
  });

  it('a second run makes no registry request: it works with --network none, running the installed server itself', async () => {
    const second = await callOnce(['--network', 'none', 'npx', '-y', EVERYTHING], env, echo);
    expect(second.text).toContain('locked');
    expect(second.network).toBe('none');
    expect(second.stderr).not.toMatch(/resolving|installing/);
    const record = Object.entries(installsOf(state)).find(([k]) => k.startsWith(`${key} |`))![1];
    const server = second.processes.find((p) => p.cmdline.includes(record.dir));
    expect(server, second.processes.map((p) => p.cmdline).join('\n')).toBeDefined();
    expect(second.processes.some((p) => /\bnpm\b|npx-cli/.test(p.cmdline))).toBe(false);
  });

  it('the locked server cannot change its own install (read-only at run time)', async () => {
    const session = await connect(['npx', '-y', EVERYTHING], env);
    try {
      const [container] = await containersOf(session.pid);
      const record = Object.entries(installsOf(state)).find(([k]) => k.startsWith(`${key} |`))![1];
      const write = await docker(['exec', container!, 'sh', '-c', `echo x >> ${record.dir}/package-lock.json`]);
      expect(write.exitCode).not.toBe(0);
      expect(write.stderr).toMatch(/Read-only file system/);
    } finally {
      await session.close();
    }
  });

  it('an install whose tree changed under its lock is refused (exit 76), not run', async () => {
    const record = Object.entries(installsOf(state)).find(([k]) => k.startsWith(`${key} |`))![1];
    const image = /\s(mcpbox\/npx:[0-9a-f]+)\s/.exec((await mcpbox(['run', '--dry-run', 'npx', '-y', EVERYTHING], { env })).stdout)![1]!;
    const tamper = await docker(['run', '--rm', '--user', '0', '--mount', `type=volume,source=${record.volume},target=/mcpbox/install`, '--entrypoint', 'sh', image, '-c', `echo ' ' >> ${record.dir}/package-lock.json`]);
    expect(tamper.exitCode, tamper.stderr).toBe(0);
    // A standby started before the tamper was checked when it started (the README says so): a fresh start is checked now.
    const refused = await mcpbox(['run', '--no-standby', 'npx', '-y', EVERYTHING], { env, input: INITIALIZE });
    expect(refused.exitCode).toBe(76);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/mcpbox: integrity mismatch: .*package-lock\.json is not the one mcpbox installed and locked/);
    expect(await containersOf(refused.pid)).toEqual([]);
  });

  it('mcpbox update re-resolves and reinstalls; the server starts again', async () => {
    const before = entryOf(state, key);
    writeLock(state, { ...lockOf(state), servers: { ...lockOf(state).servers, [key]: { ...before, version: '0.0.1', resolvedAt: '2000-01-01T00:00:00.000Z' } } });
    const updated = await mcpbox(['update'], { env });
    expect(updated.exitCode, updated.stderr).toBe(0);
    expect(updated.stdout.trim()).toBe(`${EVERYTHING} 0.0.1 → ${before.version}`);
    const after = entryOf(state, key);
    expect(after.version).toBe(before.version);
    expect(Date.parse(after.resolvedAt)).toBeGreaterThan(Date.now() - 600_000);
    const again = await callOnce(['--network', 'none', 'npx', '-y', EVERYTHING], env, echo);
    expect(again.text).toContain('locked');
  });

  it('a package that changed under its lock (the registry serves other bytes than locked) is refused (exit 76)', async () => {
    const entry = entryOf(state, key);
    const forged = `sha512-${Buffer.alloc(64, 7).toString('base64')}`;
    const lockfile = entry.lockfile.replace(entry.integrity, forged);
    writeLock(state, { ...lockOf(state), servers: { ...lockOf(state).servers, [key]: { ...entry, integrity: forged, lockfile, tree: sha256(lockfile) } } });
    const refused = await mcpbox(['run', 'npx', '-y', EVERYTHING], { env, input: INITIALIZE });
    expect(refused.exitCode).toBe(76);
    expect(refused.stdout).toBe('');
    expect(refused.stderr.trim().split('\n').at(-1)).toMatch(/^mcpbox: integrity mismatch: @modelcontextprotocol\/server-everything@[\d.]+ as the registry serves it does not match its lock; refusing to install or run it \(hint: .+\)$/);
    expect(await containersOf(refused.pid)).toEqual([]);
    writeLock(state, { ...lockOf(state), servers: { ...lockOf(state).servers, [key]: entry } });
  });

  it('an unpinned lock older than the interval resolves again on its own; a pinned one never does', async () => {
    const entry = entryOf(state, key);
    writeLock(state, { ...lockOf(state), servers: { ...lockOf(state).servers, [key]: { ...entry, resolvedAt: '2000-01-01T00:00:00.000Z' } } });
    const refreshed = await mcpbox(['run', 'npx', '-y', EVERYTHING], { env, input: INITIALIZE });
    expect(refreshed.stdout).toContain('"serverInfo"');
    expect(Date.parse(entryOf(state, key).resolvedAt)).toBeGreaterThan(Date.now() - 600_000);

    const pinnedKey = `npx ${EVERYTHING}@${entry.version}`;
    const pinned = await mcpbox(['run', 'npx', '-y', `${EVERYTHING}@${entry.version}`], { env, input: INITIALIZE });
    expect(pinned.stdout).toContain('"serverInfo"');
    expect(entryOf(state, pinnedKey).pinned).toBe(true);
    writeLock(state, { ...lockOf(state), servers: { ...lockOf(state).servers, [pinnedKey]: { ...entryOf(state, pinnedKey), resolvedAt: '2000-01-01T00:00:00.000Z' } } });
    const offline = await mcpbox(['run', '--network', 'none', 'npx', '-y', `${EVERYTHING}@${entry.version}`], { env, input: INITIALIZE });
    expect(offline.stdout).toContain('"serverInfo"');
    expect(offline.stderr).not.toMatch(/resolving|installing|could not reach/);
    expect(entryOf(state, pinnedKey).resolvedAt).toBe('2000-01-01T00:00:00.000Z');
  });
});

describe.skipIf(!engine)('uvx: the same, with uv’s hash-pinned resolution', () => {
  const state = quietStateDir();
  const env = testEnv({ XDG_STATE_HOME: state });
  const key = 'uvx mcp-server-time => mcp-server-time';
  const time = { name: 'get_current_time', arguments: { timezone: 'UTC' } };

  it('the first run resolves with hashes, installs and writes the lock', async () => {
    const first = await callOnce(['uvx', 'mcp-server-time'], env, time);
    expect(first.text).toMatch(/"timezone":\s*"UTC"/);
    const entry = entryOf(state, key);
    expect(entry).toMatchObject({ runner: 'uvx', name: 'mcp-server-time', executable: 'mcp-server-time', pinned: false });
    expect(entry.lockfile).toMatch(new RegExp(`^mcp-server-time==${entry.version.replace(/\./g, '\\.')} \\\\$`, 'm'));
    expect(entry.integrity).toMatch(/^sha256:[0-9a-f]{64}/);
    expect(entry.lockfile.match(/--hash=sha256:/g)!.length).toBeGreaterThan(10);
    expect(entry.tree).toBe(sha256(entry.lockfile));
  });

  it('a second run works with --network none, running the installed tool', async () => {
    const second = await callOnce(['--network', 'none', 'uvx', 'mcp-server-time'], env, time);
    expect(second.text).toMatch(/"timezone":\s*"UTC"/);
    expect(second.network).toBe('none');
    expect(second.processes.some((p) => /\buv(x)? /.test(p.cmdline))).toBe(false);
  });

  it('a requirement that changed under its lock is refused (exit 76)', async () => {
    const entry = entryOf(state, key);
    // Every artifact of the package gets a hash the registry's files don't have.
    const block = /^mcp-server-time==[^\n]*\n(?:\s+--hash=[^\n]*\n)+/m.exec(entry.lockfile)![0];
    const forgedBlock = block.replace(/sha256:[0-9a-f]{64}/g, (_m) => `sha256:${'f'.repeat(64)}`);
    const lockfile = entry.lockfile.replace(block, forgedBlock);
    const integrity = `sha256:${'f'.repeat(64)}`;
    writeLock(state, { ...lockOf(state), servers: { ...lockOf(state).servers, [key]: { ...entry, integrity, lockfile, tree: sha256(lockfile) } } });
    const refused = await mcpbox(['run', 'uvx', 'mcp-server-time'], { env, input: INITIALIZE });
    expect(refused.exitCode).toBe(76);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/integrity mismatch: mcp-server-time@[\d.]+ as the registry serves it does not match its lock/);
    writeLock(state, { ...lockOf(state), servers: { ...lockOf(state).servers, [key]: entry } });
  });

  it('mcpbox update re-resolves', async () => {
    const before = entryOf(state, key);
    writeLock(state, { ...lockOf(state), servers: { ...lockOf(state).servers, [key]: { ...before, version: '0.0.1' } } });
    const updated = await mcpbox(['update', 'mcp-server-time'], { env });
    expect(updated.exitCode, updated.stderr).toBe(0);
    expect(updated.stdout.trim()).toBe(`mcp-server-time 0.0.1 → ${before.version}`);
    expect(entryOf(state, key).version).toBe(before.version);
  });
});

describe.skipIf(!engine)('a project’s mcpbox.lock', () => {
  it('is used instead of the user’s when present, so a team shares its pins', async () => {
    const project = mkdtempSync(join(tmpdir(), 'mcpbox-project-'));
    writeFileSync(join(project, 'package.json'), '{"name":"p"}\n');
    writeFileSync(join(project, 'mcpbox.lock'), '{"lockfileVersion":1,"servers":{}}\n');
    const state = quietStateDir();
    const result = await mcpbox(['run', 'npx', '-y', EVERYTHING], { env: testEnv({ XDG_STATE_HOME: state }), input: INITIALIZE, cwd: project });
    expect(result.stdout).toContain('"serverInfo"');
    const lock = JSON.parse(readFileSync(join(project, 'mcpbox.lock'), 'utf8')) as LockFile;
    expect(Object.keys(lock.servers)).toEqual([`npx ${EVERYTHING}`]);
    expect(() => readFileSync(join(state, 'mcpbox', 'mcpbox.lock'))).toThrow();
  });
});

describe.skipIf(!engine)('first runs at once', () => {
  it('five clients starting the same new server together all get it (one volume, concurrent installs)', async () => {
    const state = quietStateDir();
    const env = testEnv({ XDG_STATE_HOME: state });
    const dry = await mcpbox(['run', '--dry-run', 'uvx', 'mcp-server-time'], { env });
    const volume = /source=(mcpbox-uvx-[^,\s]+)/.exec(dry.stdout)![1]!;
    await docker(['volume', 'rm', '--force', volume]);
    // Input ends at once here: a long grace lets five servers starting on two cores answer first.
    const runs = await Promise.all(Array.from({ length: 5 }, () => mcpbox(['run', '--grace', '30', 'uvx', 'mcp-server-time'], { env, input: INITIALIZE })));
    for (const run of runs) expect(run.stdout, run.stderr).toContain('"serverInfo"');
    const entry = entryOf(state, 'uvx mcp-server-time => mcp-server-time');
    expect(entry.tree).toBe(sha256(entry.lockfile));
  });
});
