import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createTwoFilesPatch } from 'diff';
import { type ClientName, CLIENT_NAMES, CLIENTS, clientFiles, isClient } from '../clients/table.js';
import { ClientConfigError, McpboxError, UsageError } from '../errors.js';
import { writeFileAtomic } from '../files.js';
import { stateDir } from '../paths.js';
import { unwrapConfig, type WrapRecord, wrapConfig } from '../clients/wrap.js';
import type { CommandContext } from './context.js';

/**
 * `mcpbox wrap` / `mcpbox unwrap`: rewrite MCP client configurations in place (src/wrap.ts does the
 * text), with a backup before any change and a record of each change (in mcpbox's state dir) so
 * unwrap restores the original entries exactly.
 */
export interface WrapFlags {
  client?: string;
  config?: string[];
  dryRun?: boolean;
  command?: string;
}

export async function wrap(flags: WrapFlags, ctx: CommandContext): Promise<number> {
  return edit('wrap', flags, ctx);
}

export async function unwrap(flags: WrapFlags, ctx: CommandContext): Promise<number> {
  return edit('unwrap', flags, ctx);
}

async function edit(action: 'wrap' | 'unwrap', flags: WrapFlags, ctx: CommandContext): Promise<number> {
  const files = targets(flags, ctx);
  if (files.length === 0) {
    ctx.log.info(`no MCP client configuration found (looked for ${CLIENT_NAMES.filter((c) => !flags.client || c === flags.client).map((c) => CLIENTS[c].label).join(', ')}); use --config FILE`);
    return 0;
  }
  const state = stateDir(ctx.env);
  let failed: McpboxError | undefined;
  for (const { client, file } of files) {
    try {
      editFile(action, file, client, flags, ctx, state);
    } catch (error) {
      if (!(error instanceof McpboxError)) throw error;
      // One bad file doesn't stop the others; it is reported and mcpbox exits non-zero.
      ctx.log.error(error.message, error.hint);
      failed ??= error;
    }
  }
  return failed ? failed.exitCode : 0;
}

function targets(flags: WrapFlags, ctx: CommandContext): { client: ClientName | undefined; file: string }[] {
  if (flags.client !== undefined && !isClient(flags.client)) {
    throw new UsageError(`unknown client "${flags.client}"`, `one of: ${CLIENT_NAMES.join(', ')}`);
  }
  if (flags.config && flags.config.length > 0) {
    return flags.config.map((file) => {
      if (!existsSync(file)) throw new ClientConfigError(`${file} does not exist`, 'give the path of a client configuration file');
      return { client: undefined, file };
    });
  }
  return clientFiles({ home: ctx.home, platform: ctx.platform, env: ctx.env, cwd: ctx.cwd }, existsSync, flags.client as ClientName | undefined);
}

function editFile(action: 'wrap' | 'unwrap', file: string, client: ClientName | undefined, flags: WrapFlags, ctx: CommandContext, state: string) {
  // Write through symlinks (dotfile managers), never replace them.
  const real = realpathSync(file);
  const text = readFileSync(real, 'utf8');
  const recordsFile = join(state, 'wrap', `${createHash('sha256').update(real).digest('hex').slice(0, 16)}.json`);
  const saved = readRecords(recordsFile);
  const out = (line: string) => ctx.stdout.write(`${line}\n`);
  const label = client ? `${file} (${CLIENTS[client].label})` : file;

  let next: string;
  let records: WrapRecord[];
  const lines: string[] = [];
  if (action === 'wrap') {
    const outcome = wrapConfig(text, file, flags.command ?? 'mcpbox');
    next = outcome.text;
    // Keep earlier records of entries still wrapped; add this run's.
    records = [...saved.filter((r) => !outcome.records.some((n) => n.name === r.name && sameJson(n.path, r.path))), ...outcome.records];
    lines.push(`  wrapped: ${list(outcome.wrapped)}`, `  already wrapped: ${list(outcome.alreadyWrapped)}`);
    lines.push(`  left alone: ${list([...outcome.remote.map((n) => `${n} (remote)`), ...outcome.other.map((o) => `${o.name} (${o.command})`)])}`);
    if (outcome.wrapped.length > 0 && (flags.command ?? 'mcpbox') === 'mcpbox' && client === 'claude-desktop') {
      lines.push('  note: Claude Desktop starts commands with a minimal PATH; if it cannot find mcpbox, wrap with --command "$(command -v mcpbox)"');
    }
  } else {
    const outcome = unwrapConfig(text, file, saved);
    next = outcome.text;
    records = saved.filter((r) => ![...outcome.restored, ...outcome.rebuilt].includes(r.name));
    lines.push(`  restored exactly: ${list(outcome.restored)}`);
    if (outcome.rebuilt.length > 0) lines.push(`  edited since wrapped, so rebuilt as npx/uvx with the edits: ${list(outcome.rebuilt)}`);
    if (outcome.missing.length > 0) lines.push(`  wrapped without a record (by hand?), rebuilt as npx/uvx: ${list(outcome.missing)}`);
  }

  if (flags.dryRun) {
    ctx.stdout.write(next === text ? `${label}: no change\n` : createTwoFilesPatch(file, file, text, next, '', `after mcpbox ${action}`));
    return;
  }
  out(label);
  for (const line of lines) out(line);
  if (next === text) {
    out('  no change');
    return;
  }
  const backup = `${real}.mcpbox-${new Date().toISOString().replace(/[:.]/g, '-')}.bak`;
  copyFileSync(real, backup);
  try {
    // Unless the client (or you) saved the file while mcpbox was editing it: then that edit wins.
    const changed = () => new ClientConfigError(`${real} changed while mcpbox was editing it; left as it is now`, 'run the command again');
    writeFileAtomic(real, next, { unless: { expected: text, error: changed } });
  } catch (error) {
    rmSync(backup, { force: true });
    throw error;
  }
  writeRecords(recordsFile, real, records);
  out(`  backup: ${backup}`);
}

function readRecords(path: string): WrapRecord[] {
  try {
    return (JSON.parse(readFileSync(path, 'utf8')) as { records: WrapRecord[] }).records;
  } catch {
    return [];
  }
}

function writeRecords(path: string, file: string, records: WrapRecord[]) {
  if (records.length === 0) {
    rmSync(path, { force: true });
    return;
  }
  writeFileAtomic(path, `${JSON.stringify({ file, records }, null, 2)}\n`, { mode: 0o600 });
}

const list = (names: readonly string[]) => (names.length === 0 ? '—' : names.join(', '));
const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
