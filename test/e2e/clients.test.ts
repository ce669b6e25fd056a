import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { execa } from 'execa';
import { parse } from 'jsonc-parser';
import { describe, expect, inject, it } from 'vitest';
import { FIXTURES, MCPBOX, mcpbox, quietStateDir, testEnv, textOf, WORKDIR } from './helpers.js';

const engine = inject('engine');
const CLIENTS = join(FIXTURES, 'clients');

function tempHome() {
  const home = mkdtempSync(join(tmpdir(), 'mcpbox-home-'));
  return { home, env: testEnv({ HOME: home, XDG_STATE_HOME: quietStateDir(), XDG_CONFIG_HOME: join(home, '.config') }) };
}

function place(source: string, target: string) {
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(join(CLIENTS, source), target);
  return target;
}

describe('wrap and unwrap, through the CLI, on real client files', () => {
  it.each([
    'claude_desktop_config.json',
    'claude_desktop_config.windows.json',
    'claude.json',
    '.mcp.json',
    'cursor-mcp.json',
    'vscode-mcp.json',
    'windsurf-mcp_config.json',
  ])('%s: wrap, wrap again (no change), unwrap (byte-identical), with backups', async (fixture) => {
    const { home, env } = tempHome();
    const file = place(fixture, join(home, 'work', fixture));
    const original = readFileSync(file, 'utf8');
    const wrapped = await mcpbox(['wrap', '--config', file], { env });
    expect(wrapped.exitCode, wrapped.stderr).toBe(0);
    expect(wrapped.stdout).toMatch(/^ {2}wrapped: \S/m);
    const afterWrap = readFileSync(file, 'utf8');
    expect(afterWrap).not.toBe(original);
    const backups = readdirSync(dirname(file)).filter((f) => f.endsWith('.bak'));
    expect(backups).toHaveLength(1);
    expect(readFileSync(join(dirname(file), backups[0]!), 'utf8')).toBe(original);

    const again = await mcpbox(['wrap', '--config', file], { env });
    expect(again.stdout).toMatch(/^ {2}no change$/m);
    expect(readFileSync(file, 'utf8')).toBe(afterWrap);

    const unwrapped = await mcpbox(['unwrap', '--config', file], { env });
    expect(unwrapped.exitCode, unwrapped.stderr).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe(original);
  });

  it('--dry-run shows a diff and writes nothing', async () => {
    const { home, env } = tempHome();
    const file = place('vscode-mcp.json', join(home, 'p', '.vscode', 'mcp.json'));
    const before = statSync(file).mtimeMs;
    const dry = await mcpbox(['wrap', '--dry-run', '--config', file], { env });
    expect(dry.exitCode).toBe(0);
    expect(dry.stdout).toMatch(/^-\t\t\t"command": "npx",$/m);
    expect(dry.stdout).toMatch(/^\+\t\t\t"command": "mcpbox",$/m);
    expect(statSync(file).mtimeMs).toBe(before);
    expect(readdirSync(dirname(file))).toEqual(['mcp.json']);
  });

  it('a file that does not parse is left untouched, with a one-line error, exit 65', async () => {
    const { home, env } = tempHome();
    const file = place('malformed.json', join(home, 'broken', 'mcp.json'));
    const before = readFileSync(file, 'utf8');
    const result = await mcpbox(['wrap', '--config', file], { env });
    expect(result.exitCode).toBe(65);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^mcpbox: .*mcp\.json is not valid JSON \(\w+ at line 6, column 5\); left untouched \(hint: .+\)$/)]);
    expect(readFileSync(file, 'utf8')).toBe(before);
    expect(readdirSync(dirname(file))).toEqual(['mcp.json']);
  });

  it('finds the clients where they keep their files; --client picks one', async () => {
    const { home, env } = tempHome();
    const project = join(home, 'project');
    const files = {
      desktop: place('claude_desktop_config.json', join(home, '.config', 'Claude', 'claude_desktop_config.json')),
      code: place('claude.json', join(home, '.claude.json')),
      cursor: place('cursor-mcp.json', join(home, '.cursor', 'mcp.json')),
      windsurf: place('windsurf-mcp_config.json', join(home, '.codeium', 'windsurf', 'mcp_config.json')),
      vscode: place('vscode-mcp.json', join(project, '.vscode', 'mcp.json')),
      projectCode: place('.mcp.json', join(project, '.mcp.json')),
    };
    const originals = Object.fromEntries(Object.entries(files).map(([k, f]) => [k, readFileSync(f, 'utf8')]));
    const onlyCursor = await mcpbox(['wrap', '--client', 'cursor'], { env, cwd: project });
    expect(onlyCursor.stdout.split('\n').filter((l) => l.startsWith('/'))).toEqual([`${files.cursor} (Cursor)`]);
    const all = await mcpbox(['wrap'], { env, cwd: project });
    expect(all.exitCode, all.stderr).toBe(0);
    expect(all.stdout.split('\n').filter((l) => l.startsWith('/'))).toEqual([
      `${files.desktop} (Claude Desktop)`,
      `${files.code} (Claude Code)`,
      `${files.projectCode} (Claude Code)`,
      `${files.cursor} (Cursor)`,
      `${files.vscode} (VS Code)`,
      `${files.windsurf} (Windsurf)`,
    ]);
    for (const [key, file] of Object.entries(files)) expect(readFileSync(file, 'utf8'), key).not.toBe(originals[key]);
    await mcpbox(['unwrap'], { env, cwd: project });
    for (const [key, file] of Object.entries(files)) expect(readFileSync(file, 'utf8'), key).toBe(originals[key]);
  });

  it('lists what it leaves alone: other commands and remote servers', async () => {
    const { home, env } = tempHome();
    const file = place('claude.json', join(home, '.claude.json'));
    const result = await mcpbox(['wrap', '--config', file], { env });
    expect(result.stdout).toContain('  wrapped: everything, time (project /home/username/project)');
    expect(result.stdout).toContain('  left alone: sentry (remote)');
  });
});

