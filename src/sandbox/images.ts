import { readFileSync } from 'node:fs';
import { IMAGE_NAME, type Settings } from '../config/settings.js';
import { UsageError } from '../errors.js';
import type { HostEnv } from './env.js';
import type { Runner } from '../runners/table.js';
import type { RunnerSpec } from '../runners/types.js';
import { RUNNERS } from '../runners/table.js';
import { shortHash } from './spec.js';
import { IMAGES_DIR } from '../paths.js';

/** Image variants beside the default: `browser` adds Debian's chromium for browser-automation servers. */
export const IMAGE_VARIANTS = ['browser'] as const;
export type ImageVariant = (typeof IMAGE_VARIANTS)[number];

export interface ImageChoice {
  readonly image: string;
  /** Present when the image is mcpbox's default: how to build it if it is missing. */
  readonly build?: { readonly context: string; readonly base: string; readonly args?: Readonly<Record<string, string>> };
}

/**
 * --image > MCPBOX_NPX_IMAGE / MCPBOX_UVX_IMAGE > settings > the default image (or its variant). The
 * default image's tag is a hash of its Dockerfile, base and build arguments, so a changed Dockerfile or
 * base means a new build, and an image built from the air-gapped bootstrap's bases never passes for
 * one built on the official ones.
 */
export function chooseImage(runner: Runner, flag: string | undefined, env: HostEnv, settings: Settings, variant?: ImageVariant): ImageChoice {
  const spec: RunnerSpec['image'] = RUNNERS[runner].image;
  const explicit = flag ?? env[spec.imageEnv] ?? settings.images?.[runner];
  if (explicit !== undefined) {
    if (!IMAGE_NAME.test(explicit)) throw new UsageError(`"${explicit}" is not an image name`, 'name an image like node:22 or registry.example.com/team/image:tag');
    return { image: explicit };
  }
  const browser = variant === 'browser' ? spec.browser : undefined;
  if (variant === 'browser' && !browser) throw new UsageError(`no browser variant of the ${runner} image`, `name an image with a browser: --image <image>`);
  // The browser variant builds on its own base when one is named, else on the runner's (chromium then
  // comes from that base's Debian mirror, as the bootstrap's packages did).
  const variantBase = browser && (env[browser.baseEnv] || settings.baseImages?.[`${runner}-browser` as const]);
  const base = variantBase || env[spec.baseEnv] || settings.baseImages?.[runner] || spec.base;
  if (!IMAGE_NAME.test(base)) throw new UsageError(`"${base}" is not an image name (${variantBase ? browser.baseEnv : spec.baseEnv} or the baseImages setting)`);
  const context = `${IMAGES_DIR}${spec.dir}`;
  const args = browser ? { EXTRA_PACKAGES: browser.packages } : undefined;
  const dockerfile = readFileSync(`${context}/Dockerfile`, 'utf8');
  return { image: defaultImageTag(browser ? `${runner}-browser` : runner, base, dockerfile, args), build: { context, base, ...(args && { args }) } };
}

export function defaultImageTag(name: string, base: string, dockerfile: string, args?: Readonly<Record<string, string>>): string {
  const extra = args ? `\0${JSON.stringify(args)}` : '';
  return `mcpbox/${name}:${shortHash(`${dockerfile}\0${base}${extra}`, 12)}`;
}

const scripts = new Map<string, string>();

/** A script from images/scripts/ that runs inside the sandbox (read once per process). */
export type SandboxScript = 'launch.sh' | 'tree-hash.sh' | 'install-common.sh' | 'npx-install.sh' | 'uvx-install.sh' | 'npm-gate.cjs' | 'uv-gate.py';

export function sandboxScript(name: SandboxScript): string {
  let text = scripts.get(name);
  if (text === undefined) {
    text = readFileSync(`${IMAGES_DIR}scripts/${name}`, 'utf8');
    scripts.set(name, text);
  }
  return text;
}

/** sh that sets a variable to a script of another language, for `node -e "$var"` or `python3 -c "$var"`. */
export function embeddedScript(variable: string, name: SandboxScript): string {
  const text = sandboxScript(name);
  // A quoted here-document takes the text as it is; its end marker must not be a line of the text.
  if (text.split('\n').includes('MCPBOX_EMBEDDED')) throw new Error(`${name} holds the line MCPBOX_EMBEDDED`);
  return `${variable}=$(cat <<'MCPBOX_EMBEDDED'\n${text}\nMCPBOX_EMBEDDED\n)`;
}
