import { chalkStderr as colour } from 'chalk';

/**
 * mcpbox's own voice. Everything goes to stderr, prefixed `mcpbox:`, because during `run` stdout
 * belongs to the server's JSON-RPC. chalkStderr colours only when stderr itself is a terminal.
 */
export interface Logger {
  info(message: string): void;
  note(message: string): void;
  warn(message: string): void;
  error(message: string, hint?: string): void;
}

export interface LoggerOptions {
  quiet?: boolean;
  write?: (text: string) => void;
}

export function createLogger({ quiet = false, write }: LoggerOptions = {}): Logger {
  const out = write ?? ((text: string) => void process.stderr.write(text));
  const prefix = colour.bold('mcpbox:');
  const line = (text: string) => out(`${prefix} ${text}\n`);
  return {
    info: (message) => quiet || line(message),
    note: (message) => quiet || line(colour.dim(message)),
    warn: (message) => line(colour.yellow(message)),
    error: (message, hint) => line(colour.red(message) + (hint ? colour.dim(` (hint: ${hint})`) : '')),
  };
}
