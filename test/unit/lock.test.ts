import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  installRequest,
  type LockEntry,
  lockEntryProblem,
  lockKey,
  needsRefresh,
  resolveDue,
  runnerArgs,
} from '../../src/install/lock.js';
import { parseRunnerArgs } from '../../src/runners/table.js';
import { describeNpmInstall } from '../../src/runners/npx.js';
import { parseInstallReport } from '../../src/runners/report.js';
import { describeUvInstall } from '../../src/runners/uvx.js';

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
  it.each([
    ['fresh, not forced', { pinned: false, resolvedAt: '2026-11-23T00:00:00Z' }, false, false],
    ['fresh, forced (mcpbox update)', { pinned: false, resolvedAt: '2026-11-23T00:00:00Z' }, true, true],
    ['pinned, forced', { pinned: true, resolvedAt: '2025-11-23T00:00:00Z' }, true, true],
    ['a day old, not forced', { pinned: false, resolvedAt: '2026-11-22T12:00:00Z' }, false, true],
  ])('resolves again: %s', (_label, entry, force, expected) => {
    expect(resolveDue(entry, { now, intervalHours: 24, force })).toBe(expected);
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
const sig = 'a'.repeat(64);
const content = 'c'.repeat(64);
const report = (lockfile: string, bins: string) => `MCPBOX-TREE ${tree}\nMCPBOX-DIR /mcpbox/install/tree-aaaa\nMCPBOX-STAT ${sig}\nMCPBOX-CONTENT ${content}\nMCPBOX-BINS ${bins}\n${lockfile}`;

describe('install reports', () => {
  it('parses the header and keeps the lockfile byte for byte', () => {
    const text = `${npmLock}\n`;
    expect(parseInstallReport(report(text, 'mcp-server one multi '))).toEqual({ tree, dir: '/mcpbox/install/tree-aaaa', signature: sig, content, bins: ['mcp-server', 'one', 'multi'], lockfile: text });
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

});

describe('a lock entry is read as untrusted before anything is installed from it', () => {
  const sha = (text: string) => createHash('sha256').update(text).digest('hex');
  const npmRequest = installRequest(parseRunnerArgs('npx', ['-y', 'cowsay@1.6.0']))!;
  const lockOf = (packages: Record<string, unknown>) => JSON.stringify({ name: 'mcpbox-install', lockfileVersion: 3, packages });
  const good = {
    '': { dependencies: { cowsay: '1.6.0' } },
    'node_modules/cowsay': { version: '1.6.0', resolved: 'https://registry.npmjs.org/cowsay/-/cowsay-1.6.0.tgz', integrity: 'sha512-AAAA', bin: { cowsay: 'cli.js' } },
    'node_modules/cowsay/node_modules/strip-final-newline': { version: '2.0.0', integrity: 'sha512-BBBB' },
    'node_modules/npm/node_modules/bundled': { version: '1.0.0', inBundle: true },
  };
  const entry = (lockfile: string, overrides: Partial<LockEntry> = {}): LockEntry => ({
    runner: 'npx', specs: ['cowsay@1.6.0'], name: 'cowsay', version: '1.6.0', integrity: 'sha512-AAAA', executable: 'cowsay',
    tree: sha(lockfile), lockfile, pinned: true, resolvedAt: '2026-01-01T00:00:00.000Z', ...overrides,
  });

  it('a registry tree that locks what its key asks for passes', () => {
    expect(lockEntryProblem(npmRequest, entry(lockOf(good)), sha)).toBeUndefined();
  });

  it.each([
    ['another package under the key', { specs: ['evil@1.0.0'] }, /locks npx evil@1\.0\.0, not what its key names/],
    ['an executable with a path', { executable: '../../bin/sh' }, /is not a plain command name/],
    ['a tree hash that does not match', { tree: 'f'.repeat(64) }, /tree hash does not match/],
  ])('refuses %s', (_label, overrides, message) => {
    expect(lockEntryProblem(npmRequest, entry(lockOf(good), overrides as Partial<LockEntry>), sha)).toMatch(message);
  });

  it.each([
    ['a git dependency (no integrity)', { 'node_modules/cowsay': { version: '1.6.0', resolved: 'git+ssh://git@evil/x.git#abc' } }, /has no registry integrity/],
    ['a link to a local path', { 'node_modules/cowsay': { link: true, resolved: '../../evil' } }, /links node_modules\/cowsay to a local path/],
    ['an entry outside node_modules', { '../../etc': { version: '1.0.0', integrity: 'sha512-x' } }, /has an entry at \.\.\/\.\.\/etc/],
    ['a tarball URL as its version', { 'node_modules/cowsay': { version: 'https://evil/x.tgz', integrity: 'sha512-x' } }, /not locked to a registry version/],
    ['another root package', { '': { dependencies: { evil: '1.0.0' } } }, /installs evil, not cowsay/],
  ])('refuses a package-lock.json with %s', (_label, change, message) => {
    const lockfile = lockOf({ ...good, ...change });
    expect(lockEntryProblem(npmRequest, entry(lockfile), sha)).toMatch(message);
  });

  const uvRequest = installRequest(parseRunnerArgs('uvx', ['mcp-server-time']))!;
  const uvEntry = (lockfile: string): LockEntry => ({ ...entry(lockfile), runner: 'uvx', specs: ['mcp-server-time'], name: 'mcp-server-time', command: 'mcp-server-time', executable: 'mcp-server-time' });
  const pins = ['mcp-server-time==2026.1.1 \\', `    --hash=sha256:${'1'.repeat(64)}`, "colorama==0.4.6 ; sys_platform == 'win32' \\", `    --hash=sha256:${'2'.repeat(64)}`, ''];

  it('requirements with pins and hashes only pass', () => {
    expect(lockEntryProblem(uvRequest, uvEntry(pins.join('\n')), sha)).toBeUndefined();
  });

  it.each([
    '--index-url https://evil.example/simple',
    '--extra-index-url https://evil.example/simple',
    '-e git+https://evil.example/x.git',
    'evil @ https://evil.example/evil-1.0-py3-none-any.whl',
    '-r other.txt',
    'mcp-server-time>=1',
  ])('refuses requirements holding %s', (line) => {
    expect(lockEntryProblem(uvRequest, uvEntry([line, ...pins].join('\n')), sha)).toMatch(/neither a pinned requirement nor a hash/);
  });
});
