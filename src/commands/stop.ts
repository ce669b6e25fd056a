import { UsageError } from '../errors.js';
import { settingsFor } from '../config/files.js';
import type { CommandContext } from './context.js';

/** `mcpbox stop NAME…|--all`: SIGTERM, then kill after the grace period; only mcpbox's containers. */
export async function stop(names: string[], flags: { all?: boolean; time?: string }, ctx: CommandContext): Promise<number> {
  if (flags.all && names.length > 0) throw new UsageError('give container names or --all, not both');
  if (!flags.all && names.length === 0) throw new UsageError('name the containers to stop, or pass --all', 'mcpbox ps lists them');
  const seconds = flags.time === undefined ? undefined : Number(flags.time);
  if (seconds !== undefined && !(seconds >= 0)) throw new UsageError(`--time ${flags.time}: must be a number of seconds`);
  const settings = await settingsFor(ctx);
  const { engine } = await ctx.openEngine(settings);
  const managed = (await engine.listManaged()).filter((c) => c.state === 'running' || c.state === 'created');
  const known = new Set(managed.map((c) => c.name));
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length > 0) throw new UsageError(`not a running mcpbox container: ${unknown.join(', ')}`, 'mcpbox ps lists them');
  const targets = flags.all ? [...known] : names;
  if (targets.length === 0) {
    ctx.log.info('no mcpbox containers are running');
    return 0;
  }
  await engine.stop(targets, seconds ?? settings.grace ?? 2);
  for (const name of targets) ctx.stdout.write(`${name}\n`);
  return 0;
}
