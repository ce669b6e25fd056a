import { join } from 'node:path';
import { LABEL } from '../engine/containers.js';
import type { DockerEngine } from '../engine/docker.js';
import { readJsonFile, writeFileAtomic } from '../files.js';
import type { RunPlan } from '../sandbox/plan.js';

/**
 * A server's data volume (its HOME, src/sandbox/spec.ts): created with labels before its first
 * session, and handed to the uid the server runs as whenever that changes (nobody from a client,
 * you when it writes your files), so what one session wrote the next can change. data.json in the
 * state dir remembers each volume's uid: a warm start with the same uid asks the engine nothing.
 */
const DATA_OWNERS = 'data.json';

export function readDataOwners(stateDir: string): Record<string, string> {
  return readJsonFile<Record<string, string>>(join(stateDir, DATA_OWNERS), {});
}

function recordDataOwner(stateDir: string, volume: string, user: string | undefined): void {
  const owners = { ...readDataOwners(stateDir) };
  if (user === undefined) delete owners[volume];
  else owners[volume] = user;
  writeFileAtomic(join(stateDir, DATA_OWNERS), `${JSON.stringify(owners, null, 2)}\n`);
}

/** A new volume: empty, open to every uid; the first server to run on it makes it its user's. */
const FRESH = '*';

/** The plan's data volume is there and its files are its user's already (no engine call needed). */
export function dataReady(plan: RunPlan, stateDir: string): boolean {
  const volume = plan.input.data;
  if (volume === undefined) return true;
  const owner = readDataOwners(stateDir)[volume];
  return owner === plan.spec.user || owner === FRESH;
}

/** Just before a server starts on its data volume: a fresh one is from now on its user's. */
export function claimDataVolume(plan: RunPlan, stateDir: string): void {
  const volume = plan.input.data;
  if (volume !== undefined && readDataOwners(stateDir)[volume] === FRESH) recordDataOwner(stateDir, volume, plan.spec.user);
}

/** Labels of a data volume: `mcpbox data` finds a user's volumes by them. */
export function dataLabels(plan: RunPlan, owner: string): Record<string, string> {
  const { invocation } = plan.input;
  return {
    [LABEL.managed]: 'true',
    [LABEL.role]: 'data',
    [LABEL.runner]: invocation.runner,
    [LABEL.package]: [...new Set(invocation.packages.map((p) => p.name))].sort().join(' '),
    [LABEL.owner]: owner,
  };
}

/**
 * Creates the data volume, or hands its files to the plan's user. Needs the plan's image. `owner`:
 * dataOwner. Returns whether it made the volume (a refused first install takes it away again).
 */
export async function ensureDataVolume(engine: Pick<DockerEngine, 'inspect' | 'prepareVolume' | 'handOverVolume'>, plan: RunPlan, stateDir: string, owner: string): Promise<boolean> {
  const volume = plan.input.data;
  if (volume === undefined || dataReady(plan, stateDir)) return false;
  const { image, user, labels } = plan.spec;
  if ((await engine.inspect([volume])).missing.has(volume)) {
    // Open to every uid (1777, like /tmp); no size limit: it is the user's data, never refused.
    await engine.prepareVolume(volume, image, { volume: dataLabels(plan, owner), container: labels });
    recordDataOwner(stateDir, volume, FRESH);
    return true;
  }
  await engine.handOverVolume(volume, image, user, labels);
  recordDataOwner(stateDir, volume, user);
  return false;
}

/**
 * ensureDataVolume as prepare's `alongside` step (src/install/prepare.ts): made while the install
 * runs, and removed again, with its record, when a gate refuses that install.
 */
export function dataVolumeAlongside(engine: Pick<DockerEngine, 'inspect' | 'prepareVolume' | 'handOverVolume' | 'removeVolume'>, plan: RunPlan, stateDir: string, owner: string) {
  return async (): Promise<(() => Promise<void>) | undefined> => {
    const volume = plan.input.data;
    if (volume === undefined || !(await ensureDataVolume(engine, plan, stateDir, owner))) return undefined;
    return async () => {
      await engine.removeVolume(volume);
      forgetDataVolume(stateDir, volume);
    };
  };
}

export function forgetDataVolume(stateDir: string, volume: string): void {
  recordDataOwner(stateDir, volume, undefined);
}
