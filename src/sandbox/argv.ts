import type { ContainerSpec, Mount } from './spec.js';
import type { EnvFile, EnvLine } from '../engine/env-file.js';

/**
 * ContainerSpec → `docker run` argv. Pure. Every hardening flag is here, in one place, and the full
 * argv of a default run is pinned by a snapshot test.
 */
export function runArgv(spec: ContainerSpec, envFile?: string): string[] {
  const { policy } = spec;
  // Without an env file (a dry run), forwarded values are shown as `--env NAME`: the command as one would type it.
  const fromFile = spec.env.filter((v) => v.via === 'file');
  const argv = [
    'run',
    '--rm',
    '--interactive',
    // At a terminal, Ctrl-C detaches the CLI: mcpbox then stops the server (src/lifecycle/supervise.ts).
    ...(spec.tty ? ['--tty', '--detach-keys', 'ctrl-c'] : []),
    // tini as PID 1: signals reach the server and zombies are reaped.
    '--init',
    '--name',
    spec.name,
    ...Object.entries(spec.labels).flatMap(([key, value]) => ['--label', `${key}=${value}`]),
    '--user',
    spec.user,
    '--read-only',
    '--cap-drop',
    'ALL',
    '--security-opt',
    'no-new-privileges',
    // The engine's default seccomp profile stays: nothing here relaxes it.
    '--pids-limit',
    String(policy.pids),
    '--memory',
    policy.memory,
    '--cpus',
    policy.cpus,
    '--network',
    policy.network,
    ...spec.mounts.flatMap(mountArgs),
    ...spec.env.flatMap((v) => (v.via === 'argv' ? ['--env', `${v.name}=${v.value}`] : v.via === 'file' && envFile ? [] : ['--env', v.name])),
    ...(envFile && fromFile.length > 0 ? ['--env-file', envFile] : []),
    '--workdir',
    spec.workdir,
    // Images are prepared before the run; never let `run` pull behind our back.
    '--pull',
    'never',
    '--entrypoint',
    spec.entrypoint,
    spec.image,
    ...spec.args,
  ];
  return argv;
}

function mountArgs(mount: Mount): string[] {
  switch (mount.type) {
    case 'tmpfs':
      return ['--tmpfs', `${mount.target}:${mount.options}`];
    case 'volume':
      return ['--mount', mountField(['type=volume', `source=${mount.source}`, `target=${mount.target}`, ...(mount.readonly ? ['ro'] : [])])];
    case 'bind':
      return ['--mount', mountField(['type=bind', `source=${mount.source}`, `target=${mount.target}`, ...(mount.readonly ? ['ro'] : [])])];
  }
}

/** --mount takes CSV: a field holding a comma or quote is quoted, quotes doubled. */
function mountField(fields: string[]): string {
  return fields.map((f) => (/[",]/.test(f) ? `"${f.replaceAll('"', '""')}"` : f)).join(',');
}

/** The lines of a spec's env file: every forwarded value. */
export function envFileLines(spec: Pick<ContainerSpec, 'env'>): EnvLine[] {
  return spec.env.filter((v) => v.via === 'file').map(({ name, value }) => ({ name, value }));
}

/** What starting a spec takes: the argv, the CLI's environment and the env file holding the values. */
export interface EngineLaunch {
  readonly argv: string[];
  readonly env: Record<string, string>;
  readonly envFile: EnvFile | undefined;
}

/**
 * Starting a spec: the engine CLI's own environment (see engine/open.ts) plus mcpbox's fixed-name
 * values; forwarded values in an env file.
 */
export function engineLaunch(
  spec: ContainerSpec,
  engineEnv: Readonly<Record<string, string>>,
  openFile: (lines: readonly EnvLine[]) => EnvFile,
  argvOf: (spec: ContainerSpec, envFile: string | undefined) => string[] = runArgv,
): EngineLaunch {
  const lines = envFileLines(spec);
  const envFile = lines.length > 0 ? openFile(lines) : undefined;
  const own = Object.fromEntries(spec.env.filter((v) => v.via === 'environment').map((v) => [v.name, v.value]));
  return { argv: argvOf(spec, envFile?.path), env: { ...engineEnv, ...own }, envFile };
}
