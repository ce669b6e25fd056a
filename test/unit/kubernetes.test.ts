import { describe, expect, it } from 'vitest';
import { clusterName } from '../../src/commands/export.js';
import { parseRunnerArgs } from '../../src/runners/table.js';
import { kubernetesManifests, kubernetesQuantity, type KubernetesInput } from '../../src/sandbox/kubernetes.js';
import { DEFAULT_POLICY } from '../../src/sandbox/spec.js';

/** The sandbox as Kubernetes manifests: the same confinement, volumes, egress and env by Secret name. */
const input = (overrides: Partial<KubernetesInput> = {}): KubernetesInput => ({
  name: 'mcpbox-npx-server-github',
  invocation: parseRunnerArgs('npx', ['-y', '@modelcontextprotocol/server-github']),
  command: ['npx', '-y', '@modelcontextprotocol/server-github'],
  image: 'registry.example/mcpbox/npx:1',
  policy: DEFAULT_POLICY,
  egress: ['api.github.com'],
  secretEnv: ['GITHUB_PERSONAL_ACCESS_TOKEN'],
  env: { npm_config_cache: '/mcpbox/cache/npm' },
  cacheSize: '4Gi',
  dataSize: '1Gi',
  ...overrides,
});
const kind = (docs: Record<string, unknown>[], k: string) => docs.find((d) => d.kind === k) as Record<string, any>;

describe('kubernetes manifests', () => {
  it('the Pod has the sandbox: nobody, read-only root, no capabilities, no escalation, RuntimeDefault seccomp, limits, emptyDir /tmp, claims for cache and data', () => {
    const pod = kind(kubernetesManifests(input()), 'Pod');
    const container = pod.spec.containers[0];
    expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65534, seccompProfile: { type: 'RuntimeDefault' } });
    expect(container.securityContext).toEqual({ runAsNonRoot: true, runAsUser: 65534, runAsGroup: 65534, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, privileged: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } });
    expect(container.resources.limits).toEqual({ memory: '2Gi', cpu: '2' });
    expect(pod.spec.automountServiceAccountToken).toBe(false);
    expect(pod.spec.volumes).toEqual(expect.arrayContaining([{ name: 'tmp', emptyDir: { sizeLimit: '1Gi' } }, { name: 'cache', persistentVolumeClaim: { claimName: 'mcpbox-npx-server-github-cache' } }]));
    expect(container.stdin).toBe(true);
  });

  it('a forwarded variable comes from the Secret by name: no value anywhere', () => {
    const docs = kubernetesManifests(input());
    const env = kind(docs, 'Pod').spec.containers[0].env;
    expect(env).toContainEqual({ name: 'GITHUB_PERSONAL_ACCESS_TOKEN', valueFrom: { secretKeyRef: { name: 'mcpbox-npx-server-github-env', key: 'GITHUB_PERSONAL_ACCESS_TOKEN' } } });
    expect(docs.some((d) => d.kind === 'Secret')).toBe(false);
    const overridden = kind(kubernetesManifests(input({ env: { GITHUB_PERSONAL_ACCESS_TOKEN: 'fixed' } })), 'Pod').spec.containers[0].env;
    expect(overridden.filter((e: { name: string }) => e.name === 'GITHUB_PERSONAL_ACCESS_TOKEN')).toHaveLength(1);
  });

  it('egress: none denies all; a host list allows DNS and its ports to public addresses only, and names the hosts', () => {
    expect(kind(kubernetesManifests(input({ egress: 'none' })), 'NetworkPolicy').spec).toMatchObject({ policyTypes: ['Ingress', 'Egress'], ingress: [], egress: [] });
    const listed = kind(kubernetesManifests(input({ egress: ['api.github.com', 'db.example:5432'] })), 'NetworkPolicy');
    expect(listed.metadata.annotations['mcpbox.dev/egress']).toBe('registry.npmjs.org,api.github.com,db.example:5432');
    expect(listed.spec.egress[1].ports).toEqual([{ protocol: 'TCP', port: 443 }, { protocol: 'TCP', port: 5432 }]);
    expect(listed.spec.egress[1].to[0].ipBlock.except).toContain('169.254.0.0/16');
  });

  it('names and sizes as Kubernetes wants them', () => {
    expect(clusterName('mcpbox-npx-@modelcontextprotocol/server-everything')).toBe('mcpbox-npx-modelcontextprotocol-server-everything');
    expect(clusterName('x'.repeat(80)).length).toBe(50);
    expect([kubernetesQuantity('2g'), kubernetesQuantity('512m'), kubernetesQuantity('1.5G'), kubernetesQuantity('100')]).toEqual(['2Gi', '512Mi', '1.5Gi', '100']);
  });
});
