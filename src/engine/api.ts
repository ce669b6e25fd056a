import { createConnection, type Socket } from 'node:net';
import { PassThrough, type Readable, type Writable } from 'node:stream';

/**
 * The few calls mcpbox makes on a local Docker's API socket itself instead of through the docker
 * CLI: those on the way to a claimed standby's first byte, where a CLI start (30–50 ms here) is
 * most of the cost. Written on node:net, which a run has loaded already (node:http's client costs
 * 10–15 ms of module loading). src/engine/docker.ts decides when they are used: only on the socket
 * the CLI itself uses, and with the CLI as the fallback.
 */

const request = (method: string, path: string, upgrade = false) =>
  `${method} ${path} HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n${upgrade ? 'Connection: Upgrade\r\nUpgrade: tcp\r\n' : 'Connection: close\r\n'}\r\n`;

/** The status of one call; undefined when it doesn't answer in time. Only the status line is read. */
export function apiStatus(socket: string, method: string, path: string, timeoutMs = 2000): Promise<number | undefined> {
  return new Promise((resolve) => {
    let head = '';
    const connection = createConnection(socket, () => connection.write(request(method, path)));
    const done = (status?: number) => {
      resolve(status);
      connection.destroy();
    };
    connection.setTimeout(timeoutMs, () => done());
    connection.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      if (status) done(Number(status[1]));
      else if (head.includes('\n') || head.length > 64) done();
    });
    connection.on('error', () => done());
    connection.on('close', () => done());
  });
}

/**
 * One GET, its status and body (HTTP/1.0: the engine answers without chunks and closes). Undefined
 * when it doesn't answer in time.
 */
export function apiGet(socket: string, path: string, timeoutMs = 2000): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const connection = createConnection(socket, () => connection.write(`GET ${path} HTTP/1.0\r\nHost: docker\r\n\r\n`));
    connection.setTimeout(timeoutMs, () => connection.destroy());
    connection.on('data', (chunk: Buffer) => chunks.push(chunk));
    connection.on('error', () => resolve(undefined));
    connection.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      const end = text.indexOf('\r\n\r\n');
      resolve(status && end >= 0 ? { status: Number(status[1]), body: text.slice(end + 4) } : undefined);
    });
  });
}

/**
 * What `docker inspect NAME…` prints, from the API: each name as a container, else an image, else a
 * volume (the CLI's order). `missing` has the names none of them knows; undefined when the engine
 * answered anything else (the caller asks the CLI instead).
 */
export async function apiInspect(socket: string, names: readonly string[]): Promise<{ objects: unknown[]; missing: Set<string> } | undefined> {
  const one = async (name: string): Promise<unknown | 'missing' | undefined> => {
    for (const kind of ['containers', 'images', 'volumes']) {
      // Image names keep their slashes: the engine refuses %2F there.
      const answer = await apiGet(socket, `/${kind}/${encodeURI(name)}${kind === 'volumes' ? '' : '/json'}`);
      if (answer?.status === 200) return JSON.parse(answer.body) as unknown;
      if (answer?.status !== 404) return undefined;
    }
    return 'missing';
  };
  try {
    const found = await Promise.all(names.map(one));
    if (found.includes(undefined)) return undefined;
    return { objects: found.filter((f) => f !== 'missing'), missing: new Set(names.filter((_, i) => found[i] === 'missing')) };
  } catch {
    return undefined;
  }
}

/**
 * The container's exit status, asked before it can exit (a container run with --rm is gone right
 * after). `not-running`, not `next-exit`: a standby that ended before the wait was asked (removed
 * by a failed check) would leave a next-exit wait unanswered for good. `registered` settles once the
 * engine has answered the call's headers (it does so at once, before waiting); `status` is
 * undefined when the engine went away first or the container is already gone.
 */
function exitStatus(socket: string, name: string): { registered: Promise<void>; status: Promise<number | undefined>; cancel: () => void } {
  let registered!: () => void;
  let cancel = () => {};
  const ready = new Promise<void>((resolve) => (registered = resolve));
  const status = new Promise<number | undefined>((resolve) => {
    let text = '';
    const connection = createConnection(socket, () => connection.write(request('POST', `/containers/${encodeURIComponent(name)}/wait?condition=not-running`)));
    cancel = () => connection.destroy();
    connection.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (text.includes('\r\n\r\n')) registered();
      const code = /"StatusCode":\s*(\d+)/.exec(text);
      if (code) {
        resolve(Number(code[1]));
        connection.destroy();
      } else if (/^HTTP\/1\.[01] [45]/.test(text)) connection.destroy();
    });
    connection.on('error', () => resolve(undefined));
    connection.on('close', () => {
      registered();
      resolve(undefined);
    });
  });
  return { registered: ready, status, cancel: () => cancel() };
}

