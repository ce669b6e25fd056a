import type { Runner } from './runners.js';
import { RUNNER_NAMES } from './runners.js';

/**
 * mcpbox's settings, as validated from any one file. Every key is optional: a file says only what it
 * changes, and layers merge user → project → command-line flags.
 */
export interface Settings {
  /** Image per runner, replacing the default image. */
  images?: Partial<Record<Runner, string>>;
  /** Base image per runner for building the default image (the air-gapped bootstrap's output). */
  baseImages?: Partial<Record<Runner, string>>;
  memory?: string;
  cpus?: string;
  pids?: number;
  network?: string;
  /** Names (value from mcpbox's environment) or NAME=VALUE pairs passed into every sandbox. */
  env?: string[];
  /** Seconds a server gets to exit after its input ends or a signal, before it is stopped. */
  grace?: number;
  /** Path of the docker (or compatible) CLI. */
  docker?: string;
}

export interface ConfigProblem {
  file: string;
  key: string;
  message: string;
}

export const SIZE = /^\d+(?:\.\d+)?[bkmg]?$/i;
const ENV_ENTRY = /^[A-Za-z_][A-Za-z0-9_]*(?:=.*)?$/s;
const KNOWN_KEYS = ['images', 'baseImages', 'memory', 'cpus', 'pids', 'network', 'env', 'grace', 'docker'] as const;

/** Pure: checks one file's contents. Problems name the file and the key. */
export function validateSettings(raw: unknown, file: string): { settings: Settings; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const problem = (key: string, message: string) => problems.push({ file, key, message });
  const settings: Settings = {};
  if (raw === null || raw === undefined) return { settings, problems };
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    problem('(root)', 'must be an object');
    return { settings, problems };
  }
  const input = raw as Record<string, unknown>;
  for (const key of Object.keys(input)) {
    if (!(KNOWN_KEYS as readonly string[]).includes(key)) problem(key, `unknown setting (known: ${KNOWN_KEYS.join(', ')})`);
  }

  for (const key of ['images', 'baseImages'] as const) {
    const value = input[key];
    if (value === undefined) continue;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      problem(key, `must be an object like { "npx": "image", "uvx": "image" }`);
      continue;
    }
    const byRunner: Partial<Record<Runner, string>> = {};
    for (const [runner, image] of Object.entries(value)) {
      if (!(RUNNER_NAMES as string[]).includes(runner)) problem(`${key}.${runner}`, `unknown runner (known: ${RUNNER_NAMES.join(', ')})`);
      else if (typeof image !== 'string' || image.trim() === '') problem(`${key}.${runner}`, 'must be an image name');
      else byRunner[runner as Runner] = image;
    }
    settings[key] = byRunner;
  }

  if (input.memory !== undefined) {
    if (typeof input.memory === 'string' && SIZE.test(input.memory)) settings.memory = input.memory;
    else problem('memory', 'must be a size like "512m" or "2g"');
  }
  if (input.cpus !== undefined) {
    const cpus = String(input.cpus);
    if ((typeof input.cpus === 'number' || typeof input.cpus === 'string') && /^\d+(?:\.\d+)?$/.test(cpus) && Number(cpus) > 0)
      settings.cpus = cpus;
    else problem('cpus', 'must be a positive number like 1 or 0.5');
  }
  if (input.pids !== undefined) {
    if (Number.isInteger(input.pids) && (input.pids as number) > 0) settings.pids = input.pids as number;
    else problem('pids', 'must be a positive whole number');
  }
  if (input.network !== undefined) {
    if (typeof input.network === 'string' && /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(input.network)) {
      if (input.network === 'host') problem('network', '"host" would share the host\'s network stack; use "bridge" or a named network');
      else settings.network = input.network;
    } else problem('network', 'must be "bridge", "none" or a network name');
  }
  if (input.env !== undefined) {
    if (Array.isArray(input.env) && input.env.every((e) => typeof e === 'string' && ENV_ENTRY.test(e))) settings.env = input.env as string[];
    else problem('env', 'must be a list of variable names or NAME=VALUE pairs');
  }
  if (input.grace !== undefined) {
    if (typeof input.grace === 'number' && input.grace >= 0 && input.grace <= 300) settings.grace = input.grace;
    else problem('grace', 'must be a number of seconds between 0 and 300');
  }
  if (input.docker !== undefined) {
    if (typeof input.docker === 'string' && input.docker !== '') settings.docker = input.docker;
    else problem('docker', 'must be the path of the docker binary');
  }
  return { settings, problems };
}

/** Later layers win for single values; lists add up; per-runner maps merge key by key. */
export function mergeSettings(...layers: Settings[]): Settings {
  const merged: Settings = {};
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer) as [keyof Settings, unknown][]) {
      if (value === undefined) continue;
      if (key === 'env') merged.env = [...(merged.env ?? []), ...(value as string[])];
      else if (key === 'images' || key === 'baseImages') merged[key] = { ...merged[key], ...(value as object) };
      else (merged as Record<string, unknown>)[key] = value;
    }
  }
  return merged;
}

export function formatProblems(problems: readonly ConfigProblem[]): string {
  return problems.map((p) => `${p.file}: "${p.key}" ${p.message}`).join('; ');
}
