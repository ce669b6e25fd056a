import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { formatProblems, projectProblems, validateSettings } from '../../src/config/settings.js';
import { UsageError } from '../../src/errors.js';
import type { HostContext } from '../../src/host.js';
import { installSpec } from '../../src/install/specs.js';
import { createLogger } from '../../src/log.js';
import { parseRunnerArgs } from '../../src/runners/table.js';
import { runArgv } from '../../src/sandbox/argv.js';
import { chooseImage } from '../../src/sandbox/images.js';
import { knownArgs, knownServerEnv, knownVariant } from '../../src/sandbox/known-servers.js';
import { DEFAULT_FLAGS, planRun, withFlags } from '../../src/sandbox/plan.js';
import { dataVolumeName } from '../../src/sandbox/spec.js';
import { staleCopies } from '../../src/lifecycle/copies.js';

/** What makes popular servers work unchanged: data volumes, known servers, the browser variant, user-independent installs. */
function ctx(overrides: Partial<HostContext> = {}): HostContext {
  return {
    env: { XDG_STATE_HOME: '/state', PATH: '/usr/bin' },
    cwd: '/',
    stdin: Object.assign(new PassThrough(), { isTTY: false }),
    stdout: new PassThrough(),
    log: createLogger({ write: () => {} }),
    pid: 1,
    home: '/home/me',
    platform: 'linux',
    uid: 1000,
    gid: 1000,
    username: 'me',
    fs: { realpath: (p) => (p === '/srv/notes' ? p : undefined), kind: () => 'dir' },
    ...overrides,
  };
}

const plan = (runner: 'npx' | 'uvx', args: string[], flags = {}, context = ctx()) => planRun(parseRunnerArgs(runner, args), {}, { ...DEFAULT_FLAGS, client: true, ...flags }, context);
const envOf = (argv: string[]) => argv.flatMap((a, i) => (a === '--env' ? [argv[i + 1]!] : []));

describe('a data volume per server', () => {
  it('is HOME for a server: per package set and user, never per version', () => {
    const spec = plan('npx', ['-y', '@modelcontextprotocol/server-memory@1.0.0']).spec;
    const data = dataVolumeName(parseRunnerArgs('npx', ['-y', '@modelcontextprotocol/server-memory@1.0.0']), '1000-x')!;
    expect(data).toMatch(/^mcpbox-npx-modelcontextprotocol-server-memory-[0-9a-f]{8}-data$/);
    expect(data).toBe(dataVolumeName(parseRunnerArgs('npx', ['-y', '@modelcontextprotocol/server-memory@2.0.0']), '1000-x'));
    expect(data).not.toBe(dataVolumeName(parseRunnerArgs('npx', ['-y', '@modelcontextprotocol/server-memory']), '1001-x'));
    expect(data).not.toBe(dataVolumeName(parseRunnerArgs('npx', ['-y', 'other']), '1000-x'));
    expect(spec.mounts).toContainEqual(expect.objectContaining({ type: 'volume', target: '/home/mcpbox', source: expect.stringMatching(/-data$/) }));
    expect(spec.mounts).toContainEqual(expect.objectContaining({ type: 'tmpfs', target: '/tmp' }));
  });

  it('two state dirs never share one (a test beside your real data)', () => {
    const a = plan('npx', ['-y', 'x'], {}, ctx({ env: { XDG_STATE_HOME: '/a' } })).input.data;
    const b = plan('npx', ['-y', 'x'], {}, ctx({ env: { XDG_STATE_HOME: '/b' } })).input.data;
    expect(a).not.toBe(b);
  });

  it('nothing installed (npx --version): HOME is a throwaway tmpfs', () => {
    const spec = plan('npx', ['--version']).spec;
    expect(spec.mounts).toContainEqual(expect.objectContaining({ type: 'tmpfs', target: '/home/mcpbox' }));
  });

  it('an install container has no data volume and runs as nobody, whoever the server runs as', () => {
    const asUser = plan('npx', ['-y', 'x', '/srv/notes']);
    expect(asUser.spec.user).toBe('1000:1000');
    const install = installSpec(asUser, 'vol-install', ['-c', 'true'], {}, { volume: 'egress', token: 't' });
    expect(install.user).toBe('65534:65534');
    expect(install.mounts).toContainEqual(expect.objectContaining({ type: 'tmpfs', target: '/home/mcpbox' }));
  });
});

