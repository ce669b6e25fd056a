import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { apiAttach, apiInspect, demultiplexer } from '../../src/engine/api.js';

/** Docker's multiplexed frame: stream (1 stdout, 2 stderr), three zero bytes, the length, the payload. */
const frame = (stream: 1 | 2, text: string) => {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
};

const collect = (stream: NodeJS.ReadableStream) => {
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return () => text;
};

describe('the multiplexed attach stream', () => {
  it('splits frames into stdout and stderr, however the socket cuts them', () => {
    const [out, err] = [new PassThrough(), new PassThrough()];
    const [stdout, stderr] = [collect(out), collect(err)];
    const bytes = Buffer.concat([frame(1, '{"jsonrpc":"2.0"}\n'), frame(2, 'a banner\n'), frame(1, 'é and more\n')]);
    const split = demultiplexer(out, err);
    // One byte at a time: every header and payload is cut.
    for (let i = 0; i < bytes.length; i++) split(bytes.subarray(i, i + 1));
    expect(stdout()).toBe('{"jsonrpc":"2.0"}\né and more\n');
    expect(stderr()).toBe('a banner\n');
  });
});

/**
 * A stand-in for dockerd on a unix socket: a container `srv` that answers each input line on stdout
 * (and says "got eof" on stderr when its input ends, then exits 3), wait, kill, and inspect.
 */
describe('attach and inspect through the API socket', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mcpbox-api-'));
  const socket = join(dir, 'docker.sock');
  const seen: string[] = [];
  let server: Server;
  let exitContainer: (code: number) => void = () => {};

  const start = () =>
    new Promise<void>((resolve) => {
      server = createServer((request, response) => {
        seen.push(`${request.method} ${request.url}`);
        const url = request.url ?? '';
        if (url.startsWith('/containers/srv/wait')) {
          response.writeHead(200, { 'Content-Type': 'application/json' });
          response.flushHeaders();
          exitContainer = (code) => response.end(JSON.stringify({ Error: null, StatusCode: code }));
        } else if (url.startsWith('/containers/srv/kill')) response.writeHead(204).end();
        else if (url === '/containers/srv/json') response.end(JSON.stringify({ Name: '/srv', Image: 'sha256:img', State: { Running: true, Status: 'running' }, Config: { Labels: { a: 'b' } } }));
        else if (url === '/images/mcpbox/npx:abc/json') response.end(JSON.stringify({ Id: 'sha256:img', RepoTags: ['mcpbox/npx:abc'] }));
        else if (url === '/volumes/vol1') response.end(JSON.stringify({ Name: 'vol1', Mountpoint: '/v', Labels: { 'dev.mcpbox.volume-id': 'id-1' } }));
        else if (url.startsWith('/containers/broken')) response.writeHead(500).end('{}');
        else response.writeHead(404).end('{"message":"no such object"}');
      });
      server.on('upgrade', (request, connection: Socket) => {
        seen.push(`UPGRADE ${request.url}`);
        if (!request.url?.startsWith('/containers/srv/attach')) {
          connection.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
          return;
        }
        connection.write('HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
        connection.write(frame(2, 'ready\n'));
        let input = '';
        connection.on('data', (chunk: Buffer) => {
          input += chunk.toString();
          seen.push(`stdin ${chunk.toString().trim()}`);
          for (let line = input.indexOf('\n'); line >= 0; line = input.indexOf('\n')) {
            connection.write(frame(1, `echo ${input.slice(0, line)}\n`));
            input = input.slice(line + 1);
          }
        });
        // A client that closes the stream outright (rather than half-closing it) gets nothing more.
        connection.on('error', () => {});
        // The client's half-close is the end of the server's input: it says so and exits 3.
        connection.on('end', () => {
          connection.end(frame(2, 'got eof\n'));
          setTimeout(() => exitContainer(3), 20);
        });
      });
      server.listen(socket, resolve);
    });

  afterEach(async () => {
    seen.length = 0;
    await new Promise((resolve) => server.close(resolve));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a session: input after the wait is registered, both streams out, half-close ends its input, the exit status is its own', async () => {
    await start();
    const attached = apiAttach(socket, 'srv', { stdout: 'pipe', stderr: 'pipe' });
    const [stdout, stderr] = [collect(attached.stdout!), collect(attached.stderr!)];
    attached.stdin!.write('{"id":1}\n');
    attached.stdin!.end('{"id":2}\n');
    expect(await attached.exit).toEqual({ exitCode: 3, signal: null });
    expect(stdout()).toBe('echo {"id":1}\necho {"id":2}\n');
    expect(stderr()).toBe('ready\ngot eof\n');
    const wait = seen.findIndex((s) => s.startsWith('POST /containers/srv/wait?condition=not-running'));
    const firstInput = seen.findIndex((s) => s.startsWith('stdin'));
    expect(wait).toBeGreaterThanOrEqual(0);
    expect(firstInput).toBeGreaterThan(wait);
    expect(seen).toContain('UPGRADE /containers/srv/attach?stream=1&stdin=1&stdout=1&stderr=1');
  });

  it("signals go through the API, as the CLI's signal proxy sends them", async () => {
    await start();
    const attached = apiAttach(socket, 'srv', { stdout: 'pipe', stderr: 'pipe' });
    attached.kill('SIGTERM');
    await expect.poll(() => seen).toContain('POST /containers/srv/kill?signal=SIGTERM');
    attached.stdin!.end();
    expect((await attached.exit).exitCode).toBe(3);
  });

  it('a container that never ran (claimed before its start, then removed): the wait answers, the stream that stays open is closed after a moment', async () => {
    await start();
    const attached = apiAttach(socket, 'srv', { stdout: 'pipe', stderr: 'pipe' });
    await expect.poll(() => seen).toContain('UPGRADE /containers/srv/attach?stream=1&stdin=1&stdout=1&stderr=1');
    const before = Date.now();
    // Not running: the engine answers the wait at once; the attach stream never ends by itself.
    exitContainer(0);
    expect(await attached.exit).toEqual({ exitCode: 0, signal: null });
    expect(Date.now() - before).toBeGreaterThanOrEqual(1900);
  });

  it('no such container: exit 1 and a line on its stderr, as the CLI', async () => {
    await start();
    const err = new PassThrough();
    const stderr = collect(err);
    const attached = apiAttach(socket, 'gone', { stdout: 'pipe', stderr: err });
    expect(await attached.exit).toEqual({ exitCode: 1, signal: null });
    expect(stderr()).toMatch(/attach gone: 404/);
  });

  it("inspect: each name as a container, an image (its slashes kept) or a volume; the missing ones; anything else is the CLI's to answer", async () => {
    await start();
    const found = await apiInspect(socket, ['srv', 'mcpbox/npx:abc', 'vol1', 'nothing']);
    expect(found?.missing).toEqual(new Set(['nothing']));
    expect(found?.objects).toEqual([
      expect.objectContaining({ Name: '/srv', Image: 'sha256:img' }),
      expect.objectContaining({ Id: 'sha256:img' }),
      expect.objectContaining({ Name: 'vol1', Mountpoint: '/v' }),
    ]);
    expect(await apiInspect(socket, ['srv', 'broken'])).toBeUndefined();
    expect(await apiInspect(join(dir, 'none.sock'), ['srv'])).toBeUndefined();
  });
});
