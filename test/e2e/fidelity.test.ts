import { chmodSync, chownSync, cpSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { containersOf, docker, EMPTY_CONFIG, ENGINE_CLI, MCPBOX, mcpbox, ROOT, testEnv, textOf, waitFor } from './helpers.js';

const engine = inject('engine');
const FILESYSTEM = '@modelcontextprotocol/server-filesystem';

/**
 * The invoking user for the ownership tests must not be root (root's files can't be handed to
 * nobody, and mcpbox never runs a server as root). CI runs as root, so .ci/run creates this user
 * in the docker group and the test switches to it with runuser.
 */
const E2E_USER = 'mcpbox-e2e';
const isRoot = process.getuid?.() === 0;
const userIds = await (async () => {
  if (!isRoot) return { uid: process.getuid!(), gid: process.getgid!() };
  const id = await execa('id', [E2E_USER], { reject: false });
  if (id.exitCode !== 0) return undefined;
  return { uid: Number(/uid=(\d+)/.exec(id.stdout)![1]), gid: Number(/gid=(\d+)/.exec(id.stdout)![1]) };
})();
if (engine && !userIds && process.env.CI) throw new Error(`e2e: CI runs as root and needs the user ${E2E_USER} in the docker group (.ci/run creates it)`);

/**
 * The CLI as the test user can read it: a checkout under a private directory (say /root) is out of
 * its reach, so then the built package (bin, dist, images, node_modules) is copied somewhere it isn't.
 */
const userApp = await (async () => {
  if (!isRoot || !userIds) return { bin: MCPBOX, config: EMPTY_CONFIG };
  const readable = await execa('runuser', ['-u', E2E_USER, '--', 'test', '-r', MCPBOX], { reject: false });
  const config = join(mkdtempSync(join(tmpdir(), 'mcpbox-e2e-config-')), 'empty.json');
  writeFileSync(config, '{}\n');
  chmodSync(dirname(config), 0o755);
  chmodSync(config, 0o644);
  if (readable.exitCode === 0) return { bin: MCPBOX, config };
  const copy = mkdtempSync(join(tmpdir(), 'mcpbox-e2e-app-'));
  chmodSync(copy, 0o755);
  for (const part of ['bin', 'dist', 'images', 'node_modules', 'package.json']) cpSync(join(ROOT, part), join(copy, part), { recursive: true });
  return { bin: join(copy, 'bin', 'mcpbox.js'), config };
})();

/** Command and args that start `mcpbox …` as the non-root invoking user. */
function asUser(args: string[]): { command: string; args: string[] } {
  return isRoot
    ? { command: 'runuser', args: ['-u', E2E_USER, '--', process.execPath, userApp.bin, ...args] }
    : { command: process.execPath, args: [MCPBOX, ...args] };
}

function userEnv(home: string) {
  return testEnv({ HOME: home, XDG_STATE_HOME: join(home, '.state'), MCPBOX_CONFIG: userApp.config });
}

// Under Podman another user has no engine of root's: their runs are rootless Podman's own (not covered here).
describe.skipIf(!engine || !userIds || ENGINE_CLI === 'podman')('server-filesystem on host directories, as a non-root user', () => {
  let base: string;
  let allowed: string;
  let sibling: string;
  let home: string;
  let client: Client;
  let transport: StdioClientTransport;
  let container: string;

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'mcpbox-fs-'));
    chmodSync(base, 0o755);
    allowed = join(base, 'allowed');
    sibling = join(base, 'sibling');
    home = join(base, 'home');
    for (const dir of [allowed, sibling, home, join(home, '.ssh')]) mkdirSync(dir, { recursive: true });
    writeFileSync(join(allowed, 'existing.txt'), 'already here\n');
    writeFileSync(join(sibling, 'secret.txt'), 'sibling secret\n');
    writeFileSync(join(home, '.ssh', 'id_canary'), 'PRIVATE KEY CANARY\n');
    for (const path of [base, allowed, sibling, home, join(home, '.ssh'), join(allowed, 'existing.txt'), join(sibling, 'secret.txt'), join(home, '.ssh', 'id_canary')]) {
      chownSync(path, userIds!.uid, userIds!.gid);
    }
    const { command, args } = asUser(['run', 'npx', '-y', FILESYSTEM, allowed]);
    transport = new StdioClientTransport({ command, args, env: userEnv(home), stderr: 'pipe', cwd: base });
    let stderr = '';
    transport.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    client = new Client({ name: 'mcpbox-e2e', version: '0' });
    await client.connect(transport, { timeout: 180_000 }).catch((error: Error) => {
      throw new Error(`${error.message}\n${stderr}`);
    });
    const owner = await waitFor(async () => {
      const ps = await docker(['ps', '--filter', 'label=dev.mcpbox.managed=true', '--filter', `label=dev.mcpbox.package=${FILESYSTEM}`, '--format', '{{.Names}}']);
      return ps.stdout.trim() || undefined;
    }, 10_000, 'the container');
    container = owner.split('\n')[0]!;
  });
  afterAll(async () => {
    await client?.close();
  });

  it('sees the directory at the same path', async () => {
    const result = await client.callTool({ name: 'list_allowed_directories', arguments: {} });
    expect(textOf(result)).toContain(allowed);
    const read = await client.callTool({ name: 'read_text_file', arguments: { path: join(allowed, 'existing.txt') } });
    expect(textOf(read)).toContain('already here');
  });

  it('write_file creates the file on the host, owned by the invoking user', async () => {
    const target = join(allowed, 'written.txt');
    const result = await client.callTool({ name: 'write_file', arguments: { path: target, content: 'from the sandbox\n' } });
    expect(result.isError ?? false).toBe(false);
    expect(readFileSync(target, 'utf8')).toBe('from the sandbox\n');
    const stat = statSync(target);
    expect([stat.uid, stat.gid]).toEqual([userIds!.uid, userIds!.gid]);
  });

  it('runs as the invoking user inside, never root', async () => {
    const id = await docker(['exec', container, 'id', '-u']);
    expect(id.stdout.trim()).toBe(String(userIds!.uid));
  });

  it('a sibling directory that was not passed is invisible', async () => {
    const viaServer = await client.callTool({ name: 'read_text_file', arguments: { path: join(sibling, 'secret.txt') } });
    expect(viaServer.isError).toBe(true);
    const inside = await docker(['exec', container, 'cat', join(sibling, 'secret.txt')]);
    expect(inside.exitCode).not.toBe(0);
    expect(inside.stderr).toMatch(/No such file or directory/);
  });

  it("the host's /etc/shadow and ~/.ssh are out of reach", async () => {
    const viaServer = await client.callTool({ name: 'read_text_file', arguments: { path: '/etc/shadow' } });
    expect(viaServer.isError).toBe(true);
    const shadow = await docker(['exec', container, 'cat', '/etc/shadow']);
    if (isRoot) {
      const hostRoot = readFileSync('/etc/shadow', 'utf8').split('\n')[0]!;
      expect(shadow.stdout).not.toContain(hostRoot);
    }
    const ssh = await docker(['exec', container, 'cat', join(home, '.ssh', 'id_canary')]);
    expect(ssh.exitCode).not.toBe(0);
    expect(ssh.stdout).not.toContain('CANARY');
  });

  it("only the named directory is mounted from the host (not the client's working directory)", async () => {
    const mounts = JSON.parse((await docker(['inspect', '--format', '{{json .Mounts}}', container])).stdout) as { Type: string; Source: string; Destination: string; RW: boolean }[];
    const binds = mounts.filter((m) => m.Type === 'bind' && !m.Destination.startsWith('/mcpbox/ca/'));
    expect(binds.map((m) => [m.Source, m.Destination, m.RW])).toEqual([[allowed, allowed, true]]);
  });

  it('a terminal command writes into the working directory; the file is the invoking user’s', async () => {
    const { command, args } = asUser(['run', 'npx', '-c', 'echo made-in-sandbox > made.txt']);
    const result = await execa(command, args, { cwd: allowed, env: userEnv(home), reject: false, stdin: 'ignore' });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(readFileSync(join(allowed, 'made.txt'), 'utf8')).toBe('made-in-sandbox\n');
    expect(statSync(join(allowed, 'made.txt')).uid).toBe(userIds!.uid);
  });
});

