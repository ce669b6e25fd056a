import { readFileSync } from 'node:fs';
import { IMAGE_NAME, type Settings } from '../config/settings.js';
import { UsageError } from '../errors.js';
import type { HostEnv } from './env.js';
import type { Runner } from '../runners/table.js';
import { RUNNERS } from '../runners/table.js';
import { shortHash } from './spec.js';
import { IMAGES_DIR } from '../paths.js';


export interface ImageChoice {
  readonly image: string;
  /** Present when the image is mcpbox's default: how to build it if it is missing. */
  readonly build?: { readonly context: string; readonly base: string };
}

/**
 * --image > MCPBOX_NPX_IMAGE / MCPBOX_UVX_IMAGE > settings > the default image. The default image's
 * tag is a hash of its Dockerfile and base, so a changed Dockerfile or base means a new build, and
 * an image built from the air-gapped bootstrap's bases never passes for one built on the official ones.
 */
export function chooseImage(runner: Runner, flag: string | undefined, env: HostEnv, settings: Settings): ImageChoice {
  const spec = RUNNERS[runner].image;
  const explicit = flag ?? env[spec.imageEnv] ?? settings.images?.[runner];
  if (explicit !== undefined) {
    if (!IMAGE_NAME.test(explicit)) throw new UsageError(`"${explicit}" is not an image name`, 'name an image like node:22 or registry.example.com/team/image:tag');
    return { image: explicit };
  }
  const base = env[spec.baseEnv] || settings.baseImages?.[runner] || spec.base;
  if (!IMAGE_NAME.test(base)) throw new UsageError(`"${base}" is not an image name (${spec.baseEnv} or the baseImages setting)`);
  const context = `${IMAGES_DIR}${spec.dir}`;
  return { image: defaultImageTag(runner, base, readFileSync(`${context}/Dockerfile`, 'utf8')), build: { context, base } };
}

export function defaultImageTag(runner: Runner, base: string, dockerfile: string): string {
  return `mcpbox/${runner}:${shortHash(`${dockerfile}\0${base}`, 12)}`;
}

const scripts = new Map<string, string>();

/** A script from images/scripts/ that runs inside the sandbox (read once per process). */
export function sandboxScript(name: 'launch.sh' | 'tree-hash.sh' | 'install-common.sh' | 'npx-install.sh' | 'uvx-install.sh'): string {
  let text = scripts.get(name);
  if (text === undefined) {
    text = readFileSync(`${IMAGES_DIR}scripts/${name}`, 'utf8');
    scripts.set(name, text);
  }
  return text;
}
