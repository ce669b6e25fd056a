import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CommandContext } from '../../src/commands/context.js';
import { pull } from '../../src/commands/pull.js';
import { run, type RunFlags } from '../../src/commands/run.js';
import { update } from '../../src/commands/update.js';
import type { LockFile } from '../../src/install/lock.js';
import { createLogger } from '../../src/log.js';
import { fakeEngine } from './fake-engine.js';

/**
 * The command layer through CommandContext, with a fake engine and a host where no path exists:
 * what run, pull and update decide (warm start, prepare, refresh, dry run), without an engine.
 */
let dir: string;
let fake: ReturnType<typeof fakeEngine>;
let stdout: string;
let stderr: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mcpbox-commands-'));
  writeFileSync(join(dir, 'config.json'), '{}');
  fake = fakeEngine();
  stdout = '';
  stderr = '';
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function context(): CommandContext {
  const out = new PassThrough();
  out.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  return {
    env: { XDG_STATE_HOME: join(dir, 'state'), MCPBOX_CONFIG: join(dir, 'config.json'), PATH: '/usr/bin:/bin' },
    cwd: dir,
    stdin: new PassThrough(),
    stdout: out,
    log: createLogger({ write: (text) => (stderr += text) }),
    pid: 4242,
    home: join(dir, 'home'),
    platform: 'linux',
    uid: 1000,
    gid: 1000,
    username: 'me',
    fs: { realpath: () => undefined, kind: () => undefined },
    openEngine: async () => ({ engine: fake.engine, env: { PATH: '/usr/bin' } }),
  };
}

const FLAGS: RunFlags = { env: [], mount: [], autoMount: true, lock: true, stopOnEof: false, dryRun: false, client: true };
const lockOf = (): LockFile => JSON.parse(readFileSync(join(dir, 'state', 'mcpbox', 'mcpbox.lock'), 'utf8')) as LockFile;
const launched = () => fake.state.runs.map((argv) => (argv.includes('mcpbox-launch') ? 'launch' : argv.at(-3) === 'npx' || argv.includes('npx') ? 'runner' : 'other'));

describe('mcpbox run decides', () => {
  it('first run: image and volumes prepared, resolved and installed, locked, then the installed server starts', async () => {
    expect(await run('npx', ['-y', 'pkg'], FLAGS, context())).toBe(0);
    expect(fake.state.calls.filter((c) => !c.startsWith('inspect'))).toEqual(['install pkg', 'run']);
    expect(launched()).toEqual(['launch']);
    expect(lockOf().servers['npx pkg']).toMatchObject({ name: 'pkg', version: '1.0.0', executable: 'server', pinned: false });
    expect(stderr).toMatch(/resolving and installing pkg \(first run only\)/);
  });

  it('warm start: the installed server starts first; nothing is installed; image and volume are checked meanwhile', async () => {
    await run('npx', ['-y', 'pkg'], FLAGS, context());
    fake.state.calls.length = 0;
    fake.state.runs.length = 0;
    expect(await run('npx', ['-y', 'pkg', '--port', '1'], FLAGS, context())).toBe(0);
    expect(fake.state.calls[0]).toBe('run');
    expect(fake.state.calls.some((c) => c.startsWith('install'))).toBe(false);
    expect(fake.state.calls).toContainEqual(expect.stringMatching(/^inspect mcpbox\/npx:\w+ mcpbox-npx-pkg-\w+-install$/));
    expect(fake.state.runs[0]!.slice(-2)).toEqual(['--port', '1']);
  });

  it('a warm start whose image is gone is retried: built, then started again', async () => {
    await run('npx', ['-y', 'pkg'], FLAGS, context());
    const image = /mcpbox\/npx:\w+/.exec(fake.state.calls.find((c) => c.startsWith('inspect'))!)![0];
    fake.state.calls.length = 0;
    fake.state.runs.length = 0;
    fake.state.missing.add(image);
    expect(await run('npx', ['-y', 'pkg'], FLAGS, context())).toBe(0);
    const name = fake.state.runs[0]![fake.state.runs[0]!.indexOf('--name') + 1];
    expect(fake.state.calls.filter((c) => !c.startsWith('inspect'))).toEqual(['run', `remove ${name}`, `build ${image}`, 'run']);
    expect(stderr).toMatch(/the image .* is gone \(nothing was read from the client yet\): preparing it again/);
  });

  it('a lock due for a refresh resolves again before starting; a newer version is said', async () => {
    await run('npx', ['-y', 'pkg'], FLAGS, context());
    const lock = lockOf();
    writeFileSync(join(dir, 'state', 'mcpbox', 'mcpbox.lock'), JSON.stringify({ ...lock, servers: { 'npx pkg': { ...lock.servers['npx pkg']!, resolvedAt: '2000-01-01T00:00:00.000Z' } } }));
    fake.state.calls.length = 0;
    fake.state.version = '1.1.0';
    expect(await run('npx', ['-y', 'pkg'], FLAGS, context())).toBe(0);
    expect(fake.state.calls.filter((c) => !c.startsWith('inspect'))).toEqual(['install pkg', 'run']);
    expect(stderr).toMatch(/updated pkg 1\.0\.0 → 1\.1\.0/);
    expect(lockOf().servers['npx pkg']!.version).toBe('1.1.0');
  });

  it('a pinned lock never refreshes', async () => {
    await run('npx', ['-y', 'pkg@1.0.0'], FLAGS, context());
    const lock = lockOf();
    writeFileSync(join(dir, 'state', 'mcpbox', 'mcpbox.lock'), JSON.stringify({ ...lock, servers: { 'npx pkg@1.0.0': { ...lock.servers['npx pkg@1.0.0']!, resolvedAt: '2000-01-01T00:00:00.000Z' } } }));
    fake.state.calls.length = 0;
    await run('npx', ['-y', 'pkg@1.0.0'], FLAGS, context());
    expect(fake.state.calls.some((c) => c.startsWith('install'))).toBe(false);
  });

  it('what isn\'t locked (npx -c, --no-lock) runs through the runner, never installed', async () => {
    await run('npx', ['-p', 'pkg', '-c', 'tool'], FLAGS, context());
    await run('npx', ['-y', 'pkg'], { ...FLAGS, lock: false }, context());
    expect(fake.state.calls.some((c) => c.startsWith('install'))).toBe(false);
    expect(launched()).toEqual(['runner', 'runner']);
  });

  it("the server's exit code is mcpbox's", async () => {
    fake.state.exitCode = 3;
    expect(await run('npx', ['-y', 'pkg'], FLAGS, context())).toBe(3);
  });
});

