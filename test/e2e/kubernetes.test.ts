import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { execa } from 'execa';
import { dump, loadAll } from 'js-yaml';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { childrenOf, ENGINE_CLI, FIXTURES, MCPBOX, mcpbox, quietStateDir, testEnv, textOf, waitFor, WORKDIR } from './helpers.js';

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
  const instance = `kt-${process.pid}`;
  afterAll(async () => {
    // serve --kubernetes's session pods, should the test have left one.
    const left = (await execa('podman', ['pod', 'ps', '--filter', `label=mcpbox.dev/served-by=${instance}`, '--format', '{{.Name}}'], { reject: false })).stdout.split('\n').filter(Boolean);
    if (left.length > 0) await execa('podman', ['pod', 'rm', '--force', '--time', '0', ...left], { reject: false });
    for (const { file, name } of played) {
      if (file) await execa('podman', ['kube', 'down', file], { reject: false });
      // The claims and the CA's ConfigMap became podman volumes, which kube down keeps.
      await execa('podman', ['volume', 'rm', '--force', `${name}-data`, `${name}-cache`, `${name}-ca`], { reject: false });
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
    // serve in front starts the servers' Pods per session: they are in its ConfigMap, not on their own.
    const docs = loadAll(served.stdout) as Record<string, any>[];
    expect(docs.filter((d) => d.kind === 'Pod')).toEqual([]);
    expect(docs.filter((d) => ['Deployment', 'Service', 'ServiceAccount', 'Role', 'RoleBinding'].includes(d.kind)).map((d) => d.metadata.name)).toEqual(Array(5).fill('mcpbox-serve'));
    const memPod = JSON.parse(docs.find((d) => d.metadata.name === 'mcpbox-serve-pods')!.data['mem.json']);
    expect(memPod.spec.containers[0].env).toContainEqual({ name: 'MEMORY_FILE_PATH', valueFrom: { secretKeyRef: { name: 'mem-env', key: 'MEMORY_FILE_PATH' } } });
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

  /**
   * serve --kubernetes, with kubectl played by Podman (test/fixtures/kubectl-podman.mjs: kube play of
   * the very Pod serve asks for; no API server can run here). What this proves: serve reads the Pods
   * export wrote, starts one per session through kubectl, speaks MCP through its attach, removes it
   * when the session ends or serve stops, and removes those of a serve that died.
   */
  it('serve --kubernetes: a pod per session from the exported Pods, confined and labelled while it lasts, gone after; a dead serve’s pod is removed by the next', async () => {
    const token = `tok-${'5a6b7c8d'.repeat(4)}`;
    const servers = join(dir, 'front.json');
    writeFileSync(servers, JSON.stringify({ authTokens: [token], mcpServers: { everything: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-everything'] } } }));
    chmodSync(servers, 0o600);
    const front = await mcpbox(['export', 'kubernetes', '--serve', servers], { env: testEnv() });
    expect(front.exitCode, front.stderr).toBe(0);
    const docs = loadAll(front.stdout) as Record<string, any>[];
    const pods = join(dir, 'front-pods');
    mkdirSync(pods);
    for (const [file, pod] of Object.entries(docs.find((d) => d.metadata.name === 'mcpbox-serve-pods')!.data)) writeFileSync(join(pods, file), pod as string);
    const configMaps = docs.filter((d) => d.kind === 'ConfigMap' && d.metadata.name.endsWith('-ca')).map((d, i) => {
      const file = join(dir, `front-ca-${i}.yaml`);
      writeFileSync(file, dump(d));
      return file;
    });
    const kubeconfig = join(dir, 'front-kubeconfig.json');
    writeFileSync(kubeconfig, JSON.stringify({ configMaps }));
    const podsOfServe = async () => (await execa('podman', ['pod', 'ps', '--filter', `label=mcpbox.dev/served-by=${instance}`, '--format', '{{.Name}}'])).stdout.split('\n').filter(Boolean);
    played.push({ file: '', name: 'everything' }); // its claims, as podman volumes

    const start = async () => {
      const child = execa(process.execPath, [MCPBOX, 'serve', '--config', servers, '--port', '0', '--log-format', 'json', '--kubernetes', pods], {
        cwd: WORKDIR,
        env: testEnv({ XDG_STATE_HOME: quietStateDir(), MCPBOX_KUBECTL: join(FIXTURES, 'kubectl-podman.mjs'), KUBECONFIG: kubeconfig, MCPBOX_SERVE_INSTANCE: instance }),
        extendEnv: false,
        reject: false,
        stdin: 'ignore',
        buffer: false,
      });
      let logs = '';
      child.stderr!.on('data', (chunk: Buffer) => (logs += chunk.toString()));
      const events = () => logs.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, any>);
      const listening = await waitFor(async () => events().find((e) => e.event === 'listening') ?? (child.exitCode !== null && { failed: true }), 120_000, 'serve to listen');
      expect(listening.failed, logs).toBeUndefined();
      const session = async () => {
        const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${listening.port}/servers/everything/mcp`), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
        const client = new Client({ name: 'mcpbox-kube-e2e', version: '0' });
        await client.connect(transport);
        return { client, end: () => transport.terminateSession() };
      };
      return { child, events, session, logs: () => logs };
    };

    const first = await start();
    const { client, end } = await first.session();
    expect(textOf(await client.callTool({ name: 'echo', arguments: { message: 'from a pod' } }))).toContain('from a pod');
    const [pod] = await podsOfServe();
    expect(pod).toMatch(/^everything-[0-9a-f]{6}$/);
    const inspected = JSON.parse((await execa('podman', ['inspect', `${pod}-server`])).stdout)[0];
    expect([inspected.HostConfig.ReadonlyRootfs, inspected.Config.User, inspected.EffectiveCaps ?? []]).toEqual([true, '65534:65534', []]);
    await end();
    await waitFor(async () => (await podsOfServe()).length === 0, 30_000, 'the session pod to go');

    // A serve killed outright with its kubectl (its own pod evicted, say) leaves its session's pod;
    // the next serve of that name removes it before it listens.
    const { client: second } = await first.session();
    await second.listTools();
    const [left] = await podsOfServe();
    const kubectls = childrenOf(first.child.pid!).filter((c) => c.argv.some((a) => a.endsWith('kubectl-podman.mjs')));
    expect(kubectls).toHaveLength(1);
    first.child.kill('SIGKILL');
    for (const { pid } of kubectls) process.kill(-pid, 'SIGKILL');
    await first.child;
    await new Promise((r) => setTimeout(r, 1000));
    expect(await podsOfServe()).toContain(left);
    const next = await start();
    expect(next.events().find((e) => e.event === 'swept')?.pods).toEqual([left]);
    expect(await podsOfServe()).toEqual([]);

    // Stopping serve ends its sessions' pods with it.
    const { client: third } = await next.session();
    await third.listTools();
    expect(await podsOfServe()).toHaveLength(1);
    next.child.kill('SIGTERM');
    expect((await next.child).exitCode, next.logs()).toBe(0);
    expect(await podsOfServe()).toEqual([]);
  }, 600_000);
});
