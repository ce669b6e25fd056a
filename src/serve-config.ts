import { type ConfigProblem, formatProblems } from './config.js';
import { ConfigError } from './errors.js';
import type { HostEnv } from './env.js';
import type { Runner } from './runners.js';

/**
 * `mcpbox serve`'s file: the `mcpServers` shape clients already use, plus auth tokens (global, or per
 * server replacing the global list), isolation and limits. Pure: validation, and `${env:NAME}`
 * expansion from the environment passed in.
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
const TOP_KEYS = ['mcpServers', 'authTokens', 'maxSessions', 'idleTimeout', 'allowedHosts', 'allowedOrigins'];
const ENTRY_KEYS = ['command', 'args', 'env', 'authTokens', 'shared', 'maxSessions', 'type'];

export function parseServeConfig(raw: unknown, file: string, env: HostEnv): ServeConfig {
  const problems: ConfigProblem[] = [];
  const problem = (key: string, message: string) => problems.push({ file, key, message });
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(`${file}: must be a JSON object with "mcpServers"`);
  const input = raw as Record<string, unknown>;
  for (const key of Object.keys(input)) if (!TOP_KEYS.includes(key)) problem(key, `unknown setting (known: ${TOP_KEYS.join(', ')})`);

  const expand = (value: unknown, key: string): string | undefined => {
    if (typeof value !== 'string') {
      problem(key, 'must be a string');
      return undefined;
    }
    return value.replace(/\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g, (_match, name: string) => {
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

  const names = (key: 'allowedHosts' | 'allowedOrigins', pattern: RegExp, example: string): string[] | undefined => {
    const value = input[key];
    if (value === undefined) return undefined;
    if (Array.isArray(value) && value.every((v) => typeof v === 'string' && pattern.test(v))) return value as string[];
    problem(key, `must be a list like ${example}`);
    return undefined;
  };
  const allowedHosts = names('allowedHosts', /^[A-Za-z0-9.\-[\]:]+$/, '["mcp.example.com"]');
  const allowedOrigins = names('allowedOrigins', /^https?:\/\/[^/\s]+\/?$/, '["https://app.example.com"]');
  const globalTokens = tokens(input.authTokens, 'authTokens');
  const maxSessions = positive(input.maxSessions, 'maxSessions', SERVE_DEFAULTS.maxSessions);
  const idleTimeout = positive(input.idleTimeout, 'idleTimeout', SERVE_DEFAULTS.idleTimeout);

  const servers: ServedServer[] = [];
  const map = input.mcpServers;
  if (typeof map !== 'object' || map === null || Array.isArray(map) || Object.keys(map).length === 0) {
    problem('mcpServers', 'must name at least one server: { "name": { "command": "npx", "args": [...] } }');
  } else {
    for (const [name, value] of Object.entries(map as Record<string, unknown>)) {
      const key = `mcpServers.${name}`;
      if (!NAME.test(name)) problem(key, 'a server name may hold letters, digits, ".", "_" and "-" only (it is part of the URL)');
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        problem(key, 'must be an object like { "command": "npx", "args": ["-y", "pkg"] }');
        continue;
      }
      const entry = value as Record<string, unknown>;
      for (const k of Object.keys(entry)) if (!ENTRY_KEYS.includes(k)) problem(`${key}.${k}`, `unknown setting (known: ${ENTRY_KEYS.join(', ')})`);
      if ('url' in entry || entry.type === 'http' || entry.type === 'sse') {
        problem(key, 'is a remote server; mcpbox serves npx and uvx servers it sandboxes');
        continue;
      }
      const runner = runnerOf(entry.command);
      if (!runner) {
        problem(`${key}.command`, 'must be npx or uvx (or a path to them): mcpbox serves only what it can sandbox');
        continue;
      }
      const args = entry.args ?? [];
      if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) {
        problem(`${key}.args`, 'must be a list of strings');
        continue;
      }
      const serverEnv: Record<string, string> = {};
      if (entry.env !== undefined) {
        if (typeof entry.env !== 'object' || entry.env === null || Array.isArray(entry.env)) problem(`${key}.env`, 'must be an object of NAME: value');
        else {
          for (const [envName, envValue] of Object.entries(entry.env)) {
            if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(envName)) problem(`${key}.env.${envName}`, 'is not a valid variable name');
            const expanded = expand(envValue, `${key}.env.${envName}`);
            if (expanded !== undefined) serverEnv[envName] = expanded;
          }
        }
      }
      if (entry.shared !== undefined && typeof entry.shared !== 'boolean') problem(`${key}.shared`, 'must be true or false');
      const own = tokens(entry.authTokens, `${key}.authTokens`);
      const authTokens = own ?? globalTokens;
      if (!authTokens || authTokens.length === 0) {
        if (!problems.some((p) => p.key.startsWith('authTokens') || p.key.startsWith(`${key}.authTokens`))) {
          problem(key, 'has no auth tokens: set "authTokens" at the top or in the server');
        }
        continue;
      }
      servers.push({
        name,
        runner,
        args,
        env: serverEnv,
        authTokens,
        shared: entry.shared === true,
        maxSessions: positive(entry.maxSessions, `${key}.maxSessions`, SERVE_DEFAULTS.serverMaxSessions),
      });
    }
  }
  if (problems.length > 0) throw new ConfigError(formatProblems(problems), 'see "Serving over HTTP" in the mcpbox README');
  return { servers, maxSessions, idleTimeout, ...(allowedHosts && { allowedHosts }), ...(allowedOrigins && { allowedOrigins }) };
}

function runnerOf(command: unknown): Runner | undefined {
  if (typeof command !== 'string') return undefined;
  const base = command.split(/[\\/]/).pop()!.toLowerCase().replace(/\.(cmd|exe)$/, '');
  return base === 'npx' || base === 'uvx' ? base : undefined;
}
