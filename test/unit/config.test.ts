import { posix } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyPackagePolicies, formatProblems, mergeSettings, narrowSettings, projectProblems, secretEntries, type Settings, validateSettings } from '../../src/config/settings.js';

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
    ['image that reads as a flag', { images: { npx: '--privileged' } }, 'images.npx: must be an image name'],
    ['base image that reads as a flag', { baseImages: { uvx: '-v/:/host' } }, 'baseImages.uvx: must be an image name'],
    ['package image that reads as a flag', { packages: { p: { image: '--privileged' } } }, 'packages.p.image: must be an image name'],
    ['memory 0 (no limit to the engine)', { memory: '0' }, 'memory: must be a size like "512m" or "2g"'],
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

describe('package policies', () => {
  const settings = validateSettings(
    {
      memory: '1g',
      env: ['HTTPS_PROXY'],
      packages: {
        '@modelcontextprotocol/server-github': { env: ['GITHUB_PERSONAL_ACCESS_TOKEN'], network: 'bridge', memory: '512m' },
        'mcp-server-time': { network: 'none', image: 'python:3.12-slim' },
      },
    },
    'f',
  ).settings;

  it('validate like top-level settings, naming the package key', () => {
    expect(problemsOf({ packages: { x: { memory: 'lots', env: 'A', bogus: 1 } } })).toEqual([
      'packages.x.bogus: unknown package setting (known: env, network, memory, cpus, pids, mounts, grace, image, egress, imageVariant, minReleaseAge, provenance, toolChanges, tools, standby)',
      'packages.x.memory: must be a size like "512m" or "2g"',
      'packages.x.env: must be a list of variable names or NAME=VALUE pairs',
    ]);
    expect(problemsOf({ packages: [] })).toEqual(['packages: must be an object keyed by package name']);
  });

  it('apply to runs of their package only', () => {
    expect(applyPackagePolicies(settings, 'npx', ['@modelcontextprotocol/server-github'])).toMatchObject({
      memory: '512m',
      network: 'bridge',
      env: ['HTTPS_PROXY', 'GITHUB_PERSONAL_ACCESS_TOKEN'],
    });
    expect(applyPackagePolicies(settings, 'npx', ['other'])).toBe(settings);
  });

  it('an image in a package policy is the image for that runner', () => {
    expect(applyPackagePolicies(settings, 'uvx', ['mcp-server-time']).images).toEqual({ uvx: 'python:3.12-slim' });
  });

  it('merge per package across files', () => {
    const merged = mergeSettings({ packages: { a: { env: ['X'], memory: '1g' } } }, { packages: { a: { env: ['Y'] }, b: { network: 'none' } } });
    expect(merged.packages).toEqual({ a: { env: ['X', 'Y'], memory: '1g' }, b: { network: 'none' } });
  });
});

describe('secrets and project files', () => {
  it('NAME=VALUE entries anywhere are secrets; names alone are not', () => {
    expect(secretEntries({ env: ['A', 'B=1'], packages: { p: { env: ['C=2', 'D'] } } })).toEqual(['B=1', 'C=2']);
  });

  /** /repo on a host where everything named exists as written, except the symlinks listed. */
  const place = (links: Record<string, string> = {}) => ({
    realDir: '/repo',
    resolve: (path: string) => posix.resolve('/repo', path),
    realpath: (path: string) => links[path] ?? path,
    refusal: (real: string) => (real === '/home/me' || real.startsWith('/home/me/.ssh') ? 'refused' : undefined),
  });
  it.each([
    ['host variable by name', { env: ['AWS_SECRET_ACCESS_KEY'] }, 'env', /passes the host variable AWS_SECRET_ACCESS_KEY by name/],
    ['host variable by name in a package', { packages: { p: { env: ['TOKEN'] } } }, 'packages.p.env', /TOKEN by name/],
    ['mount outside the project', { mounts: ['/home/me/.ssh'] }, 'mounts', /outside the project \/repo/],
    ['mount escaping with ..', { mounts: ['../elsewhere:ro'] }, 'mounts', /outside the project/],
    ['docker binary', { docker: './evil-docker' }, 'docker', /chooses the docker binary/],
  ])('a project may not: %s', (_label, settings, key, message) => {
    const problems = projectProblems(settings, '/repo/.mcpboxrc.json', place());
    expect(problems.map((p) => p.key)).toEqual([key]);
    expect(problems[0]!.message).toMatch(message);
  });

  it('a project may pass literal values, mount inside itself and tighten limits', () => {
    expect(projectProblems({ env: ['LOG_LEVEL=debug'], mounts: ['./data:ro', '/repo/cache'], network: 'none', memory: '256m' }, '/repo/.mcpboxrc.json', place())).toEqual([]);
  });

  it('mounts are judged by where they really lead', () => {
    const links = { '/repo/home': '/home/me', '/repo/keys': '/repo/inner/../../home/me/.ssh', '/repo/ok': '/repo/data' };
    const problems = projectProblems({ mounts: ['./home', './ok:ro'] }, '/repo/.mcpboxrc.json', place(links));
    expect(problems.map((p) => p.message)).toEqual(['mounts /repo/home (really /home/me), outside the project /repo, which a project\'s configuration may not do']);
    const inside = place({ '/repo/sock': '/repo/run/docker.sock' });
    const refused = projectProblems({ mounts: ['./sock'] }, '/repo/.mcpboxrc.json', { ...inside, refusal: () => 'it is a socket' });
    expect(refused.map((p) => p.message)).toEqual(['mounts /repo/run/docker.sock, which mcpbox never mounts implicitly: it is a socket']);
  });
});

describe('narrowing: a project layer only tightens', () => {
  it.each([
    [{}, { memory: '4g' }, {}],
    [{}, { memory: '1g' }, { memory: '1g' }],
    [{ memory: '512m' }, { memory: '1g' }, { memory: '512m' }],
    [{ cpus: '1' }, { cpus: '4' }, { cpus: '1' }],
    [{}, { pids: 100000 }, {}],
    [{}, { pids: 64 }, { pids: 64 }],
    [{ network: 'none' }, { network: 'bridge' }, { network: 'none' }],
    [{}, { network: 'none' }, { network: 'none' }],
    [{ autoMount: false }, { autoMount: true }, { autoMount: false }],
    [{}, { grace: 300 }, {}],
    [{ env: ['A'] }, { env: ['B=1'] }, { env: ['A', 'B=1'] }],
  ] as const)('%j + project %j → %j', (base, project, expected) => {
    expect(narrowSettings(base as Settings, project as Settings)).toEqual(expected);
  });
});
