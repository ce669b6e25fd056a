import { claimedName } from '../engine/containers.js';
import type { DockerEngine } from '../engine/docker.js';
import { freshEnough } from '../lifecycle/standby.js';
import type { ContainerChannel } from './channel.js';

/**
 * serve's standby of one served server (run's are src/lifecycle/standby.ts): the next session's
 * container, started ahead with its server already waiting on stdin, so a session starts without a
 * container start on its way. serve holds it itself (its `docker run -i`, not yet connected), so a
 * claim hands it to the session at once; the rename that makes it the session's (run's claim too:
 * the sweep, `ps` and the tests then see a server owned by serve) and the signal that stops its idle
 * timer follow in the background. At most one waits per server; it is claimable once the engine
 * says it runs. It ends by its own timer after the idle time, and serve leaves a new one then; one
 * that ends sooner (it failed, or `mcpbox prune` took it) is not replaced until a session starts.
 */
export interface StandbyContainer {
  readonly channel: ContainerChannel;
  /** Who its server's egress and stderr lines are said to be from: "standby" until a session claims it. */
  readonly holder: { session: string };
}

export interface ServeStandbyInit {
  readonly engine: Pick<DockerEngine, 'call' | 'inspect'>;
  /** Starts a standby container (src/serve/containers.ts: the session's spec under the standby launcher). */
  readonly start: () => StandbyContainer;
  readonly idleSeconds: number;
  /** serve's pid: a claimed standby is named as its (claimedName). */
  readonly ownerPid: number;
  readonly graceMs: number;
  readonly say: (event: string, text: string) => void;
}

interface Waiting extends StandbyContainer {
  readonly startedAt: Date;
  ready: boolean;
}

export class ServeStandby {
  readonly #init: ServeStandbyInit;
  #waiting: Waiting | undefined;
  /** Standbys discarded (too near their idle time) and still going: serve's shutdown waits for them too. */
  readonly #discarding = new Set<Promise<void>>();
  #closed = false;

  constructor(init: ServeStandbyInit) {
    this.#init = init;
  }

  /** Starts one unless one waits (or serve is stopping). */
  leave(): void {
    if (this.#waiting || this.#closed) return;
    const started = this.#init.start();
    const waiting: Waiting = { ...started, startedAt: new Date(), ready: false };
    this.#waiting = waiting;
    void this.#whenRunning(waiting);
    void waiting.channel.exited.then((code) => this.#ended(waiting, code));
  }

  /**
   * The waiting standby, now the session's: undefined when none is ready (a starting one stays for
   * the next session). One too close to its idle time goes, and a new one is left.
   */
  claim(session: string): StandbyContainer | undefined {
    const waiting = this.#waiting;
    if (!waiting?.ready || !waiting.channel.running) return undefined;
    this.#waiting = undefined;
    const now = new Date();
    if (!freshEnough(waiting.startedAt, this.#init.idleSeconds, now)) {
      const going = waiting.channel.close(this.#init.graceMs);
      this.#discarding.add(going);
      void going.finally(() => this.#discarding.delete(going));
      this.leave();
      return undefined;
    }
    const { engine } = this.#init;
    const from = waiting.channel.name;
    const name = claimedName(from, this.#init.ownerPid, now);
    const renamed = engine.call(['rename', from, name]).then(async (result) => {
      if (result.exitCode !== 0) throw new Error(result.stderr.trim().split('\n')[0]);
      // Its own idle timer stops: it serves a client now.
      await engine.call(['kill', '--signal', 'USR1', name]);
    });
    renamed.catch((error: Error) => this.#init.say('standby-error', `could not claim the standby ${from} for session ${session}: ${error.message}`));
    waiting.channel.renamed(name, renamed);
    waiting.holder.session = session;
    this.leave();
    return waiting;
  }

  /** serve stops: the waiting one goes (its end of input, as a session's container). */
  async close(): Promise<void> {
    this.#closed = true;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    await Promise.all([waiting?.channel.close(this.#init.graceMs), ...this.#discarding]);
  }

  /** Claimable once the engine has it running (before that, a rename would find no container). */
  async #whenRunning(waiting: Waiting): Promise<void> {
    const name = waiting.channel.name;
    for (let tries = 0; tries < 240 && waiting.channel.running; tries++) {
      const seen = await this.#init.engine.inspect([name]).catch(() => undefined);
      if (seen?.containers.get(name)?.running) {
        waiting.ready = true;
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  #ended(waiting: Waiting, code: unknown): void {
    if (this.#waiting !== waiting) return;
    this.#waiting = undefined;
    const lived = (Date.now() - waiting.startedAt.getTime()) / 1000;
    if (lived >= this.#init.idleSeconds - 1) {
      this.#init.say('standby-expired', `the standby ${waiting.channel.name} reached its idle time (${this.#init.idleSeconds} s): leaving a new one`);
      this.leave();
    } else {
      this.#init.say('standby-ended', `the standby ${waiting.channel.name} ended after ${Math.round(lived)} s (exit ${String(code)}): the next session starts its own container`);
    }
  }
}
