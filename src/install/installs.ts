import { createHash } from 'node:crypto';
import type { EgressAccess } from '../egress/access.js';
import { engineLaunch } from '../sandbox/argv.js';
import type { DockerEngine } from '../engine/docker.js';
import { InstallError, IntegrityError, SupplyChainError } from '../errors.js';
import { embeddedScript, sandboxScript } from '../sandbox/images.js';
import { DEFAULT_GATES, type SupplyGates } from '../config/settings.js';
import { gateEnv, gateMessages, lockVerification, parseGateReport } from './gates.js';
import {
  type InstallRecord,
  type InstallRequest,
  type LockEntry,
  lockEntryProblem,
  lockKey,
  resolveDue,
} from './lock.js';
import { installKey, readInstalls, readLock, writeInstall, writeLockEntry } from './lock-files.js';
import type { Logger } from '../log.js';
import { parseInstallReport } from '../runners/report.js';
import { RUNNERS } from '../runners/table.js';
import { type ContainerSpec, INSTALL_DIR } from '../sandbox/spec.js';

/** Installs land in the install volume as `tree-<first 12 of the tree hash>`. */
const INSTALL_PREFIX = `${INSTALL_DIR}/tree`;

/**
 * Installs happen in their own container: the same sandbox as the server, but with no host files,
 * no forwarded variables (proxies excepted) and a network even when the server will run without one.
 * Install scripts run there and nowhere else.
 */
export interface InstallSite {
  readonly engine: Pick<DockerEngine, 'capture' | 'watchdog' | 'envFile'>;
  /** The engine CLI's own environment. */
  readonly engineEnv: Readonly<Record<string, string>>;
  readonly hostEnv: Readonly<Record<string, string | undefined>>;
  readonly image: string;
  /** The server's install volume (per lock key and image) and its id label. */
  readonly volume: string;
  readonly volumeId: string;
  readonly log: Logger;
  /** An install container: sh with these args and these variables of mcpbox's own, through the egress proxy. */
  readonly spec: (args: readonly string[], env: Readonly<Record<string, string>>, egress: { volume: string; token: string }) => ContainerSpec;
  /** The egress proxy, and the hosts an install may reach (the runner's registries, the installEgress setting). */
  readonly egress: { readonly access: EgressAccess; readonly hosts: readonly string[] };
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
  /** The supply-chain gates a resolve passes (default: DEFAULT_GATES). */
  readonly gates?: SupplyGates;
}

/**
 * The locked, installed server for a request: resolved and installed on first use (or when its
 * lock is due for a refresh, or forced), reinstalled from the lock when this machine, image or
 * volume doesn't have it yet, and refused when what the registry serves doesn't match the lock.
 */
export async function lockedServer(site: InstallSite, request: InstallRequest, places: LockPlaces): Promise<LockedServer> {
  const key = lockKey(request);
  const recordKey = installKey(key, site.image);
  const { entry, record: previous } = installedHere(request, { ...places, image: site.image });
  // What this machine installed in this very volume, by its fingerprint: the only tree reused.
  const reuse = previous?.volumeId === site.volumeId && previous.content ? previous : undefined;

  if (!entry || resolveDue(entry, places)) {
    try {
      const fresh = await install(site, request, undefined, places, reuse, entry);
      if (entry && fresh.entry.version === entry.version && fresh.entry.integrity !== entry.integrity) {
        throw new IntegrityError(
          `integrity mismatch: the registry now serves ${entry.name}@${entry.version} with integrity ${fresh.entry.integrity}, but it was locked with ${entry.integrity}; refusing to run it`,
        );
      }
      if (entry && entry.version !== fresh.entry.version) site.log.info(`updated ${entry.name} ${entry.version} → ${fresh.entry.version}`);
      // What the server may reach stays what it was: a new version (when a hijack strikes) gets no more.
      // Nor does it offer other tools unseen: the pin stays, and a new version's tools are a change to accept.
      const written: LockEntry = { ...fresh.entry, ...(entry?.egress && { egress: entry.egress }), ...(entry?.tools && { tools: entry.tools }) };
      writeLockEntry(places.lockPath, key, written);
      writeInstall(places.stateDir, recordKey, fresh.record);
      return { entry: written, record: fresh.record };
    } catch (error) {
      // Offline, with a working lock: start what is locked rather than nothing.
      if (!(entry && !places.force && error instanceof InstallError && error.offline)) throw error;
      site.log.note(`could not reach the registry to refresh ${entry.name}: starting the locked ${entry.version}`);
    }
  }

  if (reuse && installedAsLocked(reuse, entry)) return { entry, record: reuse };
  // Installing from a lock that may have come with a repository: it must hold what it says.
  const problem = lockEntryProblem(request, entry, sha256);
  if (problem) {
    throw new IntegrityError(
      `the lock entry for ${key} in ${places.lockPath} can't be trusted: ${problem}; refusing to install or run it`,
      'if the lock is yours, delete that entry and mcpbox resolves it again; if it came with a repository, ask who changed it',
    );
  }
  const again = await install(site, request, entry, places);
  writeInstall(places.stateDir, recordKey, again.record);
  return { entry, record: again.record };
}

