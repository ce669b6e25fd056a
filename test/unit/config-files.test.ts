import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { loadSettings, mayHaveProjectConfig, PROJECT_SEARCH_PLACES } from '../../src/config-files.js';
import { ConfigError } from '../../src/errors.js';

let root: string;
let xdg: string;
let project: string;

function write(path: string, content: unknown, mode = 0o644) {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  chmodSync(path, mode);
  return path;
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'mcpbox-config-'));
  xdg = join(root, 'xdg');
  project = join(root, 'project');
  mkdirSync(join(project, 'sub'), { recursive: true });
  write(join(project, 'package.json'), { name: 'p' });
});

const load = (cwd = project, env: Record<string, string> = {}) => loadSettings({ XDG_CONFIG_HOME: xdg, ...env }, cwd);

async function failure(promise: Promise<unknown>): Promise<ConfigError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('finding configuration', () => {
  it('user file, then project file, then (in run) flags: merged in that order', async () => {
    write(join(xdg, 'mcpbox', 'config.json'), { memory: '1g', cpus: 1, env: ['HTTPS_PROXY'] });
    write(join(project, '.mcpboxrc.json'), { memory: '512m', env: ['LOG=1'] });
    const loaded = await load(join(project, 'sub'));
    expect(loaded.settings).toEqual({ memory: '512m', cpus: '1', env: ['HTTPS_PROXY', 'LOG=1'] });
    expect(loaded.files).toEqual([join(xdg, 'mcpbox', 'config.json'), join(project, '.mcpboxrc.json')]);
  });

  it.each([
    ['.mcpboxrc.yaml', 'memory: 768m\n'],
    ['mcpbox.config.js', 'export default { memory: "768m" };\n'],
    ['.config/mcpboxrc.json', '{"memory":"768m"}'],
  ])('project file %s', async (file, content) => {
    write(join(project, file), content);
    expect((await load()).settings.memory).toBe('768m');
  });

  it('"mcpbox" in package.json', async () => {
    write(join(project, 'package.json'), { name: 'p', mcpbox: { network: 'none' } });
    expect((await load()).settings.network).toBe('none');
  });

  it('user YAML file', async () => {
    write(join(xdg, 'mcpbox', 'config.yaml'), 'pids: 99\n');
    expect((await load()).settings.pids).toBe(99);
  });

  it('MCPBOX_CONFIG names one file and turns the search off', async () => {
    write(join(xdg, 'mcpbox', 'config.json'), { memory: '1g' });
    write(join(project, '.mcpboxrc.json'), { memory: '512m' });
    const only = write(join(root, 'only.json'), { cpus: 3 });
    const loaded = await load(project, { MCPBOX_CONFIG: only });
    expect([loaded.settings, loaded.files]).toEqual([{ cpus: '3' }, [only]]);
  });

  it('MCPBOX_CONFIG naming nothing is an error', async () => {
    expect((await failure(load(project, { MCPBOX_CONFIG: join(root, 'nope.json') }))).message).toMatch(/MCPBOX_CONFIG names .*nope\.json, which does not exist/);
  });

  it('no files: no settings', async () => {
    expect(await load()).toEqual({ settings: {}, files: [] });
  });
});

describe('bad files are refused, naming the file and the key', () => {
  it('invalid value', async () => {
    const file = write(join(project, '.mcpboxrc.json'), { memory: 'lots' });
    expect((await failure(load())).message).toBe(`${file}: "memory" must be a size like "512m" or "2g"`);
  });

  it('broken syntax', async () => {
    write(join(xdg, 'mcpbox', 'config.json'), '{ "memory": ');
    expect((await failure(load())).message).toMatch(/could not read configuration near .*xdg/);
  });

  it('exit status 78', async () => {
    write(join(project, '.mcpboxrc.json'), { bogus: true });
    expect((await failure(load())).exitCode).toBe(78);
  });
});

describe('secrets need a private file', () => {
  it('a file holding values readable by others is refused with the chmod that fixes it', async () => {
    const file = write(join(xdg, 'mcpbox', 'config.json'), { packages: { gh: { env: ['GITHUB_TOKEN=ghp_x'] } } }, 0o644);
    const error = await failure(load());
    expect(error.message).toMatch(/holds secret values \(GITHUB_TOKEN\) but is readable by others \(mode 0644\)/);
    expect(error.hint).toBe(`chmod 600 ${file}`);
  });

  it.each([0o600, 0o400])('mode %o is fine', async (mode) => {
    write(join(xdg, 'mcpbox', 'config.json'), { env: ['TOKEN=x'] }, mode);
    expect((await load()).settings.env).toEqual(['TOKEN=x']);
  });

  it('project files are shared with the repository: their values are not treated as secrets', async () => {
    write(join(project, '.mcpboxrc.json'), { env: ['LOG_LEVEL=debug'] }, 0o644);
    expect((await load()).settings.env).toEqual(['LOG_LEVEL=debug']);
  });

  it('names alone are not secrets', async () => {
    write(join(xdg, 'mcpbox', 'config.json'), { env: ['TOKEN'] }, 0o644);
    expect((await load()).settings.env).toEqual(['TOKEN']);
  });
});

describe('a project file stays inside its project', () => {
  it('relative mounts are relative to the project; outside ones are refused', async () => {
    write(join(project, '.mcpboxrc.json'), { mounts: ['./data:ro', 'sub'] });
    expect((await load()).settings.mounts).toEqual([`${project}/data:ro`, `${project}/sub`]);
    write(join(project, '.mcpboxrc.json'), { mounts: ['../../etc'] });
    expect((await failure(load())).message).toMatch(/"mounts" mounts .* outside the project/);
  });

  it('may not pass host variables by name', async () => {
    write(join(project, '.mcpboxrc.json'), { env: ['AWS_SECRET_ACCESS_KEY'] });
    expect((await failure(load())).message).toMatch(/"env" passes the host variable AWS_SECRET_ACCESS_KEY by name/);
  });

  it('the same file as the user file is trusted', async () => {
    write(join(xdg, 'mcpbox', 'config.json'), { env: ['AWS_SECRET_ACCESS_KEY'], mounts: ['/data'] });
    expect((await load()).settings).toEqual({ env: ['AWS_SECRET_ACCESS_KEY'], mounts: ['/data'] });
  });
});

describe('the pre-check that spares loading cosmiconfig', () => {
  it("lists exactly cosmiconfig's own search places", async () => {
    const { getDefaultSearchPlaces } = await import('cosmiconfig');
    expect(PROJECT_SEARCH_PLACES).toEqual(getDefaultSearchPlaces('mcpbox'));
  });

  it.each(PROJECT_SEARCH_PLACES.filter((p) => p !== 'package.json'))('sees %s', (place) => {
    write(join(project, 'sub', place), '{}');
    expect(mayHaveProjectConfig(join(project, 'sub'))).toBe(true);
  });

  it('sees "mcpbox" in a package.json, and nothing in a plain one', () => {
    expect(mayHaveProjectConfig(project)).toBe(false);
    write(join(project, 'package.json'), { name: 'p', mcpbox: {} });
    expect(mayHaveProjectConfig(join(project, 'sub'))).toBe(true);
  });
});
