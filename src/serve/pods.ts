import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { applyPackagePolicies, type Settings } from '../config/settings.js';
import { ConfigError } from '../errors.js';
import type { HostContext, HostEnv } from '../host.js';
import { parseRunnerArgs } from '../runners/table.js';
import type { EngineLaunch } from '../sandbox/argv.js';
import { tokenDigest } from './auth.js';
import { ContainerChannel } from './channel.js';
import type { ServedServer } from './config.js';
import { relayFor, type ServeLog, serveLogger, stderrLines } from './containers.js';
import { short } from './http.js';
import type { ServedTarget } from './prepare.js';

/**
 * serve's sessions as Kubernetes pods (`mcpbox serve --kubernetes DIR`, the team setup of the
 * README): each session gets a pod of its own, made from the Pod `mcpbox export kubernetes --serve`
 * wrote for its server (the same sandbox, its Secret by name, its NetworkPolicy by label), through
 * `kubectl run --stdin --attach --rm`, which is to a pod what `docker run -i --rm` is to a
 * container: one process whose stdio is the server's. Building the argv is pure; KubectlPods is the
 * one place that runs kubectl.
 */
export type PodManifest = { metadata: { name: string; labels?: Record<string, string> }; spec: { containers: { image: string }[] } } & Record<string, unknown>;

/** The session a pod serves (serve's log names it too). */
export const SESSION_POD_LABEL = 'mcpbox.dev/serve-session';
/** The serve that started a pod: a restarted serve removes those of its earlier life (their sessions went with it). */
export const SERVED_BY_LABEL = 'mcpbox.dev/served-by';
/** A label value, as Kubernetes takes it. */
const LABEL_VALUE = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

/** Each served server's Pod, read from DIR/<server>.json (the ConfigMap export writes, mounted). */
export function readPodTemplates(dir: string, servers: readonly ServedServer[]): Map<string, PodManifest> {
  const templates = new Map<string, PodManifest>();
  for (const server of servers) {
    const file = join(dir, `${server.name}.json`);
    if (!existsSync(file)) throw new ConfigError(`${file}: no Pod for the server ${server.name}`, `write them with mcpbox export kubernetes --serve (the ConfigMap mcpbox-serve-pods), mounted at ${dir}`);
    let pod: unknown;
    try {
      pod = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new ConfigError(`${file}: not JSON (${(error as Error).message})`, 'write it again with mcpbox export kubernetes --serve');
    }
    if (!isPod(pod)) throw new ConfigError(`${file}: not a Pod with a container and its image`, 'write it again with mcpbox export kubernetes --serve');
    templates.set(server.name, pod);
  }
  return templates;
}

function isPod(value: unknown): value is PodManifest {
  const pod = value as PodManifest | null;
  return typeof pod === 'object' && pod !== null && (pod as { kind?: unknown }).kind === 'Pod' && typeof pod.metadata?.name === 'string' && Array.isArray(pod.spec?.containers) && typeof pod.spec.containers[0]?.image === 'string';
}

/** A session's pod: the server's, under a name of its own, labelled as serve's (the labels the NetworkPolicy selects are kept). */
export function sessionPod(template: PodManifest, session: string, servedBy: string): PodManifest {
  const name = `${template.metadata.name}-${randomBytes(3).toString('hex')}`;
  return { ...template, metadata: { ...template.metadata, name, labels: { ...template.metadata.labels, [SESSION_POD_LABEL]: session, [SERVED_BY_LABEL]: servedBy } } };
}

/**
 * `kubectl run` for a session's pod: the whole Pod as the override (a JSON merge patch replaces
 * the generated container list with the sandbox's), attached to its stdin and removed when that
 * ends. `--quiet` keeps kubectl's own words ("pod … deleted") off the stdout the session reads.
 */
export function kubectlRunArgv(pod: PodManifest): string[] {
  return [
    'run', pod.metadata.name,
    '--image', pod.spec.containers[0]!.image, '--restart=Never', '--stdin', '--attach', '--rm', '--quiet',
    '--pod-running-timeout=5m', '--override-type=merge', '--overrides', JSON.stringify(pod),
  ];
}

/**
 * What kubectl is given of serve's environment: how it finds the cluster (a kubeconfig, or in a pod
 * the service's address), and where its credential plugins keep their config (HOME, XDG_*); nothing else.
 */
const KUBECTL_ENV = /^(PATH|HOME|USER|TMPDIR|KUBECONFIG|KUBERNETES_SERVICE_HOST|KUBERNETES_SERVICE_PORT|XDG_[A-Z_]+)$/;

export function kubectlEnv(env: HostEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => KUBECTL_ENV.test(entry[0]) && entry[1] !== undefined));
}

