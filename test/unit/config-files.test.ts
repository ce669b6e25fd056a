import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadSettings, PROJECT_CODE_PLACES, PROJECT_DATA_PLACES, projectSearchDirs } from '../../src/config/files.js';
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
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** HOME is the temporary root, so the search's bound at home is exercised too. */
const load = (cwd = project, env: Record<string, string> = {}) => loadSettings({ XDG_CONFIG_HOME: xdg, ...env }, cwd, root);

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
    ['.mcpboxrc', 'memory: 768m\n'],
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

describe('a project file is data, found near the project, never run', () => {
  it.each(PROJECT_CODE_PLACES)('%s is refused, and not run', async (place) => {
    const marker = join(root, 'ran');
    write(join(project, 'sub', place), `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x'); module.exports = {};\n`);
    const error = await failure(load(join(project, 'sub')));
    expect(error.message).toBe(`${join(project, 'sub', place)}: a project's mcpbox configuration must be data (JSON or YAML); mcpbox does not run code from a project to read it`);
    expect(error.hint).toMatch(/\.mcpboxrc\.json/);
    expect(existsSync(marker)).toBe(false);
  });

  it("together the data and code places are exactly cosmiconfig's own search places", async () => {
    const { getDefaultSearchPlaces } = await import('cosmiconfig');
    expect([...PROJECT_DATA_PLACES, ...PROJECT_CODE_PLACES].sort()).toEqual(getDefaultSearchPlaces('mcpbox').sort());
  });

  it('the search stops at the project root (.git or package.json)', async () => {
    write(join(root, '.mcpboxrc.json'), { memory: '8m' });
    expect((await load(join(project, 'sub'))).settings).toEqual({});
  });

  it('never above home: a file beside or above home is not read', () => {
    const isRoot = () => false;
    expect(projectSearchDirs('/home/me/a/b', '/home/me', isRoot)).toEqual(['/home/me/a/b', '/home/me/a', '/home/me']);
    expect(projectSearchDirs('/home/me/a/b', '/home/me', (d) => d === '/home/me/a')).toEqual(['/home/me/a/b', '/home/me/a']);
    expect(projectSearchDirs('/home', '/home/me', isRoot)).toEqual(['/home']);
    expect(projectSearchDirs('/tmp/x/y', '/home/me', isRoot)).toEqual(['/tmp/x/y']);
    expect(projectSearchDirs('/srv/repo/sub', '/home/me', (d) => d === '/srv/repo')).toEqual(['/srv/repo/sub', '/srv/repo']);
  });

  it('"mcpbox" in a plain package.json only when it is a key', async () => {
    write(join(project, 'package.json'), { name: 'p', description: 'uses "mcpbox"' });
    expect((await load()).settings).toEqual({});
  });
});

describe('a project file may only narrow', () => {
  it('limits only ever tighten: looser ones give way to the user\'s (or the defaults)', async () => {
    write(join(xdg, 'mcpbox', 'config.json'), { memory: '1g', pids: 100 });
    write(join(project, '.mcpboxrc.json'), { memory: '8g', cpus: 64, pids: 99999999, grace: 300, network: 'bridge' });
    expect((await load()).settings).toEqual({ memory: '1g', pids: 100 });
    write(join(project, '.mcpboxrc.json'), { memory: '256m', cpus: 0.5, pids: 50, grace: 1, network: 'none', autoMount: false });
    expect((await load()).settings).toEqual({ memory: '256m', cpus: '0.5', pids: 50, grace: 1, network: 'none', autoMount: false });
  });

  it.each([
    [{ images: { npx: 'evil/image' } }, 'images', /chooses an image/],
    [{ baseImages: { uvx: 'evil/base' } }, 'baseImages', /chooses an image/],
    [{ packages: { p: { image: 'evil/image' } } }, 'packages.p.image', /chooses an image/],
    [{ network: 'evil-net' }, 'network', /joins the network "evil-net"/],
    [{ env: ['NODE_OPTIONS=--require ./evil.js'] }, 'env', /sets NODE_OPTIONS/],
    [{ env: ['LD_PRELOAD=/repo/evil.so'] }, 'env', /sets LD_PRELOAD/],
    [{ env: ['HTTPS_PROXY=http://evil:3128'] }, 'env', /sets HTTPS_PROXY/],
    [{ packages: { p: { env: ['npm_config_registry=https://evil'] } } }, 'packages.p.env', /sets npm_config_registry/],
  ])('may not: %j', async (settings, key, message) => {
    const file = write(join(project, '.mcpboxrc.json'), settings);
    const error = await failure(load());
    expect(error.message).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: "${key.replace(/\./g, '\\.')}" `));
    expect(error.message).toMatch(message);
  });

  it('memory "0" (no limit to the engine) is refused everywhere', async () => {
    write(join(xdg, 'mcpbox', 'config.json'), { memory: '0' });
    expect((await failure(load())).message).toMatch(/"memory" must be a size/);
  });

  it("a project's package policy tightens that package's runs only", async () => {
    const { applyPackagePolicies } = await import('../../src/config/settings.js');
    write(join(xdg, 'mcpbox', 'config.json'), { packages: { p: { memory: '1g' } } });
    write(join(project, '.mcpboxrc.json'), { packages: { p: { memory: '4g', network: 'none' }, q: { pids: 10 } } });
    const { settings } = await load();
    expect(applyPackagePolicies(settings, 'npx', ['p'])).toMatchObject({ memory: '1g', network: 'none' });
    expect(applyPackagePolicies(settings, 'npx', ['q']).pids).toBe(10);
    expect(applyPackagePolicies(settings, 'npx', ['other']).pids).toBeUndefined();
  });
});

describe('project mounts are checked where they really lead', () => {
  it('a symlink inside the project that leads out of it is refused', async () => {
    const outside = join(root, 'outside');
    mkdirSync(outside);
    symlinkSync(outside, join(project, 'escape'));
    write(join(project, '.mcpboxrc.json'), { mounts: ['./escape'] });
    expect((await failure(load())).message).toMatch(new RegExp(`"mounts" mounts ${project}/escape \\(really ${outside}\\), outside the project`));
  });

  it('a symlink to the home directory, /etc or a socket is refused', async () => {
    symlinkSync('/etc', join(project, 'etc'));
    write(join(project, '.mcpboxrc.json'), { mounts: ['./etc'] });
    expect((await failure(load())).message).toMatch(/outside the project/);
  });

  it('a mount inside the project is mounted by its real path', async () => {
    mkdirSync(join(project, 'data'));
    symlinkSync(join(project, 'data'), join(project, 'data-link'));
    write(join(project, '.mcpboxrc.json'), { mounts: ['./data-link:ro'] });
    expect((await load()).settings.mounts).toEqual([`${join(project, 'data')}:ro`]);
  });

  it('the project itself as a mount is refused when it is the home directory', async () => {
    write(join(root, 'package.json'), { name: 'home-project' });
    write(join(root, '.mcpboxrc.json'), { mounts: ['.'] });
    expect((await failure(load(root))).message).toMatch(/never mounts implicitly: it is your whole home directory/);
  });
});
