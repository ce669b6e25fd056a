import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parseStandbyIdle, standbyIdleSeconds, validateSettings } from '../../src/config/settings.js';
import { narrowSettings } from '../../src/config/settings.js';
import { claimedName, claimOf, parsePs, type OwnerProbe } from '../../src/engine/containers.js';
import { freshEnough, STANDBY_LAUNCHER, standbyCreateArgv, standbyKey, standbyName, standbySpec, staleStandby } from '../../src/lifecycle/standby.js';
import { standbyWanted } from '../../src/lifecycle/standby-run.js';
import { staleContainers } from '../../src/lifecycle/sweep.js';
import { parseRunnerArgs } from '../../src/runners/table.js';
import { containerLabels, containerName, containerSpec, type ContainerInput, type ContainerSpec, DEFAULT_POLICY } from '../../src/sandbox/spec.js';

const secret = Buffer.alloc(32, 7);
const learn = { mode: 'allow' as const, hosts: ['api.github.com'] };

function spec(overrides: Partial<ContainerInput> = {}, pid = 4242, random = 'abc123'): ContainerSpec {
  const invocation = parseRunnerArgs('npx', ['-y', '@modelcontextprotocol/server-everything']);
  return containerSpec({
    invocation,
    policy: DEFAULT_POLICY,
    image: 'mcpbox/npx:0123456789ab',
    name: containerName(invocation, random),
    labels: containerLabels(invocation, { pid, host: 'laptop', startedAt: new Date(pid * 1000), version: '0.0.0' }),
    ca: { mounts: [], env: {}, missing: [] },
    forwarded: [{ name: 'GITHUB_TOKEN', value: 'secret-1' }],
    tty: false,
    user: '65534:65534',
    owner: '1000',
    host: { binds: [{ source: '/home/me/notes', target: '/home/me/notes', readonly: false }], args: ['/srv/tree', 'lock'], workdir: undefined },
    ...overrides,
  } as ContainerInput);
}

const keyOf = (s: ContainerSpec, egress = learn, engine = 'docker', key = secret) => standbyKey(s, egress, engine, key);

describe('standby key: what a standby must match', () => {
  it('is the same for two runs of the same server (another pid, name, start time)', () => {
    expect(keyOf(spec({}, 1, 'aaa'))).toBe(keyOf(spec({}, 2, 'bbb')));
  });

  it.each([
    ['a mount', spec({ host: { binds: [{ source: '/home/me/other', target: '/home/me/other', readonly: false }], args: ['/srv/tree', 'lock'], workdir: undefined } } as Partial<ContainerInput>)],
    ['a forwarded value', spec({ forwarded: [{ name: 'GITHUB_TOKEN', value: 'secret-2' }] })],
    ['the locked tree (the launch arguments)', spec({ host: { binds: [{ source: '/home/me/notes', target: '/home/me/notes', readonly: false }], args: ['/srv/tree2', 'lock'], workdir: undefined } } as Partial<ContainerInput>)],
    ['the image', spec({ image: 'mcpbox/npx:ffffffffffff' })],
    ['the limits', spec({ policy: { ...DEFAULT_POLICY, memory: '1g' } })],
    ['the user', spec({ user: '1000:1000' })],
  ])('differs when %s differs', (_what, changed) => {
    expect(keyOf(changed)).not.toBe(keyOf(spec()));
  });

  it('differs with the egress policy, the engine and the user secret; the token per run does not count', () => {
    expect(keyOf(spec(), { mode: 'allow', hosts: ['pypi.org'] })).not.toBe(keyOf(spec()));
    expect(keyOf(spec(), learn, 'podman')).not.toBe(keyOf(spec()));
    expect(keyOf(spec(), learn, 'docker', Buffer.alloc(32, 8))).not.toBe(keyOf(spec()));
    const withToken = (token: string) => spec({ egress: { volume: 'mcpbox-egress-x', token } } as Partial<ContainerInput>);
    expect(keyOf(withToken('v1.run-a.sig'))).toBe(keyOf(withToken('v1.run-b.sig')));
  });

  it('holds no value: a keyed hash, never the secret itself', () => {
    const key = keyOf(spec());
    expect(key).toMatch(/^[0-9a-f]{24}$/);
    expect(standbyName(key)).toBe(`mcpbox-standby-${key}`);
  });
});

