import { describe, expect, it } from 'vitest';
import { engineLaunch, envFileLines, runArgv } from '../../src/sandbox/argv.js';
import { engineEnvironment } from '../../src/engine/environment.js';
import { caSetup, proxyVars, resolveForwardedEnv } from '../../src/sandbox/env.js';
import { parseRunnerArgs } from '../../src/runners/table.js';
import {
  cacheVolumeName,
  containerLabels,
  containerName,
  containerSpec,
  type ContainerInput,
  DEFAULT_POLICY,
  installVolumeName,
  resolvePolicy,
} from '../../src/sandbox/spec.js';
import { NOBODY } from '../../src/sandbox/mounts.js';

const noCa = { mounts: [], env: {}, missing: [] };

function input(overrides: Partial<ContainerInput> = {}, args = ['-y', '@modelcontextprotocol/server-everything']): ContainerInput {
  const invocation = parseRunnerArgs('npx', args);
  return {
    invocation,
    policy: DEFAULT_POLICY,
    image: 'mcpbox/npx:0123456789ab',
    name: containerName(invocation, 'abc123'),
    labels: containerLabels(invocation, { pid: 4242, host: 'laptop', startedAt: new Date('2026-01-02T03:04:05Z'), version: '0.0.0' }),
    ca: noCa,
    forwarded: [],
    tty: false,
    user: '65534:65534',
    owner: '1000',
    host: { binds: [], args: invocation.args, workdir: undefined },
    ...overrides,
  };
}

const flagValue = (argv: string[], flag: string) => argv.flatMap((a, i) => (a === flag ? [argv[i + 1]] : []));

describe('the sandbox /tmp', () => {
  it('is a tmpfs, unless the user mounted the host\'s /tmp by name: then that one (one mount per path)', () => {
    const tmpfs = (argv: string[]) => flagValue(argv, '--tmpfs').filter((v) => v!.startsWith('/tmp:'));
    expect(tmpfs(runArgv(containerSpec(input())))).toHaveLength(1);
    const argv = runArgv(containerSpec(input({ host: { binds: [{ source: '/tmp', target: '/tmp', readonly: false }], args: [], workdir: undefined } })));
    expect(tmpfs(argv)).toEqual([]);
    expect(argv).toContain('type=bind,source=/tmp,target=/tmp');
  });
});

