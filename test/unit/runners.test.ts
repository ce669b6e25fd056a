import npa from 'npm-package-arg';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { parseNpmSpec } from '../../src/runners/npx.js';
import { parseRunnerArgs } from '../../src/runners/table.js';
import { parsePythonSpec } from '../../src/runners/uvx.js';

const packagesOf = (runner: string, args: string[]) =>
  parseRunnerArgs(runner, args).packages.map((p) => [p.name, p.version ?? null]);

describe('npx translation', () => {
  it.each([
    ['-y pkg', ['-y', 'pkg'], [['pkg', null]]],
    ['--yes pkg args', ['--yes', 'pkg', '--flag', 'x'], [['pkg', null]]],
    ['no -y', ['pkg'], [['pkg', null]]],
    ['pkg@version', ['-y', 'pkg@1.2.3'], [['pkg', '1.2.3']]],
    ['scoped', ['-y', '@modelcontextprotocol/server-everything'], [['@modelcontextprotocol/server-everything', null]]],
    ['scoped@tag', ['-y', '@scope/pkg@latest'], [['@scope/pkg', 'latest']]],
    ['-p then command', ['-p', 'a', '-p', 'b@2', 'cmd'], [['a', null], ['b', '2']]],
    ['--package=', ['--package=@s/tool@1.0.0', 'tool'], [['@s/tool', '1.0.0']]],
    ['-pVALUE', ['-ptypescript', 'tsc'], [['typescript', null]]],
    ['--package value', ['--package', 'cowsay', 'cowsay', 'hi'], [['cowsay', null]]],
    ['clustered -yq', ['-yq', 'pkg'], [['pkg', null]]],
    ['--no-fund negation', ['--no-fund', '-y', 'pkg'], [['pkg', null]]],
    ['--no-prefer-online negation', ['--no-prefer-online', 'pkg'], [['pkg', null]]],
    ['--registry value', ['--registry', 'https://r.example/', 'pkg'], [['pkg', null]]],
    ['-- separator', ['-y', '--', 'pkg', '--help'], [['pkg', null]]],
    ['alias spec', ['-y', 'npm:real-pkg@3'], [['real-pkg', '3']]],
    ['git spec', ['-y', 'github:owner/repo'], [['github:owner/repo', null]]],
    ['-c without package', ['-c', 'echo hi'], []],
  ])('%s', (_label, args, expected) => {
    expect(packagesOf('npx', args)).toEqual(expected);
  });

  it('options after the package belong to the server', () => {
    expect(packagesOf('npx', ['-y', 'pkg', '-p', 'not-a-package', '--bogus'])).toEqual([['pkg', null]]);
  });

  it('--version needs no package and installs nothing', () => {
    const invocation = parseRunnerArgs('npx', ['--version']);
    expect([invocation.info, invocation.packages]).toEqual([true, []]);
  });
});

describe('uvx translation', () => {
  it.each([
    ['plain', ['mcp-server-time'], [['mcp-server-time', null]]],
    ['pkg@ver', ['mcp-server-time@0.6.2'], [['mcp-server-time', '0.6.2']]],
    ['pkg==ver', ['mcp-server-time==0.6.2'], [['mcp-server-time', '0.6.2']]],
    ['--from pinned', ['--from', 'mcp-server-time==0.6.2', 'mcp-server-time'], [['mcp-server-time', '0.6.2']]],
    ['--from=', ['--from=ruff@0.4.0', 'ruff', 'check'], [['ruff', '0.4.0']]],
    ['--from git url', ['--from', 'git+https://example.org/x.git', 'x'], [['git+https://example.org/x.git', null]]],
    ['--with repeated', ['--with', 'numpy', '--with', 'pandas>=2', 'tool'], [['tool', null], ['numpy', null], ['pandas', null]]],
    ['--python', ['--python', '3.12', 'pkg'], [['pkg', null]]],
    ['-p short python', ['-p', '3.11', 'pkg'], [['pkg', null]]],
    ['--index-url', ['--index-url', 'https://pypi.example/simple', 'pkg'], [['pkg', null]]],
    ['extras and normalisation', ['Some_Pkg.Name[cli]'], [['some-pkg-name', null]]],
    ['clustered -qq', ['-qq', 'pkg'], [['pkg', null]]],
    ['-- separator', ['--', 'pkg', '--from', 'x'], [['pkg', null]]],
  ])('%s', (_label, args, expected) => {
    expect(packagesOf('uvx', args)).toEqual(expected);
  });

  it('--version needs no package', () => {
    expect(parseRunnerArgs('uvx', ['--version']).info).toBe(true);
  });
});

