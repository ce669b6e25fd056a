import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, inject, it } from 'vitest';
import type { InstallRecord, LockFile } from '../../src/install/lock.js';
import { containersOf, docker, ENGINE_CLI, LIMITS_ENFORCED, mcpbox, quietStateDir, testEnv } from './helpers.js';

/**
 * Attacks on the path around the sandbox: a repository the user merely `cd`s into, a lock that came
 * with it, the engine CLI's environment, the installed code between runs. Each test is an attack
 * that must fail, with a clear message, nothing on stdout and nothing left behind. This file grows
 * with every finding.
 */
const engine = inject('engine');
const INITIALIZE =
  '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"0"}}}\n';
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

const made: string[] = [];
const volumes: string[] = [];
function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `mcpbox-sec-${prefix}-`));
  chmodSync(dir, 0o755);
  made.push(dir);
  return dir;
}
afterAll(async () => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
  if (volumes.length > 0) await docker(['volume', 'rm', '--force', ...volumes]);
});

/** A cloned repository: package.json (the project root) plus the files given. */
function repository(files: Record<string, string>): string {
  const repo = tempDir('repo');
  writeFileSync(join(repo, 'package.json'), '{"name":"cloned"}\n');
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(repo, name, '..'), { recursive: true });
    writeFileSync(join(repo, name), text);
  }
  return repo;
}

/** Runs mcpbox in a repository with the search for project files on (no MCPBOX_CONFIG). */
function inRepo(repo: string, args: string[], extra: Record<string, string> = {}) {
  const env = testEnv({ XDG_CONFIG_HOME: tempDir('xdg'), ...extra });
  delete env.MCPBOX_CONFIG;
  return mcpbox(args, { cwd: repo, env });
}

describe('a hostile project directory', () => {
  it.each(['mcpbox.config.js', 'mcpbox.config.mjs', '.mcpboxrc.cjs', '.config/mcpboxrc.ts'])('%s is never run, by run --dry-run or any other command', async (file) => {
    const marker = join(tempDir('marker'), 'ran');
    const repo = repository({ [file]: `require('fs').writeFileSync(${JSON.stringify(marker)}, 'pwned'); module.exports = {};\n` });
    for (const args of [['run', '--dry-run', 'npx', '-y', 'cowsay'], ['ps'], ['doctor']]) {
      const result = await inRepo(repo, args);
      expect(result.exitCode, args.join(' ')).toBe(78);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(new RegExp(`${file.replace(/\./g, '\\.')}: a project's mcpbox configuration must be data \\(JSON or YAML\\)`));
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect(existsSync(marker)).toBe(false);
  });

  it.each([
    ['the home directory', () => process.env.HOME ?? '/root'],
    ['/etc', () => '/etc'],
    ['the engine socket', () => '/var/run/docker.sock'],
  ])('a committed symlink to %s is refused as a mount', async (_label, target) => {
    const repo = repository({ '.mcpboxrc.json': JSON.stringify({ mounts: ['./innocent'] }) });
    symlinkSync(target(), join(repo, 'innocent'));
    const result = await inRepo(repo, ['run', '--dry-run', 'npx', '-y', 'cowsay']);
    expect(result.exitCode).toBe(78);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/"mounts" mounts .*innocent \(really .*\), outside the project/);
  });

  it.each([
    [{ images: { npx: 'attacker/npx' } }, /"images" chooses an image/],
    [{ packages: { cowsay: { image: 'attacker/npx' } } }, /"packages\.cowsay\.image" chooses an image/],
    [{ imageVariant: 'browser' }, /"imageVariant" chooses an image/],
    [{ baseImages: { 'npx-browser': 'attacker/base' } }, /"baseImages" chooses an image/],
    [{ env: ['LD_PRELOAD=./evil.so'] }, /"env" sets LD_PRELOAD/],
    [{ env: ['NODE_OPTIONS=--require ./evil.js'] }, /"env" sets NODE_OPTIONS/],
    [{ network: 'host-like-net' }, /"network" joins the network "host-like-net"/],
  ])('refused: %j', async (config, message) => {
    const result = await inRepo(repository({ '.mcpboxrc.json': JSON.stringify(config) }), ['run', '--dry-run', 'npx', '-y', 'cowsay']);
    expect(result.exitCode).toBe(78);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(message);
  });

  it('limits only tighten: a project asking for 64g, 64 CPUs and 99999999 processes gets the defaults', async () => {
    const repo = repository({ '.mcpboxrc.json': JSON.stringify({ memory: '64g', cpus: 64, pids: 99999999 }) });
    const result = await inRepo(repo, ['run', '--dry-run', 'npx', '-y', 'cowsay']);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/--memory 2g .*--cpus 2 /);
    expect(result.stdout).toMatch(/--pids-limit 512 /);
    const tighter = await inRepo(repository({ '.mcpboxrc.json': JSON.stringify({ memory: '256m', network: 'none' }) }), ['run', '--dry-run', 'npx', '-y', 'cowsay']);
    expect(tighter.stdout).toMatch(/--memory 256m .*--network none /);
  });
});

