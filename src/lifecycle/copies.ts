import { LABEL, type OwnerProbe, ownership } from '../engine/containers.js';
import type { DockerEngine } from '../engine/docker.js';
import { provideImage } from '../install/prepare.js';
import type { Logger } from '../log.js';
import type { RunPlan } from '../sandbox/plan.js';
import { CA_DIR } from '../sandbox/env.js';
import type { ContainerInput } from '../sandbox/spec.js';
import { posix } from 'node:path';

/**
 * --copy-in (an engine on another machine): the directories a run would have mounted, copied into
 * volumes of this session's own (src/sandbox/plan.ts, remoteCopies) before the server starts, and
 * removed when it ends. The sweep removes the copies of an mcpbox that died (staleCopies).
 */
export async function makeCopies(engine: DockerEngine, plan: RunPlan, log: Logger): Promise<() => Promise<void>> {
  const copies = copyJobs(plan.input);
  if (copies.length === 0) return async () => {};
  const { image, user } = plan.spec;
  if ((await engine.inspect([image])).missing.has(image)) await provideImage(engine, plan, log);
  const owner = plan.input.labels;
  const volume = { [LABEL.managed]: 'true', [LABEL.role]: 'copy', ...pick(owner, [LABEL.ownerPid, LABEL.ownerHost, LABEL.startedAt, LABEL.runner, LABEL.package]) };
  const container = { ...owner, [LABEL.role]: 'copy' };
  const made: string[] = [];
  const remove = async () => {
    for (const name of made) await removeCopy(engine, name, log);
  };
  try {
    for (const copy of copies) {
      made.push(copy.volume);
      await engine.copyIntoVolume(copy.volume, image, copy.files, { volume, container });
      // docker cp writes as root: the server's user gets it (its own, mounted read-only anyway).
      await engine.handOverVolume(copy.volume, image, user, container);
    }
  } catch (error) {
    await remove();
    throw error;
  }
  return remove;
}

/** Whether a run has anything to copy in (and so no standby: see runWithCopies in src/commands/run.ts). */
export const copiesIn = (input: ContainerInput): boolean => copyJobs(input).length > 0;

/** Each copied directory into its own volume; the CA bundles together into one, under the names the variables give. */
function copyJobs(input: ContainerInput): { volume: string; files: { from: string; to: string }[] }[] {
  const { ca } = input;
  return [
    ...(input.copies ?? []).map((c) => ({ volume: c.volume, files: [{ from: `${c.source}/.`, to: '' }] })),
    ...(ca.volume ? [{ volume: ca.volume, files: ca.mounts.map((m) => ({ from: m.hostPath, to: posix.relative(CA_DIR, m.containerPath) })) }] : []),
  ];
}

/** The engine refuses to remove a volume while the server's container is still going away: a few tries. */
async function removeCopy(engine: Pick<DockerEngine, 'removeVolume' | 'inspect'>, volume: string, log: Logger): Promise<void> {
  let refused: string | undefined;
  for (let attempt = 0; attempt < 20; attempt++) {
    refused = await engine.removeVolume(volume);
    if (!refused || (await engine.inspect([volume])).missing.has(volume)) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  log.warn(`could not remove the copy ${volume}: ${refused} (the next sweep or \`mcpbox prune\` does)`);
}

function pick(labels: Readonly<Record<string, string>>, keys: readonly string[]): Record<string, string> {
  return Object.fromEntries(keys.filter((k) => labels[k] !== undefined).map((k) => [k, labels[k]!]));
}

/** Copy volumes whose mcpbox on this host is gone. Pure: the probe says which processes live. */
export function staleCopies(volumes: readonly { name: string; labels: Record<string, string> }[], probe: OwnerProbe): string[] {
  return volumes
    .filter((v) => {
      const started = v.labels[LABEL.startedAt] ? new Date(v.labels[LABEL.startedAt]!) : undefined;
      const owner = { ownerPid: Number(v.labels[LABEL.ownerPid]) || 0, ownerHost: v.labels[LABEL.ownerHost] ?? '', startedAt: started && !Number.isNaN(started.getTime()) ? started : undefined };
      return ownership({ name: v.name, state: '', runner: '', package: '', role: 'copy', ...owner }, probe) === 'gone';
    })
    .map((v) => v.name);
}

/** Removes the copies staleCopies names; returns the ones removed. */
export async function removeStaleCopies(engine: Pick<DockerEngine, 'listVolumes' | 'removeVolume'>, probe: OwnerProbe): Promise<string[]> {
  const stale = staleCopies(await engine.listVolumes({ [LABEL.managed]: 'true', [LABEL.role]: 'copy' }), probe);
  const removed: string[] = [];
  for (const name of stale) if ((await engine.removeVolume(name)) === undefined) removed.push(name);
  return removed;
}