describe('arguments reach the server verbatim', () => {
  const hostile = ['a b', `it's "quoted"`, '$(id)', ';rm -rf /', '`id`', '&& echo pwned', '|cat /etc/passwd', '\\n', '*', '~', ''];
  it.each([['npx', ['-y', 'pkg']], ['uvx', ['pkg']]])('%s', (runner, head) => {
    const args = [...head, ...hostile];
    expect(parseRunnerArgs(runner, args).args).toEqual(args);
  });
});

describe('refusals', () => {
  it.each([
    ['unknown runner', 'bunx', ['pkg'], /unknown runner "bunx"/],
    ['npx without a package', 'npx', ['-y'], /no package named for npx/],
    ['uvx without a package', 'uvx', ['--python', '3.12'], /no package named for uvx/],
    ['uvx --from without command', 'uvx', ['--from', 'pkg'], /no package named for uvx/],
    ['unknown npx option', 'npx', ['--frobnicate', 'pkg'], /unknown npx option --frobnicate/],
    ['unknown uvx option', 'uvx', ['--frm', 'x', 'pkg'], /unknown uvx option --frm/],
    ['unknown short cluster', 'npx', ['-yz', 'pkg'], /unknown npx option -yz/],
    ['value missing', 'npx', ['-p'], /npx option -p needs a value/],
    ['uvx boolean with value', 'uvx', ['--isolated=yes', 'pkg'], /takes no value/],
    ['invalid npm name', 'npx', ['-y', 'Bad Name!'], /not a valid npm package spec/],
  ])('%s', (_label, runner, args, message) => {
    expect(() => parseRunnerArgs(runner, args)).toThrow(UsageError);
    expect(() => parseRunnerArgs(runner, args)).toThrow(message);
  });
});

describe('package specs', () => {
  it.each([
    ['x', 'x', undefined, 'tag'],
    ['x@^1', 'x', '^1', 'range'],
    ['x@1.2.3', 'x', '1.2.3', 'version'],
    ['x@latest', 'x', 'latest', 'tag'],
    ['@a/b@2.0.0', '@a/b', '2.0.0', 'version'],
    ['./local-dir', './local-dir', undefined, 'other'],
    ['https://example.org/pkg.tgz', 'https://example.org/pkg.tgz', undefined, 'other'],
    ['github:owner/repo', 'github:owner/repo', undefined, 'other'],
    ['npm:real@3', 'real', '3', 'other'],
  ])('npm %s', (spec, name, version, kind) => {
    expect(parseNpmSpec(spec)).toEqual(version ? { name, spec, version, kind } : { name, spec, kind });
  });

  // The fast path for registry specs must read them as npm itself does.
  it.each([
    'x', 'x@*', 'x@latest', 'x@next', 'x@1.2.3', 'x@v1.2.3', 'x@1.2.3-beta.1', 'x@1.2.3+build.5', 'x@^1.2', 'x@~1.2.3', 'x@>=1 <2', 'x@1.x', 'x@1 || 2',
    '@scope/x', '@scope/x@2.0.0', '@scope/x@beta', 'a.b-c_d~e@1.0.0', 'x@2',
  ])('agrees with npm-package-arg on %s', (spec) => {
    const ours = parseNpmSpec(spec);
    const theirs = npa(spec);
    expect(ours.name).toBe(theirs.name);
    expect(ours.kind === 'version').toBe(theirs.type === 'version');
    expect(ours.kind !== 'other').toBe(theirs.registry === true);
    expect(ours.version ?? '').toBe(['', '*'].includes(theirs.rawSpec) ? '' : theirs.rawSpec);
  });

  it.each([
    ['requests', 'requests', undefined],
    ['requests==2.31.0', 'requests', '2.31.0'],
    ['requests @ https://example.org/r.whl', 'requests', undefined],
    ['requests>=2,<3', 'requests', undefined],
    ['./pkg', './pkg', undefined],
  ])('python %s', (spec, name, version) => {
    expect(parsePythonSpec(spec)).toEqual(version ? { name, spec, version } : { name, spec });
  });
});

describe('python locations stay whole', () => {
  it.each(['dist/pkg-1.0-py3-none-any.whl', 'git+https://example.org/x.git', 'https://example.org/x.tar.gz', '/abs/path', '~/src/pkg'])(
    '%s',
    (spec) => {
      expect(parsePythonSpec(spec)).toEqual({ name: spec, spec });
    },
  );
});
