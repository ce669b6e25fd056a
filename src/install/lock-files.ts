import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError } from '../errors.js';
import { readJsonFile, writeFileAtomic } from '../files.js';
import { EMPTY_LOCK, type InstallRecord, type LockEntry, type LockFile } from './lock.js';

/**
 * Where the lock lives: the project's `mcpbox.lock` when there is one (commit it to pin your team's
 * servers), found from the working directory up to the project root; otherwise the user's, in the
 * state directory. Install records are always the machine's own (installs.json in the state dir).
 */
export const PROJECT_LOCK = 'mcpbox.lock';

export function findLock(cwd: string, stateDir: string): { path: string; project: boolean } {
  for (let dir = cwd; ; dir = dirname(dir)) {
    const candidate = join(dir, PROJECT_LOCK);
    if (existsSync(candidate)) return { path: candidate, project: true };
    const root = existsSync(join(dir, 'package.json')) || existsSync(join(dir, '.git'));
    if (root || dirname(dir) === dir) break;
  }
  return { path: join(stateDir, PROJECT_LOCK), project: false };
}

export function readLock(path: string): LockFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return EMPTY_LOCK;
  }
  try {
    const parsed = JSON.parse(text) as LockFile;
    if (parsed?.lockfileVersion !== 1 || typeof parsed.servers !== 'object') throw new Error('not an mcpbox lock file (lockfileVersion 1)');
    return parsed;
  } catch (error) {
    throw new ConfigError(`${path} is not a valid lock file: ${(error as Error).message}`, `fix it, or delete it and mcpbox resolves its servers again`);
  }
}

/** Read, change one entry, write atomically (rename), so a concurrent reader never sees half a file. */
export function writeLockEntry(path: string, key: string, entry: LockEntry): void {
  const current = readLock(path);
  const servers = Object.fromEntries(Object.entries({ ...current.servers, [key]: entry }).sort(([a], [b]) => a.localeCompare(b)));
  writeFileAtomic(path, `${JSON.stringify({ lockfileVersion: 1, servers }, null, 2)}\n`);
}

const INSTALLS = 'installs.json';

export function readInstalls(stateDir: string): Record<string, InstallRecord> {
  return readJsonFile<Record<string, InstallRecord>>(join(stateDir, INSTALLS), {});
}

export function writeInstall(stateDir: string, key: string, record: InstallRecord): void {
  writeFileAtomic(join(stateDir, INSTALLS), `${JSON.stringify({ ...readInstalls(stateDir), [key]: record }, null, 2)}\n`);
}

/** Install records are per lock key, image and uid. */
export function installKey(lockKey: string, image: string): string {
  return `${lockKey} | ${image}`;
}

/** Every package name the locks at these paths hold (first packages and the others of their specs). */
export function lockedNames(paths: readonly string[], nameOf: (runner: LockEntry['runner'], spec: string) => string): string[] {
  const names = new Set<string>();
  for (const path of paths) {
    for (const entry of Object.values(readLock(path).servers)) {
      names.add(entry.name);
      for (const spec of entry.specs) names.add(nameOf(entry.runner, spec));
    }
  }
  return [...names];
}
