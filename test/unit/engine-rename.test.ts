import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DockerEngine } from '../../src/engine/docker.js';
import { createLogger } from '../../src/log.js';

/**
 * The claim of a standby is a rename, asked of a local Docker's API on its socket (no CLI start on
 * the way to the first byte), with the CLI as the fallback for anything but a plain answer.
 */
describe('rename: the API on the local socket, else the CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mcpbox-rename-'));
  const socket = join(dir, 'docker.sock');
  const cliCalls = join(dir, 'cli-calls');
  const cli = join(dir, 'docker');
  // The CLI records its argv and succeeds.
  writeFileSync(cli, `#!/bin/sh\necho "$@" >> '${cliCalls}'\nexit 0\n`);
  chmodSync(cli, 0o755);
  let server: Server | undefined;
  const asked: string[] = [];

  afterEach(async () => {
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    server = undefined;
    asked.length = 0;
    rmSync(cliCalls, { force: true });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const api = (status: number) =>
    new Promise<void>((resolve) => {
      server = createServer((request, response) => {
        asked.push(`${request.method} ${request.url}`);
        response.writeHead(status).end();
      }).listen(socket, resolve);
    });
  const engine = (env: Record<string, string>) => new DockerEngine({ bin: cli, env: { PATH: process.env.PATH!, ...env }, log: createLogger({ write: () => {} }), runtimeDir: dir });
  const cliSaw = () => (existsSync(cliCalls) ? readFileSync(cliCalls, 'utf8').trim().split('\n') : []);

  it('204 from the socket: renamed, and no CLI started', async () => {
    await api(204);
    expect(await engine({ DOCKER_HOST: `unix://${socket}` }).rename('mcpbox-standby-abc', 'mcpbox-x-standby-by-42-1')).toBe(true);
    expect(asked).toEqual(['POST /containers/mcpbox-standby-abc/rename?name=mcpbox-x-standby-by-42-1']);
    expect(cliSaw()).toEqual([]);
  });

  it('404 (no standby) and 409 (the name is taken): not renamed, and no CLI started', async () => {
    for (const status of [404, 409]) {
      await api(status);
      expect(await engine({ DOCKER_HOST: `unix://${socket}` }).rename('a', 'b')).toBe(false);
      await new Promise((resolve) => server!.close(resolve));
    }
    server = undefined;
    expect(asked).toEqual(['POST /containers/a/rename?name=b', 'POST /containers/a/rename?name=b']);
    expect(cliSaw()).toEqual([]);
  });

  it('any other answer, no socket, or an endpoint that is not a socket: the CLI', async () => {
    await api(500);
    expect(await engine({ DOCKER_HOST: `unix://${socket}` }).rename('a', 'b')).toBe(true);
    expect(asked).toHaveLength(1);
    expect(await engine({ DOCKER_HOST: `unix://${join(dir, 'none.sock')}` }).rename('c', 'd')).toBe(true);
    expect(await engine({ DOCKER_HOST: 'tcp://127.0.0.1:2375' }).rename('e', 'f')).toBe(true);
    expect(asked).toHaveLength(1);
    expect(cliSaw()).toEqual(['rename a b', 'rename c d', 'rename e f']);
  });
});
