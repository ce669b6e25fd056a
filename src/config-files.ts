import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { cosmiconfig } from 'cosmiconfig';
import type { Settings } from './config.js';
import { formatProblems, mergeSettings, validateSettings } from './config.js';
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

export async function loadSettings(env: HostEnv, cwd: string): Promise<LoadedSettings> {
  const explicit = env.MCPBOX_CONFIG;
  if (explicit) {
    if (!existsSync(explicit)) throw new ConfigError(`MCPBOX_CONFIG names ${explicit}, which does not exist`, 'fix the path or unset MCPBOX_CONFIG');
    const layer = await read(explicit);
    return { settings: layer, files: [explicit] };
  }
  const layers: Settings[] = [];
  const files: string[] = [];
  const user = cosmiconfig('mcpbox', {
    searchStrategy: 'none',
    searchPlaces: ['config.json', 'config.yaml', 'config.yml', 'config.js', 'config.mjs', 'config.cjs'],
  });
  const project = cosmiconfig('mcpbox', { searchStrategy: 'project' });
  for (const [explorer, from] of [
    [user, userConfigDir(env)],
    [project, cwd],
  ] as const) {
    const found = await explorer.search(from).catch((error: Error) => {
      throw new ConfigError(`could not read configuration near ${from}: ${error.message}`, 'fix the file or point MCPBOX_CONFIG elsewhere');
    });
    if (!found || found.isEmpty) continue;
    layers.push(check(found.config, found.filepath));
    files.push(found.filepath);
  }
  return { settings: mergeSettings(...layers), files };
}

async function read(file: string): Promise<Settings> {
  const explorer = cosmiconfig('mcpbox', { searchStrategy: 'none' });
  const loaded = await explorer.load(file).catch((error: Error) => {
    throw new ConfigError(`could not read ${file}: ${error.message}`, 'fix the syntax of the file');
  });
  return check(loaded?.config, file);
}

function check(raw: unknown, file: string): Settings {
  const { settings, problems } = validateSettings(raw, file);
  if (problems.length > 0) throw new ConfigError(formatProblems(problems), 'see "Configuration" in the mcpbox README');
  return settings;
}