describe.skipIf(!engine)('a wrapped Claude Desktop entry, started as Claude Desktop starts it', () => {
  it('answers, and unwrap restores the file', async () => {
    const { home, env } = tempHome();
    const file = join(home, '.config', 'Claude', 'claude_desktop_config.json');
    mkdirSync(dirname(file), { recursive: true });
    const original = `${JSON.stringify(
      {
        mcpServers: {
          everything: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-everything'], env: { EVERYTHING_E2E_TOKEN: 'token-value' } },
        },
      },
      null,
      2,
    )}\n`;
    writeFileSync(file, original);
    const wrapped = await mcpbox(['wrap', '--client', 'claude-desktop'], { env });
    expect(wrapped.exitCode, wrapped.stderr).toBe(0);
    const entry = (parse(readFileSync(file, 'utf8')) as { mcpServers: Record<string, { command: string; args: string[]; env: Record<string, string> }> }).mcpServers.everything!;
    expect(entry).toEqual({ command: 'mcpbox', args: ['run', '-e', 'EVERYTHING_E2E_TOKEN', 'npx', '-y', '@modelcontextprotocol/server-everything'], env: { EVERYTHING_E2E_TOKEN: 'token-value' } });

    // The client finds `mcpbox` on its PATH and passes the entry's env, nothing else of ours.
    const bin = mkdtempSync(join(tmpdir(), 'mcpbox-bin-'));
    symlinkSync(MCPBOX, join(bin, 'mcpbox'));
    const passThrough = ['MCPBOX_CONFIG', 'XDG_STATE_HOME', 'MCPBOX_NPX_BASE_IMAGE', 'MCPBOX_UVX_BASE_IMAGE', 'NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE'];
    const clientEnv = { ...Object.fromEntries(passThrough.filter((k) => env[k]).map((k) => [k, env[k]!])), ...entry.env, PATH: `${bin}:/usr/local/bin:/usr/bin:/bin`, HOME: home };
    const transport = new StdioClientTransport({ command: entry.command, args: entry.args, env: clientEnv, stderr: 'pipe', cwd: WORKDIR });
    const client = new Client({ name: 'claude-desktop-e2e', version: '0' });
    try {
      await client.connect(transport, { timeout: 180_000 });
      const result = await client.callTool({ name: 'echo', arguments: { message: 'through the wrapped entry' } });
      expect(textOf(result)).toContain('through the wrapped entry');
    } finally {
      await client.close();
    }
    const unwrapped = await mcpbox(['unwrap', '--client', 'claude-desktop'], { env });
    expect(unwrapped.exitCode).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe(original);
  });
});

