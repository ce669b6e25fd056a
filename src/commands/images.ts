import { existsSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { userConfigDir, USER_SEARCH_PLACES } from '../config/files.js';
import { ConfigError, ImageUnavailableError, UsageError } from '../errors.js';
import { writeFileAtomic } from '../files.js';
import { BOOTSTRAP_SCRIPT } from '../paths.js';
import type { CommandContext } from './context.js';

/**
 * `mcpbox images bootstrap`: builds the base images without any registry (the script
 * scripts/bootstrap-base-images.sh, shipped in the package) and records them in your user settings
 * (`baseImages`), so every start uses them — GUI clients included, which never see shell exports.
 */
export async function images(action: string, flags: { rebuild?: boolean }, ctx: CommandContext): Promise<number> {
  if (action !== 'bootstrap') throw new UsageError(`unknown images action "${action}"`, 'mcpbox images bootstrap');
  const { execa } = await import('execa');
  // Progress is the script's, on stderr; its stdout says what it built.
  const result = await execa('bash', [BOOTSTRAP_SCRIPT, ...(flags.rebuild ? ['--rebuild'] : [])], { env: { ...ctx.env }, extendEnv: false, stdin: 'ignore', stderr: 'inherit', reject: false });
  if (result.exitCode !== 0) {
    throw new ImageUnavailableError(`the base image bootstrap failed (exit ${result.exitCode})`, `see its output above; it needs root (debootstrap), the npm registry and PyPI, or a filled artifacts directory (bash ${BOOTSTRAP_SCRIPT} --help)`);
  }
  const bases = parseExports(String(result.stdout));
  const file = recordBases(ctx.env, ctx.home, bases);
  ctx.stdout.write(`npx base: ${bases.npx}\nuvx base: ${bases.uvx}\nrecorded as baseImages in ${file}\n`);
  return 0;
}

/** The script's `export MCPBOX_NPX_BASE_IMAGE=…` lines. Pure. */
export function parseExports(stdout: string): { npx: string; uvx: string } {
  const value = (name: string) => new RegExp(`^export ${name}=(\\S+)$`, 'm').exec(stdout)?.[1];
  const npx = value('MCPBOX_NPX_BASE_IMAGE');
  const uvx = value('MCPBOX_UVX_BASE_IMAGE');
  if (!npx || !uvx) throw new ImageUnavailableError('the base image bootstrap named no images', `run bash ${BOOTSTRAP_SCRIPT} to see what it does`);
  return { npx, uvx };
}

/**
 * Writes baseImages into the user's JSON settings (MCPBOX_CONFIG when that names a JSON file), every
 * other key as it was. A YAML or JS user file isn't rewritten: mcpbox says what to add instead.
 */
export function recordBases(env: Readonly<Record<string, string | undefined>>, home: string, bases: { npx: string; uvx: string }): string {
  const dir = userConfigDir(env, home);
  const existing = USER_SEARCH_PLACES.map((place) => join(dir, place)).find((path) => existsSync(path));
  const file = env.MCPBOX_CONFIG || existing || join(dir, 'config.json');
  if (extname(file) !== '.json') {
    throw new ConfigError(`the bases are built, but ${file} is not JSON and mcpbox doesn't rewrite it`, `add to it: baseImages: { npx: ${bases.npx}, uvx: ${bases.uvx} }`);
  }
  let settings: Record<string, unknown> = {};
  if (existsSync(file)) {
    const text = readFileSync(file, 'utf8');
    try {
      settings = text.trim() === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
    } catch (error) {
      throw new ConfigError(`the bases are built, but ${file} does not parse: ${(error as Error).message}`, 'fix it, then run mcpbox images bootstrap again (the images are reused)');
    }
  }
  const baseImages = { ...(settings.baseImages as Record<string, string> | undefined), npx: bases.npx, uvx: bases.uvx };
  writeFileAtomic(file, `${JSON.stringify({ ...settings, baseImages }, null, 2)}\n`);
  return file;
}
