import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, extname, join, posix } from 'node:path';
import type { Settings } from './settings.js';
import { formatProblems, narrowSettings, projectProblems, secretEntries, validateSettings } from './settings.js';
import { ConfigError } from '../errors.js';
import { requirePrivate } from '../files.js';
import { type HostContext, type HostEnv, realHostFs } from '../host.js';
import { isWithin, refusalReason } from '../host-paths.js';

/**
 * Finding and reading configuration (the I/O half; src/config.ts validates). MCPBOX_CONFIG names one
 * file and turns the search off. Otherwise: the user file in the XDG config dir (JSON, YAML or JS: it
 * is yours), then the nearest project file (.mcpboxrc.json/.yaml, "mcpbox" in package.json, …, data
 * only) from the cwd up to the project root, which may only narrow what the user file allows.
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

/**
 * Where a project's configuration may be, in cosmiconfig's order. Only data: a project file comes
 * with a repository you may merely have cloned, so nothing in it may run on this host.
 */
export const PROJECT_DATA_PLACES = [
  'package.json',
  '.mcpboxrc',
  '.mcpboxrc.json',
  '.mcpboxrc.yaml',
  '.mcpboxrc.yml',
  '.config/mcpboxrc',
  '.config/mcpboxrc.json',
  '.config/mcpboxrc.yaml',
  '.config/mcpboxrc.yml',
];
/** cosmiconfig's code places: refused in a project, never loaded (loading them runs them). */
export const PROJECT_CODE_PLACES = [
  '.mcpboxrc.js',
  '.mcpboxrc.ts',
  '.mcpboxrc.cjs',
  '.mcpboxrc.mjs',
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

/**
 * The directories a project file is looked for in, nearest first: from the working directory up to
 * the project root (the first with .git or package.json), never above your home directory; outside
 * home with no project root, the working directory only (a shared /tmp is nobody's project).
 */
export function projectSearchDirs(cwd: string, home: string, isProjectRoot: (dir: string) => boolean): string[] {
  const dirs: string[] = [];
  for (let dir = cwd; ; dir = dirname(dir)) {
    dirs.push(dir);
    if (isProjectRoot(dir) || dir === home) return dirs;
    if (dirname(dir) === dir) return isWithin(cwd, home) ? dirs : [cwd];
  }
}

export const isProjectRoot = (dir: string) => existsSync(join(dir, '.git')) || existsSync(join(dir, 'package.json'));

export async function loadSettings(env: HostEnv, cwd: string, home = homedir()): Promise<LoadedSettings> {
  const explicit = env.MCPBOX_CONFIG;
  if (explicit) {
    if (!existsSync(explicit)) throw new ConfigError(`MCPBOX_CONFIG names ${explicit}, which does not exist`, 'fix the path or unset MCPBOX_CONFIG');
    return { settings: check(await loadFile(explicit), explicit, 'user', home), files: [explicit] };
  }
  const files: string[] = [];
  let settings: Settings = {};
  const userDir = userConfigDir(env, home);
  // Loading cosmiconfig costs start-up time; most runs have no file for it to find.
  if (USER_SEARCH_PLACES.some((place) => existsSync(join(userDir, place)))) {
    const cosmiconfig = await loadCosmiconfig();
    const found = await cosmiconfig('mcpbox', { searchStrategy: 'none', searchPlaces: USER_SEARCH_PLACES })
      .search(userDir)
      .catch((error: Error) => {
        throw new ConfigError(`could not read configuration near ${userDir}: ${error.message}`, 'fix the file or point MCPBOX_CONFIG elsewhere');
      });
    if (found && !found.isEmpty) {
      settings = check(found.config, found.filepath, 'user', home);
      files.push(found.filepath);
    }
  }
  const project = await findProjectFile(cwd, home);
  if (project) {
    settings = narrowSettings(settings, check(project.config, project.file, 'project', home));
    files.push(project.file);
  }
  return { settings, files };
}

/** The nearest project file with something in it (data only; a code file is refused). */
async function findProjectFile(cwd: string, home: string): Promise<{ file: string; config: unknown } | undefined> {
  for (const dir of projectSearchDirs(cwd, home, isProjectRoot)) {
    const names = entriesOf(dir);
    const present = (place: string) => (place.startsWith('.config/') ? names.has('.config') && existsSync(join(dir, place)) : names.has(place));
    const code = PROJECT_CODE_PLACES.find(present);
    if (code) {
      throw new ConfigError(
        `${join(dir, code)}: a project's mcpbox configuration must be data (JSON or YAML); mcpbox does not run code from a project to read it`,
        `move the settings to ${join(dir, '.mcpboxrc.json')}, or into your user configuration`,
      );
    }
    for (const place of PROJECT_DATA_PLACES.filter(present)) {
      const file = join(dir, place);
      if (place === 'package.json' && !packageJsonMentionsMcpbox(file)) continue;
      const config = await readDataFile(file, place === 'package.json');
      if (config !== undefined) return { file, config };
    }
  }
  return undefined;
}

function entriesOf(dir: string): Set<string> {
  try {
    return new Set(readdirSync(dir));
  } catch {
    return new Set();
  }
}

/** JSON, or YAML (which is what an extension-less rc file is); package.json's "mcpbox" key. Empty: undefined. */
async function readDataFile(file: string, packageJson: boolean): Promise<unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`could not read ${file}: ${(error as Error).message}`, 'fix the file or its permissions');
  }
  if (text.trim() === '') return undefined;
  try {
    if (packageJson) return (JSON.parse(text) as { mcpbox?: unknown }).mcpbox;
    if (extname(file) === '.json') return JSON.parse(text);
    return (await loadCosmiconfigModule()).defaultLoaders['.yaml'](file, text);
  } catch (error) {
    throw syntaxError(file, error, text);
  }
}