/**
 * Splits Docker's multiplexed attach stream (no TTY): frames of an 8-byte header (stream: 1 stdout,
 * 2 stderr; then the length, big-endian, at 4) and their payload, cut anywhere by the socket.
 */
export function demultiplexer(stdout: NodeJS.WritableStream, stderr: NodeJS.WritableStream): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0);
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 8) {
      const size = pending.readUInt32BE(4);
      if (pending.length < 8 + size) break;
      const payload = pending.subarray(8, 8 + size);
      if (pending[0] === 2) stderr.write(payload);
      else if (pending[0] === 1) stdout.write(payload);
      pending = pending.subarray(8 + size);
    }
  };
}

/** How long an attach stream may outlive its container's exit before it is closed. */
const DRAIN_MS = 2000;

/** What apiAttach gives back: the shape of a `docker attach` process (DockerEngine's EngineProcess), without one. */
export interface AttachedProcess {
  readonly pid: undefined;
  readonly stdin: Writable;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  kill(signal: NodeJS.Signals): boolean;
  readonly exit: Promise<{ exitCode: number; signal: null }>;
}

export interface ApiAttachOptions {
  /** Where the server's stdout and stderr go when not piped: mcpbox's own (the CLI would inherit them). */
  readonly stdout: 'pipe' | NodeJS.WritableStream;
  readonly stderr: 'pipe' | NodeJS.WritableStream;
}

/**
 * `docker attach` of a running container, in-process: stdin, stdout and stderr on one hijacked
 * connection, the exit status from a wait asked first, signals through the API (as the CLI's signal
 * proxy sends them). The end of stdin half-closes the connection, which ends the server's input as
 * the CLI's does. A failure to attach (no such container, the engine gone) ends it with 1 and a line
 * on its stderr, as the CLI would.
 */
export function apiAttach(socket: string, name: string, options: ApiAttachOptions): AttachedProcess {
  const stdin = new PassThrough();
  const stdout = options.stdout === 'pipe' ? new PassThrough() : undefined;
  const stderr = options.stderr === 'pipe' ? new PassThrough() : undefined;
  const toStdout = stdout ?? (options.stdout as NodeJS.WritableStream);
  const toStderr = stderr ?? (options.stderr as NodeJS.WritableStream);
  const path = `/containers/${encodeURIComponent(name)}`;
  const wait = exitStatus(socket, name);
  const connection: Socket = createConnection(socket, () => connection.write(request('POST', `${path}/attach?stream=1&stdin=1&stdout=1&stderr=1`, true)));
  let head: Buffer = Buffer.alloc(0);
  let attached = false;
  let failure: string | undefined;
  const split = demultiplexer(toStdout, toStderr);
  connection.on('data', (chunk: Buffer) => {
    if (attached) return split(chunk);
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    const code = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head.toString('latin1'))?.[1]);
    if (code !== 101 && code !== 200) {
      failure = `Error response from daemon: attach ${name}: ${code || 'no answer'}`;
      connection.destroy();
      return;
    }
    attached = true;
    // The client's input reaches the server only once its exit can't be missed.
    void wait.registered.then(() => !connection.destroyed && stdin.pipe(connection));
    if (head.length > end + 4) split(head.subarray(end + 4));
  });
  connection.on('error', (error) => (failure ??= attached ? undefined : `cannot attach to ${name}: ${error.message}`));
  const closed = new Promise<void>((resolve) => connection.once('close', () => resolve()));
  // The stream ends soon after the exit. Not always: an attach to a container that never ran (a
  // standby claimed between its create and its start, then removed by the check) stays open for
  // good, where the CLI would have refused the attach. Once the engine says the container is not
  // running, the stream gets a moment to drain, then it is closed.
  void wait.status.then(() => setTimeout(() => connection.destroy(), DRAIN_MS).unref());
  const exit = closed.then(async () => {
    stdin.unpipe(connection);
    const code = failure ? undefined : await wait.status;
    if (failure) {
      wait.cancel();
      toStderr.write(`${failure}\n`);
    }
    stdout?.end();
    stderr?.end();
    return { exitCode: code ?? 1, signal: null };
  });
  return {
    pid: undefined,
    stdin,
    stdout: stdout ?? null,
    stderr: stderr ?? null,
    kill: (signal) => {
      void apiStatus(socket, 'POST', `${path}/kill?signal=${signal}`);
      return true;
    },
    exit,
  };
}
