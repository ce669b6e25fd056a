import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, extname, join, posix } from 'node:path';
import type { Settings } from './config.js';
import { formatProblems, mergeSettings, projectProblems, secretEntries, validateSettings } from './config.js';
import { ConfigError } from './errors.js';
import type { HostEnv } from './env.js';

/**
 * Finding and reading configuration (the I/O half; src/config.ts validates). MCPBOX_CONFIG names one
 * file and turns the search off. Otherwise: the user file in the XDG config dir, then the nearest
 * project file (.mcpboxrc.json/.yaml, mcpbox.config.js, "mcpbox" in package.json, …) from the cwd up.
 */
export interface LoadedSettings {
  readonly settings: Settings;
  /** Files read, in merge order. */
  readonly files: readonly string[];
}

export function userConfigDir(env: HostEnv, home = homedir()): string {
  const base = env.XDG_CONFIG_HOME || (process.platform === 'win32' && env.APPDATA) || join(home, '.config');
  return join(base, 'mcpbox');
}

type Trust = 'user' | 'project';

/** cosmiconfig's default search places for "mcpbox" (a unit test keeps this list equal to its own). */
export const PROJECT_SEARCH_PLACES = [
  'package.json',
  '.mcpboxrc',
  '.mcpboxrc.json',
  '.mcpboxrc.yaml',
  '.mcpboxrc.yml',
  '.mcpboxrc.js',
  '.mcpboxrc.ts',
  '.mcpboxrc.cjs',
  '.mcpboxrc.mjs',
  '.config/mcpboxrc',
  '.config/mcpboxrc.json',
  '.config/mcpboxrc.yaml',
  '.config/mcpboxrc.yml',
  '.config/mcpboxrc.js',
  '.config/mcpboxrc.ts',
  '.config/mcpboxrc.cjs',
  '.config/mcpboxrc.mjs',
  'mcpbox.config.js',
  'mcpbox.config.ts',
  'mcpbox.config.cjs',
  'mcpbox.config.mjs',
];
export const USER_SEARCH_PLACES = ['config.json', 'config.yaml', 'config.yml', 'config.js', 'config.mjs', 'config.cjs'];

export async function loadSettings(env: HostEnv, cwd: string): Promise<LoadedSettings> {
  const explicit = env.MCPBOX_CONFIG;
  if (explicit) {
    if (!existsSync(explicit)) throw new ConfigError(`MCPBOX_CONFIG names ${explicit}, which does not exist`, 'fix the path or unset MCPBOX_CONFIG');
    return { settings: check(await load(explicit), explicit, 'user'), files: [explicit] };
  }
  const layers: Settings[] = [];
  const files: string[] = [];
  const userDir = userConfigDir(env);
  // Loading cosmiconfig costs start-up time; most runs have no file for it to find.
  const searches = [
    [userDir, 'user', USER_SEARCH_PLACES.some((place) => existsSync(join(userDir, place)))],
    [cwd, 'project', mayHaveProjectConfig(cwd)],
  ] as const;
  for (const [from, trust, worthSearching] of searches) {
    if (!worthSearching) continue;
    const cosmiconfig = await loadCosmiconfig();
    const explorer =
      trust === 'user' ? cosmiconfig('mcpbox', { searchStrategy: 'none', searchPlaces: USER_SEARCH_PLACES }) : cosmiconfig('mcpbox', { searchStrategy: 'project' });
    const found = await explorer.search(from).catch((error: Error) => {
      throw new ConfigError(`could not read configuration near ${from}: ${error.message}`, 'fix the file or point MCPBOX_CONFIG elsewhere');
    });
    if (!found || found.isEmpty) continue;
    layers.push(check(found.config, found.filepath, trust));
    files.push(found.filepath);
  }
  return { settings: mergeSettings(...layers), files };
}

/** A superset of where cosmiconfig's project search could find something: from `cwd` up to the root. */
export function mayHaveProjectConfig(cwd: string): boolean {
  for (let dir = cwd; ; dir = dirname(dir)) {
    let names: Set<string>;
    try {
      names = new Set(readdirSync(dir));
    } catch {
      names = new Set();
    }
    for (const place of PROJECT_SEARCH_PLACES) {
      if (place === 'package.json') {
        if (names.has(place) && packageJsonMentionsMcpbox(join(dir, place))) return true;
      } else if (place.startsWith('.config/') ? names.has('.config') && existsSync(join(dir, place)) : names.has(place)) {
        return true;
      }
    }
    if (dirname(dir) === dir) return false;
  }
}

function packageJsonMentionsMcpbox(file: string): boolean {
  try {
    return readFileSync(file, 'utf8').includes('"mcpbox"');
  } catch {
    return false;
  }
}

/** cosmiconfig is CommonJS: imported dynamically, its exports may sit under `default`. */
async function loadCosmiconfig(): Promise<typeof import('cosmiconfig').cosmiconfig> {
  const module = (await import('cosmiconfig')) as typeof import('cosmiconfig') & { default?: typeof import('cosmiconfig') };
  return module.cosmiconfig ?? module.default!.cosmiconfig;
}

/** One named file: JSON directly, anything else (YAML, JS) through cosmiconfig's loaders. */
async function load(file: string): Promise<unknown> {
  try {
    if (extname(file) === '.json') return JSON.parse(readFileSync(file, 'utf8'));
    const cosmiconfig = await loadCosmiconfig();
    return (await cosmiconfig('mcpbox', { searchStrategy: 'none' }).load(file))?.config;
  } catch (error) {
    throw new ConfigError(`could not read ${file}: ${(error as Error).message}`, 'fix the syntax of the file');
  }
}

function check(raw: unknown, file: string, trust: Trust): Settings {
  const { settings, problems } = validateSettings(raw, file);
  if (problems.length > 0) throw new ConfigError(formatProblems(problems), 'see "Configuration" in the mcpbox README');

  // A .config/ subfolder belongs to the directory that holds it.
  const dir = basename(dirname(file)) === '.config' ? dirname(dirname(file)) : dirname(file);
  const resolve = (path: string) => (path === '~' || path.startsWith('~/') || path.startsWith('/') ? path : posix.resolve(dir, path));
  if (trust === 'project') {
    const outside = projectProblems(settings, file, dir, resolve);
    if (outside.length > 0) throw new ConfigError(formatProblems(outside), 'a repository you cloned could ship this file: only your user configuration may do that');
  }

  // Project files travel with the repository (git keeps no modes): values there are not secret by
  // definition. A user file with values is where tokens end up, so it must be private.
  const secrets = trust === 'user' ? secretEntries(settings) : [];
  if (secrets.length > 0 && process.platform !== 'win32') {
    const mode = statSync(file).mode & 0o777;
    if (mode & 0o077) {
      const names = secrets.map((s) => s.slice(0, s.indexOf('='))).join(', ');
      throw new ConfigError(
        `${file} holds secret values (${names}) but is readable by others (mode ${mode.toString(8).padStart(4, '0')})`,
        `chmod 600 ${file}`,
      );
    }
  }

  // Relative mounts are relative to the file that names them.
  const absolute = (entries: string[] | undefined) =>
    entries?.map((entry) => {
      const mode = /:(?:ro|rw)$/.exec(entry)?.[0] ?? '';
      return resolve(entry.slice(0, entry.length - mode.length)) + mode;
    });
  const packages = settings.packages && Object.fromEntries(Object.entries(settings.packages).map(([name, p]) => [name, p.mounts ? { ...p, mounts: absolute(p.mounts)! } : p]));
  return { ...settings, ...(settings.mounts && { mounts: absolute(settings.mounts)! }), ...(packages && { packages }) };
}