describe('paths that contain the home directory', () => {
  it('the working directory above home is not mounted; ~/.. as an argument is refused', async () => {
    const base = tempDir('above');
    const home = join(base, 'home');
    mkdirSync(home);
    writeFileSync(join(home, '.npmrc'), '//registry.npmjs.org/:_authToken=npm_CANARY_TOKEN\n');
    const env = testEnv({ HOME: home });
    const refused = await mcpbox(['run', 'npx', '-y', '@modelcontextprotocol/server-filesystem', '~/..'], { env, cwd: home });
    expect(refused.exitCode).toBe(64);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/refusing to mount ~\/\.\. into the sandbox: it contains your home directory/);
    expect(await containersOf(refused.pid)).toEqual([]);
    if (!engine) return;
    const above = await mcpbox(['run', 'npx', '-c', `cat ${join(home, '.npmrc')} || echo unreadable`], { env, cwd: base });
    expect(above.stderr).toMatch(new RegExp(`not mounting the working directory ${base}: it contains your home directory`));
    expect(above.stdout).not.toContain('CANARY');
    expect(above.stdout).toContain('unreadable');
  });
});

describe('an image name read as a flag', () => {
  it('is refused before the engine sees it', async () => {
    const result = await mcpbox(['run', '--image=--privileged', 'npx', '-y', 'cowsay']);
    expect([result.exitCode, result.stdout]).toEqual([64, '']);
    expect(result.stderr).toMatch(/"--privileged" is not an image name/);
  });
});

describe.skipIf(!engine)('forwarded values never reach the engine CLI', () => {
  it('-e LD_PRELOAD and a secret reach the container only; the docker CLI sees neither, in env or argv', async () => {
    const dir = tempDir('cli');
    const realDocker = (await execa('sh', ['-c', 'command -v docker'])).stdout.trim();
    const wrapper = join(dir, 'docker');
    writeFileSync(wrapper, `#!/bin/sh\nenv > "${dir}/env.$$"\nprintf '%s\\n' "$@" > "${dir}/argv.$$"\nexec ${realDocker} "$@"\n`);
    chmodSync(wrapper, 0o755);
    const result = await mcpbox(['run', '-e', 'LD_PRELOAD=/mcpbox-e2e-nonexistent.so', '-e', 'API_TOKEN', 'npx', '-c', 'echo "token=$API_TOKEN preload=$LD_PRELOAD"'], {
      env: testEnv({ MCPBOX_DOCKER: wrapper, API_TOKEN: 'tok_CANARY_VALUE' }),
    });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toContain('token=tok_CANARY_VALUE preload=/mcpbox-e2e-nonexistent.so');
    const seen = (await execa('sh', ['-c', `cat ${dir}/env.* ${dir}/argv.*`])).stdout;
    expect(seen).toContain('--env-file');
    expect(seen).not.toContain('tok_CANARY_VALUE');
    expect(seen).not.toMatch(/^LD_PRELOAD=/m);
    expect(seen).not.toMatch(/^API_TOKEN/m);
  });
});

/** A fresh state dir and one locked run of cowsay: its lock entry and install record. */
async function lockedCowsay() {
  const state = quietStateDir();
  made.push(state);
  const env = testEnv({ XDG_STATE_HOME: state });
  const first = await mcpbox(['run', 'npx', '-y', 'cowsay@1.6.0', 'moo'], { env });
  expect(first.exitCode, first.stderr).toBe(0);
  expect(first.stdout).toContain('moo');
  const [record] = Object.values(JSON.parse(readFileSync(join(state, 'mcpbox', 'installs.json'), 'utf8')) as Record<string, InstallRecord>);
  volumes.push(record!.volume);
  return { env, state, record: record! };
}

