import { constants } from 'node:os';
import { finished } from 'node:stream/promises';
import type { DockerEngine, EngineProcess } from '../engine/docker.js';
import type { EnvFile } from '../engine/env-file.js';
import { stagedStop, type StopTarget } from './shutdown.js';
import type { EofWatch } from './eof-watch.js';
import type { Logger } from '../log.js';

/**
 * Ties a container's life to its client, whatever the server does (staged like the MCP SDK's stdio
 * transport: end input → wait → SIGTERM → wait → kill):
 * - input ends → the server's stdin ends; if it is still running after the grace period it gets
 *   SIGTERM, and after another grace period the container is removed;
 * - SIGINT/SIGTERM/SIGHUP → passed on once; after the grace period the container is removed;
 *   a second signal removes it at once; at a terminal, Ctrl-C does the same (afterDetach);
 * - mcpbox killed outright → the watchdog (DockerEngine.watchdog) removes it.
 *
 * stdio: stdout and stderr always go straight from the engine CLI to the client. stdin does too
 * when a hang-up watcher can tell mcpbox that the client closed it (src/eof-watch.ts); otherwise
 * mcpbox copies stdin through itself to see its end.
 */
export interface SuperviseOptions {
  readonly engine: Pick<DockerEngine, 'run' | 'remove' | 'watchdog' | 'exitCause' | 'inspect' | 'call'> & Partial<Pick<DockerEngine, 'cli' | 'attach'>>;
  readonly argv: readonly string[];
  /** The engine CLI's environment for this run (never forwarded values: those are in `envFile`). */
  readonly env: Readonly<Record<string, string>>;
  /** The env file the argv names; removed when the engine CLI exits. */
  readonly envFile?: EnvFile | undefined;
  readonly name: string;
  readonly stdin: NodeJS.ReadableStream;
  /** Terminal mode: the CLI gets the terminal itself and stays in our process group. */
  readonly tty: boolean;
  /** Apply the end-of-input grace period (when stdin is a client's pipe). */
  readonly stopOnEof: boolean;
  readonly graceMs: number;
  readonly log: Logger;
  /** Starts a hang-up watcher on stdin; absent when none can run here. */
  readonly watchEof?: ((onEnd: () => void) => EofWatch) | undefined;
  /**
   * A warm start runs before its image and cache volume are confirmed; this says whether they were.
   * Until then the engine's stderr is held back; on 'retry' it is dropped, the container removed and
   * supervise() returns 'retry' (a missing image fails before the engine reads any stdin).
   */
  readonly verify?: () => Promise<'ok' | 'retry'>;
  /**
   * Attaching to a standby (src/lifecycle/standby.ts; `name` is the claimed container, through
   * DockerEngine.attach): its server already reads its input, so the client's is held until
   * `verify` says 'ok' (on 'retry' none of it was read, and another start gets it).
   */
  readonly holdInput?: boolean;
  /** Where the engine's stderr goes when it is held back (default: process.stderr). */
  readonly stderr?: NodeJS.WritableStream;
  readonly signals?: NodeJS.EventEmitter;
  /** The memory limit, for the message when the server ran out of it. */
  readonly memory?: string;
  /**
   * MCP-aware protection (src/tools/relay.ts): the session's messages go through mcpbox, both ways,
   * instead of straight between the client and the engine CLI; stdout is where the client reads.
   */
  readonly relay?: { readonly toServer: NodeJS.ReadWriteStream; readonly toClient: NodeJS.ReadWriteStream; readonly stdout: NodeJS.WritableStream };
}

