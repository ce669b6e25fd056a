import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Settings } from '../config/settings.js';
import { readJsonFile, writeFileAtomic } from '../files.js';
import { type LockEntry } from '../install/lock.js';
import { readLock, writeLockEntry } from '../install/lock-files.js';
import type { Logger } from '../log.js';
import { appendAudit } from './audit.js';
import type { OfferedTool, ToolPin } from './pin.js';
import { createRelay, type Relay } from './relay.js';

/**
 * The relay of one stdio session, tied to where things are kept: the pin in the server's lock entry
 * (locked servers; an unlocked run is compared within its session only), the tools a changed list
 * offered in the state dir (for `mcpbox tools --accept`), and the audit file.
 */
export interface SessionPlaces {
  readonly stateDir: string;
  /** The lock and the server's key in it, for a locked server. */
  readonly lock?: { readonly path: string; readonly key: string } | undefined;
  /** The package the session runs (audit, messages). */
  readonly server: string;
}

export const auditFile = (stateDir: string) => join(stateDir, 'audit', 'tool-calls.jsonl');
export const seenFile = (stateDir: string, key: string) => join(stateDir, 'tools', `${createHash('sha256').update(key).digest('hex').slice(0, 16)}.json`);

/** What a changed tools/list offered, kept for review: the tools, and when. */
export interface SeenTools {
  readonly key: string;
  readonly at: string;
  readonly tools: readonly OfferedTool[];
}

/** `entry`: the locked server's lock entry as the start read it (undefined for what isn't locked). */
export function sessionRelay(places: SessionPlaces, entry: LockEntry | undefined, settings: Pick<Settings, 'toolChanges' | 'tools'>, log: Logger): Relay {
  return createRelay({
    server: places.server,
    review: `mcpbox tools ${places.server}`,
    pin: entry?.tools as ToolPin | undefined,
    version: entry?.version,
    toolChanges: settings.toolChanges ?? 'block',
    policy: settings.tools,
    onPin: (pin) => {
      if (!places.lock) return;
      // Read again: the lock may have changed while the session ran (egress learned, an update).
      const current = readLock(places.lock.path).servers[places.lock.key];
      if (current && !current.tools) writeLockEntry(places.lock.path, places.lock.key, { ...current, tools: pin });
      log.note(`pinned the ${Object.keys(pin.tools).length} tools ${places.server} offers: a change to any of them is held back until you accept it (mcpbox tools ${places.server})`);
    },
    onChanged: (tools) => {
      if (!places.lock) return;
      const seen: SeenTools = { key: places.lock.key, at: new Date().toISOString(), tools };
      writeFileAtomic(seenFile(places.stateDir, places.lock.key), `${JSON.stringify(seen, null, 2)}\n`);
    },
    audit: (record) => {
      try {
        appendAudit(auditFile(places.stateDir), record);
      } catch (error) {
        log.warn(`could not write the audit log: ${(error as Error).message}`);
      }
    },
    warn: (message) => log.warn(message),
  });
}

export function readSeen(stateDir: string, key: string): SeenTools | undefined {
  return readJsonFile<SeenTools | undefined>(seenFile(stateDir, key), undefined);
}
