import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createTwoFilesPatch } from 'diff';
import { UsageError } from '../errors.js';
import { findLock, readLock, writeLockEntry } from '../install/lock-files.js';
import type { LockEntry } from '../install/lock.js';
import { stateDir } from '../paths.js';
import type { ToolCallRecord } from '../tools/audit.js';
import { compareOffers, OFFER_KINDS, OFFERS, type OfferedItem, type OfferKind, pinOffers, type ToolChange, type ToolPin } from '../tools/pin.js';
import { auditFile, mergeLists, type OfferedLists, pinnedFile, readPinned, readSeen, seenFile } from '../tools/session.js';
import type { CommandContext } from './context.js';

/**
 * `mcpbox tools <package> [--diff] [--accept]`: what a server's pin holds (tools, prompts, resource
 * templates), what its last changed lists offered instead, the difference as a diff of the
 * definitions, and accepting the change as the new pin.
 */
export async function tools(name: string, flags: { diff?: boolean; accept?: boolean; json?: boolean }, ctx: CommandContext): Promise<number> {
  const state = stateDir(ctx.env);
  const lock = findLock(ctx.cwd, state);
  const found = Object.entries(readLock(lock.path).servers).filter(([, e]) => e.name === name || e.specs.includes(name));
  if (found.length === 0) throw new UsageError(`${name} is not in ${lock.path}`, 'a locked server is pinned in its first session: run it once from its client');
  for (const [key, entry] of found) {
    const pin = (entry.tools ?? {}) as ToolPin;
    const seen = readSeen(state, key);
    const changes = OFFER_KINDS.flatMap((kind) => (seen?.[kind] && pin[kind] ? compareOffers(kind, pin[kind], seen[kind]).map((change) => ({ ...change, of: kind })) : []));
    if (flags.accept) accept(ctx, { state, lockPath: lock.path, key, entry, seen, changes });
    else if (flags.json) ctx.stdout.write(`${JSON.stringify({ package: entry.name, version: entry.version, pinned: pin.tools ? Object.keys(pin.tools) : null, prompts: pin.prompts ? Object.keys(pin.prompts) : null, resourceTemplates: pin.resourceTemplates ? Object.keys(pin.resourceTemplates) : null, pinnedWith: pin.version ?? null, changes, seen: flags.diff ? (seen ?? null) : undefined })}\n`);
    else show(ctx, entry, pin, changes, flags.diff ? { seen, pinned: readPinned(state, key) } : undefined);
  }
  return 0;
}

type Change = ToolChange & { readonly of: OfferKind };

function show(ctx: CommandContext, entry: LockEntry, pin: ToolPin, changes: readonly Change[], diff: { seen: OfferedLists | undefined; pinned: OfferedLists | undefined } | undefined): void {
  const out = (line: string) => ctx.stdout.write(`${line}\n`);
  if (!pin.tools) out(`${entry.name}: not pinned yet (its first session pins what it offers)`);
  else out(`${entry.name} ${entry.version}: ${Object.keys(pin.tools).length} tools pinned${pin.version ? ` (with ${pin.version})` : ''}: ${Object.keys(pin.tools).join(', ')}`);
  for (const kind of ['prompts', 'resourceTemplates'] as const) {
    if (pin[kind]) out(`  ${Object.keys(pin[kind]).length} ${OFFERS[kind].noun}s pinned${Object.keys(pin[kind]).length > 0 ? `: ${Object.keys(pin[kind]).join(', ')}` : ''}`);
  }
  for (const change of changes) out(`  ${change.kind} ${change.of === 'tools' ? '' : `${OFFERS[change.of].noun} `}${change.name}: ${change.detail}`);
  if (changes.length > 0 && !diff) out(`  review with: mcpbox tools ${entry.name} --diff; accept with: mcpbox tools ${entry.name} --accept`);
  if (!diff?.seen) return;
  for (const change of changes.filter((c) => c.kind !== 'removed')) {
    const byName = (list: readonly OfferedItem[] | undefined) => list?.find((item) => item.name === change.name);
    const now = byName(diff.seen[change.of]);
    const before = byName(diff.pinned?.[change.of]);
    const noun = OFFERS[change.of].noun;
    const text = (item: OfferedItem | undefined) => (item ? `${JSON.stringify(item, null, 2)}\n` : '');
    // The pin itself keeps hashes; the text it was made from is kept beside it on the machine that pinned it.
    const missing = change.kind === 'changed' && !before ? ` (the definition it was pinned with is not on this machine: showing the new one only)` : '';
    out(`\n${noun} ${change.name}: ${change.detail}${missing}`);
    ctx.stdout.write(createTwoFilesPatch(`pinned/${change.name}`, `offered ${diff.seen.at}/${change.name}`, text(before), text(now), undefined, undefined, { context: 3 }).replace(/^=+\n/, ''));
  }
}

function accept(ctx: CommandContext, at: { state: string; lockPath: string; key: string; entry: LockEntry; seen: OfferedLists | undefined; changes: readonly Change[] }): void {
  const { entry, seen, key } = at;
  if (!seen) {
    ctx.stdout.write(`${entry.name}: nothing to accept (no changed list seen since the pin)\n`);
    return;
  }
  const kinds = OFFER_KINDS.filter((kind) => seen[kind]);
  const pin = Object.assign({}, entry.tools, ...kinds.map((kind) => pinOffers(kind, seen[kind]!)), { version: entry.version }) as ToolPin;
  writeLockEntry(at.lockPath, key, { ...entry, tools: pin });
  mergeLists(pinnedFile(at.state, key), key, seen, seen.at);
  rmSync(seenFile(at.state, key), { force: true });
  const what = at.changes.map((c) => `${c.kind} ${c.of === 'tools' ? '' : `${OFFERS[c.of].noun} `}${c.name}`).join(', ') || 'no change';
  ctx.stdout.write(`${entry.name}: pinned the ${kinds.map((kind) => `${seen[kind]!.length} ${OFFERS[kind].noun}s`).join(' and ')} it offered on ${seen.at} (${what})\n`);
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
    const via = record.session !== undefined ? `  (serve session ${record.session})` : '';
    ctx.stdout.write(flags.json ? `${line}\n` : `${record.time}  ${record.server}  ${record.tool}  args ${record.argumentBytes} B  result ${record.resultBytes} B  ${record.durationMs} ms${record.error ? `  error: ${record.error}` : ''}${via}\n`);
  }
  return 0;
}