/**
 * A file that doesn't parse, in one line: file:line:col and the problem (JSON.parse says only a
 * position; cosmiconfig's YAML error carries a code frame, on several lines). Pure.
 */
export function syntaxError(file: string, error: unknown, text: string | undefined): ConfigError {
  const hint = 'fix the syntax of the file';
  const yaml = error as { reason?: string; mark?: { line: number; column: number } };
  if (yaml.reason && yaml.mark) return new ConfigError(`${file}:${yaml.mark.line + 1}:${yaml.mark.column + 1}: ${yaml.reason}`, hint);
  const message = (error as Error).message ?? String(error);
  const position = /at position (\d+)/.exec(message);
  if (position && text !== undefined) {
    const before = text.slice(0, Number(position[1]));
    const line = before.split('\n').length;
    const column = before.length - before.lastIndexOf('\n');
    return new ConfigError(`${file}:${line}:${column}: ${message.replace(/ in JSON at position \d+.*$/s, '')}`, hint);
  }
  return new ConfigError(`could not read ${file}: ${message.split('\n')[0]}`, hint);
}

function packageJsonMentionsMcpbox(file: string): boolean {
  try {
    return readFileSync(file, 'utf8').includes('"mcpbox"');
  } catch {
    return false;
  }
}

/** cosmiconfig is CommonJS: imported dynamically, its exports may sit under `default`. */
async function loadCosmiconfigModule(): Promise<typeof import('cosmiconfig')> {
  const module = (await import('cosmiconfig')) as typeof import('cosmiconfig') & { default?: typeof import('cosmiconfig') };
  return 'cosmiconfig' in module && typeof module.cosmiconfig === 'function' ? module : module.default!;
}

async function loadCosmiconfig(): Promise<typeof import('cosmiconfig').cosmiconfig> {
  return (await loadCosmiconfigModule()).cosmiconfig;
}

/** One named file: JSON directly, anything else (YAML, JS) through cosmiconfig's loaders. */
async function loadFile(file: string): Promise<unknown> {
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
    if (extname(file) === '.json') return JSON.parse(text);
    const cosmiconfig = await loadCosmiconfig();
    return (await cosmiconfig('mcpbox', { searchStrategy: 'none' }).load(file))?.config;
  } catch (error) {
    throw syntaxError(file, error, text);
  }
}

function check(raw: unknown, file: string, trust: Trust, home: string): Settings {
  const { settings, problems } = validateSettings(raw, file);
  if (problems.length > 0) throw new ConfigError(formatProblems(problems), 'see "Configuration" in the mcpbox README');

  // A .config/ subfolder belongs to the directory that holds it.
  const dir = basename(dirname(file)) === '.config' ? dirname(dirname(file)) : dirname(file);
  const resolve = (path: string) => (path === '~' || path.startsWith('~/') || path.startsWith('/') ? path : posix.resolve(dir, path));
  if (trust === 'project') {
    const realpath = (path: string) => realHostFs.realpath(path);
    const place = { realDir: realpath(dir) ?? dir, resolve, realpath, refusal: (real: string) => refusalReason(real, home, realHostFs) };
    const outside = projectProblems(settings, file, place);
    if (outside.length > 0) throw new ConfigError(formatProblems(outside), 'a repository you cloned could ship this file: only your user configuration may do that');
  }

  // Project files travel with the repository (git keeps no modes): values there are not secret by
  // definition. A user file with values is where tokens end up, so it must be private.
  const secrets = trust === 'user' ? secretEntries(settings) : [];
  if (secrets.length > 0) {
    const names = secrets.map((s) => s.slice(0, s.indexOf('='))).join(', ');
    requirePrivate(file, (mode) => `${file} holds secret values (${names}) but is readable by others (mode ${mode})`);
  }

  // Relative mounts are relative to the file that names them. A project's are mounted by the path
  // they were checked at (symlinks resolved), so what was checked is what gets mounted.
  const absolute = (entries: string[] | undefined) =>
    entries?.map((entry) => {
      const mode = /:(?:ro|rw)$/.exec(entry)?.[0] ?? '';
      const path = resolve(entry.slice(0, entry.length - mode.length));
      return (trust === 'project' ? (realHostFs.realpath(path) ?? path) : path) + mode;
    });
  const packages = settings.packages && Object.fromEntries(Object.entries(settings.packages).map(([name, p]) => [name, p.mounts ? { ...p, mounts: absolute(p.mounts)! } : p]));
  return { ...settings, ...(settings.mounts && { mounts: absolute(settings.mounts)! }), ...(packages && { packages }) };
}

/** The settings a command runs with: the user file, then the project's (narrowing). */
export async function settingsFor(ctx: Pick<HostContext, 'env' | 'cwd'>): Promise<Settings> {
  return (await loadSettings(ctx.env, ctx.cwd)).settings;
}
