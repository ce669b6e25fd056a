import { CONTAINER_SECURITY, POD_SECURITY } from '../sandbox/kubernetes.js';

/**
 * `mcpbox serve` as a team's HTTP front on a cluster (`mcpbox export kubernetes --serve`): a
 * Deployment of serve that starts a pod per session (src/serve/pods.ts) from the servers' Pods,
 * which it reads from a ConfigMap; the ServiceAccount and Role that let it (pods and their attach,
 * in its namespace only); a Service for the ingress that carries TLS; and a NetworkPolicy that lets
 * only that port in. Its servers.json (tokens) comes from a Secret by name. Pure, as
 * src/sandbox/kubernetes.ts.
 */
type Manifest = Record<string, unknown>;

export interface ServeFrontInput {
  /** Each served server's Pod, by server name (the key of its file in the ConfigMap). */
  readonly pods: ReadonlyMap<string, Manifest>;
  /** serve's image (images/serve/Dockerfile: mcpbox, kubectl), as the cluster pulls it. */
  readonly image: string;
}

export const SERVE_NAME = 'mcpbox-serve';
/** The Secret that holds servers.json, and the optional one its `${env:NAME}` values come from. */
export const SERVE_CONFIG_SECRET = `${SERVE_NAME}-config`;
export const SERVE_ENV_SECRET = `${SERVE_NAME}-env`;
const PORT = 9090;
const PODS_DIR = '/etc/mcpbox/pods';
/** The ConfigMap of the servers' Pods. */
const PODS_CONFIGMAP = `${SERVE_NAME}-pods`;
const labels = { 'app.kubernetes.io/name': SERVE_NAME, 'app.kubernetes.io/managed-by': 'mcpbox', 'app.kubernetes.io/component': 'serve' };
const meta = { name: SERVE_NAME, labels };

export function serveFrontManifests(input: ServeFrontInput): Manifest[] {
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: meta,
      // What `kubectl run --stdin --attach --rm` and the sweep of an earlier serve's pods need; nothing else.
      rules: [
        { apiGroups: [''], resources: ['pods'], verbs: ['create', 'get', 'list', 'watch', 'delete'] },
        { apiGroups: [''], resources: ['pods/attach'], verbs: ['create', 'get'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: meta,
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: SERVE_NAME },
      subjects: [{ kind: 'ServiceAccount', name: SERVE_NAME }],
    },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { ...meta, name: PODS_CONFIGMAP }, data: Object.fromEntries([...input.pods].map(([server, pod]) => [`${server}.json`, JSON.stringify(pod)])) },
    deployment(input),
    { apiVersion: 'v1', kind: 'Service', metadata: meta, spec: { selector: { 'app.kubernetes.io/name': SERVE_NAME }, ports: [{ name: 'http', port: PORT, targetPort: PORT, protocol: 'TCP' }] } },
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: meta,
      // Clients reach serve through the ingress on its one port; it reaches the API server (whose address a policy can't name portably).
      spec: { podSelector: { matchLabels: { 'app.kubernetes.io/name': SERVE_NAME } }, policyTypes: ['Ingress'], ingress: [{ ports: [{ protocol: 'TCP', port: PORT }] }] },
    },
  ];
}

function deployment(input: ServeFrontInput): Manifest {
  const container = {
    name: 'serve',
    image: input.image,
    imagePullPolicy: 'IfNotPresent',
    // After the image's entrypoint (mcpbox serve --host 0.0.0.0 --port 9090 --config /etc/mcpbox/servers.json).
    args: ['--kubernetes', PODS_DIR, '--log-format', 'json'],
    env: [
      { name: 'HOME', value: '/home/mcpbox' },
      { name: 'XDG_STATE_HOME', value: '/home/mcpbox/state' },
      { name: 'MCPBOX_SERVE_INSTANCE', value: SERVE_NAME },
    ],
    envFrom: [{ secretRef: { name: SERVE_ENV_SECRET, optional: true } }],
    ports: [{ name: 'http', containerPort: PORT, protocol: 'TCP' }],
    readinessProbe: { httpGet: { path: '/healthz', port: PORT }, periodSeconds: 10 },
    resources: { limits: { memory: '512Mi', cpu: '1' }, requests: { memory: '128Mi', cpu: '50m' } },
    securityContext: CONTAINER_SECURITY,
    volumeMounts: [
      { name: 'config', mountPath: '/etc/mcpbox/servers.json', subPath: 'servers.json', readOnly: true },
      { name: 'pods', mountPath: PODS_DIR, readOnly: true },
      { name: 'tmp', mountPath: '/tmp' },
      // The audit log and the tools' state (an emptyDir: point a PVC here to keep them).
      { name: 'home', mountPath: '/home/mcpbox' },
    ],
  };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta,
    spec: {
      // One: sessions live in serve's memory, and a new serve removes the pods of the one before (Recreate, never two at once).
      replicas: 1,
      strategy: { type: 'Recreate' },
      selector: { matchLabels: { 'app.kubernetes.io/name': SERVE_NAME } },
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: SERVE_NAME,
          enableServiceLinks: false,
          securityContext: POD_SECURITY,
          containers: [container],
          volumes: [
            // Readable by the pod's group (fsGroup) alone: serve --kubernetes accepts that, and nothing wider.
            { name: 'config', secret: { secretName: SERVE_CONFIG_SECRET, defaultMode: 0o440 } },
            { name: 'pods', configMap: { name: PODS_CONFIGMAP } },
            { name: 'tmp', emptyDir: { sizeLimit: '64Mi' } },
            { name: 'home', emptyDir: { sizeLimit: '1Gi' } },
          ],
        },
      },
    },
  };
}
