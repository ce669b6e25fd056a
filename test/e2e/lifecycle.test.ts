import { existsSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, inject, it } from 'vitest';
import { wellKnownEnginePaths } from '../../src/engine/locate.js';
import {
  childrenOf,
  containersOf,
  docker,
  MCPBOX,
  mcpbox,
  STUBBORN_ARGS,
  STUBBORN_SERVER,
  startRaw,
  testEnv,
  waitFor,
  WORKDIR,
  labelFormat,
  ENGINE_CLI,
} from './helpers.js';

const engine = inject('engine');
const EVERYTHING = '@modelcontextprotocol/server-everything';

async function gone(pid: number, timeoutMs: number) {
  await waitFor(async () => (await containersOf(pid)).length === 0, timeoutMs, `no container left for mcpbox ${pid}`);
}

describe.skipIf(!engine)('no orphans: the container lives exactly as long as its client', () => {
  it('a server that ignores end of input is stopped after the grace period once stdin closes', async () => {
    const run = await startRaw(['--grace', '1', ...STUBBORN_ARGS]);
    const closed = Date.now();
    run.child.stdin!.end();
    const result = await run.child;
    expect(Date.now() - closed).toBeLessThan(10_000);
    expect(result.stderr).toContain('stubborn: input ended, staying up anyway');
    expect(result.stderr).toMatch(/input closed 1 s ago and the server is still running: sending SIGTERM/);
    // stdout carried the server's bytes and nothing else: one JSON-RPC line.
    expect(run.stdout().trimEnd().split('\n').map((line) => JSON.parse(line).id)).toEqual([1]);
    await gone(run.pid, 5_000);
  });

  it('the same without a hang-up watcher (no perl, no python3 on PATH): stdin is copied, its end still seen', async () => {
    const run = await startRaw(['--grace', '1', ...STUBBORN_ARGS], testEnv({ STUBBORN_SERVER, PATH: '/usr/local/bin' }));
    expect(childrenOf(run.pid).some((c) => /perl|python/.test(c.argv[0] ?? ''))).toBe(false);
    run.child.stdin!.end();
    const result = await run.child;
    expect(result.stderr).toMatch(/input closed 1 s ago and the server is still running: sending SIGTERM/);
    await gone(run.pid, 5_000);
  });

  it('toolChanges off, no tool policy: with the watcher, the engine CLI reads the client’s stdin itself (no copy through mcpbox)', async () => {
    const config = join(WORKDIR, 'tool-changes-off.json');
    writeFileSync(config, JSON.stringify({ toolChanges: 'off' }));
    const run = await startRaw(STUBBORN_ARGS, testEnv({ STUBBORN_SERVER, MCPBOX_CONFIG: config }));
    const cli = childrenOf(run.pid).find((c) => c.argv.includes('run') && c.argv.includes('--rm'))!;
    const inode = (pid: number) => readlinkSync(`/proc/${pid}/fd/0`);
    expect(inode(cli.pid)).toBe(inode(run.pid));
    expect(childrenOf(run.pid).some((c) => /perl|python/.test(c.argv[0] ?? ''))).toBe(true);
    run.child.stdin!.end();
    await run.child;
    await gone(run.pid, 10_000);
    rmSync(config, { force: true });
  });

  it('by default a client’s session goes through the tools relay: mcpbox reads the client, the engine CLI reads mcpbox', async () => {
    const run = await startRaw(STUBBORN_ARGS);
    const cli = childrenOf(run.pid).find((c) => c.argv.includes('run') && c.argv.includes('--rm'))!;
    const inode = (pid: number) => readlinkSync(`/proc/${pid}/fd/0`);
    expect(inode(cli.pid)).not.toBe(inode(run.pid));
    expect(childrenOf(run.pid).some((c) => /perl|python/.test(c.argv[0] ?? ''))).toBe(false);
    run.child.stdin!.end();
    const result = await run.child;
    expect(result.stderr).toMatch(/input closed 2 s ago and the server is still running: sending SIGTERM/);
    await gone(run.pid, 10_000);
  });

  it.each([
    // server-everything dies of SIGTERM (128+15), but handles SIGINT and exits by itself: its own code.
    ['SIGTERM', [143]],
    ['SIGINT', [0, 130]],
  ] as const)('%s to mcpbox while server-everything runs: passed on, container gone, exit 128+signal or the server’s own', async (signal, codes) => {
    const run = await startRaw(['npx', '-y', EVERYTHING]);
    process.kill(run.pid, signal);
    const result = await run.child;
    expect(codes).toContain(result.exitCode);
    await gone(run.pid, 3_000);
  });

  it('SIGKILL to mcpbox while server-everything runs: the watchdog removes the container within 5 s', async () => {
    const run = await startRaw(['npx', '-y', EVERYTHING]);
    const killed = Date.now();
    process.kill(run.pid, 'SIGKILL');
    await run.child;
    await gone(run.pid, 5_000);
    expect(Date.now() - killed).toBeLessThan(5_000);
  });

  it('30 runs started in parallel, then killed (TERM, INT and KILL): zero containers left', async () => {
    const runs = await Promise.all(Array.from({ length: 30 }, () => startRaw(STUBBORN_ARGS)));
    const pids = runs.map((r) => r.pid);
    const running = (await docker(['ps', '--filter', 'label=dev.mcpbox.managed=true', '--format', labelFormat('dev.mcpbox.owner-pid')])).stdout.split('\n');
    expect(pids.every((pid) => running.includes(String(pid)))).toBe(true);
    const signals = ['SIGTERM', 'SIGINT', 'SIGKILL'] as const;
    runs.forEach((run, i) => process.kill(run.pid, signals[i % 3]));
    await Promise.all(runs.map((r) => r.child));
    await waitFor(
      async () => {
        const left = (await docker(['ps', '-a', '--filter', 'label=dev.mcpbox.managed=true', '--format', labelFormat('dev.mcpbox.owner-pid')])).stdout.split('\n');
        return !pids.some((pid) => left.includes(String(pid)));
      },
      30_000,
      'all 30 containers to go',
    );
  });

  it("the server's own exit code passes through (a server that exits 3 → mcpbox exits 3)", async () => {
    const result = await mcpbox(['run', ...STUBBORN_ARGS], { env: testEnv({ STUBBORN_SERVER, STUBBORN_EXIT_CODE: '3' }) });
    expect(result.exitCode).toBe(3);
    expect(await containersOf(result.pid)).toEqual([]);
  });
});

