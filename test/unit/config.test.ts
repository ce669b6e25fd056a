import { describe, expect, it } from 'vitest';
import { formatProblems, mergeSettings, validateSettings } from '../../src/config.js';

const problemsOf = (raw: unknown) => validateSettings(raw, '/home/me/.config/mcpbox/config.json').problems.map((p) => `${p.key}: ${p.message}`);

describe('settings validation', () => {
  it('accepts a full, valid file', () => {
    const raw = {
      images: { npx: 'node:22', uvx: 'ghcr.io/astral-sh/uv:python3.12-bookworm-slim' },
      baseImages: { npx: 'mcpbox-bootstrap/node:22-bookworm' },
      memory: '1g',
      cpus: 1.5,
      pids: 256,
      network: 'none',
      env: ['HTTPS_PROXY', 'FOO=bar baz'],
      grace: 5,
      docker: '/usr/local/bin/docker',
    };
    expect(validateSettings(raw, 'f')).toEqual({ settings: { ...raw, cpus: '1.5' }, problems: [] });
  });

  it.each([
    ['not an object', [], '(root): must be an object'],
    ['unknown key', { memroy: '1g' }, 'memroy: unknown setting'],
    ['bad memory', { memory: 'lots' }, 'memory: must be a size like "512m" or "2g"'],
    ['memory as number', { memory: 512 }, 'memory: must be a size'],
    ['zero cpus', { cpus: 0 }, 'cpus: must be a positive number'],
    ['negative pids', { pids: -1 }, 'pids: must be a positive whole number'],
    ['fractional pids', { pids: 1.5 }, 'pids: must be a positive whole number'],
    ['host network', { network: 'host' }, 'network: "host" would share'],
    ['network with spaces', { network: 'a b' }, 'network: must be'],
    ['env not a list', { env: 'FOO' }, 'env: must be a list'],
    ['env bad name', { env: ['1FOO'] }, 'env: must be a list'],
    ['grace too long', { grace: 1000 }, 'grace: must be a number of seconds'],
    ['images not a map', { images: 'node' }, 'images: must be an object'],
    ['image for unknown runner', { images: { bunx: 'x' } }, 'images.bunx: unknown runner'],
    ['empty image', { images: { npx: ' ' } }, 'images.npx: must be an image name'],
    ['empty docker path', { docker: '' }, 'docker: must be the path'],
  ])('%s', (_label, raw, problem) => {
    expect(problemsOf(raw).join('\n')).toContain(problem);
  });

  it('an empty file is fine', () => {
    expect(validateSettings(undefined, 'f')).toEqual({ settings: {}, problems: [] });
  });

  it('problems name the file and the key', () => {
    expect(formatProblems(validateSettings({ memory: 'x' }, '/p/.mcpboxrc.json').problems)).toBe(
      '/p/.mcpboxrc.json: "memory" must be a size like "512m" or "2g"',
    );
  });
});

describe('settings merge', () => {
  it('later layers win, lists add up, per-runner maps merge', () => {
    expect(
      mergeSettings(
        { memory: '1g', env: ['A'], images: { npx: 'user-npx', uvx: 'user-uvx' } },
        { memory: '2g', env: ['B'], images: { npx: 'project-npx' } },
        { cpus: '1' },
      ),
    ).toEqual({ memory: '2g', cpus: '1', env: ['A', 'B'], images: { npx: 'project-npx', uvx: 'user-uvx' } });
  });
});