describe('docker run argv', () => {
  it('a default run, in full', () => {
    expect(runArgv(containerSpec(input()))).toMatchSnapshot();
  });

  it.each([
    ['--rm', (argv: string[]) => argv.includes('--rm')],
    ['--init', (argv: string[]) => argv.includes('--init')],
    ['nobody', (argv: string[]) => flagValue(argv, '--user')[0] === '65534:65534'],
    ['read-only root', (argv: string[]) => argv.includes('--read-only')],
    ['all capabilities dropped', (argv: string[]) => flagValue(argv, '--cap-drop')[0] === 'ALL'],
    ['no-new-privileges', (argv: string[]) => flagValue(argv, '--security-opt').includes('no-new-privileges')],
    ['seccomp left at the default', (argv: string[]) => !argv.some((a) => /seccomp|unconfined|--privileged/.test(a))],
    ['no capability added back', (argv: string[]) => !argv.includes('--cap-add')],
    ['pids limit', (argv: string[]) => flagValue(argv, '--pids-limit')[0] === '512'],
    ['memory limit', (argv: string[]) => flagValue(argv, '--memory')[0] === '2g'],
    ['cpu limit', (argv: string[]) => flagValue(argv, '--cpus')[0] === '2'],
    ['exec-able /tmp', (argv: string[]) => flagValue(argv, '--tmpfs').some((t) => /^\/tmp:.*\bexec\b/.test(t!))],
    ['writable HOME', (argv: string[]) => flagValue(argv, '--tmpfs').some((t) => t!.startsWith('/home/mcpbox:')) && flagValue(argv, '--env').includes('HOME=/home/mcpbox')],
    ['npm cache on the volume', (argv: string[]) => flagValue(argv, '--env').includes('npm_config_cache=/mcpbox/cache/npm')],
    ['no update notifier', (argv: string[]) => flagValue(argv, '--env').includes('npm_config_update_notifier=false')],
    ['never pulls', (argv: string[]) => flagValue(argv, '--pull')[0] === 'never'],
    ['no engine socket', (argv: string[]) => !argv.some((a) => a.includes('docker.sock'))],
    ['no tty for pipes', (argv: string[]) => !argv.includes('--tty')],
  ])('%s', (_label, holds) => {
    expect(holds(runArgv(containerSpec(input())))).toBe(true);
  });

  it('ends with image, then the runner args untouched', () => {
    const args = ['-y', 'pkg', 'a b', '$(id)', ';rm -rf /', '`id`', `"q" 'q'`];
    const argv = runArgv(containerSpec(input({}, args)));
    expect(argv.slice(-(args.length + 3))).toEqual(['--entrypoint', 'npx', 'mcpbox/npx:0123456789ab', ...args]);
  });

  it('uvx points uv at the cache volume', () => {
    const invocation = parseRunnerArgs('uvx', ['mcp-server-time']);
    const argv = runArgv(containerSpec({ ...input(), invocation, host: { binds: [], args: invocation.args, workdir: undefined } }));
    expect(flagValue(argv, '--env')).toEqual(expect.arrayContaining(['UV_CACHE_DIR=/mcpbox/cache/uv/cache', 'UV_TOOL_DIR=/mcpbox/cache/uv/tools', 'UV_PYTHON_INSTALL_DIR=/mcpbox/cache/uv/python']));
    expect(argv.at(-1)).toBe('mcp-server-time');
  });

  it('policy settings change the flags', () => {
    const policy = resolvePolicy({ memory: '512m', cpus: '0.5', pids: 64, network: 'none' });
    const argv = runArgv(containerSpec(input({ policy })));
    expect([flagValue(argv, '--memory'), flagValue(argv, '--cpus'), flagValue(argv, '--pids-limit'), flagValue(argv, '--network')]).toEqual([['512m'], ['0.5'], ['64'], ['none']]);
  });

  it('host mounts, the working directory, the invoking user and their name', () => {
    const spec = containerSpec(
      input({
        user: '1000:1000',
        identity: { USER: 'me', LOGNAME: 'me' },
        host: { binds: [{ source: '/home/me/notes', target: '/home/me/notes', readonly: false }, { source: '/data', target: '/data', readonly: true }], args: ['-y', 'pkg', '/home/me/notes'], workdir: '/home/me/project' },
      }),
    );
    const argv = runArgv(spec);
    expect(flagValue(argv, '--user')).toEqual(['1000:1000']);
    expect(flagValue(argv, '--mount')).toEqual(expect.arrayContaining(['type=bind,source=/home/me/notes,target=/home/me/notes', 'type=bind,source=/data,target=/data,ro']));
    expect(flagValue(argv, '--workdir')).toEqual(['/home/me/project']);
    expect(flagValue(argv, '--env')).toEqual(expect.arrayContaining(['USER=me', 'LOGNAME=me']));
    expect(argv.slice(-3)).toEqual(['-y', 'pkg', '/home/me/notes']);
  });

  it('tty only when asked', () => {
    expect(runArgv(containerSpec(input({ tty: true })))).toContain('--tty');
  });

  it('mount fields with commas are CSV-quoted', () => {
    const ca = { mounts: [{ hostPath: '/a,b/ca.pem', containerPath: '/mcpbox/ca/1-ca.pem' }], env: {}, missing: [] };
    expect(flagValue(runArgv(containerSpec(input({ ca }))), '--mount')).toContain('type=bind,"source=/a,b/ca.pem",target=/mcpbox/ca/1-ca.pem,ro');
  });
});

