import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { ENGINE_CLI, mcpbox, testEnv } from './helpers.js';

/**
 * `mcpbox export kubernetes`, proven without a cluster (none can run here): the manifests validate
 * against the Kubernetes 1.33 schemas with kubeconform (strict: an unknown field fails), and the Pod
 * runs for real under `podman kube play` with the same confinement the Docker tests check from
 * inside a server: uid 65534, no capabilities, no-new-privileges, a seccomp filter, a read-only
 * root, writable /tmp and HOME, the memory limit. The NetworkPolicy is validated, not enforced:
 * podman has no network policy. Runs in the Podman pass of .ci/run, which provides kubeconform and
 * the schemas (MCPBOX_KUBECONFORM, MCPBOX_KUBERNETES_SCHEMAS); in CI their absence fails.
 */
const engine = inject('engine');
const kubeconform = process.env.MCPBOX_KUBECONFORM;
const schemas = process.env.MCPBOX_KUBERNETES_SCHEMAS;
const ready = Boolean(engine && ENGINE_CLI === 'podman' && kubeconform && schemas && existsSync(kubeconform));
if (ENGINE_CLI === 'podman' && process.env.CI && !ready) throw new Error('e2e: the Podman pass needs kubeconform and the Kubernetes schemas (.ci/run provides MCPBOX_KUBECONFORM and MCPBOX_KUBERNETES_SCHEMAS)');

describe.runIf(ready)('export kubernetes: valid manifests, and the Pod confined under podman kube play', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mcpbox-kube-'));
  const played: { file: string; name: string }[] = [];
  afterAll(async () => {
    for (const { file, name } of played) {
      await execa('podman', ['kube', 'down', file], { reject: false });
      // The claims became podman volumes, which kube down keeps.
      await execa('podman', ['volume', 'rm', '--force', `${name}-data`, `${name}-cache`], { reject: false });
    }
    rmSync(dir, { recursive: true, force: true });
  });

  async function exported(name: string, args: string[]) {
    const result = await mcpbox(['export', 'kubernetes', '--name', name, ...args], { env: testEnv() });
    expect(result.exitCode, result.stderr).toBe(0);
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, result.stdout);
    return { file, yaml: result.stdout };
  }

  const validate = (file: string) => execa(kubeconform!, ['-strict', '-summary', '-schema-location', `${schemas}/{{.ResourceKind}}{{.KindSuffix}}.json`, file], { reject: false });

  it('a server, a serve configuration and a uvx server export manifests that validate; an unknown field would not', async () => {
    const server = await exported('kc-everything', ['-e', 'GITHUB_TOKEN', '--egress', 'api.github.com', 'npx', '-y', '@modelcontextprotocol/server-everything']);
    expect(server.yaml).not.toMatch(/GITHUB_TOKEN=[^…]/);
    const servers = join(dir, 'servers.json');
    writeFileSync(servers, JSON.stringify({ authTokens: [`tok-${'1234abcd'.repeat(4)}`], mcpServers: { time: { command: 'uvx', args: ['mcp-server-time'] }, mem: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-memory'], env: { MEMORY_FILE_PATH: '/home/mcpbox/team-notes.jsonl' } } } }));
    chmodSync(servers, 0o600);
    const served = await mcpbox(['export', 'kubernetes', '--serve', servers], { env: testEnv() });
    expect(served.exitCode, served.stderr).toBe(0);
    expect(served.stdout).not.toContain('team-notes');
    expect(served.stdout).toMatch(/- name: MEMORY_FILE_PATH\n\s+valueFrom:\n\s+secretKeyRef:\n\s+name: mem-env/);
    writeFileSync(join(dir, 'served.yaml'), served.stdout);
    for (const file of [server.file, join(dir, 'served.yaml')]) {
      const result = await validate(file);
      expect(result.exitCode, result.stdout).toBe(0);
      expect(result.stdout).toMatch(/Invalid: 0, Errors: 0, Skipped: 0/);
    }
    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, server.yaml.replace('readOnlyRootFilesystem: true', 'readOnlyRootFilesytem: true'));
    expect((await validate(broken)).stdout).toMatch(/additional properties 'readOnlyRootFilesytem' not allowed/);
  });

  it('the Pod runs under podman kube play with the sandbox: nobody, no capabilities, no-new-privileges, seccomp, read-only root, its memory limit', async () => {
    const probe = 'id -u; grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status; touch /probe 2>/dev/null && echo root=writable || echo root=read-only; touch /tmp/p && echo tmp=writable; touch "$HOME/p" && echo home=writable; cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max';
    const { file } = await exported('kp-probe', ['--egress', 'none', '--memory', '256m', 'npx', '-c', probe]);
    played.push({ file, name: 'kp-probe' });
    const play = await execa('podman', ['kube', 'play', file], { reject: false });
    expect(play.exitCode, play.stderr).toBe(0);
    const logs = async () => (await execa('podman', ['logs', 'kp-probe-server'], { reject: false })).stdout;
    for (let i = 0; i < 100 && !/\d{6,}|max/.test(await logs()); i++) await new Promise((r) => setTimeout(r, 200));
    expect((await logs()).split('\n')).toEqual(['65534', 'CapEff:\t0000000000000000', 'NoNewPrivs:\t1', 'Seccomp:\t2', 'root=read-only', 'tmp=writable', 'home=writable', String(256 * 1024 * 1024)]);
  });

  it('a real server starts in the exported Pod, its tree resolved through the registry with the CA from the ConfigMap', async () => {
    const { file } = await exported('kp-everything', ['--egress', 'none', 'npx', '-y', '@modelcontextprotocol/server-everything']);
    played.push({ file, name: 'kp-everything' });
    const play = await execa('podman', ['kube', 'play', file], { reject: false });
    expect(play.exitCode, play.stderr).toBe(0);
    let logs = '';
    for (let i = 0; i < 600 && !/Starting default \(STDIO\) server|npm error/.test(logs); i++) {
      await new Promise((r) => setTimeout(r, 200));
      logs = (await execa('podman', ['logs', 'kp-everything-server'], { reject: false, all: true })).all ?? '';
    }
    expect(logs).toMatch(/Starting default \(STDIO\) server/);
    const inspected = JSON.parse((await execa('podman', ['inspect', 'kp-everything-server'])).stdout)[0];
    expect([inspected.HostConfig.ReadonlyRootfs, inspected.Config.User]).toEqual([true, '65534:65534']);
  });
});
