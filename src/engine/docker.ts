import { execa, type ResultPromise } from 'execa';
import { EngineNotFoundError, EngineUnreachableError, ImageUnavailableError, McpboxError } from '../errors.js';
import type { Logger } from '../log.js';
import { type ManagedContainer, parsePs, PS_FORMAT } from '../containers.js';
import { LABEL } from '../sandbox.js';
import { engineFailure, missingObjects } from './diagnose.js';

/**
 * The one module that spawns the engine. Each method is one docker CLI call, given argv (never a
 * shell string) and an explicit environment (never the host's wholesale).
 */
export interface EngineOptions {
  readonly bin: string;
  /** The CLI's own environment: where the engine is, nothing else. */
  readonly env: Readonly<Record<string, string>>;
  readonly log: Logger;
  /** How long a query may take before the engine counts as not answering. */
  readonly timeoutMs?: number;
}

export type RunStdin = 'pipe' | 'inherit';

export class DockerEngine {
  readonly bin: string;
  readonly #env: Readonly<Record<string, string>>;
  readonly #log: Logger;
  readonly #timeoutMs: number;

  constructor(options: EngineOptions) {
    this.bin = options.bin;
    this.#env = options.env;
    this.#log = options.log;
    this.#timeoutMs = options.timeoutMs ?? 20_000;
  }