describe('secrets stay out of argv and out of the engine CLI', () => {
  const forwarded = [
    { name: 'GITHUB_TOKEN', value: 'ghp_s3cret' },
    { name: 'API_KEY', value: 'k3y' },
  ];
  const spec = containerSpec(input({ forwarded }));
  const argv = runArgv(spec, '/run/user/1000/mcpbox/env-1');

  it('argv names the env file, never a value or a name', () => {
    expect(argv.join(' ')).not.toMatch(/ghp_s3cret|k3y|GITHUB_TOKEN|API_KEY/);
    expect(flagValue(argv, '--env-file')).toEqual(['/run/user/1000/mcpbox/env-1']);
  });

  it('the values are the env file\'s lines', () => {
    expect(envFileLines(spec)).toEqual(forwarded);
  });

  it("the engine CLI's environment is its own configuration only: no forwarded value", () => {
    const fifo = () => ({ path: '/fifo', close() {} });
    const { env } = engineLaunch(spec, engineEnvironment({ PATH: '/bin', HOME: '/root', AWS_SECRET_ACCESS_KEY: 'nope', DOCKER_HOST: 'unix:///x.sock' }), fifo);
    expect(env).toEqual({ PATH: '/bin', HOME: '/root', DOCKER_HOST: 'unix:///x.sock' });
  });

  it("rootless Podman's store and configuration, wherever the user put them, reach its CLI", () => {
    const moved = { XDG_DATA_HOME: '/data', CONTAINERS_STORAGE_CONF: '/cfg/storage.conf', CONTAINERS_CONF: '/cfg/containers.conf', CONTAINERS_REGISTRIES_CONF: '/cfg/registries.conf' };
    expect(engineEnvironment({ PATH: '/bin', ...moved, NPM_TOKEN: 'nope' })).toEqual({ PATH: '/bin', ...moved });
  });

  it.each(['LD_PRELOAD', 'NODE_OPTIONS', 'DYLD_INSERT_LIBRARIES', 'PATH', 'HOME', 'DOCKER_HOST'])('%s forwarded reaches the container, not the CLI', (name) => {
    const launch = engineLaunch(containerSpec(input({ forwarded: [{ name, value: '/evil' }] })), { PATH: '/bin' }, (lines) => ({ path: `/fifo:${JSON.stringify(lines)}`, close() {} }));
    expect(launch.env[name]).not.toBe('/evil');
    expect(launch.argv.join(' ')).not.toContain(`${name}=/evil`);
    expect(flagValue(launch.argv, '--env-file')).toEqual([`/fifo:${JSON.stringify([{ name, value: '/evil' }])}`]);
  });

  it('no values, no env file', () => {
    const launch = engineLaunch(containerSpec(input()), {}, () => {
      throw new Error('opened');
    });
    expect([launch.envFile, launch.argv.includes('--env-file')]).toEqual([undefined, false]);
  });

  it('a dry run (no env file) shows --env NAME, as one would type it', () => {
    expect(flagValue(runArgv(spec), '--env')).toEqual(expect.arrayContaining(['GITHUB_TOKEN', 'API_KEY']));
  });

  it('a value with a line break travels base64-encoded and is restored by a prelude inside', () => {
    const pem = '-----BEGIN KEY-----\nabc\n-----END KEY-----\n';
    const encoded = containerSpec(input({ forwarded: [{ name: 'KEY', value: pem }] }));
    expect(envFileLines(encoded)).toEqual([{ name: 'MCPBOX_ENV_B64_KEY', value: Buffer.from(pem).toString('base64') }]);
    expect(encoded.env).toContainEqual({ name: 'MCPBOX_ENCODED_ENV', value: 'KEY', via: 'argv' });
    expect([encoded.entrypoint, encoded.args[0], encoded.args.slice(2)]).toEqual(['sh', '-c', ['mcpbox', 'npx', '-y', '@modelcontextprotocol/server-everything']]);
  });
});

