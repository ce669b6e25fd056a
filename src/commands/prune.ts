import type { ManagedContainer } from '../engine/containers.js';
import { hostProbe } from '../lifecycle/processes.js';
import { sweep } from '../lifecycle/sweep.js';
import { settingsFor } from '../config/files.js';
import type { CommandContext } from './context.js';

function pruned(c: ManagedContainer): string {
  if (c.role === 'egress') return 'the egress proxy; no server runs';
  if (c.role === 'standby') return `${c.runner} ${c.package}; a standby waiting for a client`;
  return `${c.runner} ${c.package}; owner pid ${c.ownerPid} is gone`;
}

/** `mcpbox prune`: removes containers whose owning mcpbox process is gone, and says which. */
export async function prune(flags: { json?: boolean }, ctx: CommandContext): Promise<number> {
  const { engine } = await ctx.openEngine(await settingsFor(ctx));
  const { containers: removed, copies } = await sweep(engine, hostProbe(), 0);
  if (flags.json) {
    ctx.stdout.write(`${JSON.stringify(removed.map((c) => ({ name: c.name, ownerPid: c.ownerPid, runner: c.runner, package: c.package })), null, 2)}\n`);
    return 0;
  }
  for (const c of removed) {
    ctx.stdout.write(`removed ${c.name} (${pruned(c)})\n`);
  }
  // Copies of host files, never the server's data: nothing of the user's is lost with them.
  for (const volume of copies) ctx.stdout.write(`removed ${volume} (a --copy-in volume; its mcpbox is gone)\n`);
  if (removed.length === 0 && copies.length === 0) ctx.log.info('nothing to prune: every mcpbox container has a live owner');
  return 0;
}