describe('mcpbox run --dry-run', () => {
  it('not installed: the command that resolves on every start (after its cache check), with a note; no engine opened', async () => {
    const ctx = { ...context(), openEngine: () => Promise.reject(new Error('opened')) };
    expect(await run('npx', ['-y', 'pkg'], { ...FLAGS, dryRun: true }, ctx)).toBe(0);
    expect(stdout).toMatch(/^\/usr\/bin\/docker run --rm --interactive --init .* --entrypoint sh mcpbox\/npx:\w+ -c '.*du -sk \/mcpbox\/cache.*exec "\$@"' mcpbox npx -y pkg\n$/);
    expect(stderr).toMatch(/pkg is not installed yet: a real run resolves, installs and locks it first/);
  });

  it('installed: the command that starts the installed server', async () => {
    await run('npx', ['-y', 'pkg'], FLAGS, context());
    stdout = '';
    await run('npx', ['-y', 'pkg'], { ...FLAGS, dryRun: true }, context());
    expect(stdout).toMatch(/--entrypoint sh mcpbox\/npx:\w+ -c .* mcpbox-launch \/mcpbox\/install\/tree-\w+-abc123 package-lock\.json node_modules\/\.bin \w{64} a{64} c{64} server\n$/s);
    expect(fake.state.runs).toHaveLength(1);
  });
});

describe('mcpbox pull and update', () => {
  it('pull prepares each package and says so, one line each', async () => {
    expect(await pull('npx', ['a', 'b@1.0.0'], context())).toBe(0);
    expect(fake.state.calls.filter((c) => c.startsWith('install'))).toEqual(['install a', 'install b@1.0.0']);
    expect(stdout.split('\n')).toEqual([
      `npx a@1.0.0 ready (server, locked in ${join(dir, 'state', 'mcpbox', 'mcpbox.lock')})`,
      `npx b@1.0.0 ready (server, locked in ${join(dir, 'state', 'mcpbox', 'mcpbox.lock')})`,
      '',
    ]);
    expect(fake.state.runs).toEqual([]);
  });

  it('update resolves every locked server again and says what changed', async () => {
    await pull('npx', ['a', 'b@1.0.0'], context());
    stdout = '';
    fake.state.version = '2.0.0';
    expect(await update([], context())).toBe(0);
    expect(stdout.split('\n').sort()).toEqual(['', 'a 1.0.0 → 2.0.0', 'b 1.0.0 → 2.0.0']);
  });

  it('update of a package that is not locked is refused (exit 64) before the engine is opened', async () => {
    const ctx = { ...context(), openEngine: () => Promise.reject(new Error('opened')) };
    await expect(update(['nope'], ctx)).rejects.toMatchObject({ exitCode: 64, message: expect.stringMatching(/^not in .*mcpbox\.lock: nope$/) });
  });
});