describe('the env file itself', () => {
  it('is a FIFO in a private directory: the reader gets the lines, nothing stays on disk', async () => {
    const { openEnvFile } = await import('../../src/engine/env-file.js');
    const { mkdtempSync, readFileSync, existsSync, statSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = join(mkdtempSync(join(tmpdir(), 'mcpbox-envfile-')), 'run');
    try {
      const file = openEnvFile(dir, [{ name: 'A', value: 'one two' }, { name: 'B', value: 'x=y' }]);
      expect(statSync(dir).mode & 0o777).toBe(0o700);
      expect(statSync(file.path).isFIFO()).toBe(true);
      const { readFile } = await import('node:fs/promises');
      expect(await readFile(file.path, 'utf8')).toBe('A=one two\nB=x=y\n');
      await new Promise((r) => setTimeout(r, 50));
      expect(existsSync(file.path)).toBe(false);
      file.close();
      // Never read (the CLI failed first): close() unblocks the writer and removes it.
      const unread = openEnvFile(dir, [{ name: 'C', value: 'z' }]);
      unread.close();
      expect(existsSync(unread.path)).toBe(false);
      void readFileSync;
    } finally {
      rmSync(join(dir, '..'), { recursive: true, force: true });
    }
  });
});

describe('environment forwarding', () => {
  it.each([
    ['name from host', ['TOKEN'], { TOKEN: 'v' }, [{ name: 'TOKEN', value: 'v' }], []],
    ['name=value', ['A=b=c'], {}, [{ name: 'A', value: 'b=c' }], []],
    ['empty value', ['A='], {}, [{ name: 'A', value: '' }], []],
    ['unset name', ['MISSING'], {}, [], ['MISSING']],
    ['later wins', ['A=1', 'A=2'], {}, [{ name: 'A', value: '2' }], []],
  ])('%s', (_label, entries, host, vars, unset) => {
    expect(resolveForwardedEnv(entries, host)).toEqual({ vars, unset });
  });

  it('rejects a bad name', () => {
    expect(() => resolveForwardedEnv(['1BAD=x'], {})).toThrow(/not a valid variable name/);
  });

  it('carries proxy settings, upper and lower case', () => {
    expect(proxyVars({ HTTPS_PROXY: 'http://u:p@proxy:3128', no_proxy: 'localhost', OTHER: 'x' })).toEqual([
      { name: 'HTTPS_PROXY', value: 'http://u:p@proxy:3128' },
      { name: 'no_proxy', value: 'localhost' },
    ]);
  });
});

describe('CA bundles', () => {
  const exists = (path: string) => (path.includes('missing') ? undefined : path);

  it('one file named by several variables is mounted once', () => {
    const setup = caSetup({ NODE_EXTRA_CA_CERTS: '/etc/ca.pem', SSL_CERT_FILE: '/etc/ca.pem' }, 'NODE_EXTRA_CA_CERTS', exists);
    expect(setup).toEqual({
      mounts: [{ hostPath: '/etc/ca.pem', containerPath: '/mcpbox/ca/1-ca.pem' }],
      env: { NODE_EXTRA_CA_CERTS: '/mcpbox/ca/1-ca.pem', SSL_CERT_FILE: '/mcpbox/ca/1-ca.pem' },
      missing: [],
    });
  });

  it("fills the runner's own variable from another", () => {
    expect(caSetup({ NODE_EXTRA_CA_CERTS: '/corp.pem' }, 'SSL_CERT_FILE', exists).env).toEqual({
      NODE_EXTRA_CA_CERTS: '/mcpbox/ca/1-corp.pem',
      SSL_CERT_FILE: '/mcpbox/ca/1-corp.pem',
    });
  });

  it('distinct files, distinct mounts; missing files reported', () => {
    const setup = caSetup({ NODE_EXTRA_CA_CERTS: '/a.pem', SSL_CERT_FILE: '/b.pem', REQUESTS_CA_BUNDLE: '/missing.pem' }, 'SSL_CERT_FILE', exists);
    expect(setup.mounts.map((m) => m.containerPath)).toEqual(['/mcpbox/ca/1-a.pem', '/mcpbox/ca/2-b.pem']);
    expect(setup.missing).toEqual(['REQUESTS_CA_BUNDLE']);
  });

  it('nothing set, nothing mounted', () => {
    expect(caSetup({}, 'SSL_CERT_FILE', exists)).toEqual({ mounts: [], env: {}, missing: [] });
  });
});

describe('names and volumes', () => {
  it.each([
    ['npx', ['-y', '@modelcontextprotocol/server-everything'], /^mcpbox-npx-modelcontextprotocol-server-everything-[0-9a-f]{8}$/],
    ['uvx', ['mcp-server-time'], /^mcpbox-uvx-mcp-server-time-[0-9a-f]{8}$/],
  ])('%s cache volume', (runner, args, pattern) => {
    expect(cacheVolumeName(parseRunnerArgs(runner, args), NOBODY, '1000')).toMatch(pattern);
  });

  it('same packages, any version or order: one volume; other packages: another', () => {
    const volume = (args: string[]) => cacheVolumeName(parseRunnerArgs('npx', args), NOBODY, '1000');
    expect(volume(['-p', 'a@1', '-p', 'b', 'x'])).toBe(volume(['-p', 'b@2', '-p', 'a', 'x']));
    expect(volume(['-y', 'a'])).not.toBe(volume(['-y', 'b']));
  });

  it('another invoking user of the same engine gets other volumes', () => {
    const invocation = parseRunnerArgs('npx', ['-y', 'x']);
    expect(cacheVolumeName(invocation, NOBODY, '1000')).not.toBe(cacheVolumeName(invocation, NOBODY, '1001'));
    expect(installVolumeName(invocation, 'npx x', 'img', '1000')).not.toBe(installVolumeName(invocation, 'npx x', 'img', '1001'));
  });

  it('an install volume per lock key and image, apart from the cache', () => {
    const invocation = parseRunnerArgs('npx', ['-y', 'x']);
    const install = installVolumeName(invocation, 'npx x', 'mcpbox/npx:1', '1000');
    expect(install).toMatch(/^mcpbox-npx-x-[0-9a-f]{8}-install$/);
    expect(install).not.toBe(installVolumeName(invocation, 'npx x', 'mcpbox/npx:2', '1000'));
    expect(install).not.toBe(installVolumeName(invocation, 'npx x@1', 'mcpbox/npx:1', '1000'));
    expect(install).not.toBe(cacheVolumeName(invocation, NOBODY, '1000'));
  });

  it('nothing installed, no volume: the cache is a tmpfs', () => {
    const invocation = parseRunnerArgs('npx', ['--version']);
    expect(cacheVolumeName(invocation, NOBODY, '1000')).toBeUndefined();
    expect(flagValue(runArgv(containerSpec({ ...input(), invocation, host: { binds: [], args: invocation.args, workdir: undefined } })), '--tmpfs').some((t) => t!.startsWith('/mcpbox/cache:'))).toBe(true);
  });

  it('a uid other than nobody gets its own cache volume', () => {
    const invocation = parseRunnerArgs('npx', ['-y', 'x']);
    expect(cacheVolumeName(invocation, '1000:1000', '1000')).toBe(`${cacheVolumeName(invocation, NOBODY, '1000')}-u1000`);
  });

  it('container names are valid docker names', () => {
    expect(containerName(parseRunnerArgs('npx', ['-y', '@Scope/Weird.Name@1']), 'ff00aa')).toMatch(/^[a-z0-9][a-z0-9_.-]+$/);
  });
});

describe('the install volume and the cache', () => {
  const command = (install: { volume: string; readonly: boolean }, cacheTmpfs?: boolean) => ({ entrypoint: 'sh', args: ['-c', 'x'], install, ...(cacheTmpfs && { cacheTmpfs }) });

  it('a locked server: its install volume read-only, a throwaway cache, no cache volume', () => {
    const argv = runArgv(containerSpec(input({ command: command({ volume: 'mcpbox-npx-x-1-install', readonly: true }, true) })));
    const mounts = flagValue(argv, '--mount');
    expect(mounts).toContain('type=volume,source=mcpbox-npx-x-1-install,target=/mcpbox/install,ro');
    expect(mounts.some((m) => /target=\/mcpbox\/cache/.test(m!))).toBe(false);
    expect(flagValue(argv, '--tmpfs').some((t) => t!.startsWith('/mcpbox/cache:'))).toBe(true);
  });

  it('an install container writes both', () => {
    const mounts = flagValue(runArgv(containerSpec(input({ command: command({ volume: 'v-install', readonly: false }) }))), '--mount');
    expect(mounts).toContain('type=volume,source=v-install,target=/mcpbox/install');
    expect(mounts.some((m) => /target=\/mcpbox\/cache$/.test(m!))).toBe(true);
  });

  it('a run through the runner never mounts an install volume', () => {
    expect(flagValue(runArgv(containerSpec(input())), '--mount').some((m) => m!.includes('/mcpbox/install'))).toBe(false);
  });

  it('a run that may grow the cache checks its size first', () => {
    const spec = containerSpec(input({ cacheLimitKb: 4 * 1024 * 1024 }));
    expect([spec.entrypoint, spec.args[0]]).toEqual(['sh', '-c']);
    expect(spec.args[1]).toMatch(/du -sk \/mcpbox\/cache .* -gt 4194304 .*exit 75; fi; exec "\$@"$/);
    expect(spec.args.slice(2)).toEqual(['mcpbox', 'npx', '-y', '@modelcontextprotocol/server-everything']);
  });
});
