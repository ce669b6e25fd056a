import { LABEL } from '../engine/containers.js';
import { RUNNERS } from '../runners/table.js';
import type { RunPlan } from '../sandbox/plan.js';
import { sandboxScript } from '../sandbox/images.js';
import { type ContainerSpec, containerSpec, installVolumeName } from '../sandbox/spec.js';
import { NOBODY } from '../sandbox/mounts.js';
import { knownInstallEnv } from '../sandbox/known-servers.js';
import { type InstallRecord, type InstallRequest, type LockEntry, lockKey } from './lock.js';

/**
 * The two containers a locked server adds to the plain plan: the install container, and the server
 * started from its install. Pure.
 */
/**
 * Installs are made as nobody, whoever the server will run as (nobody, you, or the owner of the paths
 * it writes): the tree is readable by every uid, so one install serves them all and `pull` warms
 * what the real launch uses.
 */
export const INSTALL_USER = NOBODY;

/** The install volume of a locked request in this plan's image. */
export function installVolume(plan: RunPlan, request: InstallRequest): string {
  return installVolumeName(plan.input.invocation, lockKey(request), plan.spec.image, plan.input.owner);
}

/**
 * A locked server: the installed executable, started directly after the launcher checks the tree
 * (its lock file, then the fingerprints of its files). Its install volume is read-only; its cache a
 * throwaway: a locked server installs nothing.
 */
export function launchSpec(plan: RunPlan, request: InstallRequest, entry: LockEntry, record: InstallRecord): ContainerSpec {
  const { lockfile, binDir } = RUNNERS[request.runner].lock;
  const serverArgs = plan.input.host.args.slice(request.serverArgsFrom);
  const script = `${sandboxScript('tree-hash.sh')}\n${sandboxScript('launch.sh')}`;
  return containerSpec({
    ...plan.input,
    command: {
      entrypoint: 'sh',
      args: ['-c', script, 'mcpbox-launch', record.dir, lockfile, binDir, record.tree, record.signature, record.content, entry.executable, ...serverArgs],
      install: { volume: record.volume, readonly: true },
      cacheTmpfs: true,
    },
  });
}

/**
 * The install container: no host files, none of the host's variables, the registry (and nothing
 * else) through the egress proxy, the cache volume and the install volume, both writable.
 */
export function installSpec(plan: RunPlan, volume: string, args: readonly string[], installEnv: Readonly<Record<string, string>>, egress: { volume: string; token: string }): ContainerSpec {
  const { input } = plan;
  return containerSpec({
    ...input,
    name: `${input.name}-install`,
    user: INSTALL_USER,
    data: undefined,
    labels: { ...input.labels, [LABEL.role]: 'install' },
    forwarded: [],
    egress,
    tty: false,
    host: { binds: [], args: [], workdir: undefined },
    copies: undefined,
    identity: {},
    command: {
      entrypoint: 'sh',
      args,
      env: { ...knownInstallEnv(input.invocation.packages.map((p) => p.name)), ...installEnv },
      install: { volume, readonly: false },
    },
  });
}

