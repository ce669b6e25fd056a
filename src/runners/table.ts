import { UsageError } from '../errors.js';
import { NPX } from './npx.js';
import type { Runner, RunnerInvocation, RunnerOption, RunnerSpec } from './types.js';
import { UVX } from './uvx.js';

export type { PackageRef, Runner, RunnerInvocation, RunnerSpec } from './types.js';
export { CACHE_DIR } from './types.js';

/**
 * The runners mcpbox stands in for, as one typed table (the antfu/ni model). Each entry holds all
 * that is particular to its runner: option grammar, package specs, caches, image, how its installs
 * are locked (RunnerSpec in ./types.ts). Translation is pure: the user's argv goes into the container
 * verbatim; the parse only learns which packages will be installed (labels, cache volume) and
 * refuses what it can't read.
 */
export const RUNNERS = { npx: NPX, uvx: UVX } as const satisfies Record<Runner, RunnerSpec>;

export const RUNNER_NAMES = Object.keys(RUNNERS) as Runner[];

export function isRunner(name: string): name is Runner {
  return Object.hasOwn(RUNNERS, name);
}

/** Reads a runner's argv (everything after `npx`/`uvx`) without changing it. Throws UsageError. */
export function parseRunnerArgs(runnerName: string, args: readonly string[]): RunnerInvocation {
  if (!isRunner(runnerName)) {
    throw new UsageError(
      `unknown runner "${runnerName}"`,
      `mcpbox runs ${RUNNER_NAMES.join(' or ')}, e.g. mcpbox run npx -y @modelcontextprotocol/server-everything`,
    );
  }
  const spec: RunnerSpec = RUNNERS[runnerName];
  const byRole = new Map<string, string[]>();
  const used: { name: string; value: string | undefined }[] = [];
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      i++;
      break;
    }
    if (!arg.startsWith('-') || arg === '-') break;
    const consumed = readOption(runnerName, spec, args, i, byRole, used);
    i += consumed - 1;
  }
  const positional = args[i];
  const info = byRole.has('info');
  const { packages, complete } = spec.packages(positional, byRole);
  if (!complete && !info) throw new UsageError(`no package named for ${runnerName}`, spec.usage);
  return {
    runner: runnerName,
    executable: spec.executable,
    args: [...args],
    packages,
    info: info && packages.length === 0,
    options: used,
    ...(positional !== undefined && { positional: { index: i, value: positional } }),
  };
}

/** Returns how many argv entries the option at `i` used (1 or 2). */
function readOption(
  runner: Runner,
  spec: RunnerSpec,
  args: readonly string[],
  i: number,
  byRole: Map<string, string[]>,
  used: { name: string; value: string | undefined }[],
): number {
  const arg = args[i]!;
  const record = (option: RunnerOption, value: string) => {
    const long = option.names.find((n) => n.startsWith('--')) ?? option.names[0]!;
    used.push({ name: long, value: option.takesValue ? value : undefined });
    if (!option.role) return;
    byRole.set(option.role, [...(byRole.get(option.role) ?? []), value]);
  };
  const lookup = (name: string): RunnerOption | undefined =>
    spec.options.find((o) => o.names.includes(name)) ?? (spec.registryOptionPattern?.test(name) ? { names: [name], takesValue: true } : undefined);

  if (arg.startsWith('--')) {
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    const inline = eq === -1 ? undefined : arg.slice(eq + 1);
    // npm accepts --no-<flag> for any boolean flag.
    const option = lookup(name) ?? (spec.negatable && name.startsWith('--no-') ? negatable(lookup(`--${name.slice(5)}`)) : undefined);
    if (!option) throw unknownOption(runner, name);
    if (!option.takesValue) {
      if (inline !== undefined && spec.strictBooleans) throw new UsageError(`${runner} option ${name} takes no value`);
      record(option, 'true');
      return 1;
    }
    if (inline !== undefined) {
      record(option, inline);
      return 1;
    }
    const value = args[i + 1];
    if (value === undefined) throw new UsageError(`${runner} option ${name} needs a value`);
    record(option, value);
    return 2;
  }

  const exact = lookup(arg);
  if (exact) {
    if (!exact.takesValue) {
      record(exact, 'true');
      return 1;
    }
    const value = args[i + 1];
    if (value === undefined) throw new UsageError(`${runner} option ${arg} needs a value`);
    record(exact, value);
    return 2;
  }
  // -pVALUE, or a cluster of boolean short flags (-yq, -qq).
  const head = lookup(arg.slice(0, 2));
  if (head?.takesValue) {
    record(head, arg.slice(2));
    return 1;
  }
  for (const letter of arg.slice(1)) {
    const option = lookup(`-${letter}`);
    if (!option || option.takesValue) throw unknownOption(runner, arg);
    record(option, 'true');
  }
  return 1;
}

function negatable(option: RunnerOption | undefined): RunnerOption | undefined {
  return option && !option.takesValue ? { names: option.names, takesValue: false } : undefined;
}

function unknownOption(runner: Runner, name: string): UsageError {
  return new UsageError(
    `unknown ${runner} option ${name} before the package`,
    `options for the server go after the package; see \`${runner} --help\` for ${runner}'s own`,
  );
}

/** Whether a runner option names a registry or index (by URL) the run may then reach. */
export function isRegistryOption(runner: Runner, name: string): boolean {
  const spec: RunnerSpec = RUNNERS[runner];
  return spec.registryOptions.includes(name) || Boolean(spec.registryOptionPattern?.test(name));
}
