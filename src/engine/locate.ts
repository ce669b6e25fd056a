import { createHash } from 'node:crypto';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { EngineNotFoundError } from '../errors.js';

/**
 * Finding the engine's CLI. GUI clients (Claude Desktop on macOS) start commands with a minimal PATH,
 * so after PATH come the places the usual installs put it. MCPBOX_DOCKER or the `docker` setting win
 * and must exist. Otherwise MCPBOX_ENGINE or the `engine` setting says which CLI to look for; with
 * neither, docker, and podman where there is no docker. DOCKER_HOST, CONTAINER_HOST and contexts
 * are the CLI's own business: its environment keeps them.
 */
export type EngineName = 'docker' | 'podman';

/** Which CLI a binary is, by its name: podman's, or the docker CLI (or a compatible one). */
export const engineCliOf = (bin: string): EngineName => (/podman(?:\.exe)?$/i.test(bin.split(/[\\/]/).pop() ?? '') ? 'podman' : 'docker');

export interface LocateInput {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly configured?: string | undefined;
  /** The `engine` setting (MCPBOX_ENGINE wins over it). */
  readonly engine?: EngineName | undefined;
  readonly platform?: NodeJS.Platform;
  readonly home?: string;
  readonly isExecutable?: (path: string) => boolean;
}

export interface LocatedEngine {
  readonly path: string;
  /** How it was found, for `doctor` and error messages. */
  readonly source: 'MCPBOX_DOCKER' | 'config' | 'PATH' | 'well-known';
}

export function wellKnownEnginePaths(platform: NodeJS.Platform, home: string, engine: EngineName = 'docker'): string[] {
  if (engine === 'podman') {
    if (platform === 'win32') return ['C:\\Program Files\\RedHat\\Podman\\podman.exe'];
    return ['/usr/bin/podman', '/usr/local/bin/podman', '/opt/homebrew/bin/podman', '/opt/podman/bin/podman'];
  }
  if (platform === 'win32') {
    return [
      'C:\\Program Files\\Docker\\Docker\\resources\\bin\\docker.exe',
      join(home, '.rd', 'bin', 'docker.exe'),
    ];
  }
  return [
    '/usr/local/bin/docker',
    '/opt/homebrew/bin/docker',
    join(home, '.docker', 'bin', 'docker'),
    '/Applications/Docker.app/Contents/Resources/bin/docker',
    join(home, '.orbstack', 'bin', 'docker'),
    join(home, '.rd', 'bin', 'docker'),
    '/usr/bin/docker',
    '/opt/podman/bin/docker',
  ];
}

export function locateEngine(input: LocateInput): LocatedEngine {
  const platform = input.platform ?? process.platform;
  const home = input.home ?? homedir();
  const isExecutable = input.isExecutable ?? executable;
  for (const [source, path] of [
    ['MCPBOX_DOCKER', input.env.MCPBOX_DOCKER],
    ['config', input.configured],
  ] as const) {
    if (!path) continue;
    if (isExecutable(path)) return { path, source };
    throw new EngineNotFoundError(
      `${source === 'config' ? 'the "docker" setting' : 'MCPBOX_DOCKER'} names ${path}, which is not an executable file`,
      'point it at the docker CLI, or unset it to let mcpbox search PATH and the usual install locations',
    );
  }
  const chosen = input.env.MCPBOX_ENGINE || input.engine;
  if (chosen !== undefined && chosen !== 'docker' && chosen !== 'podman') {
    throw new EngineNotFoundError(`MCPBOX_ENGINE=${chosen}: not an engine mcpbox drives`, 'set it to docker or podman, or unset it');
  }
  const find = (engine: EngineName): LocatedEngine | undefined => {
    const onPath = findOnPath(engine, input.env, platform, isExecutable);
    if (onPath) return { path: onPath, source: 'PATH' };
    const known = wellKnownEnginePaths(platform, home, engine).find(isExecutable);
    return known ? { path: known, source: 'well-known' } : undefined;
  };
  if (chosen) {
    const found = find(chosen);
    if (found) return found;
    throw new EngineNotFoundError(`no ${chosen} CLI found on PATH or in the usual install locations (MCPBOX_ENGINE or the engine setting asks for ${chosen})`);
  }
  const found = find('docker') ?? find('podman');
  if (found) return found;
  throw new EngineNotFoundError('no docker or podman CLI found on PATH or in the usual install locations');
}

