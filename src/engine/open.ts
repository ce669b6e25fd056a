import type { HostEnv } from '../host.js';
import type { Logger } from '../log.js';
import { runtimeDir } from '../paths.js';
import { DockerEngine } from './docker.js';
import { engineEnvironment } from './environment.js';
import { type EngineName, enginePath, locateEngine } from './locate.js';

export interface EngineChoice {
  readonly docker?: string | undefined;
  readonly engine?: EngineName | undefined;
}

export interface OpenedEngine {
  readonly engine: DockerEngine;
  /**
   * The CLI's environment, built here and nowhere else: its own configuration from the host's (no
   * forwarded values), PATH with the CLI's own directory first.
   */
  readonly env: Record<string, string>;
}

/** Finds the docker CLI (MCPBOX_DOCKER, the `docker` setting, PATH, the usual places) and opens it. */
/** `choice`: the `docker` (a path) and `engine` settings. */
export function openEngine(ctx: { readonly env: HostEnv; readonly log: Logger }, choice: EngineChoice | undefined): OpenedEngine {
  const located = locateEngine({ env: ctx.env, configured: choice?.docker, engine: choice?.engine });
  const env = engineEnvironment(ctx.env);
  env.PATH = enginePath(located.path, ctx.env.PATH);
  return { engine: new DockerEngine({ bin: located.path, env, log: ctx.log, runtimeDir: runtimeDir(ctx.env) }), env };
}