describe.skipIf(!engine)('doctor', () => {
  it('against the real engine: every check passes, including a real sandbox', async () => {
    const result = await mcpbox(['doctor', '--json']);
    expect(result.exitCode, result.stdout).toBe(0);
    const report = JSON.parse(result.stdout) as { ok: boolean; checks: { id: string; status: string; detail: string }[] };
    expect(report.ok).toBe(true);
    const byId = Object.fromEntries(report.checks.map((c) => [c.id, c]));
    expect(byId.engine?.status).toBe('ok');
    expect(byId.daemon?.detail).toMatch(/^engine \S+ answers/);
    expect(byId.smoke).toMatchObject({ status: 'ok', detail: expect.stringMatching(/uid 65534, no capabilities, no-new-privileges, seccomp filter, read-only root/) });
    expect(byId['ca-NODE_EXTRA_CA_CERTS']?.status ?? 'ok').toBe('ok');
    expect(byId.tls?.status).toBe('ok');
    expect(byId['base-npx']).toMatchObject({ status: 'ok', detail: expect.stringMatching(/builds on \S+: (?:digest sha256:|a local image, id sha256:)/) });
    const human = await mcpbox(['doctor']);
    expect(human.stdout).toMatch(/^✓ smoke\s+a sandbox in/m);
    expect(human.stdout.trim().split('\n').at(-1)).toBe('mcpbox is ready.');
  });

  it.each([
    ['no engine', { MCPBOX_DOCKER: '/nonexistent/docker' }, 'engine', /MCPBOX_DOCKER names \/nonexistent\/docker/],
    ['engine down', { DOCKER_HOST: 'unix:///tmp/mcpbox-e2e-nothing.sock' }, 'daemon', /not answering/],
  ])('against %s: that check fails with its fix, exit 1', async (_label, extra, id, detail) => {
    const result = await mcpbox(['doctor', '--json'], { env: testEnv(extra) });
    expect(result.exitCode).toBe(1);
    const report = JSON.parse(result.stdout) as { ok: boolean; checks: { id: string; status: string; detail: string; fix?: string }[] };
    expect(report.ok).toBe(false);
    const check = report.checks.find((c) => c.id === id)!;
    expect(check).toMatchObject({ status: 'fail', detail: expect.stringMatching(detail), fix: expect.any(String) });
    const human = await mcpbox(['doctor'], { env: testEnv(extra) });
    expect(human.stdout).toMatch(new RegExp(`^✗ ${id}\\s+.+\\n\\s+fix: .+`, 'm'));
  });
});

describe.skipIf(!engine)('doctor tells the truth', () => {
  it('a default image that can be neither found, pulled nor built: its base check fails, exit 1, not "ready"', async () => {
    const env = testEnv({ MCPBOX_NPX_BASE_IMAGE: 'mcpbox-e2e/no-such-base:1' });
    const result = await mcpbox(['doctor', '--json'], { env });
    expect(result.exitCode).toBe(1);
    const checks = (JSON.parse(result.stdout) as { checks: { id: string; status: string; detail: string; fix?: string }[] }).checks;
    expect(checks.find((c) => c.id === 'base-npx')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/can't be built: its base mcpbox-e2e\/no-such-base:1 is not here and can't be pulled/), fix: expect.stringMatching(/mcpbox images bootstrap/) });
    expect(checks.find((c) => c.id === 'base-uvx')?.status).toBe('ok');
    expect((await mcpbox(['doctor'], { env })).stdout).not.toMatch(/mcpbox is ready/);
  });

  it('a network that intercepts TLS, and no CA bundle configured: the tls check fails with the fix', async () => {
    const env = testEnv();
    for (const name of Object.keys(env)) if (/CA_CERTS|CERT_FILE|CA_BUNDLE|^PIP_CERT$|SSL_CERT_DIR/.test(name)) delete env[name];
    const result = await mcpbox(['doctor', '--json'], { env });
    const tls = (JSON.parse(result.stdout) as { checks: { id: string; status: string; fix?: string }[] }).checks.find((c) => c.id === 'tls')!;
    // This machine's network does intercept TLS (its CA bundle is what the other tests use).
    expect(tls).toMatchObject({ status: 'fail', fix: expect.stringMatching(/NODE_EXTRA_CA_CERTS/) });
    expect(result.exitCode).toBe(1);
  });
});

