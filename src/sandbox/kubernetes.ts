import type { EgressSetting } from '../egress/policy.js';
import { CACHE_DIR, RUNNERS } from '../runners/table.js';
import type { RunnerInvocation } from '../runners/types.js';
import { HOME_DIR, type SandboxPolicy } from './spec.js';

/**
 * The sandbox as Kubernetes manifests (`mcpbox export kubernetes`): the same confinement as a local
 * container — uid 65534, read-only root, no capabilities, no privilege escalation, the runtime's
 * seccomp profile, memory and CPU limits, /tmp as a bounded emptyDir, the cache and the server's
 * data on volumes of their own — as a Pod (one per session, attached like `docker run -i`), its
 * PersistentVolumeClaims, a NetworkPolicy for its egress, and the variables it is given from a
 * Secret by name (never a value). Pure: objects in, objects out; the command writes them as YAML.
 */
export interface KubernetesInput {
  /** The server's name in the cluster (a DNS label). */
  readonly name: string;
  readonly invocation: RunnerInvocation;
  /** The command line the pod runs: the runner and its arguments (an exact version where locked). */
  readonly command: readonly string[];
  readonly image: string;
  readonly policy: SandboxPolicy;
  readonly egress: EgressSetting;
  /** Names of the variables the server gets; their values come from the Secret `<name>-env`. */
  readonly secretEnv: readonly string[];
  /** Fixed, non-secret settings (the runner's cache and resolution settings). */
  readonly env: Readonly<Record<string, string>>;
  /** CA bundles the host trusts (a TLS-intercepting proxy): PEM text, public, kept in a ConfigMap. */
  readonly ca?: { readonly pem: string; readonly vars: readonly string[] } | undefined;
  readonly cacheSize: string;
  readonly dataSize: string;
}

type Manifest = Record<string, unknown>;

export const CA_DIR = '/mcpbox/ca';
/** The Secret a server's variables come from. */
export const secretName = (name: string) => `${name}-env`;
export const NOBODY_ID = 65534;
/** A confined container's securityContext (serve's own in a cluster too: src/serve/kubernetes-front.ts). */
export const CONTAINER_SECURITY = {
  runAsNonRoot: true,
  runAsUser: NOBODY_ID,
  runAsGroup: NOBODY_ID,
  readOnlyRootFilesystem: true,
  allowPrivilegeEscalation: false,
  privileged: false,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
} as const;
/** The pod's own: nobody, its volumes given to nobody's group, the runtime's seccomp profile. */
export const POD_SECURITY = { runAsNonRoot: true, runAsUser: NOBODY_ID, runAsGroup: NOBODY_ID, fsGroup: NOBODY_ID, seccompProfile: { type: 'RuntimeDefault' } } as const;
const labels = (input: KubernetesInput) => ({ 'app.kubernetes.io/name': input.name, 'app.kubernetes.io/managed-by': 'mcpbox', 'mcpbox.dev/runner': input.invocation.runner });

/** Memory as Kubernetes writes it: 2g → 2Gi, 512m → 512Mi. */
export function kubernetesQuantity(size: string): string {
  const match = /^(\d+(?:\.\d+)?)([kmgt])?b?$/i.exec(size.trim());
  if (!match) return size;
  const unit = match[2]?.toLowerCase();
  return unit ? `${match[1]}${unit === 'k' ? 'Ki' : `${unit.toUpperCase()}i`}` : match[1]!;
}

export function kubernetesManifests(input: KubernetesInput): Manifest[] {
  return [
    ...claims(input),
    ...(input.ca ? [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `${input.name}-ca`, labels: labels(input) }, data: { 'ca.pem': input.ca.pem } }] : []),
    pod(input),
    networkPolicy(input),
  ];
}

function claims(input: KubernetesInput): Manifest[] {
  const claim = (suffix: string, size: string, what: string): Manifest => ({
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: `${input.name}-${suffix}`, labels: labels(input), annotations: { 'mcpbox.dev/holds': what } },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: size } } },
  });
  return [claim('cache', input.cacheSize, `the ${input.invocation.runner} cache`), claim('data', input.dataSize, "the server's own files (its HOME)")];
}