describe.skipIf(!engine)('a locked install is immutable', () => {
  it('a file changed in the installed tree (not its lock file) is refused (76) until mcpbox update reinstalls it', async () => {
    const { env, record } = await lockedCowsay();
    const image = /\s(mcpbox\/npx:[0-9a-f]+)\s/.exec((await mcpbox(['run', '--dry-run', 'npx', '-y', 'cowsay@1.6.0'], { env })).stdout)![1]!;
    const tamper = await docker(['run', '--rm', '--user', '0', '--mount', `type=volume,source=${record.volume},target=/mcpbox/install`, '--entrypoint', 'sh', image, '-c', `echo 'console.log("pwned")' >> ${record.dir}/node_modules/cowsay/cli.js`]);
    expect(tamper.exitCode, tamper.stderr).toBe(0);
    const refused = await mcpbox(['run', 'npx', '-y', 'cowsay@1.6.0', 'moo'], { env });
    expect(refused.exitCode).toBe(76);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/integrity mismatch: files of the install at \/mcpbox\/install\/.* changed since mcpbox installed them/);
    expect(await containersOf(refused.pid)).toEqual([]);
    const updated = await mcpbox(['update'], { env });
    expect(updated.exitCode, updated.stderr).toBe(0);
    const again = await mcpbox(['run', 'npx', '-y', 'cowsay@1.6.0', 'moo'], { env });
    expect([again.exitCode, again.stdout.includes('moo'), again.stdout.includes('pwned')]).toEqual([0, true, false]);
  });

  it('a run that is not locked never sees the install volume; the locked server sees it read-only', async () => {
    const { env } = await lockedCowsay();
    const unlocked = await mcpbox(['run', 'npx', '-p', 'cowsay@1.6.0', '-c', 'ls /mcpbox/install 2>&1; touch /mcpbox/cache/x && echo cache-writable'], { env });
    expect(unlocked.stdout).toMatch(/No such file or directory/);
    expect(unlocked.stdout).toContain('cache-writable');
  });
});

describe.skipIf(!engine)('a project lock cannot redirect a package', () => {
  it("an entry whose package-lock.json points cowsay at another tarball (with that tarball's real integrity) is refused (76)", async () => {
    const meta = (await (await fetch('https://registry.npmjs.org/is-number/7.0.0')).json()) as { dist: { tarball: string; integrity: string } };
    const lockfile = `${JSON.stringify(
      {
        name: 'mcpbox-install',
        lockfileVersion: 3,
        requires: true,
        packages: {
          '': { name: 'mcpbox-install', dependencies: { cowsay: '1.6.0' } },
          'node_modules/cowsay': { version: '1.6.0', resolved: meta.dist.tarball, integrity: meta.dist.integrity, bin: { cowsay: 'cli.js' } },
        },
      },
      null,
      2,
    )}\n`;
    const lock: LockFile = {
      lockfileVersion: 1,
      servers: {
        'npx cowsay@1.6.0': {
          runner: 'npx', specs: ['cowsay@1.6.0'], name: 'cowsay', version: '1.6.0', integrity: meta.dist.integrity, executable: 'cowsay',
          tree: sha256(lockfile), lockfile, pinned: true, resolvedAt: new Date().toISOString(),
        },
      },
    };
    const repo = repository({ 'mcpbox.lock': JSON.stringify(lock, null, 2) });
    const state = quietStateDir();
    made.push(state);
    const result = await mcpbox(['run', 'npx', '-y', 'cowsay@1.6.0', 'moo'], { cwd: repo, env: testEnv({ XDG_STATE_HOME: state }) });
    expect(result.exitCode).toBe(76);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n').at(-1)).toMatch(/integrity mismatch: cowsay@1\.6\.0 as the registry serves it does not match its lock; refusing to install or run it/);
    expect(await containersOf(result.pid)).toEqual([]);
  });

  it('requirements with an --index-url line are refused (76) before anything is fetched', async () => {
    const lockfile = `--index-url https://pypi.org/simple\nmcp-server-time==2026.1.1 \\\n    --hash=sha256:${'1'.repeat(64)}\n`;
    const lock: LockFile = {
      lockfileVersion: 1,
      servers: {
        'uvx mcp-server-time => mcp-server-time': {
          runner: 'uvx', specs: ['mcp-server-time'], command: 'mcp-server-time', name: 'mcp-server-time', version: '2026.1.1', integrity: `sha256:${'1'.repeat(64)}`,
          executable: 'mcp-server-time', tree: sha256(lockfile), lockfile, pinned: false, resolvedAt: new Date().toISOString(),
        },
      },
    };
    const repo = repository({ 'mcpbox.lock': JSON.stringify(lock) });
    const state = quietStateDir();
    made.push(state);
    const result = await mcpbox(['run', 'uvx', 'mcp-server-time'], { cwd: repo, env: testEnv({ XDG_STATE_HOME: state }), input: INITIALIZE });
    expect(result.exitCode).toBe(76);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/can't be trusted: its requirements\.txt holds "--index-url https:\/\/pypi\.org\/simple", which is neither a pinned requirement nor a hash/);
  });
});

