import { describe, expect, it } from 'vitest';
import { formatUptime, type ManagedContainer, ownership, parsePs, psFormat } from '../../src/engine/containers.js';
import { staleContainers } from '../../src/lifecycle/sweep.js';

const container = (over: Partial<ManagedContainer> = {}): ManagedContainer => ({
  name: 'mcpbox-npx-x-abc123',
  state: 'running',
  runner: 'npx',
  package: 'x',
  ownerPid: 100,
  ownerHost: 'here',
  startedAt: new Date('2026-01-01T00:00:10Z'),
  role: '',
  ...over,
});

const probe = (alive: number[], started: Record<number, string> = {}) => ({
  host: 'here',
  isAlive: (pid: number) => alive.includes(pid),
  startTime: (pid: number) => (started[pid] ? new Date(started[pid]) : undefined),
});

describe('docker ps lines', () => {
  it('parses the tab-separated template', () => {
    expect(parsePs('mcpbox-npx-a-1\trunning\tnpx\t@s/a b@2\t42\thost1\t2026-01-01T00:00:00.000Z\n\n')).toEqual([
      { name: 'mcpbox-npx-a-1', state: 'running', runner: 'npx', package: '@s/a b@2', ownerPid: 42, ownerHost: 'host1', startedAt: new Date('2026-01-01T00:00:00Z'), role: '' },
    ]);
  });

  it('the egress proxy (no owner process) is stale once no server runs, and only then', () => {
    const proxy = container({ name: 'mcpbox-egress-1000', runner: '', package: '', ownerPid: 0, ownerHost: '', role: 'egress' });
    const live = container({ ownerPid: 100 });
    const gone = container({ name: 'mcpbox-npx-gone', ownerPid: 200 });
    expect(staleContainers([proxy, live], probe([100]))).toEqual([]);
    expect(staleContainers([proxy, gone], probe([100])).map((c) => c.name)).toEqual(['mcpbox-npx-gone', 'mcpbox-egress-1000']);
    expect(staleContainers([proxy], probe([])).map((c) => c.name)).toEqual(['mcpbox-egress-1000']);
  });

  it('the automatic sweeps leave a proxy just started alone (its install or server may not be running yet)', () => {
    const now = new Date('2026-01-01T00:10:00Z');
    const young = container({ name: 'mcpbox-egress-young', runner: '', package: '', ownerPid: 0, ownerHost: '', role: 'egress', startedAt: new Date('2026-01-01T00:09:30Z') });
    const old = container({ name: 'mcpbox-egress-old', runner: '', package: '', ownerPid: 0, ownerHost: '', role: 'egress', startedAt: new Date('2026-01-01T00:05:00Z') });
    expect(staleContainers([young, old], probe([]), { egressGraceMs: 120_000, now }).map((c) => c.name)).toEqual(['mcpbox-egress-old']);
    expect(staleContainers([young, old], probe([]), { now }).map((c) => c.name)).toEqual(['mcpbox-egress-young', 'mcpbox-egress-old']);
  });

  it('tolerates missing labels', () => {
    expect(parsePs('odd\texited\t\t\t\t\t\n')[0]).toMatchObject({ ownerPid: 0, startedAt: undefined });
  });
});

describe('ownership', () => {
  it.each([
    ['live owner', container(), probe([100]), 'alive'],
    ['dead owner', container(), probe([]), 'gone'],
    ['no owner label', container({ ownerPid: 0 }), probe([0]), 'gone'],
    ['other host', container({ ownerHost: 'vps' }), probe([]), 'elsewhere'],
    ['pid reused by a later process', container(), probe([100], { 100: '2026-01-01T00:05:00Z' }), 'gone'],
    ['owner started just before', container(), probe([100], { 100: '2026-01-01T00:00:09.500Z' }), 'alive'],
  ] as const)('%s', (_label, c, p, expected) => {
    expect(ownership(c, p)).toBe(expected);
  });

  it('stale = gone, never elsewhere or alive', () => {
    const list = [container({ name: 'a' }), container({ name: 'b', ownerPid: 200 }), container({ name: 'c', ownerHost: 'vps' })];
    expect(staleContainers(list, probe([100])).map((c) => c.name)).toEqual(['b']);
  });
});

describe('uptime', () => {
  it.each([
    [5, '5s'],
    [65, '1m05s'],
    [3_700, '1h01m'],
    [90_000, '1d01h'],
  ])('%i s → %s', (seconds, text) => {
    expect(formatUptime(seconds)).toBe(text);
  });
});

describe('the ps template per CLI', () => {
  it("docker reads .Label and .State; podman indexes .Labels and reads the machine state under .ListContainer", () => {
    expect(psFormat('docker').split('\t').slice(0, 3)).toEqual(['{{.Names}}', '{{.State}}', '{{.Label "dev.mcpbox.runner"}}']);
    expect(psFormat('podman').split('\t').slice(0, 3)).toEqual(['{{.Names}}', '{{.ListContainer.State}}', '{{index .Labels "dev.mcpbox.runner"}}']);
  });
});
