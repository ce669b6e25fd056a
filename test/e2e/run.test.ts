import { existsSync, readFileSync } from 'node:fs';
import { execa } from 'execa';
import { split } from 'shlex';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseRunnerArgs } from '../../src/runners/table.js';
import { cacheVolumeName } from '../../src/sandbox/spec.js';
import { NOBODY } from '../../src/sandbox/mounts.js';
import {
  childrenOf,
  connect,
  containersOf,
  docker,
  mcpbox,
  serverProcesses,
  type Session,
  testEnv,
  textOf,
  waitFor,
  ENGINE_CLI,
} from './helpers.js';

const engine = inject('engine');
const EVERYTHING = '@modelcontextprotocol/server-everything';
const INITIALIZE =
  '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"0"}}}\n';

function expectConfined(processes: Awaited<ReturnType<typeof serverProcesses>>) {
  expect(processes.length).toBeGreaterThan(1); // tini and the server at least
  for (const p of processes) {
    expect.soft(p.uid.split(/\s+/), `uid of ${p.cmdline}`).toEqual(['65534', '65534', '65534', '65534']);
    expect.soft(p.capEff, `CapEff of ${p.cmdline}`).toBe('0000000000000000');
    expect.soft(p.noNewPrivs, `NoNewPrivs of ${p.cmdline}`).toBe('1');
    expect.soft(p.seccomp, `Seccomp of ${p.cmdline}`).toBe('2');
  }
}

describe.skipIf(!engine)('mcpbox run npx: a real server, confined', () => {
  let session: Session;
  let container: string;
  const canary = `canary-${process.pid}-${Date.now()}`;

  beforeAll(async () => {
    session = await connect(
      ['-e', 'PASSED_FROM_ENV', '-e', 'PASSED_INLINE=inline-secret-value', 'npx', '-y', EVERYTHING],
      testEnv({ MCPBOX_E2E_CANARY: canary, PASSED_FROM_ENV: 'from-env-secret-value' }),
    );
    const names = await waitFor(async () => {
      const found = await containersOf(session.pid);
      return found.length > 0 && found;
    }, 10_000, 'the container');
    container = names[0]!;
  });
  afterAll(async () => {
    await session?.close();
  });

  it('initializes, lists tools and calls echo', async () => {
    expect(session.client.getServerVersion()?.name).toMatch(/everything/);
    const { tools } = await session.client.listTools();
    expect(tools.map((t) => t.name)).toContain('echo');
    const result = await session.client.callTool({ name: 'echo', arguments: { message: 'hello from the sandbox $(id) `id`' } });
    expect(textOf(result)).toContain('hello from the sandbox $(id) `id`');
    expect(session.errors).toEqual([]);
  });

  it('every server process is nobody, with no capabilities, no-new-privs and seccomp', async () => {
    expectConfined(await serverProcesses(container));
  });

  it('cannot write under /, can write HOME and /tmp', async () => {
    const root = await docker(['exec', container, 'sh', '-c', 'touch /probe']);
    expect(root.exitCode).not.toBe(0);
    expect(root.stderr).toMatch(/Read-only file system/);
    const writable = await docker(['exec', container, 'sh', '-c', 'touch "$HOME/probe" /tmp/probe && echo ok']);
    expect(writable.stdout).toBe('ok');
  });

  it("mcpbox's environment stays out unless passed with -e", async () => {
    const environ = (await serverProcesses(container)).flatMap((p) => p.environ);
    expect(environ.some((e) => e.includes(canary))).toBe(false);
    expect(environ.some((e) => e.startsWith('MCPBOX_E2E_CANARY='))).toBe(false);
    expect(environ).toContain('PASSED_FROM_ENV=from-env-secret-value');
    expect(environ).toContain('PASSED_INLINE=inline-secret-value');
  });

  it('secret values never appear in the engine argv, nor in its environment; their env file is gone', async () => {
    const engineCli = childrenOf(session.pid).find((c) => c.argv.includes('run') && c.argv.includes('--rm'));
    expect(engineCli, 'the docker run process').toBeDefined();
    const argv = engineCli!.argv.join(' ');
    const envFile = engineCli!.argv[engineCli!.argv.indexOf('--env-file') + 1]!;
    expect(envFile).toMatch(/\/mcpbox(?:\/run)?\/env-\d+-[0-9a-f]+$/);
    expect(argv).not.toContain('from-env-secret-value');
    expect(argv).not.toContain('inline-secret-value');
    const environ = readFileSync(`/proc/${engineCli!.pid}/environ`, 'utf8');
    expect(environ).not.toContain('secret-value');
    expect(existsSync(envFile)).toBe(false);
  });

  it('no engine socket is visible', async () => {
    const probe = await docker([
      'exec', container, 'sh', '-c',
      'ls /var/run/docker.sock /run/docker.sock 2>/dev/null; grep -c "docker.sock\\|containerd.sock" /proc/1/mountinfo; true',
    ]);
    expect(probe.stdout.trim()).toBe('0');
  });

  it('is labelled as mcpbox’s, with owner, start time, runner and package', async () => {
    const labels = JSON.parse((await docker(['inspect', '--format', '{{json .Config.Labels}}', container])).stdout);
    expect(labels).toMatchObject({
      'dev.mcpbox.managed': 'true',
      'dev.mcpbox.owner-pid': String(session.pid),
      'dev.mcpbox.runner': 'npx',
      'dev.mcpbox.package': EVERYTHING,
    });
    expect(Date.parse(labels['dev.mcpbox.started-at'])).toBeGreaterThan(Date.now() - 600_000);
  });

  it('leaves nothing behind when the client closes', async () => {
    await session.close();
    await waitFor(async () => (await containersOf(session.pid)).length === 0, 10_000, 'the container to go');
  });
});

