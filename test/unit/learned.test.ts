import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { editEgress, egressLists, learnedHosts, recordLearned } from '../../src/install/learned.js';
import { installRequest, type LockEntry, type LockFile } from '../../src/install/lock.js';
import { parseRunnerArgs } from '../../src/runners/table.js';

let dir: string;
let places: { lockPath: string; stateDir: string };
const request = installRequest(parseRunnerArgs('npx', ['-y', 'pkg']))!;
const entry: LockEntry = { runner: 'npx', specs: ['pkg'], name: 'pkg', version: '1.0.0', integrity: 'sha512-x', executable: 'pkg', tree: 't', lockfile: '{}', pinned: false, resolvedAt: '2026-01-01T00:00:00.000Z' };

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mcpbox-learned-'));
  places = { lockPath: join(dir, 'mcpbox.lock'), stateDir: join(dir, 'state') };
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const lock = () => JSON.parse(readFileSync(places.lockPath, 'utf8')) as LockFile;
const writeLock = (servers: Record<string, LockEntry>) => writeFileSync(places.lockPath, JSON.stringify({ lockfileVersion: 1, servers }));

describe('egress lists', () => {
  it('never learned: undefined (the first session learns)', () => {
    expect(learnedHosts(places, request, ['pkg'])).toBeUndefined();
  });

  it("a locked server's list is its lock entry's, and learning adds to it", () => {
    writeLock({ 'npx pkg': entry });
    recordLearned(places, request, ['pkg'], ['b.example', 'a.example']);
    recordLearned(places, request, ['pkg'], ['a.example', 'c.example']);
    expect(lock().servers['npx pkg']!.egress).toEqual(['a.example', 'b.example', 'c.example']);
    expect(learnedHosts(places, request, ['pkg'])).toEqual(['a.example', 'b.example', 'c.example']);
  });

  it("a run that isn't locked keeps its list in egress.json, keyed by its packages", () => {
    recordLearned(places, undefined, ['b', 'a'], []);
    expect(learnedHosts(places, undefined, ['a', 'b'])).toEqual([]);
    expect(Object.keys(JSON.parse(readFileSync(join(places.stateDir, 'egress.json'), 'utf8')))).toEqual(['a b']);
  });

  it('allow and deny edit every list of a package; before any, they make one (enforced from the first session)', () => {
    writeLock({ 'npx pkg': { ...entry, egress: ['a.example'] }, 'npx pkg@1.0.0': { ...entry, specs: ['pkg@1.0.0'] } });
    expect(editEgress(places, 'pkg', ['b.example'], [])).toHaveLength(2);
    expect(lock().servers['npx pkg']!.egress).toEqual(['a.example', 'b.example']);
    expect(lock().servers['npx pkg@1.0.0']!.egress).toEqual(['b.example']);
    editEgress(places, 'pkg', [], ['a.example']);
    expect(lock().servers['npx pkg']!.egress).toEqual(['b.example']);
    expect(editEgress(places, 'fresh', ['x.example'], [])).toEqual([`${join(places.stateDir, 'egress.json')} (fresh)`]);
    expect(learnedHosts(places, undefined, ['fresh'])).toEqual(['x.example']);
    expect(egressLists(places).map((l) => [l.server, l.hosts])).toEqual([
      ['pkg', ['b.example']],
      ['pkg', ['b.example']],
      ['fresh', ['x.example']],
    ]);
  });
});
