import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConfigError, McpboxError } from './errors.js';

/**
 * mcpbox's own files: written atomically (a reader never sees half a file, a crash never leaves
 * one), and checked to be private when they hold secrets.
 */
export interface AtomicWriteOptions {
  /** File mode of the result (default: the existing file's, else 0644 less the umask). */
  readonly mode?: number;
  /** Replace only if the file still holds exactly this (someone else's edit wins); `error` says so. */
  readonly unless?: { readonly expected: string; readonly error: () => McpboxError };
}

export function writeFileAtomic(path: string, text: string, options: AtomicWriteOptions = {}): void {
  mkdirSync(dirname(path), { recursive: true });
  let mode = options.mode;
  if (mode === undefined) {
    try {
      mode = statSync(path).mode & 0o7777;
    } catch {
      // a new file
    }
  }
  const temp = `${path}.mcpbox-${process.pid}.tmp`;
  writeFileSync(temp, text, mode === undefined ? {} : { mode });
  if (mode !== undefined) chmodSync(temp, mode);
  if (options.unless && readFileSync(path, 'utf8') !== options.unless.expected) {
    rmSync(temp, { force: true });
    throw options.unless.error();
  }
  renameSync(temp, path);
}

/** One of mcpbox's JSON state files (installs.json, egress.json, data.json), or `empty` when it is missing or unreadable. */
export function readJsonFile<T>(path: string, empty: T): T {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return empty;
  }
}

/**
 * A file that holds secrets must be its owner's alone (POSIX): refused otherwise (exit 78), with the
 * chmod that fixes it. `message` gets the mode as `0644`. `groupMayRead`: a Secret mounted in a pod,
 * which Kubernetes makes readable by the pod's own group (its fsGroup) and no one else.
 */
export function requirePrivate(file: string, message: (mode: string) => string, groupMayRead = false): void {
  if (process.platform === 'win32') return;
  const mode = statSync(file).mode & 0o777;
  if (mode & (groupMayRead ? 0o027 : 0o077)) throw new ConfigError(message(mode.toString(8).padStart(4, '0')), `chmod 600 ${file}`);
}
