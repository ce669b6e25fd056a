import { accessSync, constants, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { EngineNotFoundError } from '../errors.js';

/**
 * Finding the docker CLI. GUI clients (Claude Desktop on macOS) start commands with a minimal PATH,
 * so after PATH come the places the usual installs put it. MCPBOX_DOCKER or the `docker` setting win
 * and must exist. DOCKER_HOST and docker contexts are the CLI's own business: its environment keeps them.
 */
export interface LocateInput {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly configured?: string | undefined;
  readonly platform?: NodeJS.Platform;
  readonly home?: string;
  readonly isExecutable?: (path: string) => boolean;
}

export interface LocatedEngine {
  readonly path: string;
  /** How it was found, for `doctor` and error messages. */
  readonly source: 'MCPBOX_DOCKER' | 'config' | 'PATH' | 'well-known';
}

export function wellKnownEnginePaths(platform: NodeJS.Platform, home: string): string[] {
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
  const onPath = findOnPath('docker', input.env, platform, isExecutable);
  if (onPath) return { path: onPath, source: 'PATH' };
  const known = wellKnownEnginePaths(platform, home).find(isExecutable);
  if (known) return { path: known, source: 'well-known' };
  throw new EngineNotFoundError('no docker CLI found on PATH or in the usual install locations');
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
