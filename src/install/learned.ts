import { join } from 'node:path';
import { readJsonFile, writeFileAtomic } from '../files.js';
import { type InstallRequest, lockKey } from './lock.js';
import { readLock, writeLockEntry } from './lock-files.js';

/**
 * Egress lists: what each server may reach, learned in its first session (learn mode) or edited with
 * mcpbox allow/deny. A locked server's list is in its lock entry (so a team that commits the lock
 * shares it, and a version refresh keeps it); anything else's is the user's own, in egress.json in
 * the state directory, keyed by its package names.
 */
export interface LearnedPlaces {
  readonly lockPath: string;
  readonly stateDir: string;
}

interface EgressFile {
  readonly [packages: string]: { readonly hosts: readonly string[]; readonly since: string };
}

export const egressFileKey = (packages: readonly string[]) => [...new Set(packages)].sort().join(' ');

function readEgressFile(stateDir: string): EgressFile {
  return readJsonFile<EgressFile>(join(stateDir, 'egress.json'), {});
}

function writeEgressFile(stateDir: string, file: EgressFile): void {
  const sorted = Object.fromEntries(Object.entries(file).sort(([a], [b]) => a.localeCompare(b)));
  writeFileAtomic(join(stateDir, 'egress.json'), `${JSON.stringify(sorted, null, 2)}\n`);
}

/** The list a run's server has: its lock entry's, else the user's for its packages; undefined: never learned. */
export function learnedHosts(at: LearnedPlaces, request: InstallRequest | undefined, packages: readonly string[]): readonly string[] | undefined {
  const entry = request && readLock(at.lockPath).servers[lockKey(request)];
  return entry?.egress ?? readEgressFile(at.stateDir)[egressFileKey(packages)]?.hosts;
}

/** Adds hosts to the list a run's server has (where learnedHosts reads it): the lock entry when there is one. */
export function recordLearned(at: LearnedPlaces, request: InstallRequest | undefined, packages: readonly string[], hosts: readonly string[]): void {
  const key = request && lockKey(request);
  const entry = key ? readLock(at.lockPath).servers[key] : undefined;
  if (key && entry) {
    writeLockEntry(at.lockPath, key, { ...entry, egress: union(entry.egress ?? [], hosts) });
    return;
  }
  const file = readEgressFile(at.stateDir);
  const name = egressFileKey(packages);
  writeEgressFile(at.stateDir, { ...file, [name]: { hosts: union(file[name]?.hosts ?? [], hosts), since: file[name]?.since ?? new Date().toISOString() } });
}

/** Every list, for `mcpbox egress`: where it is, which server, which hosts. */
export function egressLists(at: LearnedPlaces): { server: string; where: string; hosts: readonly string[] }[] {
  const locked = Object.entries(readLock(at.lockPath).servers)
    .filter(([, entry]) => entry.egress !== undefined)
    .map(([key, entry]) => ({ server: entry.name, where: `${at.lockPath} (${key})`, hosts: entry.egress! }));
  const own = Object.entries(readEgressFile(at.stateDir)).map(([name, value]) => ({ server: name, where: join(at.stateDir, 'egress.json'), hosts: value.hosts }));
  return [...locked, ...own];
}

/**
 * mcpbox allow/deny: adds or removes hosts in every list of a package (its lock entries, its own
 * list); a package with none yet gets its own list, so its first session already enforces it.
 */
export function editEgress(at: LearnedPlaces, pkg: string, add: readonly string[], remove: readonly string[]): string[] {
  const edit = (hosts: readonly string[]) => union(hosts, add).filter((h) => !remove.includes(h));
  const changed: string[] = [];
  for (const [key, entry] of Object.entries(readLock(at.lockPath).servers)) {
    if (entry.name !== pkg && !entry.specs.includes(pkg)) continue;
    writeLockEntry(at.lockPath, key, { ...entry, egress: edit(entry.egress ?? []) });
    changed.push(`${at.lockPath} (${key})`);
  }
  const file = readEgressFile(at.stateDir);
  const names = Object.keys(file).filter((name) => name.split(' ').includes(pkg));
  if (names.length === 0 && changed.length === 0) names.push(pkg);
  if (names.length > 0) {
    const next = { ...file };
    for (const name of names) next[name] = { hosts: edit(file[name]?.hosts ?? []), since: file[name]?.since ?? new Date().toISOString() };
    writeEgressFile(at.stateDir, next);
    changed.push(...names.map((name) => `${join(at.stateDir, 'egress.json')} (${name})`));
  }
  return changed;
}

const union = (a: readonly string[], b: readonly string[]) => [...new Set([...a, ...b])].sort();
