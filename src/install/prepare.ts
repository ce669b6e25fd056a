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
import { installedServer, type LockedServer, lockedServer } from './installs.js';
import { type InstallRequest, resolveDue } from './lock.js';
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
  /**
   * Work done while the volumes are made and the install runs, once the image is there (the
   * server's data volume: src/lifecycle/data.ts). What it returns undoes it when a gate refuses.
   */
  readonly alongside?: () => Promise<(() => Promise<void>) | undefined>;
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
  // Once the image is there, the volumes are made at once, and the data volume is made while the
  // install runs: each is a container start of its own (the cold start's figure is in the README).
  const alongside = settle(options.alongside?.() ?? Promise.resolve(undefined));
  // The install goes through the egress proxy: started now, it is up when the volumes are (the install
  // waits for this same start; a failure here is its failure, said there).
  if (locked && install && installsNow(locked, options, image)) void options.egress.ensure().catch(() => {});
  const made: string[] = [];
  let server: LockedServer | undefined;
  try {
    const ids = new Map(await Promise.all(volumes.map(async (volume) => [volume, await cacheOrInstallVolume(engine, plan, volume, volume === install, inspected, made)] as const)));
    if (locked && install) server = await lockedServer(installSite(engine, engineEnv, plan, install, ids.get(install)!, options), locked.request, lockPlaces(locked, options));
  } catch (error) {
    // A gate refused the first install: the volumes made for it (an empty install volume, a cache of
    // metadata, an empty data volume) go with it, so a refusal leaves nothing behind.
    const done = await alongside;
    if (error instanceof SupplyChainError) {
      for (const volume of made) await engine.removeVolume(volume);
      if (done.ok) await done.value?.();
    }
    throw error;
  }
  const done = await alongside;
  if (!done.ok) throw done.error;
  return server ? { server } : {};
}

/** Whether lockedServer will run an install: nothing installed here as locked, or a refresh due. */
function installsNow(locked: { request: InstallRequest; lockPath: string }, options: PrepareOptions, image: string): boolean {
  const installed = installedServer(locked.request, { lockPath: locked.lockPath, stateDir: options.stateDir, image });
  return !installed || resolveDue(installed.entry, { ...options, now: new Date() });
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };
/** A promise that never rejects (awaited later, maybe after another failure): its outcome. */
const settle = <T>(promise: Promise<T>): Promise<Settled<T>> => promise.then((value) => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error }));

/** A cache or install volume, by its id: the one there if mcpbox made it, else made now (and listed in `made`). */
async function cacheOrInstallVolume(engine: DockerEngine, plan: RunPlan, volume: string, isInstall: boolean, inspected: Awaited<ReturnType<DockerEngine['inspect']>>, made: string[]): Promise<string> {
  const known = inspected.volumeIds.get(volume);
  if (known && known !== 'unlabelled' && !inspected.missing.has(volume)) return known;
  // Not one mcpbox made: the engine made it empty (root-owned) for a start whose volume had been
  // removed. Nothing of ours is in it; made again, it is labelled and open to the sandbox user.
  if (known === 'unlabelled') await engine.removeVolume(volume);
  const role: Record<string, string> = isInstall ? { [LABEL.role]: 'install' } : {};
  const labels = { volume: { [LABEL.managed]: 'true', [LABEL.runner]: plan.input.invocation.runner, ...role }, container: plan.spec.labels };
  made.push(volume);
  return engine.prepareVolume(volume, plan.spec.image, labels, plan.input.cacheLimitKb);
}

function installSite(engine: DockerEngine, engineEnv: Readonly<Record<string, string>>, plan: RunPlan, install: string, volumeId: string, options: PrepareOptions) {
  return {
    engine,
    engineEnv,
    hostEnv: options.hostEnv,
    image: plan.spec.image,
    volume: install,
    volumeId,
    log: options.log,
    spec: (installArgs: readonly string[], installEnv: Readonly<Record<string, string>>, egress: Parameters<typeof installSpec>[4]) => installSpec(plan, install, installArgs, installEnv, egress),
    egress: { access: options.egress, hosts: [...RUNNERS[plan.input.invocation.runner].registries, ...(options.installEgress ?? [])] },
  };
}

function lockPlaces(locked: { request: InstallRequest; lockPath: string }, options: PrepareOptions) {
  return { lockPath: locked.lockPath, stateDir: options.stateDir, intervalHours: options.intervalHours, now: new Date(), gates: options.gates, ...(options.force && { force: true }) };
}

/** Builds mcpbox's default image, or pulls a chosen one. */
export async function provideImage(engine: DockerEngine, plan: Pick<RunPlan, 'choice'>, log: Logger): Promise<void> {
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
