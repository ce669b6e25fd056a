import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
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
import { parseRunnerArgs } from '../../src/runners/table.js';
import { dataVolumeName } from '../../src/sandbox/spec.js';
import { dataOwner } from '../../src/sandbox/plan.js';
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
  // A sweep stamp in the future: run's sweep (a timer, 1.5 s on) would otherwise write one after the
  // test has removed its directory, and leave it behind.
  mkdirSync(join(dir, 'state', 'mcpbox'), { recursive: true });
  const stamp = join(dir, 'state', 'mcpbox', 'last-sweep');
  writeFileSync(stamp, 'tests\n');
  const future = new Date(Date.now() + 365 * 86_400_000);
  utimesSync(stamp, future, future);
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

/** Decisions about installing and starting; egress has tests of its own below. */
const FLAGS: RunFlags = { env: [], mount: [], autoMount: true, lock: true, stopOnEof: false, dryRun: false, client: true, egress: 'none' };
const lockOf = (): LockFile => JSON.parse(readFileSync(join(dir, 'state', 'mcpbox', 'mcpbox.lock'), 'utf8')) as LockFile;
const launched = () => fake.state.runs.map((argv) => (argv.includes('mcpbox-launch') ? 'launch' : argv.at(-3) === 'npx' || argv.includes('npx') ? 'runner' : 'other'));

