import type { Settings } from '../config/settings.js';
import { SupplyChainError } from '../errors.js';
import { EgressAccess } from '../egress/access.js';
import type { DockerEngine } from '../engine/docker.js';
import { type HostContext, hostOwner } from '../host.js';
import { RUNNERS } from '../runners/table.js';
import { chooseImage } from '../sandbox/images.js';
import { LABEL } from '../engine/containers.js';
import type { Logger } from '../log.js';
import type { RunPlan } from '../sandbox/plan.js';
import { cacheVolumeName } from '../sandbox/spec.js';
import { type LockedServer, lockedServer } from './installs.js';
import type { InstallRequest } from './lock.js';
import { INSTALL_USER, installSpec, installVolume } from './specs.js';
import type { SupplyGates } from '../config/settings.js';

/**
 * Preparing a server to start, shared by run, pull, update and serve: its image (built or pulled),
 * its volumes (created and opened to the sandbox user) and, for a lockable request, its locked install.
 */
export interface PrepareOptions {
  readonly hostEnv: Readonly<Record<string, string | undefined>>;
  /** The egress proxy installs go through (their registries only). */
  readonly egress: EgressAccess;
  /** Hosts installs may reach besides the registries (the installEgress setting). */
  readonly installEgress?: readonly string[] | undefined;
  readonly log: Logger;
  readonly stateDir: string;
  readonly intervalHours: number;
  /** Resolve again whatever the lock says (mcpbox update). */
  readonly force?: boolean;
  /** The supply-chain gates a resolve passes (src/install/gates.ts). */
  readonly gates: SupplyGates;
}

/**
 * Everything a server needs before it starts: its image (built or pulled), its cache volume (created
 * and opened to the sandbox user) and, for a lockable request, its locked install.
 */
export async function prepare(
  engine: DockerEngine,
  engineEnv: Readonly<Record<string, string>>,
  plan: RunPlan,
  locked: { request: InstallRequest; lockPath: string } | undefined,
  options: PrepareOptions,
): Promise<{ server?: LockedServer }> {
  const { image } = plan.spec;
  const { invocation } = plan.input;
  // A locked install runs as nobody (INSTALL_USER) with nobody's cache; anything else as the server's user.
  const cache = cacheVolumeName(invocation, locked ? INSTALL_USER : plan.spec.user, plan.input.owner);
  const install = locked && cache ? installVolume(plan, locked.request) : undefined;
  const volumes = [cache, install].filter((v): v is string => v !== undefined);
  const inspected = await engine.inspect([image, ...volumes]);
  if (inspected.missing.has(image)) await provideImage(engine, plan, options.log);
  const ids = new Map<string, string>();
  const made: string[] = [];
  for (const volume of volumes) {
    const known = inspected.volumeIds.get(volume);
    if (known && known !== 'unlabelled' && !inspected.missing.has(volume)) {
      ids.set(volume, known);
      continue;
    }
    // Not one mcpbox made: the engine made it empty (root-owned) for a start whose volume had been
    // removed. Nothing of ours is in it; made again, it is labelled and open to the sandbox user.
    if (known === 'unlabelled') await engine.removeVolume(volume);
    const role: Record<string, string> = volume === install ? { [LABEL.role]: 'install' } : {};
    const labels = { volume: { [LABEL.managed]: 'true', [LABEL.runner]: invocation.runner, ...role }, container: plan.spec.labels };
    ids.set(volume, await engine.prepareVolume(volume, image, labels, plan.input.cacheLimitKb));
    made.push(volume);
  }
  if (!locked || !install) return {};
  let server: LockedServer;
  try {
    server = await lockedServer(
      {
        engine,
        engineEnv,
        hostEnv: options.hostEnv,
        image,
        volume: install,
        volumeId: ids.get(install)!,
        log: options.log,
        spec: (installArgs, installEnv, egress) => installSpec(plan, install, installArgs, installEnv, egress),
        egress: { access: options.egress, hosts: [...RUNNERS[invocation.runner].registries, ...(options.installEgress ?? [])] },
      },
      locked.request,
      { lockPath: locked.lockPath, stateDir: options.stateDir, intervalHours: options.intervalHours, now: new Date(), gates: options.gates, ...(options.force && { force: true }) },
    );
  } catch (error) {
    // A gate refused the first install: the volumes made for it (an empty install volume, a cache of
    // metadata) go with it, so a refusal leaves nothing behind.
    if (error instanceof SupplyChainError) for (const volume of made) await engine.removeVolume(volume);
    throw error;
  }
  return { server };
}

/** Builds mcpbox's default image, or pulls a chosen one. */
async function provideImage(engine: DockerEngine, plan: Pick<RunPlan, 'choice'>, log: Logger): Promise<void> {
  const { image } = plan.choice;
  if (plan.choice.build) {
    log.info(`building ${image} from ${plan.choice.build.context} on ${plan.choice.build.base} (first use only)`);
    await engine.build({
      tag: image,
      context: plan.choice.build.context,
      buildArgs: { BASE_IMAGE: plan.choice.build.base, ...plan.choice.build.args },
      labels: { [LABEL.managed]: 'true', 'dev.mcpbox.base-image': plan.choice.build.base },
    });
  } else {
    log.info(`pulling ${image}`);
    await engine.pull(image);
  }
}

/**
 * The egress proxy of this user on this engine. It runs in mcpbox's default npx image (it needs
 * node), built first when it isn't there yet.
 */
export function egressAccessFor(engine: DockerEngine, ctx: Pick<HostContext, 'env' | 'uid' | 'username'>, settings: Settings, stateDir: string, log: Logger): EgressAccess {
  const choice = chooseImage('npx', undefined, ctx.env, { ...settings, images: {} });
  const idle = Number(ctx.env.MCPBOX_EGRESS_IDLE);
  return new EgressAccess({
    engine,
    owner: hostOwner(ctx),
    stateDir,
    image: choice.image,
    hostEnv: ctx.env,
    ...(idle > 0 && { idleSeconds: idle }),
    prepareImage: async () => {
      if ((await engine.inspect([choice.image])).missing.has(choice.image)) await provideImage(engine, { choice }, log);
    },
  });
}
