import { describe, expect, it } from 'vitest';
import { shellInit } from '../../src/commands/shell-init.js';
import { parseRunnerArgs, RUNNERS, type RunnerSpec } from '../../src/runners/table.js';

/** The shell aliases behave like the real npx and uvx: local bins first, the escape hatch named. */
describe("npx runs the project's own bin first", () => {
  const files = new Set(['/work/app/node_modules/.bin/tsc', '/work/app/node_modules/.bin/prettier', '/work/node_modules/.bin/eslint']);
  const local = (args: string[], cwd = '/work/app/src') => (RUNNERS.npx as RunnerSpec).localBin!(parseRunnerArgs('npx', args), cwd, (p) => files.has(p));

  it.each([
    [['tsc', '--version'], { root: '/work/app', bin: '/work/app/node_modules/.bin/tsc' }],
    [['-y', 'prettier', '--check', '.'], { root: '/work/app', bin: '/work/app/node_modules/.bin/prettier' }],
    [['eslint', '.'], { root: '/work', bin: '/work/node_modules/.bin/eslint' }],
  ])('npx %j → the nearest node_modules/.bin, walking up', (args, expected) => {
    expect(local(args)).toEqual(expected);
  });

  it.each([
    [['prettier@3.3.0', '--version']],
    [['-p', 'typescript', 'tsc']],
    [['-c', 'tsc --version']],
    [['cowsay', 'hi']],
    [['--version']],
  ])('npx %j → the registry, as npx would', (args) => {
    expect(local(args)).toBeUndefined();
  });

  it('uvx never uses a project environment', () => {
    expect((RUNNERS.uvx as RunnerSpec).localBin).toBeUndefined();
  });
});

describe('shell-init', () => {
  it.each(['bash', 'zsh', 'fish'])('%s names the way to the real tools', (shell) => {
    let out = '';
    shellInit(shell, { stdout: { write: (text: string) => (out += text) } as never });
    expect(out).toMatch(/^# The real, unsandboxed tools stay one word away: command npx …, command uvx …$/m);
  });
});