describe.skipIf(!engine)('terminal use: the working directory, in place', () => {
  let project: string;
  beforeAll(() => {
    project = mkdtempSync(join(tmpdir(), 'mcpbox-cwd-'));
    chmodSync(project, 0o755);
    writeFileSync(join(project, 'good.json'), '{ "a": 1 }\n');
  });

  it('mcpbox run npx prettier --check . works in the current directory', async () => {
    const ok = await execa(process.execPath, [MCPBOX, 'run', 'npx', '-y', 'prettier@3', '--check', '.'], { cwd: project, env: testEnv(), reject: false, stdin: 'ignore' });
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/All matched files use Prettier code style/);
    writeFileSync(join(project, 'bad.json'), '{"a":1,\n\n\n"b":   2}');
    const bad = await execa(process.execPath, [MCPBOX, 'run', 'npx', '-y', 'prettier@3', '--check', '.'], { cwd: project, env: testEnv(), reject: false, stdin: 'ignore' });
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toMatch(/bad\.json/);
  });

  it('mcpbox run uvx ruff check . works in the current directory', async () => {
    // --no-cache: as root (CI) the server runs as nobody, who may not write into root's directory.
    const ruff = ['run', 'uvx', 'ruff', 'check', '--no-cache', '.'];
    writeFileSync(join(project, 'clean.py'), 'print("hello")\n');
    const ok = await execa(process.execPath, [MCPBOX, ...ruff], { cwd: project, env: testEnv(), reject: false, stdin: 'ignore' });
    expect(ok.exitCode, ok.stderr).toBe(0);
    writeFileSync(join(project, 'unused.py'), 'import os\n');
    const bad = await execa(process.execPath, [MCPBOX, ...ruff], { cwd: project, env: testEnv(), reject: false, stdin: 'ignore' });
    expect(bad.exitCode).toBe(1);
    expect(bad.stdout).toMatch(/F401/);
    expect(bad.stdout).toMatch(/unused\.py/);
  });

  it('a refused working directory (home) is not mounted, with a note', async () => {
    const home = process.env.HOME!;
    const result = await execa(process.execPath, [MCPBOX, 'run', 'npx', '-c', 'pwd'], { cwd: home, env: testEnv(), reject: false, stdin: 'ignore' });
    expect(result.exitCode).toBe(0);
    expect(result.stdout.trim()).toBe('/home/mcpbox');
    expect(result.stderr).toMatch(new RegExp(`mcpbox: not mounting the working directory ${home}: it is your whole home directory`));
  });

  it('with stdin and stdout on a terminal, the server gets a TTY; interactive input works', async () => {
    const command = `${process.execPath} ${MCPBOX} run npx -c 'test -t 0 && test -t 1 && echo tty-yes; read answer; echo got:$answer'`;
    const result = await execa('script', ['-qec', command, '/dev/null'], { cwd: project, env: testEnv(), input: 'hello\n', reject: false, timeout: 120_000 });
    expect(result.exitCode, result.stdout).toBe(0);
    expect(result.stdout).toContain('tty-yes');
    expect(result.stdout).toContain('got:hello');
  });

  it('never with pipes', async () => {
    const result = await mcpbox(['run', 'npx', '-c', 'test -t 0 || test -t 1 || echo no-tty']);
    expect(result.stdout.trim()).toBe('no-tty');
  });
});

