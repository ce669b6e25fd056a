import { readFileSync } from 'node:fs';
import { dump } from 'js-yaml';
import { settingsFor } from '../config/files.js';
import { applyPackagePolicies, type Settings } from '../config/settings.js';
import { UsageError } from '../errors.js';
import { parseRunnerArgs } from '../runners/table.js';
import type { RunnerInvocation } from '../runners/types.js';
import { kubernetesManifests, secretName } from '../sandbox/kubernetes.js';
import { DEFAULT_FLAGS, planRun, type RunFlags, withFlags } from '../sandbox/plan.js';
import { readServeConfig } from '../serve/config.js';
import { SERVE_CONFIG_SECRET, SERVE_ENV_SECRET, serveFrontManifests } from '../serve/kubernetes-front.js';
import { VERSION } from '../version.js';
import type { CommandContext } from './context.js';

export interface ExportFlags extends Pick<RunFlags, 'env' | 'image' | 'memory' | 'cpus' | 'pids' | 'egress'> {
  name?: string;
  serve?: string;
  /** serve's own image, with --serve (images/serve/Dockerfile). */
  serveImage?: string;
  cacheSize?: string;
  dataSize?: string;
}

/**
 * `mcpbox export kubernetes <runner> [args…]` (or `--serve servers.json`): the manifests that run the
 * same sandbox on a cluster, as YAML on stdout. Nothing is asked of an engine; the image must be in a
 * registry the cluster pulls from (--image).
 */
export async function exportManifests(target: string, runner: string | undefined, args: string[], flags: ExportFlags, ctx: CommandContext): Promise<number> {
  if (target !== 'kubernetes') throw new UsageError(`export ${target}: mcpbox exports kubernetes manifests only`, 'mcpbox export kubernetes npx -y <package>');
  const settings = withFlags(await settingsFor(ctx), { ...DEFAULT_FLAGS, ...flags });
  const servers = flags.serve
    ? readServeConfig(flags.serve, ctx.env).servers.map((s) => ({ name: s.name, invocation: parseRunnerArgs(s.runner, [...s.args]), env: Object.keys(s.env) }))
    : [{ name: flags.name, invocation: parseRunnerArgs(requireRunner(runner), args), env: [] as string[] }];
  const exported = servers.map((server) => manifestsFor(server.invocation, settings, { ...flags, name: server.name, env: [...flags.env, ...server.env] }, ctx));
  const documents = flags.serve ? withServeFront(servers, exported, flags.serveImage ?? `mcpbox/serve:${VERSION}`) : exported.flatMap((e) => e.documents);
  ctx.stdout.write(`${header(exported.map((e) => e.secret), flags.serve !== undefined)}${documents.map((d) => dump(d, { noRefs: true, lineWidth: -1 })).join('---\n')}`);
  return 0;
}

/**
 * A serve configuration's manifests: serve as the front (src/serve/kubernetes-front.ts), each
 * server's Pod in its ConfigMap for serve to start per session rather than on its own, and the
 * rest (claims, CA, NetworkPolicies) as they are.
 */
function withServeFront(servers: readonly { name?: string | undefined }[], exported: readonly { documents: Record<string, unknown>[] }[], image: string): Record<string, unknown>[] {
  const pods = new Map(exported.map((e, i) => [servers[i]!.name!, e.documents.find((d) => d.kind === 'Pod')!]));
  return [...exported.flatMap((e) => e.documents.filter((d) => d.kind !== 'Pod')), ...serveFrontManifests({ pods, image })];
}

function requireRunner(runner: string | undefined): string {
  if (!runner) throw new UsageError('export kubernetes: no server named', 'mcpbox export kubernetes npx -y <package>, or --serve servers.json');
  return runner;
}

/** A server's manifests, and the Secret they name: its name and the variables it must hold. */
function manifestsFor(invocation: RunnerInvocation, base: Settings, flags: ExportFlags, ctx: CommandContext): { documents: Record<string, unknown>[]; secret: { name: string; keys: string[] } } {
  const settings = applyPackagePolicies(base, invocation.runner, invocation.packages.map((p) => p.name));
  // The plan a client's run would get, minus the host: nothing of this machine is mounted on a cluster.
  const plan = planRun(invocation, settings, { ...DEFAULT_FLAGS, ...flags, env: [], autoMount: false, client: true, export: true }, ctx);
  const ca = plan.input.ca;
  const caVars = new Set(Object.keys(ca.env));
  const fixed = Object.fromEntries(plan.spec.env.filter((v) => v.via === 'argv' && !caVars.has(v.name) && v.name !== 'HOME' && !v.name.startsWith('MCPBOX_')).map((v) => [v.name, v.value]));
  const name = clusterName(flags.name ?? `mcpbox-${invocation.runner}-${invocation.packages[0]?.name ?? 'server'}`);
  const secretEnv = [...new Set([...(settings.env ?? []), ...flags.env].map((e) => e.split('=')[0]!))];
  const documents = kubernetesManifests({
    name,
    invocation,
    command: [invocation.executable, ...invocation.args],
    image: flags.image ?? plan.spec.image,
    policy: plan.spec.policy,
    egress: settings.egress ?? 'learn',
    secretEnv,
    env: fixed,
    ca: ca.mounts.length > 0 ? { pem: ca.mounts.map((m) => readFileSync(m.hostPath, 'utf8').trim()).join('\n'), vars: [...caVars] } : undefined,
    cacheSize: flags.cacheSize ?? '4Gi',
    dataSize: flags.dataSize ?? '1Gi',
  });
  return { documents, secret: { name: secretName(name), keys: secretEnv } };
}

/** A DNS label: lower case, digits and dashes, at most 50 characters (the longest suffix, -egress, still fits 63). */
export function clusterName(text: string): string {
  return (
    text
      .toLowerCase()
      .replace(/^@/, '')
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 50)
      .replace(/-+$/, '') || 'mcpbox-server'
  );
}

function header(secrets: readonly { name: string; keys: readonly string[] }[], serve: boolean): string {
  const lines = [
    '# Written by mcpbox export kubernetes: the same sandbox as mcpbox run, as a Pod per session (attach',
    '# with kubectl attach -i), its volumes and its egress policy.',
    ...(serve
      ? [
          `# mcpbox serve starts those pods, one per session; it reads its servers.json from a Secret:`,
          `#   kubectl create secret generic ${SERVE_CONFIG_SECRET} --from-file=servers.json`,
          `# and the values its \${env:NAME} references name from another, if they use any:`,
          `#   kubectl create secret generic ${SERVE_ENV_SECRET} --from-literal=MCPBOX_TOKEN=…`,
          '# Put an ingress with TLS in front of the Service mcpbox-serve (port 9090).',
        ]
      : []),
    ...secrets.filter((s) => s.keys.length > 0).map((s) => `# Values come from a Secret, never from here: kubectl create secret generic ${s.name} ${s.keys.map((k) => `--from-literal=${k}=…`).join(' ')}`),
  ];
  return `${lines.join('\n')}\n`;
}