describe.skipIf(!engine)('mcpbox run uvx: a real Python server from PyPI', () => {
  let session: Session;
  beforeAll(async () => {
    session = await connect(['uvx', 'mcp-server-time']);
  });
  afterAll(async () => {
    await session?.close();
  });

  it('initializes, lists tools and tells the time', async () => {
    const { tools } = await session.client.listTools();
    expect(tools.map((t) => t.name)).toContain('get_current_time');
    const result = await session.client.callTool({ name: 'get_current_time', arguments: { timezone: 'UTC' } });
    expect(textOf(result)).toMatch(/"timezone":\s*"UTC"/);
    expect(session.errors).toEqual([]);
  });

  it('is confined the same way', async () => {
    const [container] = await containersOf(session.pid);
    expectConfined(await serverProcesses(container!));
  });
});

describe.skipIf(!engine)('images, networks, exit codes', () => {
  it('--dry-run prints the exact command, which runs the server as printed', async () => {
    // Installed here, not by the tests above: a failure there must not fail this one too.
    const pulled = await mcpbox(['pull', 'npx', EVERYTHING]);
    expect(pulled.exitCode, pulled.stderr).toBe(0);
    const dry = await mcpbox(['run', '--dry-run', 'npx', '-y', EVERYTHING]);
    expect(dry.exitCode).toBe(0);
    expect(dry.stderr).toBe('');
    expect(await containersOf(dry.pid)).toEqual([]);
    const [bin, ...argv] = split(dry.stdout.trim());
    expect(argv.slice(0, 2)).toEqual(['run', '--rm']);
    const direct = await execa(bin!, argv, { input: INITIALIZE, env: testEnv(), reject: false, timeout: 120_000 });
    expect(direct.stdout).toContain('"serverInfo"');
  });

  it('works in a stock image whose directories are root-owned, with a fresh cache volume', async () => {
    // A stock Node image (in CI: the bootstrap's, which is what node:22 is, built without a registry).
    const stock = process.env.MCPBOX_NPX_BASE_IMAGE || 'node:22-bookworm-slim';
    const volume = cacheVolumeName(parseRunnerArgs('npx', ['-y', EVERYTHING]), NOBODY, String(process.getuid?.() ?? 'user'))!;
    await docker(['volume', 'rm', '--force', volume]);
    const session = await connect(['--image', stock, 'npx', '-y', EVERYTHING]);
    try {
      const result = await session.client.callTool({ name: 'echo', arguments: { message: 'stock' } });
      expect(textOf(result)).toContain('stock');
      const [container] = await containersOf(session.pid);
      const image = (await docker(['inspect', '--format', '{{.Config.Image}}', container!])).stdout;
      // Podman names a local image localhost/…
      expect(image.replace(/^localhost\//, '')).toBe(stock);
      expectConfined(await serverProcesses(container!));
    } finally {
      await session.close();
    }
  });

  it('--network none leaves only loopback', async () => {
    const result = await mcpbox(['run', '--network', 'none', 'npx', '-c', 'ls /sys/class/net']);
    expect([result.exitCode, result.stdout.trim()]).toEqual([0, 'lo']);
  });

  it("passes the server's exit code through", async () => {
    const result = await mcpbox(['run', 'npx', '-c', 'exit 3']);
    expect(result.exitCode).toBe(3);
  });

  it('writes nothing of its own to stdout', async () => {
    const result = await mcpbox(['run', 'npx', '-c', 'true']);
    expect([result.exitCode, result.stdout]).toEqual([0, '']);
  });
});

describe.skipIf(!engine)('bad input: one line with a hint, a distinct code, stdout empty, no container', () => {
  it.each([
    ['unknown runner', ['run', 'bunx', 'x'], {}, 64, /unknown runner "bunx"/],
    ['no package', ['run', 'npx', '-y'], {}, 64, /no package named for npx/],
    ['unknown runner option', ['run', 'uvx', '--frm', 'x', 'y'], {}, 64, /unknown uvx option --frm/],
    ['no docker binary', ['run', 'npx', '-y', EVERYTHING], { MCPBOX_DOCKER: '/nonexistent/docker' }, 72, /MCPBOX_DOCKER names \/nonexistent\/docker/],
    // Podman answers DOCKER_HOST with its own engine; CONTAINER_HOST makes it talk to a service.
    ['engine not answering', ['run', 'npx', '-y', EVERYTHING], { [ENGINE_CLI === 'podman' ? 'CONTAINER_HOST' : 'DOCKER_HOST']: 'unix:///tmp/mcpbox-e2e-no-engine.sock' }, 69, /(Docker|Podman) engine is not answering/],
    ['image that cannot be pulled', ['run', '--image', 'mcpbox-e2e/does-not-exist:none', 'npx', '-y', EVERYTHING], {}, 73, /could not pull mcpbox-e2e\/does-not-exist:none/],
    ['default image that cannot be built', ['run', 'npx', '-y', EVERYTHING], { MCPBOX_NPX_BASE_IMAGE: 'mcpbox-e2e/missing-base:none' }, 73, /could not build mcpbox\/npx:\w+/],
    ['bad limit', ['run', '--memory', 'lots', 'npx', '-y', EVERYTHING], {}, 64, /--memory must be a size/],
  ])('%s', async (_label, args, extraEnv, code, message) => {
    const result = await mcpbox(args, { env: testEnv(extraEnv) });
    expect(result.exitCode).toBe(code);
    expect(result.stdout).toBe('');
    const last = result.stderr.trimEnd().split('\n').at(-1)!;
    expect(last).toMatch(/^mcpbox: /);
    expect(last).toMatch(message);
    expect(last).toMatch(/\(hint: .+\)$/);
    expect(result.stderr.split('\n').filter((l) => /\(hint: /.test(l))).toHaveLength(1);
    expect(await containersOf(result.pid)).toEqual([]);
  });
});