/**
 * What this machine has for a request, in this image (for every user inside: installs are made as
 * nobody and read by whoever the server runs as): its lock entry and install
 * record (either may be missing, or not match the other). The one place that looks.
 */
export function installedHere(
  request: InstallRequest,
  at: { readonly lockPath: string; readonly stateDir: string; readonly image: string },
): { entry: LockEntry | undefined; record: InstallRecord | undefined } {
  const key = lockKey(request);
  return { entry: readLock(at.lockPath).servers[key], record: readInstalls(at.stateDir)[installKey(key, at.image)] };
}

/** The locked server installed here, when the record holds its entry's tree: what a warm start runs. */
export function installedServer(...args: Parameters<typeof installedHere>): LockedServer | undefined {
  const { entry, record } = installedHere(...args);
  return entry && record && installedAsLocked(record, entry) ? { entry, record } : undefined;
}

/** A record of this entry's tree, made by this version of mcpbox (older records lack the fingerprints). */
export function installedAsLocked(record: InstallRecord, entry: LockEntry): boolean {
  return record.tree === entry.tree && record.executable === entry.executable && Boolean(record.signature && record.content);
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

async function install(site: InstallSite, request: InstallRequest, locked: LockEntry | undefined, places: Pick<LockPlaces, 'now' | 'gates'>, reuse?: InstallRecord, previous?: LockEntry): Promise<LockedServer> {
  const runner = RUNNERS[request.runner].lock;
  const gates = places.gates ?? DEFAULT_GATES;
  const names = request.specs.map((spec) => RUNNERS[request.runner].parsePackage(spec).name);
  const script = [embeddedScript(runner.gate.variable, runner.gate.script), ...(['tree-hash.sh', 'install-common.sh', runner.script] as const).map(sandboxScript)].join('\n');
  const args = ['-c', script, 'mcpbox-install', INSTALL_PREFIX, ...runner.scriptArgs(request), ...(locked ? [] : request.specs)];
  const env = {
    ...gateEnv(names, gates, places.now),
    ...(locked && { MCPBOX_LOCKFILE: locked.lockfile }),
    ...(reuse && { MCPBOX_REUSE_DIR: reuse.dir, MCPBOX_REUSE_CONTENT: reuse.content }),
  };
  site.log.info(
    locked
      ? `installing the locked ${locked.name}@${locked.version} (once per image)`
      : previous
        ? `checking ${request.specs.join(' ')} for a newer version than ${previous.version} (installed only if there is one)`
        : `resolving and installing ${request.specs.join(' ')} (first run only)`,
  );
  const { result, refused } = await runInstall(site, request.name, (egress) => site.spec(args, env, egress));
  if (result.exitCode === 77) {
    const why = /mcpbox: (.*)/.exec(result.stderr)?.[1] ?? 'the registry signature check failed';
    throw new SupplyChainError('signature', why, 'the provenance setting (warn, require, off) decides what is refused; nothing was installed');
  }
  if (result.exitCode !== 0) throw installFailure(request, locked, result.stderr, result.exitCode, refused);
  if (refused.length > 0) site.log.warn(`the install of ${request.specs.join(' ')} tried to reach ${refused.join(', ')}: refused (installs reach only their registries)`);

  let described;
  let report;
  try {
    report = parseInstallReport(result.stdout);
    described = runner.describe(request, report);
  } catch (error) {
    throw new InstallError(`installed ${request.specs.join(' ')} but ${(error as Error).message}`);
  }
  const gate = parseGateReport(report.gate);
  if (!locked) {
    const resolved = new Map(names.map((name) => [name, runner.versionOf(report.lockfile, name)] as const).filter((e): e is [string, string] => e[1] !== undefined));
    // What the gates decided is said even where progress is quiet (pull without a terminal).
    for (const message of gateMessages(gate, resolved, gates, places.now)) site.log[message.level](message.text);
  }
  if (locked && report.tree !== locked.tree) {
    throw new IntegrityError(`integrity mismatch: installing the locked ${locked.name}@${locked.version} gave a different tree (${report.tree}) than the lock (${locked.tree}); refusing to run it`);
  }
  if (locked && described.integrity !== locked.integrity) {
    throw new IntegrityError(`integrity mismatch: the locked tree of ${locked.name}@${locked.version} holds ${described.integrity}, but the lock says ${locked.integrity}; refusing to run it`);
  }
  if (locked && described.executable !== locked.executable) {
    throw new IntegrityError(`the lock for ${locked.name}@${locked.version} runs ${locked.executable}, but its package's executable is ${described.executable}; refusing to run it`);
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
    resolvedAt: locked?.resolvedAt ?? places.now.toISOString(),
    ...(locked ? { ...(locked.resolvedBefore && { resolvedBefore: locked.resolvedBefore }), ...(locked.signatures && { signatures: locked.signatures }) } : lockVerification(gate, names)),
  };
  const record: InstallRecord = {
    volume: site.volume,
    volumeId: site.volumeId,
    dir: report.dir,
    tree: report.tree,
    signature: report.signature,
    content: report.content,
    executable: described.executable,
  };
  return { entry, record };
}

/**
 * Runs an install container to completion, through the egress proxy (its registries only), with a
 * watchdog; what it was refused is collected from the proxy as it happens.
 */
async function runInstall(site: InstallSite, server: string, spec: (egress: { volume: string; token: string }) => ContainerSpec) {
  await site.egress.access.ensure();
  const grant = site.egress.access.grant({ server, mode: 'allow', hosts: site.egress.hosts });
  const refused: string[] = [];
  const follower = site.egress.access.follow(grant.run, new Date(), (event) => {
    const target = `${event.host}:${event.port}`;
    if (event.action === 'refused' && !refused.includes(target)) refused.push(target);
  });
  const container = spec(grant);
  const watchdog = site.engine.watchdog(container.name);
  try {
    const launch = engineLaunch(container, site.engineEnv, (lines) => site.engine.envFile(lines));
    const result = await site.engine.capture(launch.argv, launch.env, 'install', launch.envFile);
    // The proxy's last decisions reach its log a moment after the container ends.
    if (result.exitCode !== 0) await new Promise((resolve) => setTimeout(resolve, 300));
    return { result, refused };
  } finally {
    watchdog.release();
    follower.stop();
  }
}

function installFailure(request: InstallRequest, locked: LockEntry | undefined, stderr: string, code: number, refused: readonly string[]) {
  const what = locked ? `${locked.name}@${locked.version}` : request.specs.join(' ');
  if (/EINTEGRITY|integrity checksum failed|hash mismatch|doesn't match the expected hash/i.test(stderr)) {
    return new IntegrityError(`integrity mismatch: ${what} as the registry serves it does not match its lock; refusing to install or run it`);
  }
  if (refused.length > 0) {
    return new InstallError(
      `could not install ${what} (exit ${code}): it tried to reach ${refused.join(', ')}, which an install may not (only its registries)`,
      'if the package needs that host to install (prebuilt binaries, say), add it to the installEgress setting in your user configuration',
    );
  }
  const offline = /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ENETUNREACH|network|Could not connect|error sending request|Failed to fetch|dns error/i.test(stderr);
  // npm ends on where its log is (a path inside a volume): the error's code says more.
  const lines = stderr.trim().split('\n').filter((line) => !/A complete log of this run/.test(line));
  const npmCode = /npm (?:error|ERR!) code ([A-Z][A-Z0-9_]+)/.exec(stderr)?.[1];
  const tls = [...TLS_CODES].some((tlsCode) => stderr.includes(tlsCode)) || /invalid peer certificate|UnknownIssuer|CERTIFICATE_VERIFY_FAILED|certificate verify failed/i.test(stderr);
  const tlsCode = npmCode !== undefined && TLS_CODES.has(npmCode) ? npmCode : [...TLS_CODES].find((c) => stderr.includes(c));
  const last = tls
    ? `${tlsCode ?? 'TLS'}: the registry's certificate isn't trusted, which is what a TLS-intercepting proxy does`
    : npmCode && NPM_CODES[npmCode] ? `${npmCode}, ${NPM_CODES[npmCode]}` : (lines.pop() ?? '');
  const hint = tls
    ? "set NODE_EXTRA_CA_CERTS (or SSL_CERT_FILE) to the proxy's CA bundle where mcpbox runs, and in your client's env block: it is mounted into every sandbox"
    : offline ? 'the first run of a server needs its registry: check the network, proxy and CA settings (mcpbox doctor)' : undefined;
  // Either way a refresh falls back to what is locked (lockedServer): the server still starts.
  return new InstallError(`could not install ${what} (exit ${code})${last ? `: ${last}` : ''}`, hint, offline || tls);
}

/** npm's codes for a certificate it doesn't trust. */
const TLS_CODES = new Set(['SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_UNTRUSTED']);

/** What npm's error codes mean, for the one-line summary of a failed install. */
const NPM_CODES: Readonly<Record<string, string>> = {
  E404: 'no such package (or version) on the registry: check the name',
  ETARGET: 'no version matches the spec (with the release-age cooldown: none old enough; --min-release-age 0 lifts it)',
  E401: 'the registry wants credentials',
  E403: 'the registry refused access',
};