describe('known servers', () => {
  it('server-memory keeps its graph in its data volume; your own MEMORY_FILE_PATH wins', () => {
    expect(envOf(runArgv(plan('npx', ['-y', '@modelcontextprotocol/server-memory']).spec))).toContain('MEMORY_FILE_PATH=/home/mcpbox/memory.jsonl');
    const own = plan('npx', ['-y', '@modelcontextprotocol/server-memory'], {}, ctx({ env: { XDG_STATE_HOME: '/s', MEMORY_FILE_PATH: '/srv/notes/m.jsonl' } }));
    const ownPlan = planRun(parseRunnerArgs('npx', ['-y', '@modelcontextprotocol/server-memory']), { env: ['MEMORY_FILE_PATH'] }, { ...DEFAULT_FLAGS, client: true }, ctx({ env: { XDG_STATE_HOME: '/s', MEMORY_FILE_PATH: '/srv/notes/m.jsonl' } }));
    expect(envOf(runArgv(ownPlan.spec))).not.toContain('MEMORY_FILE_PATH=/home/mcpbox/memory.jsonl');
    expect(own.spec.env.find((v) => v.name === 'MEMORY_FILE_PATH')?.value).toBe('/home/mcpbox/memory.jsonl');
  });

  it('browser servers get the browser variant, the variables or flags that find the browser, and skip browser downloads at install', () => {
    expect(knownVariant(['@playwright/mcp'])).toBe('browser');
    expect(knownVariant(['@modelcontextprotocol/server-everything'])).toBeUndefined();
    const playwright = plan('npx', ['-y', '@playwright/mcp']);
    expect(playwright.spec.image).toMatch(/^mcpbox\/npx-browser:[0-9a-f]{12}$/);
    expect(playwright.choice.build?.args).toEqual({ EXTRA_PACKAGES: 'chromium fonts-liberation' });
    expect(knownServerEnv(['@playwright/mcp'])).toMatchObject({ PLAYWRIGHT_MCP_EXECUTABLE_PATH: '/usr/bin/chromium', PLAYWRIGHT_MCP_HEADLESS: 'true' });
    const install = installSpec(playwright, 'v', ['-c', 'true'], {}, { volume: 'e', token: 't' });
    expect(install.env).toContainEqual(expect.objectContaining({ name: 'PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD', value: '1' }));
  });

  it('flags are appended only when the user did not give them', () => {
    expect(knownArgs(['chrome-devtools-mcp'], [])).toEqual(['--executablePath', '/usr/bin/chromium', '--headless']);
    expect(knownArgs(['chrome-devtools-mcp'], ['--headless=false', '--executablePath=/opt/chrome'])).toEqual([]);
    expect(plan('npx', ['-y', 'chrome-devtools-mcp']).spec.args.slice(-3)).toEqual(['--executablePath', '/usr/bin/chromium', '--headless']);
  });
});

describe('the browser variant', () => {
  it('--image-variant browser, or the setting; on the bootstrap base when MCPBOX_NPX_BROWSER_BASE_IMAGE names one', () => {
    const choice = chooseImage('npx', undefined, { MCPBOX_NPX_BROWSER_BASE_IMAGE: 'mcpbox-bootstrap/node-browser:22-bookworm' }, {}, 'browser');
    expect(choice.build?.base).toBe('mcpbox-bootstrap/node-browser:22-bookworm');
    expect(choice.image).not.toBe(chooseImage('npx', undefined, {}, {}, 'browser').image);
    expect(chooseImage('npx', undefined, {}, {}, 'browser').image).not.toBe(chooseImage('npx', undefined, {}, {}).image);
    const flags = { ...DEFAULT_FLAGS, client: true, imageVariant: 'browser' };
    expect(planRun(parseRunnerArgs('npx', ['-y', 'x']), withFlags({}, flags), flags, ctx()).spec.image).toMatch(/^mcpbox\/npx-browser:/);
  });

  it('an explicit image wins; uvx has no browser variant (a one-line error with the fix)', () => {
    expect(chooseImage('npx', 'my/image:1', {}, {}, 'browser').image).toBe('my/image:1');
    expect(() => chooseImage('uvx', undefined, {}, {}, 'browser')).toThrow(UsageError);
  });

  it('the setting is checked, and a project may not choose it (the image decides what runs)', () => {
    expect(formatProblems(validateSettings({ imageVariant: 'gpu' }, 'cfg.json').problems)).toMatch(/imageVariant.*must be "browser"/);
    expect(validateSettings({ packages: { '@x/y': { imageVariant: 'browser' } }, baseImages: { 'npx-browser': 'a/b:1' } }, 'cfg.json').problems).toEqual([]);
    const problems = projectProblems({ imageVariant: 'browser', packages: { x: { imageVariant: 'browser' } } }, '/p/mcpbox.json', { realDir: '/p', resolve: (p) => p, refusal: () => undefined, realpath: (p) => p });
    expect(problems.map((p) => p.key)).toEqual(['imageVariant', 'packages.x.imageVariant']);
  });
});

