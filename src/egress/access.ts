import { randomBytes } from 'node:crypto';
import type { ContainerState, DockerEngine } from '../engine/docker.js';
import { type EgressGrant, mintToken } from './policy.js';
import { egressKey, egressName, egressVolume, ensureProxy, type EgressEvent, followEgress, prepareSocketVolume, type ProxySite, socketVolumePrepared } from './proxy.js';

/**
 * What a command needs of the egress proxy: that it runs (started once, however many containers
 * ask), a signed grant per container, and its decisions about a container as they happen.
 */
export class EgressAccess {
  readonly #site: ProxySite;
  #ready: Promise<void> | undefined;

  constructor(site: ProxySite) {
    this.#site = site;
  }

  get engine(): DockerEngine {
    return this.#site.engine;
  }

  /** The volume that holds the proxy's socket. */
  get volume(): string {
    return egressVolume(this.#site.owner, egressKey(this.#site.stateDir));
  }

  /** The proxy, running; `known` is its state when the caller inspected it already. */
  ensure(known?: ContainerState): Promise<void> {
    this.#ready ??= ensureProxy(this.#site, known).catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    return this.#ready;
  }

  /**
   * Before a server that uses the proxy starts: its socket volume, prepared once per key (a file in
   * the state dir says so, so a warm start asks no engine).
   */
  async prepareSocket(): Promise<void> {
    if (!socketVolumePrepared(this.#site.stateDir, this.volume)) await prepareSocketVolume(this.#site);
  }

  /** What a container's spec needs (src/sandbox/spec.ts, ContainerInput.egress) for this grant. */
  grant(grant: Omit<EgressGrant, 'run'> & { run?: string }): { volume: string; token: string; run: string } {
    const run = grant.run ?? randomBytes(6).toString('hex');
    const key = egressKey(this.#site.stateDir);
    return { volume: egressVolume(this.#site.owner, key), token: mintToken(key, { ...grant, run }), run };
  }

  follow(run: string | undefined, since: Date, onEvent: (event: EgressEvent) => void): { stop(): void } {
    return followEgress(this.#site.engine, egressName(this.#site.owner, egressKey(this.#site.stateDir)), since, run, onEvent);
  }
}
