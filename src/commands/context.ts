import type { Settings } from '../config.js';
import { loadSettings } from '../config-files.js';
import { engineEnvironment } from '../engine/argv.js';
import { DockerEngine } from '../engine/docker.js';
import { enginePath, locateEngine } from '../engine/locate.js';
import type { HostEnv } from '../env.js';
import type { Logger } from '../log.js';
import { runtimeDir } from '../paths.js';

/** Everything a command takes from the process, passed in so tests can stand in for it. */
export interface CommandContext {
  readonly env: HostEnv;
  readonly cwd: string;
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean; fd?: number };
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly log: Logger;
  readonly pid: number;
  readonly home: string;
  readonly platform: NodeJS.Platform;
  /** The invoking user (POSIX), for running as them when their files are mounted read-write. */
  readonly uid?: number | undefined;
  readonly gid?: number | undefined;
  readonly username?: string | undefined;
}

export interface OpenedEngine {
  readonly engine: DockerEngine;
  /** The CLI's base environment (no forwarded values), PATH including the CLI's own directory. */
  readonly env: Record<string, string>;
}

/** Finds the docker CLI and gives it only the environment it needs. */
export function openEngine(ctx: Pick<CommandContext, 'env' | 'log'>, settings: Settings): OpenedEngine {
  const located = locateEngine({ env: ctx.env, configured: settings.docker });
  const env = engineEnvironment(ctx.env, { env: [] });
  env.PATH = enginePath(located.path, ctx.env.PATH);
  return { engine: new DockerEngine({ bin: located.path, env, log: ctx.log, runtimeDir: runtimeDir(ctx.env) }), env };
}

export async function settingsFor(ctx: Pick<CommandContext, 'env' | 'cwd'>): Promise<Settings> {
  return (await loadSettings(ctx.env, ctx.cwd)).settings;
}
