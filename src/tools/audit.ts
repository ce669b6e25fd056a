import { appendFileSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * The audit trail of tool calls (#17): one JSON line per call in mcpbox's state dir, argument values
 * left out (their size is kept), rotated once the file passes a size.
 */
export interface ToolCallRecord {
  readonly time: string;
  readonly server: string;
  readonly tool: string;
  readonly argumentBytes: number;
  readonly resultBytes: number;
  readonly durationMs: number;
  /** serve's session, for a call that came through serve. */
  readonly session?: string;
  /** The JSON-RPC error's message, or "tool error" for a result with isError. */
  readonly error?: string;
}

/** The file passes this size: it becomes `<file>.1` (the one before is dropped) and a new one starts. */
export const AUDIT_ROTATE_BYTES = 5 * 1024 * 1024;

export function auditLine(record: ToolCallRecord): string {
  return `${JSON.stringify(record)}\n`;
}

export function appendAudit(file: string, record: ToolCallRecord, rotateBytes = AUDIT_ROTATE_BYTES): void {
  mkdirSync(dirname(file), { recursive: true });
  try {
    if (statSync(file).size >= rotateBytes) renameSync(file, `${file}.1`);
  } catch {
    // No file yet.
  }
  appendFileSync(file, auditLine(record), { mode: 0o600 });
}
