import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connect, ENGINE_CLI, FIXTURES, mcpbox, testEnv, textOf, waitFor, WORKDIR } from './helpers.js';

/**
 * An engine on another machine: here, Podman's API service listening on a loopback TCP port, driven
 * by the docker CLI through DOCKER_HOST=tcp://… — what mcpbox sees of a remote engine. A path of
 * this machine can't be mounted there: mcpbox refuses it in one line before anything starts. The
 * rest works: a server's stdio, its forwarded values (the env file is read by the local CLI).
 * Runs in the Podman pass of .ci/run.
 */
const engine = inject('engine');
const TOOLS_SERVER = readFileSync(join(FIXTURES, 'tools-server.cjs'), 'utf8');

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe.runIf(engine && ENGINE_CLI === 'podman')('a remote engine (DOCKER_HOST=tcp://127.0.0.1:…)', () => {
  let service: ResultPromise;
  let env: Record<string, string>;
  beforeAll(async () => {
    const port = await freePort();
    service = execa('podman', ['system', 'service', '--time', '0', `tcp:127.0.0.1:${port}`], { reject: false, stdio: 'ignore' });
    env = testEnv({ MCPBOX_ENGINE: 'docker', DOCKER_HOST: `tcp://127.0.0.1:${port}`, TOOLS_SERVER });
    await waitFor(async () => (await execa('docker', ['version', '--format', '{{.Server.Version}}'], { env, reject: false })).exitCode === 0, 30_000, 'the Podman API service');
  });
  afterAll(() => {
    service?.kill('SIGTERM');
  });

  it('a path argument is refused (without --copy-in) in one line with a hint, exit 64, nothing on stdout, no container', async () => {
    const result = await mcpbox(['run', 'npx', '-y', '@modelcontextprotocol/server-filesystem', WORKDIR], { env });
    expect(result.exitCode).toBe(64);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^mcpbox: the engine is on another machine \(DOCKER_HOST=tcp:\/\/127\.0\.0\.1:\d+\): .+ is a path of this one, which it can't mount \(hint: .+\)$/)]);
    const left = await execa('docker', ['ps', '-aq', '--filter', `label=dev.mcpbox.owner-pid=${result.pid}`], { env });
    expect(left.stdout).toBe('');
  });

  it('everything else works: a server over stdio, with a forwarded value, and no mount of this machine', async () => {
    const session = await connect(['--egress', 'none', '-e', 'TOOLS_SERVER', 'npx', '-c', 'node -e "$TOOLS_SERVER"'], env);
    try {
      expect((await session.client.listTools()).tools.map((t) => t.name)).toContain('send');
      expect(textOf(await session.client.callTool({ name: 'send', arguments: { to: 'remote' } }))).toMatch(/send done: \{"to":"remote"\}/);
      const [container] = (await execa('docker', ['ps', '-q', '--filter', `label=dev.mcpbox.owner-pid=${session.pid}`], { env })).stdout.split('\n');
      const mounts = JSON.parse((await execa('docker', ['inspect', '--format', '{{json .Mounts}}', container!], { env })).stdout) as { Type: string }[];
      expect(mounts.filter((m) => m.Type === 'bind')).toEqual([]);
      expect(session.stderr()).toMatch(/the engine is on another machine .* so the sandbox trusts its image's CA certificates only/);
    } finally {
      await session.close();
    }
  });

  it('--copy-in: a directory named in the arguments, and the CA bundles, are copied in read-only for the session, and removed after', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mcpbox-e2e-copy-'));
    writeFileSync(join(dir, 'note.txt'), 'written on this machine\n');
    const volumes = async (pid: number) => (await execa('docker', ['volume', 'ls', '-q', '--filter', 'label=dev.mcpbox.role=copy', '--filter', `label=dev.mcpbox.owner-pid=${pid}`], { env })).stdout.split('\n').filter(Boolean);
    let pid = 0;
    try {
      const session = await connect(['--copy-in', 'npx', '-y', '@modelcontextprotocol/server-filesystem', dir], env);
      pid = session.pid;
      try {
        expect(textOf(await session.client.callTool({ name: 'read_text_file', arguments: { path: join(dir, 'note.txt') } }))).toBe('written on this machine\n');
        const write = await session.client.callTool({ name: 'write_file', arguments: { path: join(dir, 'new.txt'), content: 'x' } });
        expect(write.isError).toBe(true);
        expect(textOf(write)).toMatch(/read-only file system|EROFS/i);
        // The directory, and the CA bundles the install needed to reach the registry through this machine's proxy.
        expect((await volumes(pid)).map((v) => v.replace(/^.*-copy-/, 'copy-')).sort()).toEqual(['copy-0', 'copy-ca']);
        expect(session.stderr()).toMatch(/copied in read-only for this session/);
        expect(session.stderr()).not.toMatch(/trusts its image's CA certificates only/);
      } finally {
        await session.close();
      }
      await waitFor(async () => (await volumes(pid)).length === 0, 15_000, 'the copy removed once the session ended');
      expect(readdirSync(dir)).toEqual(['note.txt']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      for (const volume of pid ? await volumes(pid) : []) await execa('docker', ['volume', 'rm', '-f', volume], { env, reject: false });
    }
  });
});
