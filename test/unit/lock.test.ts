import { describe, expect, it } from 'vitest';
import { runnerArgs } from '../../src/commands/update.js';
import {
  describeNpmInstall,
  describeUvInstall,
  installPrefix,
  installRequest,
  lockKey,
  needsRefresh,
  parseInstallReport,
} from '../../src/lock.js';
import { parseRunnerArgs } from '../../src/runners.js';

const request = (runner: string, args: string[]) => installRequest(parseRunnerArgs(runner, args));

describe('what gets installed once and locked', () => {
  it.each([
    ['npx -y pkg', 'npx', ['-y', 'pkg', '--port', '1'], { specs: ['pkg'], command: undefined, name: 'pkg', pinned: false, serverArgsFrom: 2 }],
    ['npx pinned', 'npx', ['-y', '@s/pkg@1.2.3'], { specs: ['@s/pkg@1.2.3'], name: '@s/pkg', pinned: true }],
    ['npx range', 'npx', ['pkg@^1'], { specs: ['pkg@^1'], pinned: false }],
    ['npx -p … command', 'npx', ['-p', 'a@1.0.0', '-p', 'b@2.0.0', 'tool', 'x'], { specs: ['a@1.0.0', 'b@2.0.0'], command: 'tool', name: 'a', pinned: true, serverArgsFrom: 5 }],
    ['uvx pkg', 'uvx', ['mcp-server-time', '--local-timezone', 'UTC'], { specs: ['mcp-server-time'], command: 'mcp-server-time', name: 'mcp-server-time', pinned: false, serverArgsFrom: 1 }],
    ['uvx pkg@ver', 'uvx', ['mcp-server-time@2026.1.1'], { specs: ['mcp-server-time==2026.1.1'], command: 'mcp-server-time', pinned: true }],
    ['uvx pkg@latest', 'uvx', ['ruff@latest', 'check'], { specs: ['ruff'], command: 'ruff', pinned: false }],
    ['uvx --from', 'uvx', ['--from', 'mcp-server-git==1.0', 'mcp-server-git'], { specs: ['mcp-server-git==1.0'], command: 'mcp-server-git', name: 'mcp-server-git', pinned: true }],
    ['uvx --with --python', 'uvx', ['--python', '3.12', '--with', 'numpy', 'tool'], { specs: ['tool', 'numpy'], python: '3.12', pinned: false }],
  ])('%s', (_label, runner, args, expected) => {
    expect(request(runner, args)).toMatchObject(expected);
  });

  it.each([
    ['npx -c', 'npx', ['-c', 'echo hi']],
    ['npx git spec', 'npx', ['-y', 'github:owner/repo']],
    ['npx local path', 'npx', ['-y', './pkg']],
    ['npx alias', 'npx', ['-y', 'npm:real@1']],
    ['npx --registry', 'npx', ['--registry', 'https://r.example', '-y', 'pkg']],
    ['npx --version', 'npx', ['--version']],
    ['uvx --index-url', 'uvx', ['--index-url', 'https://pypi.example/simple', 'pkg']],
    ['uvx --with-editable', 'uvx', ['--with-editable', './x', 'pkg']],
    ['uvx git --from', 'uvx', ['--from', 'git+https://example.org/x.git', 'x']],
  ])('not locked: %s (runs through the runner as typed)', (_label, runner, args) => {
    expect(request(runner, args)).toBeUndefined();
  });

  it('the key ignores the server’s own arguments', () => {
    expect(lockKey(request('npx', ['-y', 'pkg', '/a'])!)).toBe(lockKey(request('npx', ['-y', 'pkg', '/b', '--x'])!));
    expect(lockKey(request('npx', ['-y', 'pkg'])!)).not.toBe(lockKey(request('npx', ['-y', 'pkg@1.0.0'])!));
  });

  it.each([
    ['npx', ['-y', '@modelcontextprotocol/server-everything']],
    ['npx', ['-y', 'p@1.0.0']],
    ['npx', ['-p', 'a', '-p', 'b@2', 'tool']],
    ['uvx', ['mcp-server-time']],
    ['uvx', ['mcp-server-time@2026.1.1']],
    ['uvx', ['--python', '3.11', '--from', 'x==1', '--with', 'y', 'cmd']],
  ])('mcpbox update asks again for exactly what was locked: %s %j', (runner, args) => {
    const original = request(runner, args)!;
    expect(lockKey(request(runner, runnerArgs(original))!)).toBe(lockKey(original));
  });
});