/** The first executable `name` on PATH (with PATHEXT on Windows). */
export function findOnPath(
  name: string,
  env: Readonly<Record<string, string | undefined>>,
  platform: NodeJS.Platform,
  isExecutable: (path: string) => boolean = executable,
): string | undefined {
  const separator = platform === 'win32' ? ';' : ':';
  const extensions = platform === 'win32' ? (env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';') : [''];
  for (const dir of (env.PATH ?? env.Path ?? '').split(separator).filter(Boolean)) {
    for (const ext of extensions) {
      const candidate = join(dir, `${name}${ext.toLowerCase()}`);
      if (isExecutable(candidate)) return candidate;
    }
  }
  return undefined;
}

/** PATH for the engine CLI: its own directory first, so credential helpers installed beside it are found. */
export function enginePath(enginePath: string, hostPath: string | undefined): string {
  const dir = dirname(enginePath);
  const parts = (hostPath ?? '').split(delimiter).filter(Boolean);
  return [dir, ...parts.filter((p) => p !== dir)].join(delimiter);
}

function executable(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Where the engine runs. A remote one (DOCKER_HOST or CONTAINER_HOST at tcp:// or ssh://, a docker
 * context that points there) has another machine's files: a path of this one can't be mounted
 * there. unix:// and npipe:// sockets are this machine's (Docker Desktop, OrbStack, Colima and a
 * Podman machine share the home directory with their VM). MCPBOX_LOCAL_ENGINE=1 says a TCP engine
 * sees this machine's files after all.
 */
export interface EngineLocation {
  readonly remote: boolean;
  /** The endpoint, and what named it (for messages). */
  readonly endpoint?: string;
  readonly via?: string;
}

export function engineLocation(env: Readonly<Record<string, string | undefined>>, cli: EngineName, read: (path: string) => string | undefined = readText, home = homedir()): EngineLocation {
  if (env.MCPBOX_LOCAL_ENGINE === '1') return { remote: false };
  const named = cli === 'podman' ? (env.CONTAINER_HOST ? { host: env.CONTAINER_HOST, via: 'CONTAINER_HOST' } : undefined) : dockerEndpoint(env, read, home);
  if (!named?.host) return { remote: false };
  return { remote: !/^(unix|npipe):\/\//i.test(named.host), endpoint: named.host, via: named.via };
}

/**
 * The unix socket the docker CLI talks to, for the one call mcpbox makes to the engine's API itself
 * (the claim of a standby: a CLI start costs more than the call). Only when the CLI's endpoint is
 * plainly a local socket: the default, DOCKER_HOST=unix://…, or a context that names one. Anything
 * else (TCP, SSH, Podman's CLI, Windows pipes) has none: the CLI is used.
 */
export function dockerSocket(
  env: Readonly<Record<string, string | undefined>>,
  cli: EngineName,
  platform: NodeJS.Platform = process.platform,
  read: (path: string) => string | undefined = readText,
  home = homedir(),
): string | undefined {
  if (cli !== 'docker' || platform === 'win32') return undefined;
  const named = dockerEndpoint(env, read, home);
  if (!named) return '/var/run/docker.sock';
  const socket = /^unix:\/\/(\/.+)$/i.exec(named.host ?? '');
  return socket?.[1];
}

function dockerEndpoint(env: Readonly<Record<string, string | undefined>>, read: (path: string) => string | undefined, home: string): { host: string | undefined; via: string } | undefined {
  if (env.DOCKER_HOST) return { host: env.DOCKER_HOST, via: 'DOCKER_HOST' };
  const config = env.DOCKER_CONFIG ?? join(env.HOME ?? home, '.docker');
  const parse = (text: string | undefined) => {
    try {
      return text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  };
  const context = env.DOCKER_CONTEXT || (parse(read(join(config, 'config.json')))?.currentContext as string | undefined);
  if (!context || context === 'default') return undefined;
  // The CLI keeps a context's endpoint under the sha256 of its name.
  const meta = parse(read(join(config, 'contexts', 'meta', createHash('sha256').update(context).digest('hex'), 'meta.json')));
  const host = (meta?.Endpoints as { docker?: { Host?: string } } | undefined)?.docker?.Host;
  // A context whose endpoint can't be read: named, not known (not the default socket either).
  return { host, via: `docker context ${context}` };
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
