import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { ReadBuffer, serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { EngineLaunch } from '../sandbox/argv.js';
import type { DockerEngine } from '../engine/docker.js';
import { stagedStop } from '../lifecycle/shutdown.js';

/**
 * JSON-RPC to and from one sandboxed server over its container's stdio (newline-delimited, as MCP's
 * stdio transport frames it). Closing is the staged shutdown `run` uses too.
 */
export class ContainerChannel {
  onmessage?: (message: JSONRPCMessage) => void;
  onstderr?: (line: string) => void;
  /** The container ended (by itself or by close()). */
  onclose?: (code: number | null) => void;

  readonly name: string;
  readonly #engine: Pick<DockerEngine, 'spawnPiped' | 'remove'>;
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #exited: Promise<number | null>;
  #closing: Promise<void> | undefined;

  constructor(engine: Pick<DockerEngine, 'spawnPiped' | 'remove'>, launch: EngineLaunch, name: string) {
    this.name = name;
    this.#engine = engine;
    this.#child = engine.spawnPiped(launch.argv, launch.env, launch.envFile);
    const buffer = new ReadBuffer();
    this.#child.stdout.on('data', (chunk: Buffer) => {
      buffer.append(chunk);
      for (;;) {
        let message: JSONRPCMessage | null;
        try {
          message = buffer.readMessage();
        } catch {
          continue; // a line that isn't JSON-RPC: the server's problem, not the session's
        }
        if (!message) break;
        this.onmessage?.(message);
      }
    });
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

  send(message: JSONRPCMessage): void {
    if (this.#child.stdin.writable) this.#child.stdin.write(serializeMessage(message));
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
    const target = { exited: this.#exited, signal: (signal: NodeJS.Signals) => void this.#child.kill(signal), remove: () => this.#engine.remove([this.name]).catch(() => {}) };
    this.#closing ??= stagedStop(target, { graceMs, endInput: () => this.#child.stdin.end(), removeWhy: 'server ignored SIGTERM' }).then(async () => {
      await this.#exited;
    });
    return this.#closing;
  }
}
