import { createInterface } from 'node:readline/promises';
import { settingsFor } from '../config/files.js';
import { LABEL } from '../engine/containers.js';
import type { DockerEngine } from '../engine/docker.js';
import { McpboxError, UsageError } from '../errors.js';
import { forgetDataVolume } from '../lifecycle/data.js';
import { stateDir } from '../paths.js';
import { chooseImage } from '../sandbox/images.js';
import { dataOwner } from '../sandbox/plan.js';
import { HOME_DIR } from '../sandbox/spec.js';
import type { CommandContext } from './context.js';

/**
 * `mcpbox data [pkg]`: each server's persistent data (its HOME inside the sandbox), where the engine
 * keeps it and how big it is. `mcpbox data rm <pkg>` removes one, after asking (or --yes). Nothing
 * else in mcpbox removes data: not prune, not update, not a new image.
 */
export interface DataFlags {
  readonly json?: boolean;
  readonly yes?: boolean;
}

interface DataVolume {
  readonly package: string;
  readonly runner: string;
  readonly volume: string;
  readonly where: string;
  readonly sizeKb: number | undefined;
}

export async function data(first: string | undefined, second: string | undefined, flags: DataFlags, ctx: CommandContext): Promise<number> {
  if (first === 'rm' && second === undefined) throw new UsageError('mcpbox data rm: which package?', 'mcpbox data rm <package> [--yes] (mcpbox data lists them)');
  if (first !== 'rm' && second !== undefined) throw new UsageError(`mcpbox data: unexpected "${second}"`, 'mcpbox data [package], or mcpbox data rm <package>');
  const settings = await settingsFor(ctx);
  const { engine } = await ctx.openEngine(settings);
  const image = chooseImage('npx', undefined, ctx.env, { ...settings, images: {} }).image;
  if (first === 'rm') return remove(second!, flags, ctx, engine, image);
  const volumes = await dataVolumes(first, ctx, engine, image);
  if (flags.json) {
    ctx.stdout.write(`${JSON.stringify(volumes, null, 2)}\n`);
    return 0;
  }
  if (volumes.length === 0) {
    ctx.log.info(first ? `no data kept for ${first}` : 'no server has kept data yet');
    return 0;
  }
  for (const v of volumes) {
    ctx.stdout.write(`${v.runner} ${v.package}: ${formatKb(v.sizeKb)} in volume ${v.volume} (its ${HOME_DIR} in the sandbox)\n  on the engine's host: ${v.where}\n`);
  }
  return 0;
}

async function remove(pkg: string, flags: DataFlags, ctx: CommandContext, engine: DockerEngine, image: string): Promise<number> {
  const volumes = await dataVolumes(pkg, ctx, engine, image);
  if (volumes.length === 0) throw new UsageError(`no data kept for ${pkg}`, 'mcpbox data lists what is kept');
  const what = volumes.map((v) => `${v.volume} (${formatKb(v.sizeKb)})`).join(', ');
  if (!flags.yes) {
    if (!ctx.stdin.isTTY) throw new UsageError(`mcpbox data rm ${pkg} would delete ${what}, and no terminal is here to ask`, `pass --yes to delete it: mcpbox data rm ${pkg} --yes`);
    const rl = createInterface({ input: ctx.stdin, output: process.stderr });
    const answer = await rl.question(`mcpbox: delete what ${pkg} keeps, ${what}? This cannot be undone. [y/N] `);
    rl.close();
    if (!/^y(es)?$/i.test(answer.trim())) {
      ctx.log.info('nothing deleted');
      return 1;
    }
  }
  for (const v of volumes) {
    const refused = await engine.removeVolume(v.volume);
    if (refused) throw new McpboxError('data-in-use', `could not delete ${v.volume}: ${refused}`, `stop the server first (mcpbox ps; mcpbox stop <name>)`, 1);
    forgetDataVolume(stateDir(ctx.env), v.volume);
    ctx.stdout.write(`deleted ${v.volume} (${v.runner} ${v.package})\n`);
  }
  return 0;
}

/** This user's data volumes, of one package (by name, or a name of a multi-package server) or all; sized in `image`. */
async function dataVolumes(pkg: string | undefined, ctx: CommandContext, engine: DockerEngine, image: string): Promise<DataVolume[]> {
  const listed = await engine.listVolumes({ [LABEL.managed]: 'true', [LABEL.role]: 'data', [LABEL.owner]: dataOwner(ctx) });
  const wanted = listed.filter((v) => !pkg || v.labels[LABEL.package] === pkg || (v.labels[LABEL.package] ?? '').split(' ').includes(pkg));
  const haveImage = wanted.length > 0 && !(await engine.inspect([image])).missing.has(image);
  const result: DataVolume[] = [];
  for (const v of wanted) {
    result.push({
      package: v.labels[LABEL.package] ?? '?',
      runner: v.labels[LABEL.runner] ?? '?',
      volume: v.name,
      where: v.mountpoint,
      sizeKb: haveImage ? await engine.volumeSizeKb(v.name, image, { [LABEL.managed]: 'true', [LABEL.role]: 'data' }) : undefined,
    });
  }
  return result.sort((a, b) => a.package.localeCompare(b.package));
}

function formatKb(kb: number | undefined): string {
  if (kb === undefined) return 'size unknown';
  return kb >= 1024 * 1024 ? `${(kb / 1024 / 1024).toFixed(1)} GiB` : kb >= 1024 ? `${(kb / 1024).toFixed(1)} MiB` : `${kb} KiB`;
}
