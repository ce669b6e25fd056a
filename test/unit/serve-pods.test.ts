import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { requirePrivate } from '../../src/files.js';
import { parseRunnerArgs } from '../../src/runners/table.js';
import { kubernetesManifests } from '../../src/sandbox/kubernetes.js';
import { DEFAULT_POLICY } from '../../src/sandbox/spec.js';
import type { ServedServer } from '../../src/serve/config.js';
import { SERVE_CONFIG_SECRET, serveFrontManifests } from '../../src/serve/kubernetes-front.js';
import { KubectlPods, kubectlEnv, kubectlRunArgv, type PodManifest, type SessionSite, podTargets, readPodTemplates, SERVED_BY_LABEL, SESSION_POD_LABEL, sessionPod } from '../../src/serve/pods.js';

/** serve's sessions as pods (serve --kubernetes) and serve as a cluster's front (export --serve). */
const template = kubernetesManifests({
  name: 'everything',
  invocation: parseRunnerArgs('npx', ['-y', '@modelcontextprotocol/server-everything']),
  command: ['npx', '-y', '@modelcontextprotocol/server-everything'],
  image: 'registry.example/mcpbox/npx:1',
  policy: DEFAULT_POLICY,
  egress: 'none',
  secretEnv: ['API_KEY'],
  env: {},
  cacheSize: '4Gi',
  dataSize: '1Gi',
}).find((d) => d.kind === 'Pod') as PodManifest;
const served = (name: string): ServedServer => ({ name, runner: 'npx', args: ['-y', 'x'], env: {}, authTokens: ['t'.repeat(16)], shared: false, maxSessions: 1 });
const kind = (docs: Record<string, unknown>[], k: string) => docs.find((d) => d.kind === k) as Record<string, any>;
const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'mcpbox-pods-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('serve --kubernetes: a pod per session', () => {
  it("a session's pod is the server's under a fresh name, with its labels kept (the NetworkPolicy selects them) and serve's added", () => {
    const a = sessionPod(template, 'ab12cd34', 'mcpbox-serve');
    const b = sessionPod(template, 'ab12cd34', 'mcpbox-serve');
    expect(a.metadata.name).toMatch(/^everything-[0-9a-f]{6}$/);
    expect(a.metadata.name).not.toBe(b.metadata.name);
    expect(a.metadata.labels).toMatchObject({ 'app.kubernetes.io/name': 'everything', [SESSION_POD_LABEL]: 'ab12cd34', [SERVED_BY_LABEL]: 'mcpbox-serve' });
    expect(a.spec).toEqual(template.spec);
    expect(template.metadata.labels).not.toHaveProperty(SESSION_POD_LABEL);
  });

  it('kubectl run is attached, removed after, quiet on stdout, with the whole Pod as a merge override: argv only, no value of the Secret', () => {
    const pod = sessionPod(template, 's1', 'mcpbox-serve');
    const argv = kubectlRunArgv(pod);
    expect(argv.slice(0, 11)).toEqual(['run', pod.metadata.name, '--image', 'registry.example/mcpbox/npx:1', '--restart=Never', '--stdin', '--attach', '--rm', '--quiet', '--pod-running-timeout=5m', '--override-type=merge']);
    expect(JSON.parse(argv[argv.indexOf('--overrides') + 1]!)).toEqual(pod);
    expect(argv.join(' ')).toContain('"secretKeyRef":{"name":"everything-env","key":"API_KEY"}');
  });

  it("kubectl gets how to find the cluster from serve's environment, nothing else", () => {
    expect(kubectlEnv({ PATH: '/bin', HOME: '/h', KUBECONFIG: '/k', KUBERNETES_SERVICE_HOST: '10.0.0.1', MCPBOX_TOKEN: 'secret', AWS_SECRET_ACCESS_KEY: 'x' })).toEqual({ PATH: '/bin', HOME: '/h', KUBECONFIG: '/k', KUBERNETES_SERVICE_HOST: '10.0.0.1' });
  });

  it("each server's Pod is read from DIR/<server>.json; a missing or broken one is refused, naming the file", () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'everything.json'), JSON.stringify(template));
    expect(readPodTemplates(dir, [served('everything')]).get('everything')).toEqual(template);
    expect(() => readPodTemplates(dir, [served('everything'), served('time')])).toThrow(`${join(dir, 'time.json')}: no Pod for the server time`);
    writeFileSync(join(dir, 'time.json'), JSON.stringify({ kind: 'Deployment', metadata: { name: 'time' } }));
    expect(() => readPodTemplates(dir, [served('time')])).toThrow(/time\.json: not a Pod/);
    writeFileSync(join(dir, 'time.json'), '{');
    expect(() => readPodTemplates(dir, [served('time')])).toThrow(/time\.json: not JSON/);
  });

  it('no kubectl, or no cluster, is one line naming what failed, before serve listens', async () => {
    await expect(new KubectlPods('/nonexistent/kubectl', {}).removeLeftovers('mcpbox-serve')).rejects.toThrow(/^\/nonexistent\/kubectl get pods failed: .*ENOENT/);
    const script = join(tempDir(), 'kubectl');
    writeFileSync(script, '#!/bin/sh\necho "The connection to the server localhost:8080 was refused" >&2\nexit 1\n');
    chmodSync(script, 0o755);
    await expect(new KubectlPods(script, {}).removeLeftovers('mcpbox-serve')).rejects.toThrow('get pods failed: The connection to the server localhost:8080 was refused');
  });

  it('a serve name that is no label value is refused before kubectl is asked anything', async () => {
    const at = { settings: {}, ctx: { env: { MCPBOX_SERVE_INSTANCE: 'team serve!', MCPBOX_KUBECTL: '/nonexistent/kubectl' } }, stateDir: tempDir(), lockPath: '', log: () => {} } as unknown as SessionSite;
    await expect(podTargets([], tempDir(), at)).rejects.toThrow('MCPBOX_SERVE_INSTANCE=team serve!: not a Kubernetes label value');
  });

  it("serve's file may be readable by its pod's group (a Secret under fsGroup), never by others, and only when serve runs in a pod", () => {
    const file = join(tempDir(), 'servers.json');
    writeFileSync(file, '{}');
    chmodSync(file, 0o440);
    expect(() => requirePrivate(file, (mode) => `mode ${mode}`)).toThrow('mode 0440');
    expect(() => requirePrivate(file, (mode) => `mode ${mode}`, true)).not.toThrow();
    for (const mode of [0o444, 0o460]) {
      chmodSync(file, mode);
      expect(() => requirePrivate(file, (m) => `mode ${m}`, true)).toThrow(`mode 0${mode.toString(8)}`);
    }
  });
});