export const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export async function supervise(options: SuperviseOptions): Promise<number | 'retry'> {
  const { engine, name, graceMs, log } = options;
  const signals = options.signals ?? process;
  let removal: Promise<void> | undefined;
  const remove = (why: string) => {
    if (removal) return removal;
    log.note(`${why}: removing ${name}`);
    removal = engine.remove([name]).catch((error: Error) => log.warn(`could not remove ${name}: ${error.message}`));
    return removal;
  };

  const startedAt = new Date();
  // Own process group unless in a terminal: a Ctrl-C or a group kill reaches mcpbox only, which
  // passes it on exactly once (docker run proxies signals it receives to the server).
  const relay = options.tty ? undefined : options.relay;
  // Through the relay mcpbox reads stdin itself, so it sees its end without a watcher.
  const held = Boolean(options.holdInput && options.verify);
  const watchEof = options.tty || !options.stopOnEof || relay || held ? undefined : options.watchEof;
  const copyStdin = (!options.tty && options.stopOnEof && !watchEof) || Boolean(relay) || held;
  // The engine first (it is what the client waits for), then the helpers around it.
  const io = { ...(relay && { stdout: 'pipe' as const }), stderr: options.verify ? ('pipe' as const) : ('inherit' as const) };
  const child =
    options.holdInput && engine.attach
      ? engine.attach(name, { env: options.env, ...io })
      : engine.run(options.argv, { env: options.env, stdin: copyStdin ? 'pipe' : 'inherit', ...io, detached: !options.tty, envFile: options.envFile });
  const watchdog = engine.watchdog(name);
  const target: StopTarget = { exited: child.exit, signal: passSignal(options, child), remove };

  // The client closed stdin: the server's input has ended; stop it if it doesn't go by itself.
  let ended = false;
  const onEnd = () => {
    if (ended || !options.stopOnEof) return;
    ended = true;
    const onTerm = () => log.note(`input closed ${graceMs / 1000} s ago and the server is still running: sending SIGTERM`);
    void stagedStop(target, { graceMs, onTerm, removeWhy: 'server ignored SIGTERM' });
  };
  const watch = watchEof?.(onEnd);
  const verified = holdStderrUntilVerified(options, child, remove);

  let received: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (received) {
      void remove(`second ${signal}`);
      return;
    }
    received = signal;
    void stagedStop(target, { graceMs, signal, removeWhy: `server still running ${graceMs / 1000} s after ${signal}` });
  };
  if (!options.tty) for (const signal of FORWARDED_SIGNALS) signals.on(signal, onSignal);
  let connected = false;
  const connect = () => {
    connected = true;
    return relay ? relayStdio(options.stdin, child, relay, onEnd) : pipeStdin(options.stdin, child.stdin, onEnd);
  };
  let unpipe = () => {};
  if (held) void verified?.then((verdict) => verdict === 'ok' && (unpipe = connect()), () => {});
  else unpipe = connect();

  let result: { exitCode: number | null; signal: NodeJS.Signals | null };
  try {
    result = await child.exit;
    // Everything the server wrote reaches the client before mcpbox exits (a held session that never
    // connected wrote nothing: its relay never ends).
    if (relay && child.stdout && connected) await finished(relay.toClient).catch(() => {});
    if (verified && (await verified) === 'retry') {
      if (removal) await removal;
      watchdog.release();
      return 'retry';
    }
  } finally {
    for (const signal of FORWARDED_SIGNALS) signals.off(signal, onSignal);
    watch?.stop();
    unpipe();
  }
  // The CLI itself was killed (not the server): the container may still be running.
  if (result.signal) await remove(`docker CLI ended by ${result.signal}`);
  // At a terminal, a clean exit of the CLI with the container still running is Ctrl-C (its detach key).
  if (options.tty && result.exitCode === 0 && !removal && (await engine.inspect([name])).containers.get(name)?.running) {
    const code = await afterDetach(options, remove, signals);
    watchdog.release();
    return code;
  }
  if (removal) await removal;
  watchdog.release();
  // SIGKILL that mcpbox didn't send: say who did, or nobody will know why the server vanished.
  if (result.exitCode === 137 && !received && !removal) await explainKill(options, startedAt);

  if (received && removal) return 128 + constants.signals[received];
  if (typeof result.exitCode === 'number') return result.exitCode;
  return 128 + (result.signal ? constants.signals[result.signal] : 0);
}

/**
 * How a signal reaches the server. docker run (and attach) proxy what their CLI receives. Rootless
 * Podman's CLI doesn't, faithfully: proxied, SIGTERM came back as exit 0 and SIGINT as 1 (it ends
 * itself as it forwards), so under Podman the engine signals the container (podman kill), and only
 * a container not created yet gets the signal through its CLI.
 */
function passSignal(options: SuperviseOptions, child: { kill: (signal: NodeJS.Signals) => void }): (signal: NodeJS.Signals) => void {
  if (options.engine.cli !== 'podman') return (signal) => child.kill(signal);
  return (signal) =>
    void options.engine.call(['kill', '--signal', signal, options.name]).then(
      ({ exitCode }) => exitCode !== 0 && child.kill(signal),
      () => child.kill(signal),
    );
}

/**
 * A warm start runs before its image and install volume are confirmed: the engine's stderr is held
 * until they are, then let through; on 'retry' it is dropped and the container removed.
 */