describe.skipIf(!engine)('ps, stop, prune and the sweep', () => {
  it('ps lists a running server with its runner, package, owner and uptime; stop ends it', async () => {
    const run = await startRaw(['npx', '-y', EVERYTHING]);
    const listed = JSON.parse((await mcpbox(['ps', '--json'])).stdout) as Record<string, unknown>[];
    expect(listed.find((c) => c.name === run.container)).toMatchObject({
      runner: 'npx',
      package: EVERYTHING,
      ownerPid: run.pid,
      owner: 'alive',
      state: 'running',
    });
    const table = await mcpbox(['ps']);
    expect(table.stdout).toMatch(/^NAME\s+RUNNER\s+PACKAGE\s+OWNER PID\s+UPTIME\s+STATE$/m);
    expect(table.stdout).toMatch(new RegExp(`^${run.container}\\s+npx\\s+${EVERYTHING}\\s+${run.pid}\\s+\\d+s\\s+running$`, 'm'));

    const stopped = await mcpbox(['stop', run.container]);
    expect([stopped.exitCode, stopped.stdout.trim()]).toEqual([0, run.container]);
    const result = await run.child;
    expect(result.exitCode).toBe(143);
    await gone(run.pid, 3_000);
  });

  it('stop refuses containers that are not mcpbox’s', async () => {
    const result = await mcpbox(['stop', 'not-an-mcpbox-container']);
    expect(result.exitCode).toBe(64);
    expect(result.stderr).toMatch(/not a running mcpbox container: not-an-mcpbox-container/);
  });

  /** A container as a crashed mcpbox (and its watchdog) would leave it: owner pid dead. */
  async function orphan(ownerPid: number) {
    const image = (await docker(['images', '--filter', 'reference=mcpbox/npx', '--format', '{{.Repository}}:{{.Tag}}'])).stdout.split('\n')[0]!;
    const name = `mcpbox-npx-orphan-${ownerPid}`;
    const started = await docker([
      'run', '-d', '--rm', '--name', name,
      '--label', 'dev.mcpbox.managed=true', '--label', `dev.mcpbox.owner-pid=${ownerPid}`,
      '--label', `dev.mcpbox.owner-host=${hostname()}`, '--label', `dev.mcpbox.started-at=${new Date().toISOString()}`,
      '--label', 'dev.mcpbox.runner=npx', '--label', 'dev.mcpbox.package=orphan-fixture',
      '--entrypoint', 'sleep', image, '600',
    ]);
    expect(started.exitCode).toBe(0);
    return name;
  }

  async function deadPid() {
    const child = execa('true');
    await child;
    return child.pid!;
  }

  it('prune removes containers whose owner is gone, says so, and leaves live ones', async () => {
    const dead = await deadPid();
    const stale = await orphan(dead);
    const run = await startRaw(STUBBORN_ARGS);
    const pruned = await mcpbox(['prune']);
    expect(pruned.exitCode).toBe(0);
    expect(pruned.stdout).toContain(`removed ${stale} (npx orphan-fixture; owner pid ${dead} is gone)`);
    expect(await containersOf(dead)).toEqual([]);
    expect(await containersOf(run.pid)).toEqual([run.container]);
    run.child.stdin!.end();
    await run.child;
  });

  it('a run sweeps stale containers of this host in the background', async () => {
    const dead = await deadPid();
    const stale = await orphan(dead);
    const state = mkdtempSync(join(tmpdir(), 'mcpbox-state-'));
    const run = await startRaw(STUBBORN_ARGS, testEnv({ STUBBORN_SERVER, XDG_STATE_HOME: state }));
    await gone(dead, 10_000);
    expect(existsSync(join(state, 'mcpbox', 'last-sweep'))).toBe(true);
    expect(await containersOf(run.pid)).toEqual([run.container]);
    run.child.stdin!.end();
    const result = await run.child;
    expect(result.stderr).toContain(stale);
  });
});