describe.skipIf(!engine)('images bootstrap', () => {
  it('reuses the bases built here and records them in the settings file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mcpbox-e2e-config-'));
    try {
      const file = join(dir, 'config.json');
      writeFileSync(file, JSON.stringify({ memory: '1g' }));
      const result = await mcpbox(['images', 'bootstrap'], { env: testEnv({ MCPBOX_CONFIG: file }) });
      expect(result.exitCode, result.stderr).toBe(0);
      expect(result.stderr).toMatch(/reusing mcpbox-bootstrap\/node:22-bookworm/);
      const written = JSON.parse(readFileSync(file, 'utf8')) as { memory: string; baseImages: Record<string, string> };
      expect(written).toEqual({ memory: '1g', baseImages: { npx: 'mcpbox-bootstrap/node:22-bookworm', uvx: 'mcpbox-bootstrap/uv-python:trixie' } });
      expect(result.stdout).toContain(`recorded as baseImages in ${file}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!engine)('pull', () => {
  it('prepares a package ahead of time: its first run then needs no network', async () => {
    const { env } = tempHome();
    const pulled = await mcpbox(['pull', 'npx', '@modelcontextprotocol/server-everything'], { env });
    expect(pulled.exitCode, pulled.stderr).toBe(0);
    expect(pulled.stdout).toMatch(/^npx @modelcontextprotocol\/server-everything@\S+ ready \(mcp-server-everything, locked in .+mcpbox\.lock\)$/m);
    // stderr isn't a terminal here: no progress on it.
    expect(pulled.stderr).toBe('');
    const INITIALIZE = '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"0"}}}\n';
    const first = await mcpbox(['run', '--network', 'none', 'npx', '-y', '@modelcontextprotocol/server-everything'], { env, input: INITIALIZE });
    expect(first.stdout).toContain('"serverInfo"');
    expect(first.stderr).not.toMatch(/resolving|installing/);
  });

  it('with no package, prepares the image', async () => {
    const result = await mcpbox(['pull', 'uvx']);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/^uvx mcpbox\/uvx:[0-9a-f]+ ready$/m);
  });

  it('refuses an unknown runner', async () => {
    const result = await mcpbox(['pull', 'bunx', 'x']);
    expect(result.exitCode).toBe(64);
    expect(result.stderr).toMatch(/unknown runner "bunx"/);
  });
});

describe('shell-init and help', () => {
  it('bash: the aliases work in a shell', async () => {
    const result = await execa('bash', ['-c', `shopt -s expand_aliases; eval "$(${process.execPath} ${MCPBOX} shell-init bash)"; alias npx; alias uvx`]);
    expect(result.stdout.split('\n')).toEqual(["alias npx='mcpbox run npx'", "alias uvx='mcpbox run uvx'"]);
  });

  it.each([
    ['zsh', "alias npx='mcpbox run npx'"],
    ['fish', "alias npx 'mcpbox run npx'"],
  ])('%s', async (shell, line) => {
    expect((await mcpbox(['shell-init', shell])).stdout).toContain(line);
  });

  it('an unknown shell is refused', async () => {
    const result = await mcpbox(['shell-init', 'tcsh']);
    expect([result.exitCode, result.stdout]).toEqual([64, '']);
  });

  it('typos: a runner as the command points at mcpbox run, a near command gets its name, -v is --version', async () => {
    const runner = await mcpbox(['npx', '-y', 'cowsay']);
    expect([runner.exitCode, runner.stdout]).toEqual([64, '']);
    expect(runner.stderr.trim()).toBe("mcpbox: unknown command 'npx' (hint: to run it sandboxed: mcpbox run npx -y cowsay)");
    const near = await mcpbox(['pul', 'npx']);
    expect(near.exitCode).toBe(64);
    expect(near.stderr.trim()).toBe("mcpbox: unknown command 'pul' (hint: did you mean mcpbox pull? (mcpbox --help lists the commands))");
    for (const flag of ['-v', '-V']) expect((await mcpbox([flag])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('a configuration file that does not parse: one line, file:line:col and the problem', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mcpbox-e2e-config-'));
    try {
      writeFileSync(join(dir, 'bad.json'), '{\n  "memory": "1g",,\n}\n');
      writeFileSync(join(dir, 'bad.yaml'), 'memory: 1g\n  cpus: [1\n');
      for (const [file, where] of [['bad.json', ':2:18: Expected double-quoted property name'], ['bad.yaml', ':2:7: bad indentation']] as const) {
        const result = await mcpbox(['run', '--dry-run', 'npx', '-y', 'cowsay'], { env: testEnv({ MCPBOX_CONFIG: join(dir, file) }) });
        expect([result.exitCode, result.stdout]).toEqual([78, '']);
        expect(result.stderr.trim().split('\n')).toHaveLength(1);
        expect(result.stderr).toContain(`${join(dir, file)}${where}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--version and help with examples', async () => {
    const version = await mcpbox(['--version']);
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync(join(dirname(MCPBOX), '..', 'package.json'), 'utf8')).version);
    const help = await mcpbox(['help']);
    expect(help.stdout).toMatch(/^Examples:$/m);
    for (const command of ['run', 'wrap', 'unwrap', 'pull', 'doctor', 'shell-init', 'update', 'ps', 'stop', 'prune']) expect(help.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
  });
});
