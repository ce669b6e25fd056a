import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { connect, containersOf, docker, ENGINE_CLI, MCPBOX, mcpbox, quietStateDir, removeStandbys, startRaw, standbys, testEnv, textOf, waitFor, WORKDIR } from './helpers.js';

const engine = inject('engine');
const EVERYTHING = '@modelcontextprotocol/server-everything';

/**
 * Standbys (src/lifecycle/standby.ts) against the real engine and server-everything: left when a
 * session ends, attached to by the next launch of the same spec only, never leaked. Podman runs
 * without them (README, Standby: what its attach does), so this file is Docker's.
 */
describe.skipIf(!engine || ENGINE_CLI === 'podman')('standby: the next container of a server, started ahead', () => {
  const state = quietStateDir();
  const env = testEnv({ XDG_STATE_HOME: state, STANDBY_E2E_TOKEN: 'one' });
  const args = ['-e', 'STANDBY_E2E_TOKEN', 'npx', '-y', EVERYTHING];
  const removeAll = removeStandbys;
  // On a timeout, what the processes that leave standbys said (their log) is the first thing to read.
  const standbyLog = () => {
    try {
      return readFileSync(join(state, 'mcpbox', 'standby.log'), 'utf8');
    } catch {
      return '(no standby.log)';
    }
  };
  const oneStandby = () =>
    waitFor(async () => (await standbys(true)).length === 1 && (await standbys(true))[0], 60_000, 'a running standby').catch(async (error: Error) => {
      throw new Error(`${error.message}; standbys: ${JSON.stringify(await standbys())}; standby.log:\n${standbyLog()}`);
    });

  async function session(sessionArgs: string[], sessionEnv = env) {
    const started = Date.now();
    const open = await connect(sessionArgs, sessionEnv);
    const [container] = await containersOf(open.pid);
    const inspected = JSON.parse((await docker(['inspect', container!])).stdout)[0] as { State: { StartedAt: string }; Config: { Labels: Record<string, string> } };
    const echoed = textOf(await open.client.callTool({ name: 'echo', arguments: { message: 'standby' } }));
    await open.close();
    await waitFor(async () => (await containersOf(open.pid)).length === 0, 20_000, `no container left for ${open.pid}`);
    return { container: container!, echoed, startedBefore: Date.parse(inspected.State.StartedAt) < started, role: inspected.Config.Labels['dev.mcpbox.role'], pid: open.pid, stderr: open.stderr() };
  }

  beforeAll(async () => {
    await removeAll();
    // The first run installs and locks (or reuses the install); its end leaves the first standby.
    expect((await session(args)).echoed).toContain('standby');
    await oneStandby();
  });
  beforeEach(async () => {
    await oneStandby();
  });

  it('a launch attaches to the standby its last session left (started before it), is served, and leaves the next', async () => {
    const [waiting] = await standbys();
    const used = await session(args);
    expect(used.container).toMatch(new RegExp(`-standby-by-${used.pid}-[0-9a-z]+$`));
    expect(used.role).toBe('standby');
    expect(used.startedBefore).toBe(true);
    expect(used.echoed).toBe('Echo: standby');
    // The end of the client's input reached the server through the attach: it left by itself, no SIGTERM needed.
    expect(used.stderr).not.toMatch(/sending SIGTERM|removing/);
    // The same spec leaves a standby of the same name: at most one per spec.
    expect(await oneStandby()).toBe(waiting);
  });

  it('a launch that differs in a forwarded value or a mount never uses it', async () => {
    const [waiting] = await standbys();
    const otherValue = await session(args, { ...env, STANDBY_E2E_TOKEN: 'two' });
    expect(otherValue.container).not.toContain('-standby-by-');
    expect(otherValue.startedBefore).toBe(false);
    const dir = mkdtempSync(join(tmpdir(), 'mcpbox-e2e-standby-'));
    const otherMount = await session(['--mount', `${dir}:ro`, ...args]);
    expect(otherMount.container).not.toContain('-standby-by-');
    expect(await standbys()).toContain(waiting);
    // Each of them left its own; the one for `args` is still there, unclaimed.
    await waitFor(async () => (await standbys()).length === 3, 60_000, 'three standbys, one per spec');
    await removeAll();
    await session(args);
  });

  it("mcpbox pull leaves one for a client's entry of the server it pulled, as the client starts it; the client's first launch attaches to it", async () => {
    await removeAll();
    const home = mkdtempSync(join(tmpdir(), 'mcpbox-e2e-standby-home-'));
    mkdirSync(join(home, '.cursor'));
    const entry = { command: 'mcpbox', args: ['run', ...args], env: { STANDBY_E2E_TOKEN: 'one' } };
    writeFileSync(join(home, '.cursor', 'mcp.json'), JSON.stringify({ mcpServers: { everything: entry, other: { command: 'mcpbox', args: ['run', 'uvx', 'mcp-server-time'] } } }));
    // The pull's own environment holds another value: the entry's (the client's) is the one used.
    const pulled = await mcpbox(['pull', 'npx', EVERYTHING], { env: { ...env, HOME: home, STANDBY_E2E_TOKEN: 'pull' } });
    expect(pulled.exitCode, pulled.stderr).toBe(0);
    await oneStandby();
    const used = await session(args, { ...env, HOME: home });
    expect(used.container).toMatch(new RegExp(`-standby-by-${used.pid}-[0-9a-z]+$`));
    expect(used.startedBefore).toBe(true);
    expect(used.echoed).toBe('Echo: standby');
    // The standby this session's end leaves is started by an mcpbox with this HOME (an engine CLI
    // may keep its own places under HOME): the home goes once that one is up.
    await oneStandby();
    rmSync(home, { recursive: true, force: true });
  });

  it('a launch under another lock entry never uses it: the changed entry is refused, the standby waits on, unclaimed', async () => {
    const waiting = await oneStandby();
    const file = join(state, 'mcpbox', 'mcpbox.lock');
    const original = readFileSync(file, 'utf8');
    const lock = JSON.parse(original) as { servers: Record<string, { tree: string }> };
    const key = Object.keys(lock.servers).find((k) => k.includes(EVERYTHING))!;
    // The entry a repository's lock (or an edit) could bring: another tree than the one the standby runs.
    writeFileSync(file, JSON.stringify({ ...lock, servers: { ...lock.servers, [key]: { ...lock.servers[key], tree: 'f'.repeat(64) } } }));
    try {
      const refused = await mcpbox(['run', ...args], { env, input: '' });
      expect(refused.exitCode).toBe(76);
      expect(refused.stderr).toMatch(/can't be trusted/);
      expect(await containersOf(refused.pid)).toEqual([]);
      expect(await standbys(true)).toEqual([waiting]);
    } finally {
      writeFileSync(file, original);
    }
    const used = await session(args);
    expect(used.container).toMatch(new RegExp(`-standby-by-${used.pid}-`));
  });

  it('ps marks it, and prune removes it (nothing of the user is in it)', async () => {
    const [waiting] = await standbys();
    const ps = JSON.parse((await mcpbox(['ps', '--json'], { env })).stdout) as { name: string; standby: boolean }[];
    expect(ps.find((r) => r.name === waiting)).toMatchObject({ standby: true });
    const pruned = await mcpbox(['prune'], { env });
    expect(pruned.stdout).toContain(`removed ${waiting} (npx ${EVERYTHING}; a standby waiting for a client)`);
    expect(await standbys()).toEqual([]);
    await session(args);
  });

  it('once attached, its end is today’s: SIGTERM reaches the server and its status is mcpbox’s; SIGKILL of mcpbox leaves nothing (the watchdog); a killed standby just means a fresh start', async () => {
    const signalled = await startRaw(args, env);
    expect(signalled.container).toContain(`-standby-by-${signalled.pid}-`);
    signalled.child.kill('SIGTERM');
    const ended = await signalled.child;
    // The server's own answer to SIGTERM (node: killed by it, 128+15), not a removal after the grace period.
    expect(ended.exitCode).toBe(143);
    expect(String(ended.stderr)).not.toMatch(/removing/);
    await waitFor(async () => (await containersOf(signalled.pid)).length === 0, 10_000, 'the container to go');
    await oneStandby();
    const run = await startRaw(args, env);
    expect(run.container).toContain(`-standby-by-${run.pid}-`);
    process.kill(run.pid, 'SIGKILL');
    await waitFor(async () => (await containersOf(run.pid)).length === 0, 10_000, 'the watchdog to remove the claimed standby');
    // A SIGKILLed mcpbox leaves no standby behind it; the next session starts afresh and leaves one.
    await removeAll();
    const fresh = await session(args);
    expect(fresh.container).not.toContain('-standby-by-');
    await oneStandby();
  });

  it('the starter of a standby killed outright leaves nothing that prune does not take', async () => {
    await removeAll();
    for (const delay of [400, 900, 1500]) {
      const helper = execa(process.execPath, [MCPBOX, 'run', ...args], { cwd: WORKDIR, env: { ...env, MCPBOX_LEAVE_STANDBY: '1' }, extendEnv: false, reject: false, stdin: 'pipe' });
      helper.stdin!.end();
      await new Promise((resolve) => setTimeout(resolve, delay));
      helper.kill('SIGKILL');
      await helper;
    }
    await mcpbox(['prune'], { env });
    const left = await docker(['ps', '-a', '--filter', 'label=dev.mcpbox.role=standby', '--format', '{{.Names}}']);
    expect(left.stdout.split('\n').filter((n) => n.startsWith('mcpbox-standby-'))).toEqual([]);
    await session(args);
  });

  // .ci/run names the command that restarts its engine; a laptop's engine is left alone.
  const restart = process.env.MCPBOX_E2E_RESTART_ENGINE;
  it.skipIf(!restart && !process.env.CI)('an engine restart takes a waiting standby with it (nothing left stopped); the next launch starts afresh and leaves a new one', async () => {
    if (!restart) throw new Error('CI must name the command that restarts the engine: MCPBOX_E2E_RESTART_ENGINE (.ci/run does)');
    const waiting = await oneStandby();
    const restarted = await execa('sh', ['-c', restart], { reject: false, timeout: 120_000 });
    expect(restarted.exitCode, restarted.stderr).toBe(0);
    expect(await standbys()).not.toContain(waiting);
    expect(await standbys()).toEqual([]);
    const fresh = await session(args);
    expect(fresh.container).not.toContain('-standby-by-');
    expect(fresh.echoed).toBe('Echo: standby');
    await oneStandby();
  });

  it('a standby ends by itself when no client comes within its idle time', async () => {
    await removeAll();
    const config = join(mkdtempSync(join(tmpdir(), 'mcpbox-e2e-standby-config-')), 'config.json');
    writeFileSync(config, JSON.stringify({ standbyIdle: '6s' }));
    const short = { ...env, MCPBOX_CONFIG: config };
    await session(args, short);
    const waiting = await oneStandby();
    const labels = JSON.parse((await docker(['inspect', '--format', '{{json .Config.Labels}}', waiting])).stdout) as Record<string, string>;
    expect(labels['dev.mcpbox.standby-idle']).toBe('6');
    await waitFor(async () => !(await standbys()).includes(waiting), 30_000, 'the standby to end after 6 s');
    await session(args);
  });
});
