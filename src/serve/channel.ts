import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js';
import { type JSONRPCMessage, JSONRPCMessageSchema } from '@modelcontextprotocol/sdk/types.js';
import type { EngineLaunch } from '../sandbox/argv.js';
import { lineTransform, type Relay } from '../tools/relay.js';
import type { DockerEngine } from '../engine/docker.js';
import { stagedStop } from '../lifecycle/shutdown.js';

/**
 * JSON-RPC to and from one sandboxed server over its container's stdio (newline-delimited, as MCP's
 * stdio transport frames it), through the tools relay when the session is protected (the same
 * relay `run` uses: pins, tool policy, audit). Closing is the staged shutdown `run` uses too.
 */
export class ContainerChannel {
  onmessage?: (message: JSONRPCMessage) => void;
  onstderr?: (line: string) => void;
  /** The container ended (by itself or by close()). */
  onclose?: (code: number | null) => void;

  readonly #engine: Pick<DockerEngine, 'spawnPiped' | 'remove'>;
  readonly #child: ChildProcessWithoutNullStreams;
  /** Where messages to the server are written: the relay's client side, or the container's stdin (once connected). */
  #input: (NodeJS.WritableStream & { writable: boolean; end(): unknown }) | undefined;
  readonly #exited: Promise<number | null>;
  #closing: Promise<void> | undefined;
  #name: string;
  /** The name the engine knows it by: a claimed standby's (src/serve/standby.ts) once its rename is done, or the old one if that failed. */
  #engineName: Promise<string>;

  /**
   * Starts the container, unconnected: nothing is read or written until connect() (at once for a
   * session's own container; when a session claims it, for a standby).
   */
  constructor(engine: Pick<DockerEngine, 'spawnPiped' | 'remove'>, launch: EngineLaunch, name: string) {
    this.#name = name;
    this.#engineName = Promise.resolve(name);
    this.#engine = engine;
    this.#child = engine.spawnPiped(launch.argv, launch.env, launch.envFile);
    let pending = '';
    this.#child.stderr.setEncoding('utf8');
    this.#child.stderr.on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) if (line.trim()) this.onstderr?.(line);
    });
    this.#child.stdin.on('error', () => {});
    this.#exited = new Promise((resolve) => this.#child.once('close', (code) => resolve(code)));
    void this.#exited.then((code) => this.onclose?.(code));
  }

  get name(): string {
    return this.#name;
  }

  /** The session's side: its messages through the relay, if it has one, to the container's stdio. */
  connect(relay?: Relay): void {
    if (this.#input) return;
    this.#input = relay ? relay.toServer : this.#child.stdin;
    if (relay) relay.toServer.pipe(this.#child.stdin);
    const output = relay ? this.#child.stdout.pipe(relay.toClient) : this.#child.stdout;
    // Framed here rather than by the SDK's ReadBuffer, which throws past 10 MB: a large answer passes, a line that isn't JSON-RPC is skipped (the server's problem, not the session's).
    output.pipe(
      lineTransform((line) => {
        const message = parseMessage(line);
        if (message) this.onmessage?.(message);
        return null;
      }),
    ).resume();
  }

  /** Known by another name from now on (a claimed standby); `done` settles when the engine has renamed it. */
  renamed(name: string, done: Promise<unknown>): void {
    const from = this.#name;
    this.#name = name;
    this.#engineName = done.then(
      () => name,
      () => from,
    );
  }

  send(message: JSONRPCMessage): void {
    if (this.#input?.writable && this.#child.stdin.writable) this.#input.write(serializeMessage(message));
  }

  /** Settles when the container has ended. */
  get exited(): Promise<unknown> {
    return this.#exited;
  }

  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** The staged shutdown (src/lifecycle/shutdown.ts): end of input, SIGTERM, removal. Resolves when the container is gone. */
  close(graceMs: number): Promise<void> {
    const remove = () => this.#engineName.then((name) => this.#engine.remove([name])).catch(() => {});
    const target = { exited: this.#exited, signal: (signal: NodeJS.Signals) => void this.#child.kill(signal), remove };
    // An unconnected standby's input is the container's stdin: its end is the server's end of input too.
    this.#closing ??= stagedStop(target, { graceMs, endInput: () => (this.#input ?? this.#child.stdin).end(), removeWhy: 'server ignored SIGTERM' }).then(async () => {
      await this.#exited;
    });
    return this.#closing;
  }
}

function parseMessage(line: string): JSONRPCMessage | undefined {
  try {
    const parsed = JSONRPCMessageSchema.safeParse(JSON.parse(line));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