function pod(input: KubernetesInput): Manifest {
  const [command, ...args] = input.command;
  const env = [
    // A variable the server is given wins over mcpbox's fixed one of the same name, as in a local run.
    ...Object.entries({ ...input.env, HOME: HOME_DIR })
      .filter(([name]) => !input.secretEnv.includes(name))
      .map(([name, value]) => ({ name, value })),
    ...(input.ca?.vars ?? []).map((name) => ({ name, value: `${CA_DIR}/ca.pem` })),
    ...input.secretEnv.map((name) => ({ name, valueFrom: { secretKeyRef: { name: secretName(input.name), key: name } } })),
  ];
  const limits = { memory: kubernetesQuantity(input.policy.memory), cpu: input.policy.cpus };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: input.name, labels: labels(input), annotations: { 'mcpbox.dev/pids-limit': String(input.policy.pids) } },
    spec: {
      restartPolicy: 'Never',
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      securityContext: POD_SECURITY,
      containers: [
        {
          name: 'server',
          image: input.image,
          imagePullPolicy: 'IfNotPresent',
          command: [command],
          args,
          // A stdio server: its client attaches (kubectl attach -i), and its input ending ends it.
          stdin: true,
          stdinOnce: true,
          workingDir: HOME_DIR,
          env,
          // Limits as mcpbox run sets them; requests small, so a team's idle servers don't hold a node.
          resources: { limits, requests: { memory: '128Mi', cpu: '50m' } },
          securityContext: CONTAINER_SECURITY,
          volumeMounts: [
            { name: 'tmp', mountPath: '/tmp' },
            { name: 'data', mountPath: HOME_DIR },
            { name: 'cache', mountPath: CACHE_DIR },
            ...(input.ca ? [{ name: 'ca', mountPath: CA_DIR, readOnly: true }] : []),
          ],
        },
      ],
      volumes: [
        { name: 'tmp', emptyDir: { sizeLimit: kubernetesQuantity(input.policy.tmpSize) } },
        { name: 'data', persistentVolumeClaim: { claimName: `${input.name}-data` } },
        { name: 'cache', persistentVolumeClaim: { claimName: `${input.name}-cache` } },
        ...(input.ca ? [{ name: 'ca', configMap: { name: `${input.name}-ca` } }] : []),
      ],
    },
  };
}

/** Private, loopback, link-local (cloud metadata) and carrier-grade NAT ranges: never a server's business. */
const PRIVATE_V4 = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16', '100.64.0.0/10', '127.0.0.0/8'];

/**
 * The server's egress as a NetworkPolicy. NetworkPolicy matches addresses, not names: a host list
 * becomes DNS plus the listed ports to public addresses, and the hosts are recorded in an
 * annotation for a name-aware policy (Cilium, Calico) or an egress proxy to enforce.
 */
function networkPolicy(input: KubernetesInput): Manifest {
  const egress = input.egress;
  const hosts = egress === 'learn' ? [...RUNNERS[input.invocation.runner].registries] : Array.isArray(egress) ? [...RUNNERS[input.invocation.runner].registries, ...egress] : [];
  const ports = [...new Set(hosts.map((h) => Number(/:(\d+)$/.exec(h)?.[1] ?? 443)))].sort((a, b) => a - b);
  const dns = { to: [{ namespaceSelector: {}, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }], ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] };
  const rules =
    egress === 'none'
      ? []
      : egress === 'open'
        ? [{ to: [{ ipBlock: { cidr: '0.0.0.0/0', except: PRIVATE_V4 } }] }]
        : [dns, { to: [{ ipBlock: { cidr: '0.0.0.0/0', except: PRIVATE_V4 } }], ports: ports.map((port) => ({ protocol: 'TCP', port })) }];
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: `${input.name}-egress`, labels: labels(input), annotations: { 'mcpbox.dev/egress': egress === 'none' || egress === 'open' ? egress : hosts.join(',') } },
    // Nothing connects to a stdio server; it reaches out only as its egress says.
    spec: { podSelector: { matchLabels: { 'app.kubernetes.io/name': input.name } }, policyTypes: ['Ingress', 'Egress'], ingress: [], egress: rules },
  };
}
