import { formatUptime, ownership } from '../engine/containers.js';
import { hostProbe } from '../lifecycle/processes.js';
import { settingsFor } from '../config/files.js';
import type { CommandContext } from './context.js';

/** `mcpbox ps`: mcpbox's containers, with the process that owns each (standbys marked as such). */
export async function ps(flags: { json?: boolean }, ctx: CommandContext): Promise<number> {
  const { engine } = await ctx.openEngine(await settingsFor(ctx));
  const probe = hostProbe();
  const now = Date.now();
  const rows = (await engine.listManaged()).map((c) => ({
    name: c.name,
    runner: c.role === 'egress' ? 'egress' : c.runner,
    package: c.role === 'egress' ? '(the egress proxy)' : c.package,
    ownerPid: c.ownerPid,
    ownerHost: c.ownerHost,
    owner: ownership(c, probe),
    // A server already started for its next client (src/lifecycle/standby.ts): no owner until one claims it.
    standby: c.role === 'standby',
    state: c.state,
    startedAt: c.startedAt?.toISOString() ?? null,
    uptimeSeconds: c.startedAt ? Math.max(0, Math.round((now - c.startedAt.getTime()) / 1000)) : null,
  }));
  if (flags.json) {
    ctx.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return 0;
  }
  const table = [
    ['NAME', 'RUNNER', 'PACKAGE', 'OWNER PID', 'UPTIME', 'STATE'],
    ...rows.map((r) => [
      r.name,
      r.runner,
      r.package,
      r.standby ? '(standby)' : `${r.ownerPid}${r.owner === 'gone' ? ' (gone)' : r.owner === 'elsewhere' ? `@${r.ownerHost}` : ''}`,
      r.uptimeSeconds === null ? '-' : formatUptime(r.uptimeSeconds),
      r.state,
    ]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  for (const row of table) ctx.stdout.write(`${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')}\n`);
  return 0;
}
