import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, posix } from 'node:path';
import { cosmiconfig } from 'cosmiconfig';
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

export async function loadSettings(env: HostEnv, cwd: string): Promise<LoadedSettings> {
  const explicit = env.MCPBOX_CONFIG;
  if (explicit) {
    if (!existsSync(explicit)) throw new ConfigError(`MCPBOX_CONFIG names ${explicit}, which does not exist`, 'fix the path or unset MCPBOX_CONFIG');
    const explorer = cosmiconfig('mcpbox', { searchStrategy: 'none' });
    const loaded = await explorer.load(explicit).catch((error: Error) => {
      throw new ConfigError(`could not read ${explicit}: ${error.message}`, 'fix the syntax of the file');
    });
    return { settings: check(loaded?.config, explicit, 'user'), files: [explicit] };
  }
  const layers: Settings[] = [];
  const files: string[] = [];
  const user = cosmiconfig('mcpbox', {
    searchStrategy: 'none',
    searchPlaces: ['config.json', 'config.yaml', 'config.yml', 'config.js', 'config.mjs', 'config.cjs'],
  });
  const project = cosmiconfig('mcpbox', { searchStrategy: 'project' });
  for (const [explorer, from, trust] of [
    [user, userConfigDir(env), 'user'],
    [project, cwd, 'project'],
  ] as const) {
    const found = await explorer.search(from).catch((error: Error) => {
      throw new ConfigError(`could not read configuration near ${from}: ${error.message}`, 'fix the file or point MCPBOX_CONFIG elsewhere');
    });
    if (!found || found.isEmpty) continue;
    layers.push(check(found.config, found.filepath, trust));
    files.push(found.filepath);
  }
  return { settings: mergeSettings(...layers), files };
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
