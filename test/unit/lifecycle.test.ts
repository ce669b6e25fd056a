import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { supervise, type SuperviseOptions } from '../../src/lifecycle/supervise.js';
import { createLogger } from '../../src/log.js';

/** A stand-in for the engine: `run` gives a child whose exit the test decides. */
function fakeEngine() {
  const events: string[] = [];
  let finish!: (result: { exitCode?: number; signal?: NodeJS.Signals }) => void;
  const exited = new Promise<{ exitCode?: number; signal?: NodeJS.Signals }>((resolve) => {
    finish = resolve;
  });
  const stdin = new PassThrough();
  let stdinEnded = false;
  stdin.on('finish', () => {
    stdinEnded = true;
    events.push('stdin closed');
  });
  const stderr = new PassThrough();
  const child = {
    pid: 1,
    stdin,
    stdout: new PassThrough() as PassThrough | null,
    stderr: stderr as PassThrough | null,
    kill: (signal: NodeJS.Signals) => {
      events.push(`kill ${signal}`);
      return true;
    },
    exit: exited.then((r) => ({ exitCode: r.exitCode ?? null, signal: r.signal ?? null })),
  };
  let runOptions: unknown;
  const engine = {
    run: (_argv: readonly string[], options: unknown) => {
      runOptions = options;
      return child;
    },
    remove: async (names: readonly string[]) => {
      events.push(`remove ${names.join(',')}`);
      engine.running = false;
      finish({ exitCode: 137 });
    },
    watchdog: (name: string) => {
      events.push(`watchdog ${name}`);
      return { release: () => events.push('watchdog released') };
    },
    /** Whether the container still runs after the CLI exits (at a terminal: Ctrl-C, the detach key). */
    running: false,
    inspect: async (names: readonly string[]) => ({
      missing: new Set<string>(),
      volumeIds: new Map<string, string>(),
      containers: new Map(names.map((n) => [n, { running: engine.running, status: engine.running ? 'running' : 'exited', labels: {}, image: '' }])),
      imageIds: new Map<string, string>(),
    }),
    call: async (args: readonly string[]) => {
      events.push(args.join(' '));
      return { exitCode: 0, stdout: '', stderr: '' };
    },
    cause: undefined as 'oom' | 'killed' | undefined,
    exitCause: async (name: string) => {
      events.push(`why ${name}`);
      return engine.cause;
    },
  };
  return { engine, child, stderr, events, finish, runOptions: () => runOptions, stdinEnded: () => stdinEnded };
}

function start(engine: SuperviseOptions['engine'], overrides: Partial<SuperviseOptions> = {}) {
  const input = new PassThrough();
  const signals = new EventEmitter();
  const lines: string[] = [];
  const result = supervise({
    engine,
    argv: ['run'],
    env: {},
    name: 'box',
    stdin: input,
    tty: false,
    stopOnEof: true,
    graceMs: 2000,
    log: createLogger({ write: (t) => lines.push(t) }),
    signals,
    ...overrides,
  });
  return { input, signals, result, lines };
}

