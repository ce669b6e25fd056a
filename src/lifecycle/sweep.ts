import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ManagedContainer, type OwnerProbe, ownership } from '../engine/containers.js';
import type { DockerEngine } from '../engine/docker.js';
import type { Logger } from '../log.js';
import { removeStaleCopies } from './copies.js';
import { staleStandby } from './standby.js';

/**
 * Containers whose mcpbox process on this host is gone; and egress proxies (they have no owner
 * process) once no server runs: they would leave by themselves when idle, this only hurries them.
 * The automatic sweeps leave a proxy younger than `egressGraceMs` alone: another mcpbox may have
 * just started it for an install or a server whose container is not running yet.
 */
export function staleContainers(containers: readonly ManagedContainer[], probe: OwnerProbe, options: { egressGraceMs?: number; now?: Date; allStandbys?: boolean } = {}): ManagedContainer[] {
  const now = options.now ?? new Date();
  // A standby waiting for its client has no owner: it goes by its own timer; the sweep takes the ones
  // that never started or outlived it, prune all of them (they hold nothing).
  const standbys = containers.filter((c) => c.role === 'standby' && c.ownerHost === probe.host);
  const staleStandbys = standbys.filter((c) => options.allStandbys || staleStandby(c.state, c.startedAt, c.standbyIdle ?? 0, now));
  const servers = containers.filter((c) => c.role !== 'egress' && c.role !== 'standby');
  const stale = servers.filter((c) => ownership(c, probe) === 'gone');
  const serving = [...servers, ...standbys].some((c) => c.state === 'running' && !stale.includes(c) && !staleStandbys.includes(c));
  const settled = (c: ManagedContainer) => !options.egressGraceMs || !c.startedAt || now.getTime() - c.startedAt.getTime() > options.egressGraceMs;
  return [...stale, ...staleStandbys, ...(serving ? [] : containers.filter((c) => c.role === 'egress' && settled(c)))];
}

/** How long the automatic sweeps (run, serve) leave a new egress proxy alone; `mcpbox prune` doesn't wait. */
export const EGRESS_GRACE_MS = 120_000;

/** `prune` passes no grace and takes every standby; the automatic sweeps leave both alone. */
export async function removeStale(engine: Pick<DockerEngine, 'listManaged' | 'remove'>, probe: OwnerProbe, egressGraceMs = EGRESS_GRACE_MS): Promise<ManagedContainer[]> {
  const stale = staleContainers(await engine.listManaged(), probe, { egressGraceMs, allStandbys: egressGraceMs === 0 });
  await engine.remove(stale.map((c) => c.name));
  return stale;
}

/** Containers, then the --copy-in volumes they held (src/lifecycle/copies.ts). */
export async function sweep(engine: Pick<DockerEngine, 'listManaged' | 'remove' | 'listVolumes' | 'removeVolume'>, probe: OwnerProbe, egressGraceMs = EGRESS_GRACE_MS): Promise<{ containers: ManagedContainer[]; copies: string[] }> {
  const containers = await removeStale(engine, probe, egressGraceMs);
  return { containers, copies: await removeStaleCopies(engine, probe) };
}

/**
 * The sweep every `run` does: after the server has started (so it adds nothing to start-up), at most
 * once a minute per host (a stamp file), never keeping mcpbox alive, never failing the run.
 */
export function sweepSoon(engine: Pick<DockerEngine, 'listManaged' | 'remove' | 'listVolumes' | 'removeVolume'>, probe: OwnerProbe, log: Logger, stateDir: string) {
  // Checked now (one stat), so a run swept recently sets no timer at all.
  const stamp = join(stateDir, 'last-sweep');
  try {
    if (Date.now() - statSync(stamp).mtimeMs < 60_000) return;
  } catch {
    // never swept
  }
  const timer = setTimeout(() => {
    try {
      mkdirSync(stateDir, { recursive: true });
      writeFileSync(stamp, `${new Date().toISOString()}\n`);
    } catch {
      return;
    }
    sweep(engine, probe).then(
      ({ containers: removed, copies }) => {
        if (removed.length > 0) log.note(`removed ${removed.length} container(s) left by mcpbox processes that are gone: ${removed.map((c) => c.name).join(', ')}`);
        if (copies.length > 0) log.note(`removed ${copies.length} --copy-in volume(s) left by mcpbox processes that are gone: ${copies.join(', ')}`);
      },
      () => {},
    );
  }, 1500);
  timer.unref();
}
