import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Settings } from '../config/settings.js';
import { readJsonFile, writeFileAtomic } from '../files.js';
import { type LockEntry } from '../install/lock.js';
import { readLock, writeLockEntry } from '../install/lock-files.js';
import type { Logger } from '../log.js';
import { appendAudit } from './audit.js';
import { OFFERS, type OfferedItem, type OfferKind, type ToolPin } from './pin.js';
import { createRelay, type Relay } from './relay.js';

/**
 * The relay of one session (a stdio `run` or one of serve's), tied to where things are kept: the
 * pin in the server's lock entry (locked servers; an unlocked run is compared within its session
 * only), the definitions the pin was made from and what a changed list offered instead, in the
 * state dir (for `mcpbox tools --diff/--accept`), and the audit file.
 */
export interface SessionPlaces {
  readonly stateDir: string;
  /** The lock and the server's key in it, for a locked server. */
  readonly lock?: { readonly path: string; readonly key: string } | undefined;
  /** The lock in use, locked server or not: other servers' pinned tool names are read from it. */
  readonly lockPath?: string;
  /** The package the session runs (audit, messages). */
  readonly server: string;
  /** serve's session id, for its audit lines. */
  readonly session?: string;
}

export const auditFile = (stateDir: string) => join(stateDir, 'audit', 'tool-calls.jsonl');
const keyed = (stateDir: string, key: string, suffix: string) => join(stateDir, 'tools', `${createHash('sha256').update(key).digest('hex').slice(0, 16)}${suffix}`);
/** What a changed list offered (kept until accepted). */
export const seenFile = (stateDir: string, key: string) => keyed(stateDir, key, '.json');
/** The definitions the pin was made from: the pin keeps hashes, this keeps the text, for --diff. */
export const pinnedFile = (stateDir: string, key: string) => keyed(stateDir, key, '.pinned.json');

/** Lists of what a server offered, by kind, and when. */
export type OfferedLists = { readonly key: string; readonly at: string } & { readonly [K in OfferKind]?: readonly OfferedItem[] };

/** A session is relayed unless its settings ask for nothing the relay does (`toolChanges: off` and no tool policy). */
export function inspects(settings: Pick<Settings, 'toolChanges' | 'tools'>): boolean {
  return (settings.toolChanges ?? 'block') !== 'off' || settings.tools !== undefined;
}

/** `entry`: the locked server's lock entry as the start read it (undefined for what isn't locked). */
export function sessionRelay(places: SessionPlaces, entry: LockEntry | undefined, settings: Pick<Settings, 'toolChanges' | 'tools'>, log: Logger): Relay {
  const lock = places.lock;
  // Kinds pinned in this session: their later pages extend the pin.
  const pinnedHere = new Set<OfferKind>();
  return createRelay({
    server: places.server,
    review: `mcpbox tools ${places.server}`,
    pin: entry?.tools as ToolPin | undefined,
    version: entry?.version,
    toolChanges: settings.toolChanges ?? 'block',
    policy: settings.tools,
    onPin: (pin, kind, items) => {
      if (!lock) return;
      // Read again: the lock may have changed while the session ran (egress learned, an update, another session's pin).
      const current = readLock(lock.path).servers[lock.key];
      if (!current || (current.tools?.[kind] && !pinnedHere.has(kind))) return;
      const section = kind === 'tools' ? { names: pin.names, tools: pin.tools } : { [kind]: pin[kind] };
      writeLockEntry(lock.path, lock.key, { ...current, tools: { ...current.tools, ...section, version: current.tools?.version ?? pin.version } });
      mergeLists(pinnedFile(places.stateDir, lock.key), lock.key, { [kind]: items });
      if (!pinnedHere.has(kind)) log.note(`pinned the ${items.length} ${OFFERS[kind].noun}s ${places.server} offers: a change to any of them is held back until you accept it (mcpbox tools ${places.server})`);
      pinnedHere.add(kind);
    },
    onChanged: (kind, items) => {
      if (lock) mergeLists(seenFile(places.stateDir, lock.key), lock.key, { [kind]: items });
    },
    otherTools: () => otherServersTools(places.lock?.path ?? places.lockPath, lock?.key),
    audit: (record) => {
      try {
        appendAudit(auditFile(places.stateDir), { ...record, ...(places.session !== undefined && { session: places.session }) });
      } catch (error) {
        log.warn(`could not write the audit log: ${(error as Error).message}`);
      }
    },
    warn: (message) => log.warn(message),
  });
}

/** Writes lists of some kinds into a file of lists (the pinned definitions, or a changed list), keeping its other kinds. */
export function mergeLists(file: string, key: string, lists: Omit<Partial<OfferedLists>, 'key' | 'at'>, at = new Date().toISOString()): void {
  const before = readJsonFile<OfferedLists | undefined>(file, undefined);
  writeFileAtomic(file, `${JSON.stringify({ ...before, ...lists, key, at }, null, 2)}\n`);
}

/** The tool names the other servers in a lock were pinned with: a description naming one of them is flagged. */
function otherServersTools(lockPath: string | undefined, own: string | undefined): string[] {
  if (!lockPath) return [];
  try {
    const servers = readLock(lockPath).servers;
    return Object.entries(servers).flatMap(([key, entry]) => (key === own ? [] : Object.keys(entry.tools?.tools ?? {})));
  } catch {
    return [];
  }
}

export function readSeen(stateDir: string, key: string): OfferedLists | undefined {
  return readJsonFile<OfferedLists | undefined>(seenFile(stateDir, key), undefined);
}

export function readPinned(stateDir: string, key: string): OfferedLists | undefined {
  return readJsonFile<OfferedLists | undefined>(pinnedFile(stateDir, key), undefined);
}