describe('supervise', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("passes the server's exit code through and releases the watchdog", async () => {
    const fake = fakeEngine();
    const { result } = start(fake.engine);
    fake.finish({ exitCode: 3 });
    expect(await result).toBe(3);
    expect(fake.events).toEqual(['watchdog box', 'watchdog released']);
  });

  it('runs the engine in its own process group with piped stdin (no terminal)', async () => {
    const fake = fakeEngine();
    const { result } = start(fake.engine);
    fake.finish({ exitCode: 0 });
    await result;
    expect(fake.runOptions()).toMatchObject({ stdin: 'pipe', detached: true });
  });

  it('in a terminal: inherited stdin, same process group, signals left to the terminal', async () => {
    const fake = fakeEngine();
    const { result, signals } = start(fake.engine, { tty: true });
    expect(signals.listenerCount('SIGINT')).toBe(0);
    fake.finish({ exitCode: 0 });
    await result;
    expect(fake.runOptions()).toMatchObject({ stdin: 'inherit', detached: false });
  });

  it('in a terminal, Ctrl-C (the detach key) ends even a server that ignores it: SIGINT, the grace period, removed; exit 130', async () => {
    const fake = fakeEngine();
    const { result } = start(fake.engine, { tty: true });
    fake.engine.running = true; // the CLI left, the container runs on
    fake.finish({ exitCode: 0 });
    await vi.advanceTimersByTimeAsync(100);
    expect(fake.events).toContain('kill --signal SIGINT box');
    expect(fake.events.some((e) => e.startsWith('remove'))).toBe(false);
    await vi.advanceTimersByTimeAsync(2100);
    expect(await result).toBe(130);
    expect(fake.events).toContain('remove box');
  });

  it('in a terminal, a second Ctrl-C after the first removes the container at once', async () => {
    const fake = fakeEngine();
    const { result, signals } = start(fake.engine, { tty: true });
    fake.engine.running = true;
    fake.finish({ exitCode: 0 });
    await vi.advanceTimersByTimeAsync(100);
    signals.emit('SIGINT', 'SIGINT');
    await vi.advanceTimersByTimeAsync(300);
    expect(await result).toBe(130);
    expect(fake.events.filter((e) => e === 'remove box')).toHaveLength(1);
  });

  it('with a hang-up watcher: stdin goes straight to the engine, and its end still stops a stubborn server', async () => {
    const fake = fakeEngine();
    let hangUp: () => void = () => {};
    let stopped = false;
    const { result } = start(fake.engine, {
      watchEof: (onEnd) => {
        hangUp = onEnd;
        return { stop: () => (stopped = true) };
      },
    });
    expect(fake.runOptions()).toMatchObject({ stdin: 'inherit', detached: true });
    expect(fake.child.stdin.listenerCount('data')).toBe(0);
    hangUp();
    await vi.advanceTimersByTimeAsync(2000);
    expect(fake.events).toContain('kill SIGTERM');
    await vi.advanceTimersByTimeAsync(2000);
    expect(fake.events).toContain('remove box');
    expect(await result).toBe(137);
    expect(stopped).toBe(true);
  });

  it('no watcher where end of input stops nothing (terminal, or stdin not a pipe)', async () => {
    const fake = fakeEngine();
    let started = 0;
    const watchEof = () => {
      started++;
      return { stop: () => {} };
    };
    const first = start(fake.engine, { tty: true, watchEof });
    fake.finish({ exitCode: 0 });
    await first.result;
    const second = start(fakeEngine().engine, { stopOnEof: false, watchEof });
    void second;
    expect(started).toBe(0);
  });

  it('a warm start holds the engine’s stderr until its check passes, then lets it all through', async () => {
    const fake = fakeEngine();
    let pass!: (v: 'ok' | 'retry') => void;
    const written: string[] = [];
    const out = new PassThrough();
    out.on('data', (c: Buffer) => written.push(c.toString()));
    const { result } = start(fake.engine, { verify: () => new Promise((r) => (pass = r)), stderr: out });
    expect(fake.runOptions()).toMatchObject({ stderr: 'pipe' });
    fake.stderr.write('early log\n');
    await vi.advanceTimersByTimeAsync(0);
    expect(written).toEqual([]);
    pass('ok');
    await vi.advanceTimersByTimeAsync(0);
    fake.stderr.write('later log\n');
    await vi.advanceTimersByTimeAsync(0);
    expect(written.join('')).toBe('early log\nlater log\n');
    fake.finish({ exitCode: 0 });
    expect(await result).toBe(0);
  });

  it('a warm start whose check fails: engine output dropped, container removed, "retry"', async () => {
    const fake = fakeEngine();
    const written: string[] = [];
    const out = new PassThrough();
    out.on('data', (c: Buffer) => written.push(c.toString()));
    const { result } = start(fake.engine, { verify: () => Promise.resolve('retry' as const), stderr: out });
    fake.stderr.write('docker: Error response from daemon: No such image\n');
    expect(await result).toBe('retry');
    expect(written).toEqual([]);
    expect(fake.events).toContain('remove box');
    expect(fake.events.at(-1)).toBe('watchdog released');
  });

  it('attaching to a standby holds the client\'s input until the check passes, then lets it all through', async () => {
    const fake = fakeEngine();
    let pass!: (v: 'ok' | 'retry') => void;
    const received: string[] = [];
    fake.child.stdin.on('data', (c: Buffer) => received.push(c.toString()));
    const { input, result } = start(fake.engine, { verify: () => new Promise((r) => (pass = r)), holdInput: true, stderr: new PassThrough() });
    expect(fake.runOptions()).toMatchObject({ stdin: 'pipe' });
    input.write('{"jsonrpc":"2.0","id":1,"method":"initialize"}\n');
    await vi.advanceTimersByTimeAsync(0);
    expect(received).toEqual([]);
    pass('ok');
    await vi.advanceTimersByTimeAsync(0);
    expect(received.join('')).toBe('{"jsonrpc":"2.0","id":1,"method":"initialize"}\n');
    input.end();
    await vi.advanceTimersByTimeAsync(0);
    expect(fake.stdinEnded()).toBe(true);
    fake.finish({ exitCode: 0 });
    expect(await result).toBe(0);
  });

  it('a standby that fails its check gets none of the input: it stays for the next start', async () => {
    const fake = fakeEngine();
    const received: string[] = [];
    fake.child.stdin.on('data', (c: Buffer) => received.push(c.toString()));
    const { input, result } = start(fake.engine, { verify: () => Promise.resolve('retry' as const), holdInput: true, stderr: new PassThrough() });
    input.write('first message\n');
    expect(await result).toBe('retry');
    expect(received).toEqual([]);
    expect(input.read()?.toString()).toBe('first message\n');
    expect(fake.events).toContain('remove box');
  });

  it('a cold start: stderr inherited, nothing held', async () => {
    const fake = fakeEngine();
    const { result } = start(fake.engine);
    expect(fake.runOptions()).toMatchObject({ stderr: 'inherit' });
    fake.finish({ exitCode: 0 });
    await result;
  });

  it('client input reaches the server', async () => {
    const fake = fakeEngine();
    const { input, result } = start(fake.engine);
    const received: string[] = [];
    fake.child.stdin.on('data', (chunk: Buffer) => received.push(chunk.toString()));
    input.write('{"jsonrpc":"2.0"}\n');
    await vi.advanceTimersByTimeAsync(0);
    expect(received.join('')).toBe('{"jsonrpc":"2.0"}\n');
    fake.finish({ exitCode: 0 });
    await result;
  });

  it('end of input: stdin closes, then SIGTERM after the grace period, then removal', async () => {
    const fake = fakeEngine();
    const { input, result } = start(fake.engine);
    input.end();
    await vi.advanceTimersByTimeAsync(10);
    expect(fake.stdinEnded()).toBe(true);
    expect(fake.events).not.toContain('kill SIGTERM');
    await vi.advanceTimersByTimeAsync(2000);
    expect(fake.events).toContain('kill SIGTERM');
    expect(fake.events).not.toContain('remove box');
    await vi.advanceTimersByTimeAsync(2000);
    expect(fake.events).toContain('remove box');
    expect(await result).toBe(137);
    expect(fake.events.at(-1)).toBe('watchdog released');
  });

  it('end of input, server exits in time: nothing more happens', async () => {
    const fake = fakeEngine();
    const { input, result } = start(fake.engine);
    input.end();
    await vi.advanceTimersByTimeAsync(500);
    fake.finish({ exitCode: 0 });
    expect(await result).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(fake.events).toEqual(['watchdog box', 'stdin closed', 'watchdog released']);
  });

  it('end of input with stopOnEof off (stdin not a pipe): the server keeps running', async () => {
    const fake = fakeEngine();
    const { input, result } = start(fake.engine, { stopOnEof: false });
    input.end();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(fake.events).not.toContain('kill SIGTERM');
    fake.finish({ exitCode: 0 });
    expect(await result).toBe(0);
  });

  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const)('%s is passed on once; a server still running after the grace period is removed; exit 128+signal', async (signal, code) => {
    const fake = fakeEngine();
    const { signals, result } = start(fake.engine);
    signals.emit(signal, signal);
    expect(fake.events).toContain(`kill ${signal}`);
    await vi.advanceTimersByTimeAsync(1999);
    expect(fake.events).not.toContain('remove box');
    await vi.advanceTimersByTimeAsync(1);
    expect(fake.events).toContain('remove box');
    expect(await result).toBe(code);
    expect(signals.listenerCount(signal)).toBe(0);
  });

  it('under Podman the engine signals the container (its rootless CLI garbles proxied signals); one not created yet gets it through the CLI', async () => {
    const fake = fakeEngine();
    const engine = { ...fake.engine, cli: 'podman' as const };
    const { signals, result } = start(engine);
    signals.emit('SIGTERM', 'SIGTERM');
    await vi.advanceTimersByTimeAsync(0);
    expect(fake.events).toContain('kill --signal SIGTERM box');
    expect(fake.events).not.toContain('kill SIGTERM');
    fake.finish({ exitCode: 143 });
    expect(await result).toBe(143);

    const early = fakeEngine();
    const notYet = { ...early.engine, cli: 'podman' as const, call: async (args: readonly string[]) => (early.events.push(args.join(' ')), { exitCode: 125, stdout: '', stderr: 'no such container' }) };
    const second = start(notYet);
    second.signals.emit('SIGINT', 'SIGINT');
    await vi.advanceTimersByTimeAsync(0);
    expect(early.events).toEqual(expect.arrayContaining(['kill --signal SIGINT box', 'kill SIGINT']));
    early.finish({ exitCode: 130 });
    expect(await second.result).toBe(130);
  });

  it('a server that exits on the signal keeps its own exit code', async () => {
    const fake = fakeEngine();
    const { signals, result } = start(fake.engine);
    signals.emit('SIGTERM', 'SIGTERM');
    fake.finish({ exitCode: 0 });
    expect(await result).toBe(0);
    expect(fake.events).not.toContain('remove box');
  });

  it('a second signal removes the container at once', async () => {
    const fake = fakeEngine();
    const { signals, result } = start(fake.engine);
    signals.emit('SIGINT', 'SIGINT');
    signals.emit('SIGINT', 'SIGINT');
    expect(fake.events.filter((e) => e === 'kill SIGINT')).toHaveLength(1);
    expect(fake.events).toContain('remove box');
    expect(await result).toBe(130);
  });

  it('the engine CLI itself killed: the container is removed before mcpbox exits', async () => {
    const fake = fakeEngine();
    const { result } = start(fake.engine);
    fake.finish({ signal: 'SIGKILL' });
    expect(await result).toBe(137);
    expect(fake.events).toEqual(['watchdog box', 'remove box', 'watchdog released']);
  });

  it.each([
    ['oom', /ran out of memory \(limit 512m\) and the kernel killed it \(exit 137\)/],
    ['killed', /killed from outside mcpbox/],
  ] as const)('a SIGKILL mcpbox did not send is explained: %s', async (cause, message) => {
    vi.useRealTimers();
    const fake = fakeEngine();
    fake.engine.cause = cause;
    const { result, lines } = start(fake.engine, { memory: '512m' });
    fake.finish({ exitCode: 137 });
    expect(await result).toBe(137);
    expect(lines.join('')).toMatch(message);
  });

  it('an exit of 137 after mcpbox removed the server asks nothing', async () => {
    const fake = fakeEngine();
    const { signals, result } = start(fake.engine);
    signals.emit('SIGTERM', 'SIGTERM');
    await vi.advanceTimersByTimeAsync(2500);
    await result;
    expect(fake.events.some((e) => e.startsWith('why'))).toBe(false);
  });
});
