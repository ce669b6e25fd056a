import { listEntries, parseConfig, classify } from './wrap.js';

/**
 * The servers a client starts through mcpbox (entries `mcpbox run …`, as wrap writes them), as the
 * client would start them: mcpbox's arguments after `run`, the values the entry's env block gives,
 * and the project it belongs to (Claude Code's per-project entries). Pure: a file's text in.
 * `mcpbox pull` leaves a standby for each of these whose server it just prepared
 * (src/lifecycle/standby-run.ts): the same plan, so the same key, as the client's first launch.
 */
export interface WrappedLaunch {
  readonly name: string;
  readonly runArgs: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** The project directory of a per-project entry; undefined for a user-level one. */
  readonly project: string | undefined;
}

export function wrappedLaunches(text: string, file: string): WrappedLaunch[] {
  const root = parseConfig(text, file);
  const launches: WrappedLaunch[] = [];
  for (const entry of listEntries(text, root)) {
    if (classify(entry.value).kind !== 'wrapped') continue;
    const args = (entry.value.args as unknown[]).filter((a): a is string => typeof a === 'string');
    const runAt = args.indexOf('run');
    const env = Object.fromEntries(Object.entries(isRecord(entry.value.env) ? entry.value.env : {}).filter((e): e is [string, string] => typeof e[1] === 'string'));
    const runArgs = args.slice(runAt + 1);
    // A value the entry doesn't hold comes from the client's own environment, unknown here: its
    // standby could never match, so none is left for it.
    if (forwardedNames(runArgs).some((name) => !(name in env))) continue;
    const project = entry.path[0] === 'projects' && typeof entry.path[1] === 'string' ? entry.path[1] : undefined;
    launches.push({ name: entry.name, runArgs, env, project });
  }
  return launches;
}

/** The names `-e NAME` / `--env NAME` forward from the environment (NAME=VALUE carries its value). */
export function forwardedNames(args: readonly string[]): string[] {
  const names: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const value = arg === '-e' || arg === '--env' ? args[++i] : /^(?:--env=|-e)(.+)$/.exec(arg)?.[1];
    if (value !== undefined && !value.includes('=')) names.push(value);
  }
  return names;
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