function holdStderrUntilVerified(options: SuperviseOptions, child: EngineProcess, remove: (why: string) => Promise<void>): Promise<'ok' | 'retry'> | undefined {
  const held: Buffer[] = [];
  let verdict: 'ok' | 'retry' | undefined;
  const out = options.stderr ?? process.stderr;
  child.stderr?.on('data', (chunk: Buffer) => (verdict === 'ok' ? out.write(chunk) : verdict === undefined && held.push(chunk)));
  const verified = options.verify?.().then((result) => {
    verdict = result;
    if (result === 'ok') for (const chunk of held.splice(0)) out.write(chunk);
    else void remove(options.holdInput ? 'the standby is not the one this run needs' : 'warm start failed its check');
    return result;
  });
  // The check itself failed (the engine is not answering): it says why; remove quietly, in case.
  verified?.catch(() => options.engine.remove([options.name]).catch(() => {}));
  return verified;
}

/** Copies the client's stdin to the engine when mcpbox must see its end itself; returns the undo. */
/**
 * The session through the relay: stdin → relay → the engine CLI, the CLI's stdout → relay → stdout.
 * stdout stays open (it is mcpbox's); the input's end is still the client's end.
 */
function relayStdio(stdin: NodeJS.ReadableStream, child: EngineProcess, relay: NonNullable<SuperviseOptions['relay']>, onEnd: () => void): () => void {
  if (child.stdin) {
    child.stdin.on('error', () => {}); // EPIPE once the engine has gone; its exit is what counts.
    stdin.pipe(relay.toServer).pipe(child.stdin);
  }
  // A client gone mid-write (EPIPE) ends the session through stdin's end, not a crash.
  relay.stdout.on('error', () => {});
  child.stdout?.pipe(relay.toClient).pipe(relay.stdout, { end: false });
  stdin.once('end', onEnd);
  return () => {
    stdin.unpipe(relay.toServer);
    stdin.off('end', onEnd);
  };
}

function pipeStdin(stdin: NodeJS.ReadableStream, input: EngineProcess['stdin'], onEnd: () => void): () => void {
  if (!input) return () => {};
  input.on('error', () => {}); // EPIPE once the engine has gone; its exit is what counts.
  stdin.pipe(input);
  stdin.once('end', onEnd);
  return () => {
    stdin.unpipe(input);
    stdin.off('end', onEnd);
  };
}

async function explainKill(options: SuperviseOptions, startedAt: Date): Promise<void> {
  const cause = await options.engine.exitCause(options.name, startedAt);
  if (cause === 'oom') {
    options.log.warn(`the server ran out of memory (limit ${options.memory ?? 'unknown'}) and the kernel killed it (exit 137); raise the limit with --memory or the memory setting`);
  } else if (cause === 'killed') {
    options.log.warn('the server was killed from outside mcpbox (docker kill or stop, or the engine restarted): exit 137');
  } else if (cause === 'unreported') {
    options.log.warn(`the server was killed by SIGKILL (exit 137), most likely because it ran out of memory (limit ${options.memory ?? 'unknown'}): Podman doesn't report out-of-memory kills; raise the limit with --memory or the memory setting`);
  }
}

/**
 * Terminal mode: Ctrl-C is the engine CLI's detach key (`--detach-keys ctrl-c`), so the terminal
 * comes back at once and mcpbox sees it; in a raw terminal it would go to the container alone, where
 * a server may ignore it. The server then gets SIGINT and the grace period to exit, then its
 * container is removed; a second Ctrl-C (now an ordinary signal to mcpbox) removes it at once.
 */
async function afterDetach(options: SuperviseOptions, remove: (why: string) => Promise<void>, signals: NodeJS.EventEmitter): Promise<number> {
  const { engine, name, graceMs } = options;
  const exited = (async () => {
    while ((await engine.inspect([name])).containers.get(name)?.running) await new Promise((resolve) => setTimeout(resolve, 200));
  })();
  const target: StopTarget = { exited, signal: (signal) => void engine.call(['kill', '--signal', signal, name]).catch(() => {}), remove };
  const onSignal = () => void remove('second Ctrl-C');
  for (const signal of FORWARDED_SIGNALS) signals.on(signal, onSignal);
  try {
    await stagedStop(target, { graceMs, signal: 'SIGINT', removeWhy: `server still running ${graceMs / 1000} s after Ctrl-C` });
    await exited;
  } finally {
    for (const signal of FORWARDED_SIGNALS) signals.off(signal, onSignal);
  }
  return 128 + constants.signals.SIGINT;
}