  /** A short query. Engine-level failures (not found, not answering) throw; others come back. */
  async #query(args: readonly string[], timeoutMs = this.#timeoutMs) {
    const result = await execa(this.bin, args, {
      env: this.#env,
      extendEnv: false,
      reject: false,
      stdin: 'ignore',
      timeout: timeoutMs,
      cleanup: false,
      windowsHide: true,
    });
    if ((result as { code?: string }).code === 'ENOENT') {
      throw new EngineNotFoundError(`the docker CLI at ${this.bin} could not be started`);
    }
    if (result.timedOut) {
      throw new EngineUnreachableError(`the Docker engine did not answer \`docker ${args[0]}\` within ${timeoutMs / 1000} s`);
    }
    if (result.exitCode !== 0) {
      const failure = engineFailure(result.stderr);
      if (failure) throw failure;
    }
    return result;
  }

  /** Which of these images/volumes don't exist. One call, whatever their number. */
  async missing(names: readonly string[]): Promise<Set<string>> {
    if (names.length === 0) return new Set();
    const result = await this.#query(['inspect', ...names]);
    if (result.exitCode === 0) return new Set();
    const missing = missingObjects(result.stderr, names);
    if (missing.size === 0) throw unexpected('inspect', result.stderr);
    return missing;
  }

  async version(): Promise<string> {
    const result = await this.#query(['version', '--format', '{{.Server.Version}}']);
    if (result.exitCode !== 0) throw unexpected('version', result.stderr);
    return result.stdout.trim();
  }

  /** Builds an image, relaying the engine's progress to stderr line by line. */
  async build(input: { tag: string; context: string; buildArgs: Record<string, string>; labels: Record<string, string> }) {
    const args = [
      'build',
      '--tag',
      input.tag,
      ...Object.entries(input.buildArgs).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]),
      ...Object.entries(input.labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
      input.context,
    ];
    const output = await this.#relay(args, 'build');
    if (output.exitCode !== 0) {
      throw new ImageUnavailableError(
        `could not build ${input.tag} from ${input.context}: ${output.lastLine || `docker build exited ${output.exitCode}`}`,
        'the base image must be present or pullable: on hosts without a registry run scripts/bootstrap-base-images.sh and export what it prints, or pass --image',
      );
    }
  }

  async pull(image: string) {
    const output = await this.#relay(['pull', image], 'pull');
    if (output.exitCode !== 0) {
      throw new ImageUnavailableError(
        `could not pull ${image}: ${output.lastLine || `docker pull exited ${output.exitCode}`}`,
        'check the image name and your registry access, or build it locally and pass --image',
      );
    }
  }

  async #relay(args: readonly string[], label: string): Promise<{ exitCode: number; lastLine: string }> {
    const subprocess = execa(this.bin, args, {
      env: this.#env,
      extendEnv: false,
      reject: false,
      stdin: 'ignore',
      all: true,
      cleanup: false,
      windowsHide: true,
    });
    let lastLine = '';
    try {
      for await (const line of subprocess.iterable({ from: 'all' })) {
        const text = String(line).trimEnd();
        if (!text) continue;
        lastLine = text;
        this.#log.note(`${label}: ${text}`);
      }
    } catch {
      // The result below says what happened.
    }
    const result = await subprocess;
    if ((result as { code?: string }).code === 'ENOENT') {
      throw new EngineNotFoundError(`the docker CLI at ${this.bin} could not be started`);
    }
    if (result.exitCode !== 0) {
      const failure = engineFailure(result.all ?? lastLine);
      if (failure) throw failure;
    }
    return { exitCode: result.exitCode ?? 1, lastLine };
  }

  /**
   * Named volumes start root-owned when the image has nothing at the mount point. A throwaway
   * container, with no capabilities and no network, opens the fresh volume to every uid like /tmp
   * (sticky, mode 1777); the volume's root-owned root needs no capability for that.
   */
  async prepareVolume(volume: string, image: string, labels: { volume: Record<string, string>; container: Record<string, string> }) {
    const labelArgs = (map: Record<string, string>) => Object.entries(map).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
    await this.#query(['volume', 'create', ...labelArgs(labels.volume), volume]);
    const target = '/mcpbox-volume';
    const result = await this.#query(
      [
        'run', '--rm', '--user', '0:0', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges',
        '--network', 'none', '--read-only', '--pull', 'never',
        ...labelArgs(labels.container),
        '--mount', `type=volume,source=${volume},target=${target}`,
        '--entrypoint', 'chmod', image, '1777', target,
      ],
      120_000,
    );
    if (result.exitCode !== 0) {
      throw new McpboxError(
        'volume-prepare',
        `could not prepare cache volume ${volume} with ${image}: ${lastLineOf(result.stderr)}`,
        'the image needs a chmod binary (coreutils or busybox); use the default image or one based on a distribution',
        1,
      );
    }
  }

  /** Starts `docker run`: stdout and stderr inherited (no copy on the server's output path). */
  run(argv: readonly string[], options: { env: Readonly<Record<string, string>>; stdin: RunStdin; detached: boolean }): ResultPromise {
    return execa(this.bin, argv, {
      env: options.env,
      extendEnv: false,
      reject: false,
      stdin: options.stdin,
      stdout: 'inherit',
      stderr: 'inherit',
      // mcpbox owns the lifecycle (src/lifecycle.ts): no exit hooks, no SIGKILL of the CLI (which
      // would leave the container running without its proxy).
      cleanup: false,
      forceKillAfterDelay: false,
      detached: options.detached,
      windowsHide: true,
    });
  }

  /** mcpbox's containers, running or not. */
  async listManaged(): Promise<ManagedContainer[]> {
    const result = await this.#query(['ps', '--all', '--no-trunc', '--filter', `label=${LABEL.managed}=true`, '--format', PS_FORMAT]);
    if (result.exitCode !== 0) throw unexpected('ps', result.stderr);
    return parsePs(result.stdout);
  }

  /** SIGTERM (through tini to the server), then SIGKILL after `seconds`; --rm removes them. */
  async stop(names: readonly string[], seconds: number) {
    if (names.length === 0) return;
    const result = await this.#query(['stop', '--time', String(Math.ceil(seconds)), ...names], (seconds + 30) * 1000);
    if (result.exitCode !== 0 && !/No such container/i.test(result.stderr)) throw unexpected('stop', result.stderr);
  }

  /** Force-removes containers; ones already gone are fine. */
  async remove(names: readonly string[]) {
    if (names.length === 0) return;
    await this.#query(['rm', '--force', ...names]);
  }

  /**
   * The SIGKILL safety net: a tiny process outside mcpbox's process group that holds the read end of
   * a pipe only mcpbox writes to. When mcpbox ends in any way, even SIGKILL, the kernel closes that
   * pipe; unless mcpbox said "done" first, the watchdog force-removes the container. No polling.
   */
  watchdog(name: string): { release(): void } {
    const [command, args] =
      process.platform === 'win32'
        ? [
            process.execPath,
            [
              '-e',
              "let d='';process.stdin.on('data',c=>d+=c).on('end',()=>{if(!d.startsWith('done'))require('child_process').spawnSync(process.argv[1],['rm','--force',process.argv[2]],{stdio:'ignore',windowsHide:true})})",
              this.bin,
              name,
            ],
          ]
        : ['/bin/sh', ['-c', 'read -r line; [ "$line" = done ] || exec "$0" rm --force "$1"', this.bin, name]];
    const watchdog = execa(command, args, {
      env: this.#env,
      extendEnv: false,
      stdin: 'pipe',
      stdout: 'ignore',
      stderr: 'ignore',
      detached: true,
      cleanup: false,
      reject: false,
      windowsHide: true,
    });
    watchdog.unref();
    const input = watchdog.stdin!;
    input.on('error', () => {});
    (input as unknown as { unref?: () => void }).unref?.();
    return { release: () => void input.end('done\n') };
  }
}

function lastLineOf(text: string): string {
  return text.trim().split('\n').pop() ?? '';
}

function unexpected(command: string, stderr: string): McpboxError {
  return new McpboxError('engine-error', `docker ${command} failed: ${lastLineOf(stderr)}`, 'run `mcpbox doctor`', 1);
}