describe('export kubernetes --serve: serve as the front', () => {
  const docs = serveFrontManifests({ pods: new Map([['everything', template]]), image: 'registry.example/mcpbox/serve:1' });

  it("serve may start, watch, attach to and delete pods in its namespace, and nothing else (no Secrets, no ClusterRole)", () => {
    expect(kind(docs, 'Role').rules).toEqual([
      { apiGroups: [''], resources: ['pods'], verbs: ['create', 'get', 'list', 'watch', 'delete'] },
      { apiGroups: [''], resources: ['pods/attach'], verbs: ['create', 'get'] },
    ]);
    expect(docs.map((d) => d.kind)).not.toContain('ClusterRole');
    expect(kind(docs, 'RoleBinding').subjects).toEqual([{ kind: 'ServiceAccount', name: 'mcpbox-serve' }]);
  });

  it("the Deployment runs one serve, confined as a sandbox, with the servers' Pods from the ConfigMap and servers.json from a Secret its group alone reads", () => {
    const deployment = kind(docs, 'Deployment');
    const pod = deployment.spec.template.spec;
    const container = pod.containers[0];
    expect([deployment.spec.replicas, deployment.spec.strategy.type, pod.serviceAccountName]).toEqual([1, 'Recreate', 'mcpbox-serve']);
    expect(container.securityContext).toMatchObject({ runAsUser: 65534, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(container.args).toEqual(['--kubernetes', '/etc/mcpbox/pods', '--log-format', 'json']);
    expect(pod.volumes).toContainEqual({ name: 'config', secret: { secretName: SERVE_CONFIG_SECRET, defaultMode: 0o440 } });
    expect(JSON.parse(kind(docs, 'ConfigMap').data['everything.json'])).toEqual(template);
    expect(kind(docs, 'Service').spec.ports).toEqual([{ name: 'http', port: 9090, targetPort: 9090, protocol: 'TCP' }]);
    expect(kind(docs, 'NetworkPolicy').spec.ingress).toEqual([{ ports: [{ protocol: 'TCP', port: 9090 }] }]);
  });
});
