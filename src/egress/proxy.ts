import { createHash, randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LABEL } from '../engine/containers.js';
import type { ContainerState, DockerEngine } from '../engine/docker.js';
import type { HostEnv } from '../host.js';
import { IMAGES_DIR } from '../paths.js';
import { EGRESS_DIR } from './forwarder.js';

/**
 * mcpbox's egress proxy: one container per invoking user on an engine, started when a run first
 * needs it, gone once no server has used it for a while (images/scripts/egress-proxy.mjs). Its
 * socket lives in a volume that servers mount read-only. A key only mcpbox and the proxy hold signs
 * each run's policy (src/egress/policy.ts, mintToken).
 */
export interface ProxySite {
  readonly engine: DockerEngine;
  /** The invoking user: one proxy (and volume) each. */
  readonly owner: string;
  readonly stateDir: string;
  /** An image with node: mcpbox's npx image. */
  readonly image: string;
  readonly hostEnv: HostEnv;
  /** Seconds without a connection before the proxy leaves (MCPBOX_EGRESS_IDLE, default 60). */
  readonly idleSeconds?: number;
  /** Makes sure `image` is there (built or pulled) before the proxy starts in it. */
  readonly prepareImage?: () => Promise<void>;
}

/**
 * The proxy of one user and one key (a state directory): mcpbox processes with another state
 * directory (another XDG_STATE_HOME) have a proxy of their own, never one that can't read their grants.
 */
export const egressName = (owner: string, key: Buffer | undefined) => `mcpbox-egress-${owner.toLowerCase().replace(/[^a-z0-9_.-]+/g, '-')}-${key ? keyId(key) : 'unkeyed'}`;
/** The volume that holds the proxy's socket. */
export const egressVolume = (owner: string, key: Buffer | undefined) => `${egressName(owner, key)}-socket`;

const KEY_LABEL = 'dev.mcpbox.egress-key';

/**
 * The signing key (32 random bytes, hex, mode 0600 in the state dir), made on first use. Made once
 * even when several mcpbox processes start together: each links its candidate into place, which only
 * one can; the others read the winner's.
 */
export function egressKey(stateDir: string): Buffer {
  const file = join(stateDir, 'egress.key');
  const read = () => readEgressKey(stateDir);
  const existing = readEgressKey(stateDir);
  if (existing) return existing;
  mkdirSync(stateDir, { recursive: true });
  const candidate = randomBytes(32);
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(temp, `${candidate.toString('hex')}\n`, { mode: 0o600 });
  try {
    linkSync(temp, file);
    return candidate;
  } catch {
    const winner = read();
    if (!winner) throw new Error(`${file} is not a key mcpbox can read: remove it`);
    return winner;
  } finally {
    rmSync(temp, { force: true });
  }
}

/** The key, when one was made: nothing is written. */
export function readEgressKey(stateDir: string): Buffer | undefined {
  try {
    const hex = readFileSync(join(stateDir, 'egress.key'), 'utf8').trim();
    return /^[0-9a-f]{64}$/.test(hex) ? Buffer.from(hex, 'hex') : undefined;
  } catch {
    return undefined;
  }
}

const keyId = (key: Buffer) => createHash('sha256').update(key).digest('hex').slice(0, 12);

let proxySource: string | undefined;

/** The `docker run --detach` argv of the proxy: as hardened as a server, with the network to reach out. */
export function proxyArgv(site: Pick<ProxySite, 'owner' | 'image'>, key: Buffer, envFile: string | undefined): string[] {
  proxySource ??= readFileSync(`${IMAGES_DIR}scripts/egress-proxy.mjs`, 'utf8');
  const name = egressName(site.owner, key);
  return [
    'run', '--detach', '--rm', '--init', '--name', name,
    '--label', `${LABEL.managed}=true`, '--label', `${LABEL.role}=egress`, '--label', `${KEY_LABEL}=${keyId(key)}`,
    '--label', `${LABEL.startedAt}=${new Date().toISOString()}`,
    '--user', '65534:65534', '--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges',
    '--pids-limit', '256', '--memory', '256m', '--cpus', '1', '--network', 'bridge',
    '--log-opt', 'max-size=5m', '--log-opt', 'max-file=2',
    '--mount', `type=volume,source=${egressVolume(site.owner, key)},target=${EGRESS_DIR}`,
    '--tmpfs', '/tmp:rw,nosuid,nodev,size=16m',
    '--env', 'MCPBOX_EGRESS_SERVE=1',
    // Name lookups (getaddrinfo) run on libuv's thread pool: more than its default four.
    '--env', 'UV_THREADPOOL_SIZE=16',
    ...(envFile ? ['--env-file', envFile] : []),
    '--pull', 'never', '--entrypoint', 'node', site.image, '--input-type=module', '-e', proxySource,
  ];
}

