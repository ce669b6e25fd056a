import { existsSync, readFileSync, rmSync } from 'node:fs';
import { UsageError } from '../errors.js';
import { findLock, readLock, writeLockEntry } from '../install/lock-files.js';
import { stateDir } from '../paths.js';
import type { ToolCallRecord } from '../tools/audit.js';
import { compareTools, pinTools, type ToolPin } from '../tools/pin.js';
import { auditFile, readSeen, seenFile } from '../tools/session.js';
import type { CommandContext } from './context.js';

/**
 * `mcpbox tools <package> [--diff] [--accept]`: what a server's pin holds, what its last changed
 * tools/list offered instead, and accepting that as the new pin.
 */
export async function tools(name: string, flags: { diff?: boolean; accept?: boolean; json?: boolean }, ctx: CommandContext): Promise<number> {
  const state = stateDir(ctx.env);
  const lock = findLock(ctx.cwd, state);
  const found = Object.entries(readLock(lock.path).servers).filter(([, e]) => e.name === name || e.specs.includes(name));
  if (found.length === 0) throw new UsageError(`${name} is not in ${lock.path}`, 'a locked server is pinned in its first session: run it once from its client');
  for (const [key, entry] of found) {
    const pin = entry.tools as ToolPin | undefined;
    const seen = readSeen(state, key);
    const changes = pin && seen ? compareTools(pin, seen.tools) : [];
    if (flags.accept) {
      if (!seen) {
        ctx.stdout.write(`${entry.name}: nothing to accept (no changed tools/list seen since the pin)\n`);
        continue;
      }
      writeLockEntry(lock.path, key, { ...entry, tools: { ...pinTools(seen.tools), version: entry.version } });
      rmSync(seenFile(state, key), { force: true });
      ctx.stdout.write(`${entry.name}: pinned the ${seen.tools.length} tools it offered on ${seen.at} (${changes.map((c) => `${c.kind} ${c.name}`).join(', ') || 'no change'})\n`);
      continue;
    }
    if (flags.json) {
      ctx.stdout.write(`${JSON.stringify({ package: entry.name, version: entry.version, pinned: pin ? Object.keys(pin.tools) : null, pinnedWith: pin?.version ?? null, changes, seen: flags.diff ? (seen?.tools ?? null) : undefined })}\n`);
      continue;
    }
    ctx.stdout.write(pin ? `${entry.name} ${entry.version}: ${Object.keys(pin.tools).length} tools pinned${pin.version ? ` (with ${pin.version})` : ''}: ${Object.keys(pin.tools).join(', ')}\n` : `${entry.name}: not pinned yet (its first session pins what it offers)\n`);
    for (const change of changes) ctx.stdout.write(`  ${change.kind} ${change.name}: ${change.detail}\n`);
    if (changes.length > 0 && !flags.diff) ctx.stdout.write(`  review with: mcpbox tools ${entry.name} --diff; accept with: mcpbox tools ${entry.name} --accept\n`);
    if (flags.diff && seen) {
      // The pin keeps hashes (and the description's length), not the old text: what is shown is what the server offers now.
      for (const change of changes.filter((c) => c.kind !== 'removed')) {
        const tool = seen.tools.find((t) => t.name === change.name)!;
        ctx.stdout.write(`\n--- ${change.name} as offered on ${seen.at} (${change.detail})\n${JSON.stringify(tool, null, 2)}\n`);
      }
    }
  }
  return 0;
}

/** `mcpbox log [package] [--json]`: the audit trail of tool calls, oldest first. */
export async function log(name: string | undefined, flags: { json?: boolean }, ctx: CommandContext): Promise<number> {
  const file = auditFile(stateDir(ctx.env));
  const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
  for (const line of lines) {
    let record: ToolCallRecord;
    try {
      record = JSON.parse(line) as ToolCallRecord;
    } catch {
      continue;
    }
    if (name !== undefined && record.server !== name) continue;
    ctx.stdout.write(flags.json ? `${line}\n` : `${record.time}  ${record.server}  ${record.tool}  args ${record.argumentBytes} B  result ${record.resultBytes} B  ${record.durationMs} ms${record.error ? `  error: ${record.error}` : ''}\n`);
  }
  return 0;
}
