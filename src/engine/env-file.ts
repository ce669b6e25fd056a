import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, constants, mkdirSync, open, openSync, readdirSync, rmSync, statSync, write, close as closeFd, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Values for a container travel in an env file that only the engine CLI reads (`--env-file`), never
 * in the CLI's own environment: there a variable named LD_PRELOAD, NODE_OPTIONS or PATH would act on
 * the CLI itself (or on a wrapper script, podman-docker, a distro's dynamically linked build). On
 * POSIX the file is a FIFO in a private directory, so no value is ever written to disk: mcpbox
 * writes the lines once the CLI opens it, and removes it at once.
 */
export interface EnvFile {
  readonly path: string;
  /** Removes it; unblocks the writer if the CLI never opened it. Idempotent. */
  close(): void;
}

export interface EnvLine {
  readonly name: string;
  readonly value: string;
}

/** The env file format has no quoting or escapes: one NAME=VALUE per line, at most 64 KiB each. */
export const ENV_FILE_MAX_LINE = 60_000;

export function envFileFits(value: string): boolean {
  return !/[\n\r\0]/.test(value) && value.length <= ENV_FILE_MAX_LINE;
}

export function openEnvFile(dir: string, lines: readonly EnvLine[]): EnvFile {
  privateDir(dir);
  const path = join(dir, `env-${process.pid}-${randomBytes(6).toString('hex')}`);
  const text = lines.map((l) => `${l.name}=${l.value}\n`).join('');
  if (process.platform !== 'win32' && makeFifo(path)) return fifo(path, text);
  writeFileSync(path, text, { mode: 0o600, flag: 'wx' });
  let closed = false;
  return {
    path,
    close: () => {
      if (closed) return;
      closed = true;
      rmSync(path, { force: true });
    },
  };
}

function fifo(path: string, text: string): EnvFile {
  let opened = false;
  let cancelled = false;
  // Opening a FIFO for writing waits (in libuv's thread pool) until a reader opens it: the engine CLI.
  open(path, constants.O_WRONLY, (error, fd) => {
    if (error) return;
    opened = true;
    rmSync(path, { force: true });
    if (cancelled) return closeFd(fd, () => {});
    write(fd, text, () => closeFd(fd, () => {}));
  });
  return {
    path,
    close: () => {
      if (cancelled) return;
      cancelled = true;
      if (!opened) {
        // The CLI never read it (it failed first): open the read end so the pending open returns.
        try {
          closeSync(openSync(path, constants.O_RDONLY | constants.O_NONBLOCK));
        } catch {
          // already gone
        }
      }
      rmSync(path, { force: true });
    },
  };
}

function makeFifo(path: string): boolean {
  try {
    execFileSync('mkfifo', ['-m', '600', path], { stdio: 'ignore', env: { PATH: '/usr/bin:/bin:/usr/local/bin:/opt/homebrew/bin' } });
    return statSync(path).isFIFO();
  } catch {
    rmSync(path, { force: true });
    return false;
  }
}

const cleaned = new Set<string>();

/** Mode 0700, ours; FIFOs left by an mcpbox that was killed outright (they never held a value) go after a day. */
function privateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (process.platform !== 'win32') chmodSync(dir, 0o700);
  if (cleaned.has(dir)) return;
  cleaned.add(dir);
  setImmediate(() => {
    try {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (name.startsWith('env-') && Date.now() - statSync(path).mtimeMs > 86_400_000) rmSync(path, { force: true });
      }
    } catch {
      // best effort
    }
  }).unref();
}
