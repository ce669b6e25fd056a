import { type ChildProcessWithoutNullStreams, type ExecFileException, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import { posix } from 'node:path';
import { EngineNotFoundError, EngineUnreachableError, ImageUnavailableError, McpboxError } from '../errors.js';
import type { Logger } from '../log.js';
import { LABEL, type ManagedContainer, parsePs, psFormat } from './containers.js';
import { engineFailure, missingObjects } from './diagnose.js';
import { type EnvFile, type EnvLine, openEnvFile } from './env-file.js';
import { apiAttach, apiInspect, apiStatus } from './api.js';
import { dockerSocket, engineCliOf, type EngineName } from './locate.js';

/**
 * The one module that spawns the engine. Each method is one docker CLI call, given argv (never a
 * shell string) and an explicit environment (never the host's wholesale). The exceptions are the
 * claim of a standby and the attach to it, on the way to its first byte: they ask a local Docker's
 * API on its socket (src/engine/api.ts; see rename and attach).
 *
 * The calls on the way to a server's first byte (inspect, run, the watchdog) use node:child_process:
 * loading execa costs more start-up time (tens of ms) than a warm start may add in all. execa is
 * loaded for the rest (builds, pulls, installs), where its line iteration and buffering earn it.
 */
export interface EngineOptions {
  readonly bin: string;
  /** The CLI's own environment: where the engine is, nothing else. */
  readonly env: Readonly<Record<string, string>>;
  readonly log: Logger;
  /** How long a query may take before the engine counts as not answering. */
  readonly timeoutMs?: number;
  /** A private directory (mode 0700) for the env files that carry values to containers. */
  readonly runtimeDir: string;
}

/** What `describe` learns of the engine: for doctor, and for what differs (rootless limits). */
export interface EngineDescription {
  readonly product: 'Docker Engine' | 'Docker Desktop' | 'Podman';
  readonly version: string;
  readonly client: string;
  readonly rootless: boolean;
  readonly cgroupVersion: string | undefined;
  readonly os: string | undefined;
  /** Podman's own word that it talks to a service elsewhere (podman --remote, a Podman machine). */
  readonly remote: boolean;
}

export type RunStdin = 'pipe' | 'inherit';

/** A running `docker run`. */
export interface EngineProcess {
  readonly pid: number | undefined;
  /** Present when stdin is 'pipe'. */
  readonly stdin: Writable | null;
  /** Present when stderr is 'pipe'. */
  readonly stderr: Readable | null;
  /** Present when stdout is 'pipe'. */
  readonly stdout: Readable | null;
  kill(signal: NodeJS.Signals): boolean;
  readonly exit: Promise<{ exitCode: number | null; signal: NodeJS.Signals | null }>;
}

export interface Inspected {
  readonly missing: Set<string>;
  readonly volumeIds: Map<string, string>;
  readonly containers: Map<string, ContainerState>;
  /** Each image's id, by each of its names (Podman's with and without localhost/). */
  readonly imageIds: Map<string, string>;
}

/** A container as inspect sees it: `status` is the engine's (created, running, exited, …). */
export interface ContainerState {
  readonly running: boolean;
  readonly status: string;
  readonly labels: Record<string, string>;
  /** The id of the image it was created from. */
  readonly image: string;
}

interface QueryResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Where the volume helpers (prepare, hand over, size) see a volume. */
const VOLUME_HELPER_DIR = '/mcpbox-volume';

/** Label with a random id that mcpbox gives each volume it creates. */
export const VOLUME_ID = 'dev.mcpbox.volume-id';

export class DockerEngine {
  readonly bin: string;
  /** Which CLI mcpbox drives: the docker CLI, or Podman's (docker-compatible, with a few differences). */
  readonly cli: EngineName;
  readonly #env: Readonly<Record<string, string>>;
  readonly #log: Logger;
  readonly #timeoutMs: number;
  readonly #runtimeDir: string;
  /** Whether the engine can size-limit volumes; learned on the first volume mcpbox creates. */
  #quota: boolean | undefined;
  /** The API socket, once it has answered (the claim of a standby): the attach goes there too. */
  #apiSocket: string | undefined;

  constructor(options: EngineOptions) {
    this.bin = options.bin;
    this.cli = engineCliOf(options.bin);
    // Podman's local volume driver takes a size option and then fails to mount the volume.
    if (this.cli === 'podman') this.#quota = false;
    this.#env = options.env;
    this.#log = options.log;
    this.#timeoutMs = options.timeoutMs ?? 20_000;
    this.#runtimeDir = options.runtimeDir;
  }

  /** An env file for `--env-file`, closed (removed) by the call that uses it when the CLI exits. */
  envFile(lines: readonly EnvLine[]): EnvFile {
    return openEnvFile(this.#runtimeDir, lines);
  }

  /** A short query. Engine-level failures (not found, not answering) throw; others come back. */
  async #query(args: readonly string[], timeoutMs = this.#timeoutMs, env = this.#env): Promise<QueryResult> {
    const result = await new Promise<QueryResult & { error?: ExecFileException }>((resolve) => {
      execFile(
        this.bin,
        args,
        { env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, windowsHide: true, encoding: 'utf8' },
        (error, stdout, stderr) => {
          const code = error && typeof error.code === 'number' ? error.code : error ? -1 : 0;
          resolve({ exitCode: code, stdout, stderr, ...(error && { error }) });
        },
      ).stdin?.end();
    });
    if (result.error?.code === 'ENOENT') throw new EngineNotFoundError(`the docker CLI at ${this.bin} could not be started`);
    if (result.error?.killed) {
      throw new EngineUnreachableError(`the Docker engine did not answer \`docker ${args[0]}\` within ${timeoutMs / 1000} s`);
    }
    if (result.exitCode !== 0) {
      const failure = engineFailure(result.stderr);
      if (failure) throw failure;
    }
    return { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr };
  }

  /**
   * Which of these images, volumes and containers exist; each volume's identity (the id label mcpbox
   * gives the volumes it creates: a recreated volume has lost what was installed in it); each
   * container's state and labels. One call.
   */
  async inspect(names: readonly string[]): Promise<Inspected> {
    const volumeIds = new Map<string, string>();
    const containers = new Map<string, ContainerState>();
    const imageIds = new Map<string, string>();
    if (names.length === 0) return { missing: new Set(), volumeIds, containers, imageIds };
    // Once the API socket has answered (a claimed standby's check, on the way to its first byte), it is asked first.
    const fromApi = this.#apiSocket ? await apiInspect(this.#apiSocket, names) : undefined;
    const result = fromApi ? { exitCode: fromApi.missing.size === 0 ? 0 : 1, stdout: JSON.stringify(fromApi.objects), stderr: '' } : await this.#query(['inspect', ...names]);
    try {
      type Object = { Id?: string; Name?: string; Image?: string; RepoTags?: string[] | null; Mountpoint?: string; Labels?: Record<string, string> | null; State?: { Running?: boolean; Status?: string }; Config?: { Labels?: Record<string, string> | null } };
      for (const object of JSON.parse(result.stdout || '[]') as Object[]) {
        if (object.Mountpoint !== undefined && object.Name) volumeIds.set(object.Name, object.Labels?.[VOLUME_ID] ?? 'unlabelled');
        if (object.State && object.Name) {
          containers.set(object.Name.replace(/^\//, ''), { running: object.State.Running === true, status: object.State.Status ?? '', labels: object.Config?.Labels ?? {}, image: object.Image ?? '' });
        } else if (object.RepoTags && object.Id) {
          for (const tag of object.RepoTags) for (const name of [tag, tag.replace(/^localhost\//, '')]) imageIds.set(name, object.Id);
        }
      }
    } catch {
      // No JSON: everything is missing, or the engine said why below.
    }
    if (result.exitCode === 0) return { missing: new Set(), volumeIds, containers, imageIds };
    const missing = fromApi?.missing ?? missingObjects(result.stderr, names);
    if (missing.size === 0) throw unexpected('inspect', result.stderr);
    return { missing, volumeIds, containers, imageIds };
  }

  /**
   * `docker run --detach …` or `docker create …`: a long-lived helper (the egress proxy), a standby.
   * Resolves with the CLI's answer; `env` is the CLI's environment when it carries `--env NAME` values.
   */
  async runDetached(argv: readonly string[], envFile?: EnvFile, env?: Readonly<Record<string, string>>): Promise<{ exitCode: number; stderr: string }> {
    try {
      const result = await this.#query(argv, 120_000, env);
      return { exitCode: result.exitCode, stderr: result.stderr };
    } finally {
      envFile?.close();
    }
  }

  /** Follows a container's output (`docker logs --follow`) line by line until stopped or it ends. */
  follow(name: string, since: Date, onLine: (line: string) => void): { stop(): void; ended: Promise<void> } {
    const child = spawn(this.bin, ['logs', '--follow', '--since', String(Math.floor(since.getTime() / 1000) - 1), name], {
      env: this.#env,
      stdio: ['ignore', 'pipe', 'ignore'],
      windowsHide: true,
    });
    child.on('error', () => {});
    let pending = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) if (line.trim()) onLine(line);
    });
    const ended = new Promise<void>((resolve) => child.once('close', () => resolve()));
    return { stop: () => void child.kill('SIGTERM'), ended };
  }

  /**
   * Runs a container to completion (an install), capturing its stdout and relaying its stderr to
   * ours line by line; the engine CLI's environment carries the values of `--env NAME`.
   */
  async capture(argv: readonly string[], env: Readonly<Record<string, string>>, label: string, envFile?: EnvFile): Promise<{ exitCode: number; stdout: string; stderr: string }> {
    try {
      const result = await this.#stream(argv, env, label, 'stderr');
      return { exitCode: result.exitCode, stdout: result.stdout, stderr: result.lines.join('\n') };
    } finally {
      envFile?.close();
    }
  }

  /**
   * A longer call whose output (stderr, or everything) is relayed to ours line by line as it comes;
   * stdout is also kept whole, final newline included (install reports are hashed byte for byte).
   */
  async #stream(
    args: readonly string[],
    env: Readonly<Record<string, string>>,
    label: string,
    from: 'stderr' | 'all',
  ): Promise<{ exitCode: number; stdout: string; lines: string[] }> {
    const { execa } = await import('execa');
    const subprocess = execa(this.bin, args, {
      env,
      extendEnv: false,
      reject: false,
      stdin: 'ignore',
      all: from === 'all',
      cleanup: false,
      windowsHide: true,
      maxBuffer: 64 * 1024 * 1024,
      stripFinalNewline: false,
    });
    const lines: string[] = [];
    // A build says one line per step (step n/m, elapsed); its full output only when it fails, or
    // with MCPBOX_VERBOSE=1. Pulls and the rest are relayed as they come.
    const compact = label === 'build' && this.#env.MCPBOX_VERBOSE !== '1' && process.env.MCPBOX_VERBOSE !== '1';
    const started = Date.now();
    try {
      for await (const line of subprocess.iterable({ from })) {
        const text = String(line).trimEnd();
        if (!text) continue;
        lines.push(text);
        const step = compact ? /^Step (\d+\/\d+) : (.*)$/.exec(text) : undefined;
        if (!compact) this.#log.note(`${label}: ${text}`);
        else if (step) this.#log.note(`${label}: step ${step[1]} (${Math.round((Date.now() - started) / 1000)} s) ${step[2]!.slice(0, 60)}`);
      }
    } catch {
      // The result below says what happened.
    }
    const result = await subprocess;
    if (compact && result.exitCode !== 0) for (const text of lines.slice(-40)) this.#log.note(`${label}: ${text}`);
    if ((result as { code?: string }).code === 'ENOENT') throw new EngineNotFoundError(`the docker CLI at ${this.bin} could not be started`);
    if (result.exitCode !== 0) {
      const failure = engineFailure(lines.join('\n'));
      if (failure) throw failure;
    }
    return { exitCode: result.exitCode ?? 1, stdout: String(result.stdout ?? ''), lines };
  }

  /** Any short docker CLI call, for diagnostics (doctor). Engine-level failures throw. */
  async call(args: readonly string[], timeoutMs?: number): Promise<{ exitCode: number; stdout: string; stderr: string }> {
    return this.#query(args, timeoutMs);
  }

  /**
   * Renames a container; false when it isn't there (or the new name is taken). The claim of a
   * standby, on the way to its first byte: a docker CLI start costs 30–50 ms here, a call on the
   * engine's local socket (the one the CLI uses: dockerSocket) a few. Anything but a plain answer
   * from that socket (none, another endpoint, an error) falls back to the CLI.
   */
  async rename(from: string, to: string): Promise<boolean> {
    const socket = dockerSocket(this.#env, this.cli);
    const status = socket ? await apiStatus(socket, 'POST', `/containers/${encodeURIComponent(from)}/rename?name=${encodeURIComponent(to)}`) : undefined;
    if (status === 204 || status === 404 || status === 409) {
      this.#apiSocket = socket;
      return status === 204;
    }
    return (await this.#query(['rename', from, to])).exitCode === 0;
  }

  /**
   * Attaches to a running container (a claimed standby), as `docker attach` does: in-process on the
   * API socket when it answered the claim (src/engine/api.ts: a CLI start saved), else the CLI.
   */
  attach(name: string, options: { env: Readonly<Record<string, string>>; stdout?: 'inherit' | 'pipe'; stderr?: 'inherit' | 'pipe' }): EngineProcess {
    if (!this.#apiSocket) return this.run(['attach', name], { ...options, stdin: 'pipe', detached: true });
    return apiAttach(this.#apiSocket, name, {
      stdout: options.stdout === 'pipe' ? 'pipe' : process.stdout,
      stderr: options.stderr === 'pipe' ? 'pipe' : process.stderr,
    });
  }

  /**
   * Which engine answers, and how it runs containers: docker's `version` and `info`, or podman's
   * `info` (a local podman has no server to version). Throws when nothing answers.
   */
  async describe(): Promise<EngineDescription> {
    if (this.cli === 'podman') {
      type PodmanInfo = { version?: { Version?: string }; host?: { security?: { rootless?: boolean }; cgroupVersion?: string; serviceIsRemote?: boolean; distribution?: { distribution?: string; version?: string } } };
      const info = await this.json<PodmanInfo>('info');
      const host = info.host ?? {};
      const os = host.distribution?.distribution ? `${host.distribution.distribution} ${host.distribution.version ?? ''}`.trim() : undefined;
      return { product: 'Podman', version: info.version?.Version ?? '?', client: info.version?.Version ?? '?', rootless: host.security?.rootless === true, cgroupVersion: host.cgroupVersion?.replace(/^v/, ''), os, remote: host.serviceIsRemote === true };
    }
    const version = await this.json<{ Client?: { Version?: string }; Server?: { Version?: string; Components?: { Name: string }[] } | null }>('version');
    if (!version.Server) throw new EngineUnreachableError('the Docker engine did not answer `docker version`');
    const info = await this.json<{ OperatingSystem?: string; SecurityOptions?: string[]; CgroupVersion?: string }>('info');
    const podman = (version.Server.Components ?? []).some((c) => /podman/i.test(c.Name));
    const product = podman ? 'Podman' : /Docker Desktop/i.test(info.OperatingSystem ?? '') ? 'Docker Desktop' : 'Docker Engine';
    return { product, version: version.Server.Version ?? '?', client: version.Client?.Version ?? '?', rootless: (info.SecurityOptions ?? []).some((o) => o.includes('rootless')), cgroupVersion: info.CgroupVersion, os: info.OperatingSystem, remote: false };
  }

  /** `docker <command> --format '{{json .}}'`, parsed. */
  async json<T>(command: 'version' | 'info'): Promise<T> {
    const result = await this.#query([command, '--format', '{{json .}}']);
    if (result.exitCode !== 0) throw unexpected(command, result.stderr);
    return JSON.parse(result.stdout) as T;
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
    const output = await this.#stream(args, this.#env, 'build', 'all');
    if (output.exitCode !== 0) {
      throw new ImageUnavailableError(
        `could not build ${input.tag} from ${input.context}: ${output.lines.at(-1) ?? `docker build exited ${output.exitCode}`}`,
        'the base image must be present or pullable: on a host without a registry, mcpbox images bootstrap builds the bases here and records them in your settings (or pass --image)',
      );
    }
  }

  async pull(image: string) {
    const output = await this.#stream(['pull', image], this.#env, 'pull', 'all');
    if (output.exitCode !== 0) {
      throw new ImageUnavailableError(
        `could not pull ${image}: ${output.lines.at(-1) ?? `docker pull exited ${output.exitCode}`}`,
        'check the image name and your registry access, or build it locally and pass --image',
      );
    }
  }

  /**
   * Named volumes start root-owned when the image has nothing at the mount point. A throwaway
   * container, with no network and one capability, opens the fresh volume to every uid like /tmp
   * (sticky, mode 1777). That capability is FOWNER: a run started at the same moment in the default
   * image may have given the volume that image's owner (65534) already.
   */
  async prepareVolume(volume: string, image: string, labels: { volume: Record<string, string>; container: Record<string, string> }, limitKb?: number): Promise<string> {
    const labelArgs = (map: Record<string, string>) => Object.entries(map).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
    const id = randomUUID();
    const create = ['volume', 'create', ...labelArgs({ ...labels.volume, [VOLUME_ID]: id })];
    // A size-limited volume where the engine can (local driver on XFS with project quota); elsewhere
    // the runs that write it check its size at start (src/sandbox.ts).
    const limited = limitKb && this.#quota !== false ? await this.#query([...create, '--opt', `size=${limitKb}k`, volume]) : undefined;
    if (limited && limited.exitCode !== 0 && /quota/i.test(limited.stderr)) this.#quota = false;
    if (!limited || limited.exitCode !== 0) await this.#query([...create, volume]);
    const open = () => this.#volumeHelper(volume, image, ['FOWNER'], labels.container, ['chmod', '1777', VOLUME_HELPER_DIR]);
    let result = await open();
    if (result.exitCode !== 0 && limited?.exitCode === 0) {
      // An engine that takes the size option but can't mount what it made (Podman's API service,
      // driven by the docker CLI): made again without it.
      this.#quota = false;
      await this.#query(['volume', 'rm', volume]);
      await this.#query([...create, volume]);
      result = await open();
    }
    if (result.exitCode !== 0) {
      throw new McpboxError(
        'volume-prepare',
        `could not prepare cache volume ${volume} with ${image}: ${lastLineOf(result.stderr)}`,
        'the image needs a chmod binary (coreutils or busybox); use the default image or one based on a distribution',
        1,
      );
    }
    // Two runs may have created it at once: the label that won is the volume's id.
    const winner = (await this.inspect([volume])).volumeIds.get(volume);
    if (!winner) throw unexpected('volume inspect', `volume ${volume} vanished`);
    return winner === 'unlabelled' ? id : winner;
  }

  /**
   * Gives everything in a volume to `user` (uid:gid): a data volume whose server now runs as another
   * uid than the one that wrote it (src/lifecycle/data.ts). Symlinks are changed, never followed.
   */
  async handOverVolume(volume: string, image: string, user: string, containerLabels: Record<string, string>): Promise<void> {
    const result = await this.#volumeHelper(volume, image, ['CHOWN', 'DAC_READ_SEARCH'], containerLabels, ['chown', '-R', '-h', user, VOLUME_HELPER_DIR]);
    if (result.exitCode !== 0) throw new McpboxError('volume-prepare', `could not hand the data volume ${volume} over to uid ${user}: ${lastLineOf(result.stderr)}`, `docker volume inspect ${volume}`, 1);
  }

  /**
   * Copies host files and directories (`DIR/.`: its content) into a new volume (--copy-in, an engine on another machine): a helper
   * container that is created, never started, holds the volume while `docker cp` sends the files
   * (the CLI reads them here and the engine writes them there; symlinks are copied, not followed).
   */
  async copyIntoVolume(volume: string, image: string, files: readonly { from: string; to: string }[], labels: { volume: Record<string, string>; container: Record<string, string> }): Promise<void> {
    const source = files.map((f) => f.from).join(', ');
    const labelArgs = (map: Record<string, string>) => Object.entries(map).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
    const created = await this.#query(['volume', 'create', ...labelArgs(labels.volume), volume]);
    if (created.exitCode !== 0) throw new McpboxError('copy-in', `could not create the volume ${volume} for ${source}: ${lastLineOf(created.stderr)}`, `${this.cli} volume ls`, 1);
    const helper = `${volume}-helper`;
    const create = await this.#query([
      'create', '--name', helper, '--user', '0:0', '--cap-drop', 'ALL', '--network', 'none', '--read-only', '--pull', 'never',
      ...labelArgs(labels.container), '--mount', `type=volume,source=${volume},target=${VOLUME_HELPER_DIR}`, '--entrypoint', 'true', image,
    ]);
    try {
      if (create.exitCode !== 0) throw new McpboxError('copy-in', `could not copy ${source} in: ${lastLineOf(create.stderr)}`, `${this.cli} image ls ${image}`, 1);
      for (const file of files) {
        const copied = await this.#query(['cp', file.from, `${helper}:${posix.join(VOLUME_HELPER_DIR, file.to)}`], 600_000);
        if (copied.exitCode !== 0) throw new McpboxError('copy-in', `could not copy ${file.from} in: ${lastLineOf(copied.stderr)}`, 'a smaller directory, or a local engine', 1);
      }
    } finally {
      await this.#query(['rm', '--force', helper]);
    }
  }

  /** KiB each volume holds (du in a throwaway container, no network, read-only). Missing sizes: unknown. */
  async volumeSizeKb(volume: string, image: string, containerLabels: Record<string, string>): Promise<number | undefined> {
    const result = await this.#volumeHelper(volume, image, ['DAC_READ_SEARCH'], containerLabels, ['du', '-sk', VOLUME_HELPER_DIR], true);
    const kb = Number(/^(\d+)/.exec(result.stdout)?.[1]);
    return result.exitCode === 0 && Number.isFinite(kb) ? kb : undefined;
  }

  /** mcpbox's volumes with these labels: name, labels, where the engine keeps it. */
  async listVolumes(labels: Record<string, string>): Promise<{ name: string; labels: Record<string, string>; mountpoint: string }[]> {
    const filters = Object.entries(labels).flatMap(([k, v]) => ['--filter', `label=${k}=${v}`]);
    const list = await this.#query(['volume', 'ls', '--quiet', ...filters]);
    if (list.exitCode !== 0) throw unexpected('volume ls', list.stderr);
    const names = list.stdout.split('\n').filter(Boolean);
    if (names.length === 0) return [];
    const result = await this.#query(['volume', 'inspect', ...names]);
    if (result.exitCode !== 0) throw unexpected('volume inspect', result.stderr);
    return (JSON.parse(result.stdout) as { Name: string; Labels?: Record<string, string> | null; Mountpoint?: string }[]).map((v) => ({
      name: v.Name,
      labels: v.Labels ?? {},
      mountpoint: v.Mountpoint ?? '',
    }));
  }

  /** Removes volumes; the engine refuses one a container still uses (its message is returned). */
  async removeVolume(volume: string): Promise<string | undefined> {
    const result = await this.#query(['volume', 'rm', volume]);
    return result.exitCode === 0 ? undefined : lastLineOf(result.stderr);
  }

  /** A throwaway root container with only `caps`, no network, read-only, the volume at VOLUME_HELPER_DIR. */
  async #volumeHelper(volume: string, image: string, caps: readonly string[], labels: Record<string, string>, command: readonly string[], readonly = false) {
    const name = `mcpbox-volume-helper-${randomUUID().slice(0, 12)}`;
    const result = await this.#query(
      [
        'run', '--rm', '--name', name, '--user', '0:0', '--cap-drop', 'ALL', ...caps.flatMap((c) => ['--cap-add', c]), '--security-opt', 'no-new-privileges',
        '--network', 'none', '--read-only', '--pull', 'never',
        ...Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
        '--mount', `type=volume,source=${volume},target=${VOLUME_HELPER_DIR}${readonly ? ',ro' : ''}`,
        '--entrypoint', command[0]!, image, ...command.slice(1),
      ],
      120_000,
    );
    // One that never started (a mount the engine refused) is not removed by --rm: nothing is left behind.
    if (result.exitCode !== 0) await this.#query(['rm', '--force', name]);
    return result;
  }

  /**
   * Starts `docker run`. stdout is always inherited: the server's JSON-RPC goes straight to the
   * client, no copy. stderr is piped only when asked (to hold the engine's own messages back while a
   * warm start is being checked).
   */
  run(
    argv: readonly string[],
    options: { env: Readonly<Record<string, string>>; stdin: RunStdin; stdout?: 'inherit' | 'pipe'; stderr?: 'inherit' | 'pipe'; detached: boolean; envFile?: EnvFile | undefined },
  ): EngineProcess {
    const child = spawn(this.bin, argv, {
      env: options.env,
      stdio: [options.stdin, options.stdout ?? 'inherit', options.stderr ?? 'inherit'],
      detached: options.detached,
      windowsHide: true,
    });
    const exit = new Promise<{ exitCode: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once('error', (error: NodeJS.ErrnoException) =>
        reject(error.code === 'ENOENT' ? new EngineNotFoundError(`the docker CLI at ${this.bin} could not be started`) : error),
      );
      // 'close': the process has exited and its piped stderr is drained.
      child.once('close', (exitCode, signal) => resolve({ exitCode, signal }));
    });
    void exit.finally(() => options.envFile?.close()).catch(() => {});
    return { pid: child.pid, stdin: child.stdin, stdout: child.stdout, stderr: child.stderr, kill: (signal) => child.kill(signal), exit };
  }

  /** `docker run` with stdin, stdout and stderr piped: for serve, where messages go through mcpbox. */
  spawnPiped(argv: readonly string[], env: Readonly<Record<string, string>>, envFile?: EnvFile): ChildProcessWithoutNullStreams {
    const child = spawn(this.bin, argv, { env, stdio: 'pipe', detached: true, windowsHide: true });
    child.on('error', () => envFile?.close());
    child.once('close', () => envFile?.close());
    return child;
  }

  /** mcpbox's containers, running or not. */
  async listManaged(): Promise<ManagedContainer[]> {
    const result = await this.#query(['ps', '--all', '--no-trunc', '--filter', `label=${LABEL.managed}=true`, '--format', psFormat(this.cli)]);
    if (result.exitCode !== 0) throw unexpected('ps', result.stderr);
    return parsePs(result.stdout);
  }

  /** SIGTERM (through tini to the server), then SIGKILL after `seconds`; --rm removes them. */
  async stop(names: readonly string[], seconds: number) {
    if (names.length === 0) return;
    const result = await this.#query(['stop', '--time', String(Math.ceil(seconds)), ...names], (seconds + 30) * 1000);
    if (result.exitCode !== 0 && !/No such container/i.test(result.stderr)) throw unexpected('stop', result.stderr);
  }

  /**
   * Why a container that exited 137 was killed, when mcpbox didn't kill it: the engine's event log
   * keeps the container's `oom` and `kill` events after --rm removed it. One short query, only then.
   */
  async exitCause(name: string, since: Date): Promise<'oom' | 'killed' | 'unreported' | undefined> {
    // Podman (4.x) has no oom event, and names the action Status: a SIGKILL nobody sent is most likely the kernel's.
    const podman = this.cli === 'podman';
    const result = await this.#query(
      ['events', '--since', String(Math.floor(since.getTime() / 1000) - 1), '--until', String(Math.ceil(Date.now() / 1000) + 1), '--filter', `container=${name}`, ...(podman ? [] : ['--filter', 'event=oom']), '--filter', 'event=kill', '--format', podman ? '{{.Status}}' : '{{.Action}}'],
      5_000,
    ).catch(() => undefined);
    const actions = result?.stdout.split('\n') ?? [];
    if (actions.includes('oom')) return 'oom';
    if (actions.some((a) => a.startsWith('kill'))) return 'killed';
    return podman && result?.exitCode === 0 ? 'unreported' : undefined;
  }

  /** Force-removes containers; ones already gone are fine. */
  async remove(names: readonly string[]) {
    if (names.length === 0) return;
    await this.#query([...this.#forceRemove, ...names]);
  }

  /**
   * `rm --force`: the container killed and removed at once. Podman's first stops it with SIGTERM and
   * waits 10 s for it, as `stop` would: mcpbox removes a container after its grace period (or as a
   * safety net), so under Podman the wait is made none too.
   */
  get #forceRemove(): readonly string[] {
    return this.cli === 'podman' ? ['rm', '--force', '--time', '0'] : ['rm', '--force'];
  }

  /**
   * The SIGKILL safety net: a tiny process outside mcpbox's process group that holds the read end of
   * a pipe only mcpbox writes to. When mcpbox ends in any way, even SIGKILL, the kernel closes that
   * pipe; unless mcpbox said "done" first, the watchdog force-removes the container. No polling.
   */
  watchdog(name: string): { release(): void } {
    return this.#watchdog([name]);
  }

  /** The same for every container a long-running mcpbox (serve) owns, whichever exist when it dies. */
  watchdogOwner(ownerPid: number, host: string): { release(): void } {
    return this.#watchdog(['--owner', `label=${LABEL.ownerPid}=${ownerPid}`, `label=${LABEL.ownerHost}=${host}`]);
  }

  #watchdog(target: readonly string[]): { release(): void } {
    const [command, args]: [string, string[]] =
      process.platform === 'win32'
        ? [
            process.execPath,
            [
              '-e',
              "let d='';process.stdin.on('data',c=>d+=c).on('end',()=>{if(d.startsWith('done'))return;const cp=require('child_process'),a=process.argv.slice(2);const n=a[0]==='--owner'?cp.execFileSync(process.argv[1],['ps','-aq','--filter',a[1],'--filter',a[2]],{encoding:'utf8'}).split(/\\s+/).filter(Boolean):a;if(n.length)cp.spawnSync(process.argv[1],[...JSON.parse(process.env.MCPBOX_RM),...n],{stdio:'ignore',windowsHide:true})})",
              this.bin,
              ...target,
            ],
          ]
        : [
            '/bin/sh',
            [
              '-c',
              'read -r line; [ "$line" = done ] && exit 0; ' +
                'if [ "$1" = --owner ]; then set -- $("$0" ps -aq --filter "$2" --filter "$3"); [ $# -gt 0 ] || exit 0; fi; ' +
                `exec "$0" ${this.#forceRemove.join(' ')} "$@"`,
              this.bin,
              ...target,
            ],
          ];
    const env = process.platform === 'win32' ? { ...this.#env, MCPBOX_RM: JSON.stringify(this.#forceRemove) } : this.#env;
    const watchdog = spawn(command, args, { env, stdio: ['pipe', 'ignore', 'ignore'], detached: true, windowsHide: true });
    watchdog.on('error', () => {});
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