describe('refreshing', () => {
  const now = new Date('2026-11-23T12:00:00Z');
  it.each([
    ['fresh', { pinned: false, resolvedAt: '2026-11-23T00:00:00Z' }, 24, false],
    ['a day old', { pinned: false, resolvedAt: '2026-11-22T12:00:00Z' }, 24, true],
    ['a day old, weekly interval', { pinned: false, resolvedAt: '2026-11-22T12:00:00Z' }, 168, false],
    ['pinned, a year old', { pinned: true, resolvedAt: '2025-11-23T00:00:00Z' }, 24, false],
    ['unreadable date', { pinned: false, resolvedAt: 'x' }, 24, true],
  ])('%s', (_label, entry, hours, expected) => {
    expect(needsRefresh(entry, now, hours)).toBe(expected);
  });
});

const tree = 'a'.repeat(64);
const npmLock = JSON.stringify({
  packages: {
    '': { dependencies: { '@s/server': '^1.0.0' } },
    'node_modules/@s/server': { version: '1.2.3', integrity: 'sha512-abc', bin: { 'mcp-server': 'dist/index.js' } },
    'node_modules/multi': { version: '2.0.0', integrity: 'sha512-def', bin: { one: 'a.js', multi: 'b.js' } },
    'node_modules/none': { version: '3.0.0', integrity: 'sha512-ghi' },
  },
});
const report = (lockfile: string, bins: string) => `MCPBOX-TREE ${tree}\nMCPBOX-DIR /mcpbox/cache/pkgs/x/y-aaaa\nMCPBOX-BINS ${bins}\n${lockfile}`;

describe('install reports', () => {
  it('parses the header and keeps the lockfile byte for byte', () => {
    const text = `${npmLock}\n`;
    expect(parseInstallReport(report(text, 'mcp-server one multi '))).toEqual({ tree, dir: '/mcpbox/cache/pkgs/x/y-aaaa', bins: ['mcp-server', 'one', 'multi'], lockfile: text });
  });

  it('refuses anything else', () => {
    expect(() => parseInstallReport('npm warn something\n')).toThrow(/reported nothing usable/);
  });

  it.each([
    ['the only bin', { name: '@s/server', command: undefined }, 'mcp-server'],
    ['the bin named like the package', { name: 'multi', command: undefined }, 'multi'],
    ['the command asked for', { name: 'multi', command: 'one' }, 'one'],
  ])('npm executable: %s', (_label, req, executable) => {
    expect(describeNpmInstall(req, parseInstallReport(report(npmLock, 'mcp-server one multi'))).executable).toBe(executable);
  });

  it('npm version and integrity of the first package', () => {
    expect(describeNpmInstall({ name: '@s/server', command: undefined }, parseInstallReport(report(npmLock, 'mcp-server')))).toEqual({
      version: '1.2.3',
      integrity: 'sha512-abc',
      executable: 'mcp-server',
    });
  });

  it('npm: no way to tell which bin, as npx says', () => {
    expect(() => describeNpmInstall({ name: 'none', command: undefined }, parseInstallReport(report(npmLock, '')))).toThrow(/could not determine the executable/);
  });

  const requirements = [
    'annotated-types==0.7.0 \\',
    '    --hash=sha256:1111111111111111111111111111111111111111111111111111111111111111',
    'mcp-server-time==2026.10.19 \\',
    '    --hash=sha256:3333333333333333333333333333333333333333333333333333333333333333 \\',
    '    --hash=sha256:2222222222222222222222222222222222222222222222222222222222222222',
    '',
  ].join('\n');

  it('uv version and hashes of the first package', () => {
    expect(describeUvInstall({ name: 'mcp-server-time', command: 'mcp-server-time' }, parseInstallReport(report(requirements, 'python mcp-server-time')))).toEqual({
      version: '2026.10.19',
      integrity: `sha256:${'2'.repeat(64)} sha256:${'3'.repeat(64)}`,
      executable: 'mcp-server-time',
    });
  });

  it('uv: the command must be one of the environment’s executables', () => {
    expect(() => describeUvInstall({ name: 'mcp-server-time', command: 'nope' }, parseInstallReport(report(requirements, 'python mcp-server-time')))).toThrow(
      /provides no executable nope \(found: mcp-server-time\)/,
    );
  });

  it('installs live per image under the cache volume', () => {
    expect(installPrefix('/mcpbox/cache', 'mcpbox/npx:1', 'npx pkg')).toMatch(/^\/mcpbox\/cache\/pkgs\/[0-9a-f]{12}\/[0-9a-f]{12}$/);
    expect(installPrefix('/mcpbox/cache', 'mcpbox/npx:1', 'npx pkg')).not.toBe(installPrefix('/mcpbox/cache', 'mcpbox/npx:2', 'npx pkg'));
  });
});