/**
 * The proxy, running with the current key: started when it isn't (a concurrent start by another
 * mcpbox is fine), replaced when it holds another key. `known` is its state when the caller already
 * inspected it (the warm path's one inspect call).
 */
export async function ensureProxy(site: ProxySite, known?: ContainerState): Promise<void> {
  const key = egressKey(site.stateDir);
  const name = egressName(site.owner, key);
  let state = known ?? (await site.engine.inspect([name])).containers.get(name);
  // Just created by another mcpbox, and starting: give it a moment rather than pull it from under them.
  for (let i = 0; state?.status === 'created' && i < 20; i++) {
    await new Promise((resolve) => setTimeout(resolve, 150));
    state = (await site.engine.inspect([name])).containers.get(name);
  }
  if (state?.running && state.labels[KEY_LABEL] === keyId(key)) return;
  if (state) await site.engine.remove([name]);
  await site.prepareImage?.();
  await prepareSocketVolume(site);
  const upstream = site.hostEnv.HTTPS_PROXY || site.hostEnv.https_proxy || site.hostEnv.HTTP_PROXY || site.hostEnv.http_proxy;
  const noProxy = site.hostEnv.NO_PROXY || site.hostEnv.no_proxy;
  const lines = [
    { name: 'MCPBOX_EGRESS_KEY', value: key.toString('hex') },
    { name: 'MCPBOX_EGRESS_IDLE_MS', value: String((site.idleSeconds ?? 60) * 1000) },
    ...(upstream ? [{ name: 'MCPBOX_EGRESS_UPSTREAM', value: upstream }] : []),
    ...(noProxy ? [{ name: 'MCPBOX_EGRESS_NO_PROXY', value: noProxy }] : []),
  ];
  const envFile = site.engine.envFile(lines);
  const started = await site.engine.runDetached(proxyArgv(site, key, envFile.path), envFile);
  // Another mcpbox started it at the same moment: that one is as good.
  if (started.exitCode !== 0 && !/already in use|Conflict/i.test(started.stderr)) {
    throw new Error(`could not start the egress proxy: ${started.stderr.trim().split('\n').pop()}`);
  }
}

/**
 * The socket volume, open to the proxy (which runs as nobody). A server's container names it, and the
 * engine creates a volume it doesn't find as root's: so it is prepared (and known prepared, by a file
 * in the state dir) before the first server that uses the proxy starts, and repaired if the engine
 * made it.
 */
export async function prepareSocketVolume(site: ProxySite): Promise<void> {
  const volume = egressVolume(site.owner, egressKey(site.stateDir));
  const inspected = await site.engine.inspect([volume]);
  if (inspected.missing.has(volume) || inspected.volumeIds.get(volume) === 'unlabelled') {
    await site.prepareImage?.();
    await site.engine.prepareVolume(volume, site.image, { volume: { [LABEL.managed]: 'true', [LABEL.role]: 'egress' }, container: { [LABEL.managed]: 'true' } });
  }
  writeFileSync(join(site.stateDir, 'egress.volume'), `${volume}\n`, { mode: 0o600 });
}

/** Whether the socket volume was prepared (no engine call: the warm path asks). */
export function socketVolumePrepared(stateDir: string, volume: string): boolean {
  try {
    return readFileSync(join(stateDir, 'egress.volume'), 'utf8').trim() === volume;
  } catch {
    return false;
  }
}

/** A decision of the proxy, as it logs it. */
export interface EgressEvent {
  readonly t: string;
  readonly run: string;
  readonly server: string;
  readonly mode: 'learn' | 'allow';
  readonly host: string;
  readonly port: number;
  readonly action: 'allowed' | 'refused';
  readonly reason?: string;
}

/** Follows the proxy's decisions about one run (or every run when `run` is undefined) from `since`. */
export function followEgress(engine: DockerEngine, name: string, since: Date, run: string | undefined, onEvent: (event: EgressEvent) => void): { stop(): void } {
  return engine.follow(name, since, (line) => {
    let event: EgressEvent;
    try {
      event = JSON.parse(line) as EgressEvent;
    } catch {
      return;
    }
    if (event.host && (run === undefined || event.run === run)) onEvent(event);
  });
}
