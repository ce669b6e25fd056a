import { engineEnvironment, runArgv } from './engine/argv.js';
import type { DockerEngine } from './engine/docker.js';
import type { ForwardedVar } from './env.js';
import { InstallError, IntegrityError } from './errors.js';
import { sandboxScript } from './images.js';
import {
  describeNpmInstall,
  describeUvInstall,
  type InstallRecord,
  type InstallRequest,
  installPrefix,
  type LockEntry,
  lockKey,
  needsRefresh,
  parseInstallReport,
} from './lock.js';
import { installKey, readInstalls, readLock, writeInstall, writeLockEntry } from './lock-files.js';
import type { Logger } from './log.js';
import { CACHE_DIR } from './runners.js';
import type { ContainerSpec } from './sandbox.js';

/**
 * Installs happen in their own container: the same sandbox as the server, but with no host files,
 * no forwarded variables (proxies excepted) and a network even when the server will run without one.
 * Install scripts run there and nowhere else.
 */
export interface InstallSite {
  readonly engine: Pick<DockerEngine, 'capture' | 'watchdog'>;
  /** The engine CLI's own environment. */
  readonly engineEnv: Readonly<Record<string, string>>;
  readonly hostEnv: Readonly<Record<string, string | undefined>>;
  readonly image: string;
  readonly volume: string;
  readonly volumeId: string;
  readonly user: string;
  readonly log: Logger;
  /** An install container: sh with these args, these extra variables passed by environment. */
  readonly spec: (args: readonly string[], env: readonly ForwardedVar[]) => ContainerSpec;
}

export interface LockedServer {
  readonly entry: LockEntry;
  readonly record: InstallRecord;
}

export interface LockPlaces {
  readonly lockPath: string;
  readonly stateDir: string;
  readonly intervalHours: number;
  readonly now: Date;
  /** Resolve again whatever the lock says (mcpbox update). */
  readonly force?: boolean;
}

/**
 * The locked, installed server for a request: resolved and installed on first use (or when its
 * lock is due for a refresh, or forced), reinstalled from the lock when this machine, image or
 * volume doesn't have it yet, and refused when what the registry serves doesn't match the lock.
 */
export async function lockedServer(site: InstallSite, request: InstallRequest, places: LockPlaces): Promise<LockedServer> {
  const key = lockKey(request);
  const entry = readLock(places.lockPath).servers[key];
  const recordKey = installKey(key, site.image, site.user);

  if (!entry || places.force || needsRefresh(entry, places.now, places.intervalHours)) {
    try {
      const fresh = await install(site, request, key, undefined, places.now);
      if (entry && fresh.entry.version === entry.version && fresh.entry.integrity !== entry.integrity) {
        throw new IntegrityError(
          `integrity mismatch: the registry now serves ${entry.name}@${entry.version} with integrity ${fresh.entry.integrity}, but it was locked with ${entry.integrity}; refusing to run it`,
        );
      }
      if (entry && entry.version !== fresh.entry.version) site.log.info(`updated ${entry.name} ${entry.version} → ${fresh.entry.version}`);
      writeLockEntry(places.lockPath, key, fresh.entry);
      writeInstall(places.stateDir, recordKey, fresh.record);
      return fresh;
    } catch (error) {
      // Offline, with a working lock: start what is locked rather than nothing.
      if (!(entry && !places.force && error instanceof InstallError && error.offline)) throw error;
      site.log.note(`could not reach the registry to refresh ${entry.name}: starting the locked ${entry.version}`);
    }
  }

  const record = readInstalls(places.stateDir)[recordKey];
  if (record && record.tree === entry.tree && record.volumeId === site.volumeId) return { entry, record };
  const again = await install(site, request, key, entry, places.now);
  writeInstall(places.stateDir, recordKey, again.record);
  return { entry, record: again.record };
}

async function install(site: InstallSite, request: InstallRequest, key: string, locked: LockEntry | undefined, now: Date): Promise<LockedServer> {
  const prefix = installPrefix(CACHE_DIR, site.image, key);
  const name = request.runner === 'npx' ? 'npx-install.sh' : 'uvx-install.sh';
  const args = ['-c', `${sandboxScript('install-common.sh')}\n${sandboxScript(name)}`, 'mcpbox-install', prefix, ...(request.runner === 'uvx' ? [request.python ?? '-'] : []), ...(locked ? [] : request.specs)];
  const spec = site.spec(args, locked ? [{ name: 'MCPBOX_LOCKFILE', value: locked.lockfile }] : []);
  site.log.info(locked ? `installing the locked ${locked.name}@${locked.version} (once per image)` : `resolving and installing ${request.specs.join(' ')} (first run only)`);

  const watchdog = site.engine.watchdog(spec.name);
  let result: Awaited<ReturnType<InstallSite['engine']['capture']>>;
  try {
    result = await site.engine.capture(runArgv(spec), { ...engineEnvironment(site.hostEnv, spec), ...site.engineEnv }, 'install');
  } finally {
    watchdog.release();
  }
  if (result.exitCode !== 0) throw installFailure(request, locked, result.stderr, result.exitCode);

  let described;
  let report;
  try {
    report = parseInstallReport(result.stdout);
    described = request.runner === 'npx' ? describeNpmInstall(request, report) : describeUvInstall(request, report);
  } catch (error) {
    throw new InstallError(`installed ${request.specs.join(' ')} but ${(error as Error).message}`);
  }
  if (locked && report.tree !== locked.tree) {
    throw new IntegrityError(`integrity mismatch: installing the locked ${locked.name}@${locked.version} gave a different tree (${report.tree}) than the lock (${locked.tree}); refusing to run it`);
  }
  if (locked && described.integrity !== locked.integrity) {
    throw new IntegrityError(`integrity mismatch: the locked tree of ${locked.name}@${locked.version} holds ${described.integrity}, but the lock says ${locked.integrity}; refusing to run it`);
  }
  const entry: LockEntry = {
    runner: request.runner,
    specs: request.specs,
    ...(request.command !== undefined && { command: request.command }),
    ...(request.python !== undefined && { python: request.python }),
    name: request.name,
    version: described.version,
    integrity: described.integrity,
    executable: described.executable,
    tree: report.tree,
    lockfile: report.lockfile,
    pinned: request.pinned,
    resolvedAt: locked?.resolvedAt ?? now.toISOString(),
  };
  return { entry, record: { volume: site.volume, volumeId: site.volumeId, dir: report.dir, tree: report.tree } };
}

function installFailure(request: InstallRequest, locked: LockEntry | undefined, stderr: string, code: number) {
  const what = locked ? `${locked.name}@${locked.version}` : request.specs.join(' ');
  if (/EINTEGRITY|integrity checksum failed|hash mismatch|doesn't match the expected hash/i.test(stderr)) {
    return new IntegrityError(`integrity mismatch: ${what} as the registry serves it does not match its lock; refusing to install or run it`);
  }
  const offline = /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ENETUNREACH|network|Could not connect|error sending request|Failed to fetch|dns error/i.test(stderr);
  const last = stderr.trim().split('\n').pop() ?? '';
  return new InstallError(
    `could not install ${what} (exit ${code})${last ? `: ${last}` : ''}`,
    offline ? 'the first run of a server needs its registry: check the network, proxy and CA settings (mcpbox doctor)' : undefined,
    offline,
  );
}