describe('standby container', () => {
  const base = spec();
  const standby = standbySpec(base, standbyName('k'.repeat(24)), 600, 'run123');

  it('is the same container under the launcher, labelled as a standby', () => {
    expect(standby.name).toBe(`mcpbox-standby-${'k'.repeat(24)}`);
    expect(standby.labels).toMatchObject({ 'dev.mcpbox.role': 'standby', 'dev.mcpbox.standby-idle': '600', 'dev.mcpbox.egress-run': 'run123' });
    expect(standby.entrypoint).toBe('sh');
    expect(standby.args).toEqual(['-c', STANDBY_LAUNCHER, 'mcpbox-standby', '600', base.entrypoint, ...base.args]);
    expect({ ...standby, name: base.name, labels: base.labels, entrypoint: base.entrypoint, args: base.args }).toEqual(base);
  });

  it('is created (attachable with StdinOnce), with every hardening flag of a run', () => {
    const argv = standbyCreateArgv(standby, '/run/env');
    expect(argv[0]).toBe('create');
    expect(argv).not.toContain('--detach');
    for (const flag of ['--rm', '--interactive', '--init', '--read-only', '--cap-drop', '--security-opt', '--pids-limit', '--memory', '--user']) expect(argv).toContain(flag);
    expect(argv).toContain('--env-file');
  });
});

describe('standby ownership, sweep and prune', () => {
  const at = new Date('2026-12-01T10:00:00Z');
  const probe: OwnerProbe = { host: 'laptop', isAlive: (pid) => pid === 100, startTime: () => new Date('2026-12-01T09:59:00Z') };
  const row = (name: string, state: string, started: Date, idle = '600', host = 'laptop', role = 'standby') =>
    [name, state, 'npx', 'pkg', '99', host, started.toISOString(), role, idle].join('\t');

  it('a claimed standby is owned by the process in its name, since the claim', () => {
    const name = claimedName('mcpbox-npx-pkg-abc123', 100, at);
    expect(claimOf(name)).toEqual({ pid: 100, at });
    expect(claimOf('mcpbox-npx-pkg-abc123')).toBeUndefined();
    const [claimed, waiting] = parsePs(`${row(name, 'running', new Date('2026-12-01T09:50:00Z'))}\n${row('mcpbox-standby-k', 'running', at)}\n`);
    expect(claimed).toMatchObject({ role: '', ownerPid: 100, startedAt: at });
    expect(waiting).toMatchObject({ role: 'standby', standbyIdle: 600, ownerPid: 99 });
  });

  it('the sweep takes standbys that never started or outlived their idle time, and claimed ones whose owner is gone', () => {
    const now = new Date('2026-12-01T10:30:00Z');
    const containers = parsePs(
      [
        row('young', 'running', new Date('2026-12-01T10:25:00Z')),
        row('never-started', 'created', new Date('2026-12-01T10:28:00Z')),
        row('just-created', 'created', new Date('2026-12-01T10:29:30Z')),
        row('outlived', 'running', new Date('2026-12-01T10:00:00Z'), '600'),
        row('elsewhere', 'created', new Date('2026-12-01T09:00:00Z'), '600', 'other-host'),
        row(claimedName('s', 100, new Date('2026-12-01T10:00:00Z')), 'running', new Date('2026-12-01T09:00:00Z')),
        row(claimedName('t', 555, new Date('2026-12-01T10:00:00Z')), 'running', new Date('2026-12-01T09:00:00Z')),
      ].join('\n'),
    );
    expect(staleContainers(containers, probe, { now }).map((c) => c.name)).toEqual([claimedName('t', 555, new Date('2026-12-01T10:00:00Z')), 'never-started', 'outlived']);
    expect(staleContainers(containers, probe, { now, allStandbys: true }).map((c) => c.name)).toContain('young');
    expect(staleContainers(containers, probe, { now, allStandbys: true }).map((c) => c.name)).not.toContain('elsewhere');
  });

  it('staleStandby and freshEnough: the rules on their own', () => {
    const now = new Date('2026-12-01T10:00:00Z');
    const ago = (s: number) => new Date(now.getTime() - s * 1000);
    expect(staleStandby('created', ago(30), 600, now)).toBe(false);
    expect(staleStandby('created', ago(61), 600, now)).toBe(true);
    expect(staleStandby('running', ago(700), 600, now)).toBe(false);
    expect(staleStandby('running', ago(721), 600, now)).toBe(true);
    expect(freshEnough(ago(500), 600, now)).toBe(true);
    expect(freshEnough(ago(590), 600, now)).toBe(false);
    expect(freshEnough(undefined, 600, now)).toBe(false);
    expect(freshEnough(ago(4), 6, now)).toBe(true);
    expect(freshEnough(ago(5), 6, now)).toBe(false);
  });
});