describe.skipIf(!engine)('what a server can write is bounded', () => {
  it('a cache volume over its limit: the run refuses to start (75) and says how to fix it', async () => {
    const config = join(tempDir('limit'), 'config.json');
    writeFileSync(config, JSON.stringify({ cacheLimit: '64m' }));
    const env = testEnv({ MCPBOX_CONFIG: config });
    const args = ['run', 'npx', '-p', 'cowsay@1.6.0', '-c', 'cowsay moo'];
    const dry = await mcpbox(['run', '--dry-run', ...args.slice(1)], { env });
    const volume = /source=(mcpbox-npx-cowsay-[^,\s]+),target=\/mcpbox\/cache/.exec(dry.stdout)![1]!;
    volumes.push(volume);
    const fill = await docker(['run', '--rm', '--user', '0', '--mount', `type=volume,source=${volume},target=/c`, '--entrypoint', 'sh', 'mcpbox-bootstrap/node:22-bookworm', '-c', 'head -c 80000000 /dev/zero > /c/filler']);
    if (fill.exitCode !== 0) {
      // The bootstrap base isn't there (a laptop with the official images): any local image will do.
      const image = /\s(mcpbox\/npx:[0-9a-f]+)\s/.exec(dry.stdout)![1]!;
      expect((await docker(['run', '--rm', '--user', '0', '--mount', `type=volume,source=${volume},target=/c`, '--entrypoint', 'sh', image, '-c', 'head -c 80000000 /dev/zero > /c/filler'])).exitCode).toBe(0);
    }
    const full = await mcpbox(args, { env });
    expect(full.exitCode).toBe(75);
    expect(full.stdout).toBe('');
    expect(full.stderr).toMatch(new RegExp(`the cache volume ${volume} holds \\d+ MiB, over its limit of 64 MiB \\(hint: docker volume rm ${volume}`));
  });

  it('a server that runs out of memory is explained, not just "exit 137" (where the engine cannot limit memory, doctor says so)', async () => {
    if (!LIMITS_ENFORCED) {
      // Rootless on cgroup v1: the limit would be ignored and the server would fill the machine.
      const report = JSON.parse((await mcpbox(['doctor', '--json'])).stdout) as { checks: { id: string; status: string; detail: string }[] };
      expect(report.checks.find((c) => c.id === 'limits')).toMatchObject({ status: 'warn', detail: expect.stringMatching(/rootless on cgroup v1: memory, CPU and process limits are not enforced/) });
      return;
    }
    const result = await mcpbox(['run', '--memory', '64m', 'npx', '-c', 'node -e "const a=[]; for (;;) a.push(Buffer.alloc(1e6, 1))"']);
    expect(result.exitCode).toBe(137);
    expect(result.stderr).toMatch(
      ENGINE_CLI === 'podman'
        ? /the server was killed by SIGKILL \(exit 137\), most likely because it ran out of memory \(limit 64m\): Podman doesn't report out-of-memory kills/
        : /the server ran out of memory \(limit 64m\) and the kernel killed it \(exit 137\)/,
    );
  });
});