describe('an engine on another machine', () => {
  const remote = ctx({ env: { XDG_STATE_HOME: '/state', PATH: '/usr/bin', DOCKER_HOST: 'tcp://127.0.0.1:2375', MCPBOX_DOCKER: process.execPath, NODE_EXTRA_CA_CERTS: '/srv/notes' } });
  it('a path argument is refused with a hint; without paths the plan mounts nothing of this machine', () => {
    expect(() => plan('npx', ['-y', '@modelcontextprotocol/server-filesystem', '/srv/notes'], {}, remote)).toThrow(/the engine is on another machine \(DOCKER_HOST=tcp:\/\/127\.0\.0\.1:2375\): \/srv\/notes is a path of this one, which it can't mount/);
    const spec = plan('npx', ['-y', '@modelcontextprotocol/server-everything'], {}, remote).spec;
    expect(spec.mounts.filter((m) => m.type === 'bind')).toEqual([]);
    expect(spec.env.map((v) => v.name)).not.toContain('NODE_EXTRA_CA_CERTS');
  });

  it('--copy-in: each directory becomes a read-only volume of this session at the same path; the args are unchanged', () => {
    const run = plan('npx', ['-y', '@modelcontextprotocol/server-filesystem', '/srv/notes'], { copyIn: true }, remote);
    expect(run.spec.mounts.filter((m) => m.type === 'bind')).toEqual([]);
    expect(run.input.copies).toEqual([{ source: '/srv/notes', target: '/srv/notes', volume: `${run.spec.name}-copy-0` }]);
    expect(run.spec.mounts).toContainEqual({ type: 'volume', source: `${run.spec.name}-copy-0`, target: '/srv/notes', readonly: true });
    expect(run.spec.args.slice(-1)).toEqual(['/srv/notes']);
    // Not the host user's files on the engine: the server runs as nobody.
    expect(run.spec.user).toBe('65534:65534');
    // A standby of another session never holds these: each session has its own volume names.
    expect(plan('npx', ['-y', '@modelcontextprotocol/server-filesystem', '/srv/notes'], { copyIn: true }, remote).input.copies![0]!.volume).not.toBe(run.input.copies![0]!.volume);
  });

  it('--copy-in: the CA bundles are one volume at the CA dir; the install container gets them, never the copied directories', () => {
    const withCa = ctx({ env: { ...remote.env, NODE_EXTRA_CA_CERTS: '/srv/ca.pem' }, fs: { realpath: (p) => p, kind: (p) => (p === '/srv/ca.pem' ? 'file' : 'dir') } });
    const run = plan('npx', ['-y', '@modelcontextprotocol/server-filesystem', '/srv/notes'], { copyIn: true }, withCa);
    expect(run.input.ca.volume).toBe(`${run.spec.name}-copy-ca`);
    expect(run.spec.mounts).toContainEqual({ type: 'volume', source: `${run.spec.name}-copy-ca`, target: '/mcpbox/ca', readonly: true });
    expect(envOf(runArgv(run.spec))).toContain(`NODE_EXTRA_CA_CERTS=${run.input.ca.mounts[0]!.containerPath}`);
    const install = installSpec(run, 'install-volume', ['true'], {}, { volume: 'egress', token: 't' });
    expect(install.mounts.map((m) => m.target)).not.toContain('/srv/notes');
    expect(install.mounts).toContainEqual(expect.objectContaining({ source: `${run.spec.name}-copy-ca`, target: '/mcpbox/ca' }));
  });

  it('--copy-in refuses a file on its own (a volume mounts as a directory), and changes nothing for a local engine', () => {
    const fileOnly = ctx({ ...remote, fs: { realpath: (p) => p, kind: (p) => (p === '/srv/notes' ? 'dir' : 'file') } });
    expect(() => plan('npx', ['-y', 'x'], { copyIn: true, mount: ['/srv/notes', '/etc/hosts'] }, fileOnly)).toThrow(/--copy-in: \/etc\/hosts is a file on its own/);
    const local = plan('npx', ['-y', '@modelcontextprotocol/server-filesystem', '/srv/notes'], { copyIn: true });
    expect(local.input.copies).toBeUndefined();
    expect(local.spec.mounts).toContainEqual(expect.objectContaining({ type: 'bind', source: '/srv/notes', target: '/srv/notes' }));
  });
});

describe('stale --copy-in volumes', () => {
  const probe = { host: 'here', isAlive: (pid: number) => pid === 10, startTime: () => new Date('2026-01-01T00:00:00Z') };
  const volume = (name: string, pid: number, host = 'here') => ({ name, labels: { 'dev.mcpbox.owner-pid': String(pid), 'dev.mcpbox.owner-host': host, 'dev.mcpbox.started-at': '2026-01-02T00:00:00Z' } });
  it('are the ones whose mcpbox on this host is gone; another host\'s are left alone', () => {
    expect(staleCopies([volume('live', 10), volume('gone', 11), volume('elsewhere', 11, 'there'), { name: 'unlabelled', labels: {} }], probe)).toEqual(['gone']);
  });
});