describe('mcpbox run decides', () => {
  it('first run: image and volumes prepared, resolved and installed (through the egress proxy), locked, then the installed server starts', async () => {
    expect(await run('npx', ['-y', 'pkg'], FLAGS, context())).toBe(0);
    expect(fake.state.calls.filter((c) => !c.startsWith('inspect'))).toEqual([
      // The fake has every volume already: one no record knows is handed to the server's uid, while
      // the egress proxy starts and the install runs (the cold start overlaps them).
      expect.stringMatching(/^hand over mcpbox-npx-pkg-[0-9a-f]{8}-data to 65534:65534$/),
      expect.stringMatching(/^start mcpbox-egress-1000-[0-9a-f]{12}$/),
      'install pkg',
      'run',
    ]);
    expect(launched()).toEqual(['launch']);
    expect(lockOf().servers['npx pkg']).toMatchObject({ name: 'pkg', version: '1.0.0', executable: 'server', pinned: false });
    expect(stderr).toMatch(/resolving and installing pkg \(first run only\)/);
  });

  it("a server's data volume: created before its first session, its HOME; warm starts ask nothing; another uid gets it handed over", async () => {
    const data = dataVolumeName(parseRunnerArgs('npx', ['-y', 'pkg']), dataOwner(context()))!;
    fake.state.missing.add(data);
    expect(await run('npx', ['-y', 'pkg'], FLAGS, context())).toBe(0);
    expect(fake.state.calls).toContain(`volume ${data}`);
    expect(fake.state.runs[0]!.join(' ')).toContain(`--mount type=volume,source=${data},target=/home/mcpbox`);
    fake.state.calls.length = 0;
    expect(await run('npx', ['-y', 'pkg'], FLAGS, context())).toBe(0);
    expect(fake.state.calls[0]).toBe('run');
    expect(fake.state.calls.some((c) => c.startsWith('hand over') || c.startsWith('volume'))).toBe(false);
    // Now with a writable path of the user's: the server runs as 1000, and its files become 1000's.
    fake.state.calls.length = 0;
    const asUser = { ...context(), fs: { realpath: (p: string) => (p === '/srv/notes' ? p : undefined), kind: () => 'dir' as const } };
    expect(await run('npx', ['-y', 'pkg', '/srv/notes'], FLAGS, asUser)).toBe(0);
    expect(fake.state.calls).toContain(`hand over ${data} to 1000:1000`);
    fake.state.calls.length = 0;
    expect(await run('npx', ['-y', 'pkg', '/srv/notes'], FLAGS, asUser)).toBe(0);
    expect(fake.state.calls.some((c) => c.startsWith('hand over'))).toBe(false);
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

  it('pull warms what the real launch uses: a server that runs as you (it writes your files) starts warm, no second install', async () => {
    const data = dataVolumeName(parseRunnerArgs('npx', ['-y', 'a']), dataOwner(context()))!;
    fake.state.missing.add(data);
    expect(await pull('npx', ['a'], context())).toBe(0);
    fake.state.calls.length = 0;
    const asUser = { ...context(), fs: { realpath: (p: string) => (p === '/srv/notes' ? p : undefined), kind: () => 'dir' as const } };
    expect(await run('npx', ['-y', 'a', '/srv/notes'], FLAGS, asUser)).toBe(0);
    expect(fake.state.calls[0]).toBe('run');
    expect(fake.state.calls.some((c) => c.startsWith('install') || c.startsWith('hand over') || c.startsWith('volume'))).toBe(false);
    expect(fake.state.runs[0]!.join(' ')).toContain('--user 1000:1000');
  });

  it('update resolves every locked server again and says what changed', async () => {
    await pull('npx', ['a', 'b@1.0.0'], context());
    stdout = '';
    fake.state.version = '2.0.0';
    expect(await update([], context())).toBe(0);
    expect(stdout.split('\n').sort()).toEqual(['', 'a 1.0.0 → 2.0.0', 'b 1.0.0 → 2.0.0']);
  });

  it('update of an unchanged server says it checked, not "first run", and that it is up to date', async () => {
    await pull('npx', ['a'], context());
    stdout = '';
    stderr = '';
    expect(await update([], context())).toBe(0);
    expect(stdout).toBe('a 1.0.0 (up to date)\n');
    expect(stderr).toMatch(/checking a for a newer version than 1\.0\.0 \(installed only if there is one\)/);
    expect(stderr).not.toMatch(/first run/);
  });

  it('update of a package that is not locked is refused (exit 64) before the engine is opened', async () => {
    const ctx = { ...context(), openEngine: () => Promise.reject(new Error('opened')) };
    await expect(update(['nope'], ctx)).rejects.toMatchObject({ exitCode: 64, message: expect.stringMatching(/^not in .*mcpbox\.lock: nope$/) });
  });
});

describe('a failed install says its cause', () => {
  const LOG = 'npm error A complete log of this run can be found in: /mcpbox/cache/npm/_logs/x-debug-0.log';

  it.each([
    ['E404', `npm error code E404\nnpm error 404 Not Found - GET https://registry.npmjs.org/nope\n${LOG}`, /: E404, no such package \(or version\) on the registry: check the name$/, /see the install output/],
    ['a TLS-intercepting proxy', `npm error code SELF_SIGNED_CERT_IN_CHAIN\nnpm error errno SELF_SIGNED_CERT_IN_CHAIN\n${LOG}`, /: SELF_SIGNED_CERT_IN_CHAIN: the registry's certificate isn't trusted, which is what a TLS-intercepting proxy does$/, /^set NODE_EXTRA_CA_CERTS \(or SSL_CERT_FILE\) .* mounted into every sandbox$/],
    ['the supply-chain check behind such a proxy', 'mcpbox: the supply-chain check could not read the registry: fetch failed (SELF_SIGNED_CERT_IN_CHAIN)', /: SELF_SIGNED_CERT_IN_CHAIN: the registry's certificate isn't trusted/, /CA bundle/],
    ['uv behind such a proxy', 'error: Request failed\n  Caused by: invalid peer certificate: UnknownIssuer', /: TLS: the registry's certificate isn't trusted/, /^set NODE_EXTRA_CA_CERTS \(or SSL_CERT_FILE\)/],
    ['anything else: its last line, never the log path', `npm error something odd\n${LOG}`, /: npm error something odd$/, /see the install output/],
  ])('%s', async (_what, stderr, message, hint) => {
    fake.state.installFailure = { exitCode: 1, stderr };
    const runner = stderr.includes('UnknownIssuer') ? 'uvx' : 'npx';
    const error = await pull(runner, [runner === 'uvx' ? 'mcp-server-nope' : 'nope-pkg'], context()).catch((e: unknown) => e);
    expect(error).toMatchObject({ exitCode: 75, message: expect.stringMatching(message), hint: expect.stringMatching(hint) });
  });
});

describe('egress', () => {
  const argvOf = (i = -1) => fake.state.runs.at(i)!;
  const flag = (argv: string[], name: string) => argv.flatMap((a, i) => (a === name ? [argv[i + 1]!] : []));
  const learnFlags: RunFlags = { ...FLAGS, egress: undefined };

  it('a package mcpbox knows nothing of learns: no network of its own, the proxy socket, the forwarder, a grant', async () => {
    await run('npx', ['-y', 'pkg'], learnFlags, context());
    const argv = argvOf();
    expect(flag(argv, '--network')).toEqual(['none']);
    expect(flag(argv, '--mount')).toContainEqual(expect.stringMatching(/^type=volume,source=mcpbox-egress-1000-[0-9a-f]{12}-socket,target=\/mcpbox\/egress,ro$/));
    expect(flag(argv, '--env')).toEqual(expect.arrayContaining(['HTTPS_PROXY=http://127.0.0.1:3128', 'NODE_USE_ENV_PROXY=1', 'NO_PROXY=localhost,127.0.0.1,::1']));
    expect(flag(argv, '--env-file')).toEqual(['/run/fake/env']);
    expect(argv.join(' ')).toMatch(/node -e .*MCPBOX-EGRESS .*python3 -I -c/s);
    expect([...fake.state.containers].filter(([name, c]) => name.startsWith('mcpbox-egress-1000-') && c.running)).toHaveLength(1);
  });

  it('what the first session reaches is recorded in the lock entry and said; the next session allows exactly that', async () => {
    const running = run('npx', ['-y', 'pkg'], learnFlags, context());
    await new Promise((r) => setTimeout(r, 20));
    // The proxy's decisions about this server's container: its grant names its run.
    const token = fake.state.envFiles.flat().findLast((l) => l.name === 'MCPBOX_EGRESS_TOKEN')!.value;
    const { r: runId } = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { r: string };
    const decide = (host: string, action: string) => JSON.stringify({ t: 'now', run: runId, server: 'pkg', mode: 'learn', host, port: 443, action });
    for (const feed of fake.state.followers) feed(decide('api.example.com', 'allowed'));
    await running;
    expect(lockOf().servers['npx pkg']!.egress).toEqual(['api.example.com']);
    expect(stderr).toMatch(/learning egress for pkg: api\.example\.com/);
    expect(stderr).toMatch(/learned egress for pkg: api\.example\.com; from its next session only that is allowed/);
    stderr = '';
    const next = run('npx', ['-y', 'pkg'], learnFlags, context());
    await new Promise((r) => setTimeout(r, 20));
    const second = fake.state.envFiles.flat().findLast((l) => l.name === 'MCPBOX_EGRESS_TOKEN')!.value;
    const policy = JSON.parse(Buffer.from(second.split('.')[1]!, 'base64url').toString()) as { m: string; h: string[]; r: string };
    expect([policy.m, policy.h]).toEqual(['allow', ['api.example.com']]);
    for (const feed of fake.state.followers) feed(JSON.stringify({ t: 'now', run: policy.r, server: 'pkg', mode: 'allow', host: 'evil.example', port: 443, action: 'refused', reason: 'not in its egress list' }));
    await next;
    expect(stderr).toMatch(/blocked pkg → evil\.example:443 \(not in its egress list; allow with: mcpbox allow pkg evil\.example\)/);
  });

  it('a built-in default: server-everything has no network at all, and no proxy', async () => {
    await run('npx', ['-y', '@modelcontextprotocol/server-everything'], learnFlags, context());
    expect(flag(argvOf(), '--network')).toEqual(['none']);
    expect(argvOf().join(' ')).not.toContain('/mcpbox/egress');
  });

  it('--egress open is the network as it was; --network none is none, whatever egress says', async () => {
    await run('npx', ['-y', 'pkg'], { ...FLAGS, egress: 'open' }, context());
    expect(flag(argvOf(), '--network')).toEqual(['bridge']);
    await run('npx', ['-y', 'pkg'], { ...FLAGS, egress: 'open', network: 'none' }, context());
    expect(flag(argvOf(), '--network')).toEqual(['none']);
  });

  it('--egress with something that is not a policy is refused (exit 64)', async () => {
    await expect(run('npx', ['-y', 'pkg'], { ...FLAGS, egress: 'https://evil' }, context())).rejects.toMatchObject({ exitCode: 64 });
  });
});

describe('egress of runs that resolve at run time', () => {
  it('an unlocked run may reach its registry, and the one it names', async () => {
    await run('npx', ['--registry', 'https://npm.corp.example:8443/', '-p', 'pkg', '-c', 'tool'], { ...FLAGS, egress: 'api.example.com' }, context());
    const token = fake.state.envFiles.flat().findLast((l) => l.name === 'MCPBOX_EGRESS_TOKEN')!.value;
    const policy = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { h: string[] };
    expect(policy.h.sort()).toEqual(['api.example.com', 'npm.corp.example:8443', 'registry.npmjs.org']);
  });
});
