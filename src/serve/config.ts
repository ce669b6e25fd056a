import { readFileSync } from 'node:fs';
import { type ConfigProblem, formatProblems } from '../config/settings.js';
import { ConfigError } from '../errors.js';
import { requirePrivate } from '../files.js';
import { ENV_NAME, type HostEnv } from '../host.js';
import { isRunner, type Runner } from '../runners/table.js';

/**
 * `mcpbox serve`'s file: the `mcpServers` shape clients already use, plus auth tokens (global, or per
 * server replacing the global list), isolation and limits. Validation and `${env:NAME}` expansion
 * from the environment passed in are pure; readServeConfig reads the file.
 */
export interface ServedServer {
  readonly name: string;
  readonly runner: Runner;
  /** The runner's argv, as a client config gives it to npx/uvx. */
  readonly args: readonly string[];
  /** Values passed into the sandbox (by environment, never argv). */
  readonly env: Readonly<Record<string, string>>;
  /** The tokens that open this server: its own list, or the global one. */
  readonly authTokens: readonly string[];
  /** One container for every session (state shared), instead of one per session. */
  readonly shared: boolean;
  readonly maxSessions: number;
}

export interface ServeConfig {
  readonly servers: readonly ServedServer[];
  /** Names the Host header may carry (DNS-rebinding protection, src/serve/origin.ts). */
  readonly allowedHosts?: readonly string[];
  /** Origins a browser may call from. */
  readonly allowedOrigins?: readonly string[];
  /** Sessions across all servers. */
  readonly maxSessions: number;
  /** Seconds without a request before a session (and its container) ends. */
  readonly idleTimeout: number;
}

export const SERVE_DEFAULTS = { maxSessions: 64, serverMaxSessions: 16, idleTimeout: 600 } as const;
const MIN_TOKEN_LENGTH = 16;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** `${env:NAME}`, NAME as any variable name. */
const ENV_REFERENCE = new RegExp(`\\$\\{env:(${ENV_NAME.source.slice(1, -1)})\\}`, 'g');
const TOP_KEYS = ['mcpServers', 'authTokens', 'maxSessions', 'idleTimeout', 'allowedHosts', 'allowedOrigins'];
const ENTRY_KEYS = ['command', 'args', 'env', 'authTokens', 'shared', 'maxSessions', 'type'];

export function parseServeConfig(raw: unknown, file: string, env: HostEnv): ServeConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(`${file}: must be a JSON object with "mcpServers"`);
  const input = raw as Record<string, unknown>;
  const read = reader(file, env);
  for (const key of Object.keys(input)) if (!TOP_KEYS.includes(key)) read.problem(key, `unknown setting (known: ${TOP_KEYS.join(', ')})`);
  const allowedHosts = read.list(input, 'allowedHosts', /^[A-Za-z0-9.\-[\]:]+$/, '["mcp.example.com"]');
  const allowedOrigins = read.list(input, 'allowedOrigins', /^https?:\/\/[^/\s]+\/?$/, '["https://app.example.com"]');
  const globalTokens = read.tokens(input.authTokens, 'authTokens');
  const maxSessions = read.positive(input.maxSessions, 'maxSessions', SERVE_DEFAULTS.maxSessions);
  const idleTimeout = read.positive(input.idleTimeout, 'idleTimeout', SERVE_DEFAULTS.idleTimeout);

  const servers: ServedServer[] = [];
  const map = input.mcpServers;
  if (typeof map !== 'object' || map === null || Array.isArray(map) || Object.keys(map).length === 0) {
    read.problem('mcpServers', 'must name at least one server: { "name": { "command": "npx", "args": [...] } }');
  } else {
    for (const [name, value] of Object.entries(map as Record<string, unknown>)) {
      const server = parseServer(read, name, value, globalTokens);
      if (server) servers.push(server);
    }
  }
  if (read.problems.length > 0) throw new ConfigError(formatProblems(read.problems), 'see "Serving over HTTP" in the mcpbox README');
  return { servers, maxSessions, idleTimeout, ...(allowedHosts && { allowedHosts }), ...(allowedOrigins && { allowedOrigins }) };
}