describe.skipIf(!engine)('finding the engine', () => {
  it('docker missing from PATH is found where the usual installs put it', async () => {
    const result = await mcpbox(['run', 'npx', '-c', 'echo found'], { env: testEnv({ PATH: '/nonexistent' }) });
    expect([result.exitCode, result.stdout.trim()]).toEqual([0, 'found']);
  });

  const canMask = process.getuid?.() === 0 && existsSync('/usr/bin/unshare');
  it.runIf(canMask)('no docker anywhere: exit 72, one line with a hint, stdout empty', async () => {
    // A private mount namespace where every docker and podman CLI on this machine is masked by /dev/null.
    const home = process.env.HOME ?? '/root';
    const candidates = [...wellKnownEnginePaths('linux', home), ...wellKnownEnginePaths('linux', home, 'podman'), '/usr/sbin/docker', '/bin/docker', '/bin/podman'].filter((p) => existsSync(p));
    const masks = candidates.map((p) => `mount --bind /dev/null ${p}`).join(' && ');
    const result = await execa('unshare', ['--mount', 'sh', '-c', `${masks} && exec "$0" "$@"`, process.execPath, MCPBOX, 'run', 'npx', '-y', EVERYTHING], {
      cwd: WORKDIR,
      env: testEnv({ PATH: '/usr/bin:/bin' }),
      reject: false,
      stdin: 'ignore',
    });
    expect(result.exitCode).toBe(72);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^mcpbox: no (docker or podman|podman) CLI found on PATH or in the usual install locations (\(MCPBOX_ENGINE or the engine setting asks for podman\) )?\(hint: .+\)$/)]);
  });

  it.each<[string, Record<string, string>]>(
    ENGINE_CLI === 'podman'
      ? [['CONTAINER_HOST at a socket nobody listens on', { CONTAINER_HOST: 'unix:///tmp/mcpbox-e2e-nothing.sock' }]]
      : [
          ['DOCKER_HOST at a socket nobody listens on', { DOCKER_HOST: 'unix:///tmp/mcpbox-e2e-nothing.sock' }],
          ['a docker context that does not exist', { DOCKER_CONTEXT: 'mcpbox-e2e-missing-context' }],
        ],
  )('%s: exit 69, stdout empty, no container', async (_label, env) => {
    const result = await mcpbox(['run', 'npx', '-y', EVERYTHING], { env: testEnv(env) });
    expect(result.exitCode).toBe(69);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^mcpbox: the (Docker|Podman) engine is not answering: .+\(hint: .+\)$/)]);
    expect(await containersOf(result.pid)).toEqual([]);
  });

  it.runIf(ENGINE_CLI === 'docker')('DOCKER_HOST is respected', async () => {
    const result = await mcpbox(['run', 'npx', '-c', 'echo via-host'], { env: testEnv({ DOCKER_HOST: 'unix:///var/run/docker.sock' }) });
    expect([result.exitCode, result.stdout.trim()]).toEqual([0, 'via-host']);
  });
});