/**
 * kubectl, as serve's channels use an engine: start a session's pod attached, remove pods. The
 * namespace is kubectl's own: its context's, or in a pod the ServiceAccount's.
 */
export class KubectlPods {
  constructor(
    readonly bin: string,
    readonly env: Readonly<Record<string, string>>,
  ) {}

  spawnPiped(argv: readonly string[], env: Readonly<Record<string, string>>): ChildProcessWithoutNullStreams {
    return spawn(this.bin, argv, { env, stdio: 'pipe', detached: true, windowsHide: true });
  }

  async remove(names: readonly string[]): Promise<void> {
    if (names.length > 0) await execa(this.bin, ['delete', 'pod', '--ignore-not-found', '--wait=false', ...names], { env: this.env, extendEnv: false, reject: false });
  }

  /** Pods an earlier serve of this name left (a crash, a restart of its pod): their sessions are gone. */
  async removeLeftovers(servedBy: string): Promise<string[]> {
    const listed = await execa(this.bin, ['get', 'pods', '--selector', `${SERVED_BY_LABEL}=${servedBy}`, '--output', 'name'], { env: this.env, extendEnv: false, reject: false });
    if (listed.exitCode !== 0) {
      const why = listed.stderr.trim().split('\n').pop() || listed.shortMessage || 'no answer';
      throw new ConfigError(`${this.bin} get pods failed: ${why}`, 'serve --kubernetes needs kubectl (or MCPBOX_KUBECTL) and a cluster it reaches (in a pod: the ServiceAccount export writes)');
    }
    const names = listed.stdout.split('\n').map((line) => line.trim().replace(/^pods?\//, '')).filter(Boolean);
    await this.remove(names);
    return names;
  }

  /** A session's channel: its pod started attached. */
  channel(template: PodManifest, session: string, servedBy: string): ContainerChannel {
    const pod = sessionPod(template, session, servedBy);
    const launch: EngineLaunch = { argv: kubectlRunArgv(pod), env: { ...this.env }, envFile: undefined };
    return new ContainerChannel(this, launch, pod.metadata.name);
  }
}

/** Where serve's sessions live and what they are told, pods or containers alike (src/commands/serve.ts). */
export interface SessionSite {
  readonly settings: Settings;
  readonly ctx: HostContext;
  readonly stateDir: string;
  readonly lockPath: string;
  readonly log: ServeLog;
}

/**
 * serve's servers as pods: nothing is prepared here (the image is in the cluster's registry, the
 * egress is the NetworkPolicy's, the variables the Secret's); each session's pod gets the tools
 * relay as a container would. MCPBOX_KUBECTL names kubectl, MCPBOX_SERVE_INSTANCE this serve (its
 * pods' label; default mcpbox-serve).
 */
export async function podTargets(servers: readonly ServedServer[], dir: string, at: SessionSite): Promise<{ targets: Map<string, ServedTarget>; release: () => void }> {
  const { ctx, log } = at;
  const templates = readPodTemplates(dir, servers);
  const kubectl = new KubectlPods(ctx.env.MCPBOX_KUBECTL ?? 'kubectl', kubectlEnv(ctx.env));
  const servedBy = ctx.env.MCPBOX_SERVE_INSTANCE ?? 'mcpbox-serve';
  if (!LABEL_VALUE.test(servedBy)) throw new ConfigError(`MCPBOX_SERVE_INSTANCE=${servedBy}: not a Kubernetes label value`, 'letters, digits, "-", "_" and "." (at most 63), starting and ending with a letter or digit');
  const gone = await kubectl.removeLeftovers(servedBy);
  if (gone.length > 0) log('swept', { pods: gone }, `removed ${gone.length} pod(s) an earlier serve left`);
  const targets = new Map<string, ServedTarget>();
  for (const server of servers) {
    const invocation = parseRunnerArgs(server.runner, [...server.args]);
    const settings = applyPackagePolicies(at.settings, invocation.runner, invocation.packages.map((p) => p.name));
    const template = templates.get(server.name)!;
    if (Object.keys(server.env).length > 0) log('note', { server: server.name }, `[${server.name}] its env values stay here: its pods take theirs from the Secret ${template.metadata.name}-env`);
    const container = (session: string) => {
      const holder = { session: short(session) };
      const channel = kubectl.channel(template, holder.session, servedBy);
      channel.onstderr = stderrLines(log, server.name, holder);
      const places = { stateDir: at.stateDir, server: invocation.packages[0]?.name ?? server.name, lockPath: at.lockPath, session: holder.session };
      channel.connect(relayFor(settings, places, undefined, serveLogger(log, server.name, holder, 'tools')));
      return channel;
    };
    targets.set(server.name, { server, tokens: server.authTokens.map(tokenDigest), container });
  }
  return { targets, release: () => {} };
}