describe.skipIf(!engine)('refusals: one line naming the override, exit 64, nothing started', () => {
  it.each([
    ['the root filesystem', ['/'], /refusing to mount \/ into the sandbox: it is the root filesystem/],
    ['/etc', ['/etc'], /refusing to mount \/etc into the sandbox: it is inside \/etc, a system directory \(hint: pass --mount \/etc to mount it anyway/],
    ['the engine socket', ['/var/run/docker.sock'], /refusing to mount \/var\/run\/docker\.sock .*socket/],
    ['the whole home', ['~'], /refusing to mount ~ into the sandbox: it is your whole home directory/],
  ])('%s', async (_label, paths, message) => {
    const result = await mcpbox(['run', 'npx', '-y', FILESYSTEM, ...paths]);
    expect(result.exitCode).toBe(64);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n').filter((l) => l.includes('(hint:'))).toEqual([expect.stringMatching(message)]);
    expect(await containersOf(result.pid)).toEqual([]);
  });

  it('a path that does not exist passes through unmounted, with a note', async () => {
    const result = await mcpbox(['run', '--dry-run', 'npx', '-y', FILESYSTEM, '/nonexistent/mcpbox-e2e']);
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toContain('/nonexistent/mcpbox-e2e does not exist on this host: passed through, not mounted');
    expect(result.stdout).not.toMatch(/source=\/nonexistent/);
    expect(result.stdout.trim().endsWith('/nonexistent/mcpbox-e2e')).toBe(true);
  });
});

describe.skipIf(!engine)('configuration reaches the engine', () => {
  it('a package policy applies to runs of that package, flags win over it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mcpbox-cfg-'));
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ memory: '1g', packages: { [FILESYSTEM]: { env: ['MY_TOKEN'], memory: '768m', network: 'none' } } }));
    const env = testEnv({ MCPBOX_CONFIG: config, MY_TOKEN: 'secret-token-value' });
    const fsRun = await mcpbox(['run', '--dry-run', '--cpus', '1', 'npx', '-y', FILESYSTEM, dir], { env });
    expect(fsRun.stdout).toMatch(/--memory 768m/);
    expect(fsRun.stdout).toMatch(/--network none/);
    expect(fsRun.stdout).toMatch(/--cpus 1 /);
    expect(fsRun.stdout).toMatch(/--env MY_TOKEN /);
    expect(fsRun.stdout).not.toContain('secret-token-value');
    const other = await mcpbox(['run', '--dry-run', 'npx', '-y', 'some-other-server'], { env });
    expect(other.stdout).toMatch(/--memory 1g/);
    expect(other.stdout).not.toMatch(/MY_TOKEN/);
  });

  it('a user file with secret values readable by others is refused with the chmod that fixes it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mcpbox-cfg-'));
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ env: ['API_KEY=abc'] }));
    chmodSync(config, 0o644);
    const result = await mcpbox(['run', 'npx', '-y', 'x'], { env: testEnv({ MCPBOX_CONFIG: config }) });
    expect(result.exitCode).toBe(78);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim()).toBe(`mcpbox: ${config} holds secret values (API_KEY) but is readable by others (mode 0644) (hint: chmod 600 ${config})`);
  });
});