describe('standby settings', () => {
  it('standby is a boolean, at the top and per package; standbyIdle a duration', () => {
    expect(validateSettings({ standby: false, standbyIdle: '90s', packages: { x: { standby: false } } }, 'f').problems).toEqual([]);
    expect(validateSettings({ standby: 'no', standbyIdle: '2d' }, 'f').problems.map((p) => p.key)).toEqual(['standby', 'standbyIdle']);
    expect([parseStandbyIdle('10m'), parseStandbyIdle('1h'), parseStandbyIdle('4s'), parseStandbyIdle('10')]).toEqual([600, 3600, undefined, undefined]);
    expect(standbyIdleSeconds({})).toBe(600);
  });

  it('a project may turn standbys off or shorten their wait, never the reverse', () => {
    expect(narrowSettings({}, { standby: false }).standby).toBe(false);
    expect(narrowSettings({ standby: false }, { standby: true }).standby).toBe(false);
    expect(narrowSettings({}, { standbyIdle: '1m' }).standbyIdle).toBe('1m');
    expect(narrowSettings({ standbyIdle: '1m' }, { standbyIdle: '1h' }).standbyIdle).toBe('1m');
  });

  it('standbys serve MCP clients on Docker: not a terminal, not Podman, not when turned off', () => {
    const docker = { cli: 'docker' as const };
    expect(standbyWanted({}, docker, { client: true, tty: false })).toBe(true);
    expect(standbyWanted({ standby: false }, docker, { client: true, tty: false })).toBe(false);
    expect(standbyWanted({}, { cli: 'podman' }, { client: true, tty: false })).toBe(false);
    expect(standbyWanted({}, docker, { client: false, tty: true })).toBe(false);
  });
});

/** The launcher, run by the host's sh around a small node server: what a container's tini would start. */
function launch(idle: number, server: string) {
  const child = spawn('sh', ['-c', STANDBY_LAUNCHER, 'mcpbox-standby', String(idle), process.execPath, '-e', server], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exit, out: () => out, err: () => err };
}

const ECHO = 'process.stdin.on("data",d=>process.stdout.write("got:"+d));process.stdin.on("end",()=>process.exit(3));process.on("SIGTERM",()=>{console.error("TERM");process.exit(7)});setInterval(()=>{},1e6)';

describe('standby launcher (sh)', () => {
  it('gives the server its stdin, passes the end of input, and exits with its status', async () => {
    const run = launch(600, ECHO);
    run.child.stdin.end('hello\n');
    expect(await run.exit).toBe(3);
    expect(run.out()).toBe('got:hello\n');
  });

  it('ends the server with SIGTERM when nobody claims it within the idle time', async () => {
    const run = launch(1, ECHO);
    expect(await run.exit).toBe(7);
    expect(run.err()).toContain('TERM');
  }, 10_000);

  it('SIGUSR1 (the claim) stops the idle timer; SIGTERM still reaches the server', async () => {
    const run = launch(1, ECHO);
    await new Promise((r) => setTimeout(r, 300));
    run.child.kill('SIGUSR1');
    await new Promise((r) => setTimeout(r, 1500));
    expect(run.child.exitCode).toBeNull();
    run.child.stdin.write('still here\n');
    await new Promise((r) => setTimeout(r, 200));
    expect(run.out()).toBe('got:still here\n');
    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(7);
  }, 10_000);
});