/** One entry of mcpServers, or undefined (with its problems noted) when it can't be served. */
function parseServer(read: Reader, name: string, value: unknown, globalTokens: string[] | undefined): ServedServer | undefined {
  const key = `mcpServers.${name}`;
  if (!NAME.test(name)) read.problem(key, 'a server name may hold letters, digits, ".", "_" and "-" only (it is part of the URL)');
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    read.problem(key, 'must be an object like { "command": "npx", "args": ["-y", "pkg"] }');
    return undefined;
  }
  const entry = value as Record<string, unknown>;
  for (const k of Object.keys(entry)) if (!ENTRY_KEYS.includes(k)) read.problem(`${key}.${k}`, `unknown setting (known: ${ENTRY_KEYS.join(', ')})`);
  if ('url' in entry || entry.type === 'http' || entry.type === 'sse') {
    read.problem(key, 'is a remote server; mcpbox serves npx and uvx servers it sandboxes');
    return undefined;
  }
  const runner = runnerOf(entry.command);
  if (!runner) {
    read.problem(`${key}.command`, 'must be npx or uvx (or a path to them): mcpbox serves only what it can sandbox');
    return undefined;
  }
  const args = entry.args ?? [];
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) {
    read.problem(`${key}.args`, 'must be a list of strings');
    return undefined;
  }
  const serverEnv: Record<string, string> = {};
  if (entry.env !== undefined) {
    if (typeof entry.env !== 'object' || entry.env === null || Array.isArray(entry.env)) read.problem(`${key}.env`, 'must be an object of NAME: value');
    else {
      for (const [envName, envValue] of Object.entries(entry.env)) {
        if (!ENV_NAME.test(envName)) read.problem(`${key}.env.${envName}`, 'is not a valid variable name');
        const expanded = read.expand(envValue, `${key}.env.${envName}`);
        if (expanded !== undefined) serverEnv[envName] = expanded;
      }
    }
  }
  if (entry.shared !== undefined && typeof entry.shared !== 'boolean') read.problem(`${key}.shared`, 'must be true or false');
  const authTokens = read.tokens(entry.authTokens, `${key}.authTokens`) ?? globalTokens;
  if (!authTokens || authTokens.length === 0) {
    if (!read.problems.some((p) => p.key.startsWith('authTokens') || p.key.startsWith(`${key}.authTokens`))) {
      read.problem(key, 'has no auth tokens: set "authTokens" at the top or in the server');
    }
    return undefined;
  }
  const maxSessions = read.positive(entry.maxSessions, `${key}.maxSessions`, SERVE_DEFAULTS.serverMaxSessions);
  return { name, runner, args, env: serverEnv, authTokens, shared: entry.shared === true, maxSessions };
}

type Reader = ReturnType<typeof reader>;

/** The value readers of one file: each notes its problems (file and key) and goes on. */
function reader(file: string, env: HostEnv) {
  const problems: ConfigProblem[] = [];
  const problem = (key: string, message: string) => void problems.push({ file, key, message });
  const expand = (value: unknown, key: string): string | undefined => {
    if (typeof value !== 'string') {
      problem(key, 'must be a string');
      return undefined;
    }
    return value.replace(ENV_REFERENCE, (_match, name: string) => {
      const found = env[name];
      if (found === undefined) problem(key, `names the environment variable ${name}, which is not set`);
      return found ?? '';
    });
  };
  const tokens = (value: unknown, key: string): string[] | undefined => {
    if (value === undefined) return undefined;
    if (!Array.isArray(value) || value.length === 0) {
      problem(key, 'must be a non-empty list of tokens (or "${env:NAME}")');
      return undefined;
    }
    return value.flatMap((token, i) => {
      const expanded = expand(token, `${key}[${i}]`);
      if (expanded === undefined) return [];
      if (expanded.length < MIN_TOKEN_LENGTH) {
        problem(`${key}[${i}]`, `is shorter than ${MIN_TOKEN_LENGTH} characters; use a long random token (openssl rand -hex 32)`);
        return [];
      }
      return [expanded];
    });
  };
  const positive = (value: unknown, key: string, fallback: number): number => {
    if (value === undefined) return fallback;
    if (Number.isInteger(value) && (value as number) > 0) return value as number;
    problem(key, 'must be a positive whole number');
    return fallback;
  };
  const list = (input: Record<string, unknown>, key: string, pattern: RegExp, example: string): string[] | undefined => {
    const value = input[key];
    if (value === undefined) return undefined;
    if (Array.isArray(value) && value.every((v) => typeof v === 'string' && pattern.test(v))) return value as string[];
    problem(key, `must be a list like ${example}`);
    return undefined;
  };
  return { problems, problem, expand, tokens, positive, list };
}

function runnerOf(command: unknown): Runner | undefined {
  if (typeof command !== 'string') return undefined;
  const base = command.split(/[\\/]/).pop()!.toLowerCase().replace(/\.(cmd|exe)$/, '');
  return isRunner(base) ? base : undefined;
}

/**
 * Reads and checks servers.json. It names tokens and the servers' secrets: it must be the owner's
 * alone (`inPod`, serve --kubernetes: a Secret its pod's group may read too).
 */
export function readServeConfig(file: string, env: HostEnv, inPod = false): ServeConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read ${file}: ${(error as Error).message}`);
  }
  requirePrivate(file, (mode) => `${file} is readable by others (mode ${mode}); it holds auth tokens`, inPod);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${file} is not valid JSON: ${(error as Error).message}`);
  }
  return parseServeConfig(raw, file, env);
}
