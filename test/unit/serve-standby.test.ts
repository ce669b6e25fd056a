import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ContainerChannel } from '../../src/serve/channel.js';
import { ServeStandby, type ServeStandbyInit } from '../../src/serve/standby.js';

/** A container serve holds: running until it ends (by close() or by itself). */
class FakeChannel {
  name: string;
  running = true;
  closed = false;
  engineName: Promise<string>;
  readonly exited: Promise<number>;
  end!: (code: number) => void;
  /** When set, close() resolves only once this does (a removal that takes a while). */
  removal: Promise<void> | undefined;

  constructor(name: string) {
    this.name = name;
    this.engineName = Promise.resolve(name);
    this.exited = new Promise((resolve) => (this.end = (code) => ((this.running = false), resolve(code))));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.end(0);
    await this.removal;
  }

  renamed(name: string, done: Promise<unknown>): void {
    const from = this.name;
    this.name = name;
    this.engineName = done.then(
      () => name,
      () => from,
    );
  }
}

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

function setup(overrides: { rename?: { exitCode: number; stderr: string }; running?: boolean } = {}) {
  const started: FakeChannel[] = [];
  const calls: string[][] = [];
  const said: string[] = [];
  const init: ServeStandbyInit = {
    engine: {
      call: async (args: readonly string[]) => {
        calls.push([...args]);
        return args[0] === 'rename' && overrides.rename ? { ...overrides.rename, stdout: '' } : { exitCode: 0, stdout: '', stderr: '' };
      },
      inspect: async (names: readonly string[]) => ({
        missing: new Set<string>(),
        volumeIds: new Map(),
        imageIds: new Map(),
        containers: new Map(names.map((n) => [n, { running: overrides.running ?? true, status: 'running', labels: {}, image: 'sha256:x' }])),
      }),
    },
    start: () => {
      const channel = new FakeChannel(`mcpbox-serve-everything-${started.length}`);
      started.push(channel);
      return { channel: channel as unknown as ContainerChannel, holder: { session: 'standby' } };
    },
    idleSeconds: 600,
    ownerPid: 4242,
    graceMs: 10,
    say: (event, text) => said.push(`${event}: ${text}`),
  };
  return { standby: new ServeStandby(init), started, calls, said };
}

describe("serve's standby: the next session's container, started ahead", () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-12-01T10:00:00Z'));
  });
  afterEach(() => vi.useRealTimers());

  it('at most one waits; a session claims it once the engine runs it, renames it as serve’s and stops its idle timer', async () => {
    const { standby, started, calls } = setup();
    standby.leave();
    standby.leave();
    expect(started).toHaveLength(1);
    expect(standby.claim('s1')).toBeUndefined(); // not yet running in the engine: stays for the next session
    await flush();
    const claimed = standby.claim('s1');
    expect(claimed?.channel).toBe(started[0]);
    expect(claimed?.holder.session).toBe('s1');
    const name = `mcpbox-serve-everything-0-standby-by-4242-${Math.floor(Date.now() / 1000).toString(36)}`;
    expect(claimed?.channel.name).toBe(name);
    // The next one is on its way, not claimable before the engine runs it.
    expect(started).toHaveLength(2);
    expect(standby.claim('s2')).toBeUndefined();
    await flush();
    expect(calls).toEqual([
      ['rename', 'mcpbox-serve-everything-0', name],
      ['kill', '--signal', 'USR1', name],
    ]);
  });

  it('one that never runs in the engine is never claimed', async () => {
    const { standby } = setup({ running: false });
    standby.leave();
    await flush();
    expect(standby.claim('s1')).toBeUndefined();
  });

  it('a failed rename is said, and the container keeps its name for its removal', async () => {
    const { standby, started, said } = setup({ rename: { exitCode: 1, stderr: 'Error: No such container' } });
    standby.leave();
    await flush();
    standby.claim('s1');
    await flush();
    expect(await started[0]!.engineName).toBe('mcpbox-serve-everything-0');
    expect(said.join('\n')).toMatch(/standby-error: could not claim the standby mcpbox-serve-everything-0 for session s1: Error: No such container/);
  });

  it('one near its idle time is not used: it goes, and a new one is left', async () => {
    const { standby, started } = setup();
    standby.leave();
    await flush();
    vi.setSystemTime(new Date(Date.now() + 590_000));
    expect(standby.claim('s1')).toBeUndefined();
    expect(started[0]!.closed).toBe(true);
    expect(started).toHaveLength(2);
  });

  it("serve's shutdown waits for a discarded one still on its way out, and the waiting one", async () => {
    const { standby, started } = setup();
    standby.leave();
    await flush();
    let gone!: () => void;
    started[0]!.removal = new Promise((resolve) => (gone = resolve));
    vi.setSystemTime(new Date(Date.now() + 590_000));
    expect(standby.claim('s1')).toBeUndefined();
    let stopped = false;
    const shutdown = standby.close().then(() => (stopped = true));
    await flush();
    expect([stopped, started[1]!.closed]).toEqual([false, true]);
    gone();
    await shutdown;
    expect(stopped).toBe(true);
  });

  it('one that reached its idle time is replaced; one that ended sooner is not', async () => {
    const { standby, started, said } = setup();
    standby.leave();
    vi.setSystemTime(new Date(Date.now() + 600_000));
    started[0]!.end(143);
    await flush();
    expect(started).toHaveLength(2);
    expect(said.at(-1)).toMatch(/^standby-expired:/);
    started[1]!.end(1);
    await flush();
    expect(started).toHaveLength(2);
    expect(said.at(-1)).toMatch(/^standby-ended: the standby mcpbox-serve-everything-1 ended after 0 s \(exit 1\)/);
  });

  it("serve's shutdown stops the waiting one and leaves no other", async () => {
    const { standby, started } = setup();
    standby.leave();
    await standby.close();
    expect(started[0]!.closed).toBe(true);
    standby.leave();
    await flush();
    expect(started).toHaveLength(1);
  });
});
