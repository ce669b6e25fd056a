import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type Settings, standbyIdleSeconds } from '../config/settings.js';
import type { EgressPolicy } from '../egress/policy.js';
import { egressKey } from '../egress/proxy.js';
import { claimedName, LABEL } from '../engine/containers.js';
import type { DockerEngine } from '../engine/docker.js';
import type { InstallRecord } from '../install/lock.js';
import { engineLaunch } from '../sandbox/argv.js';
import type { ContainerSpec } from '../sandbox/spec.js';
import { freshEnough, standbyCreateArgv, standbyKey, standbyName, standbySpec } from './standby.js';

/**
 * Starting standbys and claiming them (the pure part is src/lifecycle/standby.ts). A standby is
 * left by a separate mcpbox process, started when a session ends, so the client that closed the
 * session doesn't wait for it: the same command line in the same directory with the same
 * environment, so its plan is the one the next launch makes (and the key says whether it is).
 */

/** The variable that makes `mcpbox run` leave a standby instead of serving a client (=1). */
export const LEAVE_STANDBY = 'MCPBOX_LEAVE_STANDBY';

/**
 * Set by `mcpbox pull` on the runs it starts for its clients' entries: the lock keys (one per line)
 * of the servers it prepared. A run leaves a standby only for those.
 */
export const STANDBY_FOR = 'MCPBOX_STANDBY_FOR';

/**
 * Whether runs of this server use standbys: on unless turned off (setting, package policy,
 * --no-standby), for an MCP client's session (a terminal gets a fresh container), with Docker:
 * Podman 4's attach answers 0 whatever the server's exit status was, which a client must see, and
 * writes a stray newline to stdout as the server ends. serve's standbys (src/serve/standby.ts) go by
 * the same rule.
 */
export function standbyWanted(settings: Pick<Settings, 'standby'>, engine: Pick<DockerEngine, 'cli'>, session: { client: boolean; tty: boolean }): boolean {
  return settings.standby !== false && engine.cli === 'docker' && session.client && !session.tty;
}

/** What a claim and a standby share: the server's spec and what identifies it. */
export interface StandbyFor {
  readonly engine: DockerEngine;
  readonly spec: ContainerSpec;
  readonly egress: EgressPolicy;
  readonly stateDir: string;
}

const keyOf = (input: StandbyFor) => standbyKey(input.spec, input.egress, input.engine.cli, egressKey(input.stateDir));

/**
 * Creates and starts the standby of a spec (`docker create` then `start`: see standbyCreateArgv).
 * One of the same spec already there is left as it is: the engine refuses the name. Says what it did.
 */
export async function leaveStandby(input: StandbyFor & { engineEnv: Readonly<Record<string, string>>; settings: Settings; egressRun: string | undefined }): Promise<string> {
  const spec = standbySpec(input.spec, standbyName(keyOf(input)), standbyIdleSeconds(input.settings), input.egressRun);
  const launch = engineLaunch(spec, input.engineEnv, (lines) => input.engine.envFile(lines), standbyCreateArgv);
  const created = await input.engine.runDetached(launch.argv, launch.envFile, launch.env);
  const firstLine = (text: string) => text.trim().split('\n')[0];
  if (created.exitCode !== 0) return /already in use|Conflict/i.test(created.stderr) ? `one waits already (${spec.name})` : `failed: ${firstLine(created.stderr)}`;
  const started = await input.engine.call(['start', spec.name]);
  if (started.exitCode !== 0) {
    await input.engine.remove([spec.name]).catch(() => {});
    return `failed: ${firstLine(started.stderr)}`;
  }
  return `started ${spec.name}`;
}

export interface ClaimedStandby {
  /** The container's name from now on (the owner is in it: claimedName). */
  readonly name: string;
  /** Checks what the key can't (the image's and the install volume's identity, its age); sends the launcher its claim. */
  verify(): Promise<'ok' | 'retry'>;
  /** The egress run id in its token, once verified. */
  egressRun(): string | undefined;
  /** Why verify() said 'retry'. */
  why(): string;
}

/**
 * Takes the standby of this spec, if one waits: renaming it is the claim (atomic: of two launches
 * at once, one gets it). Nothing is read from the client until verify() says 'ok'.
 */
export async function claimStandby(input: StandbyFor & { sessionName: string; pid: number; image: string; install: Pick<InstallRecord, 'volume' | 'volumeId'> }): Promise<ClaimedStandby | undefined> {
  const { engine } = input;
  const name = claimedName(input.sessionName, input.pid, new Date());
  if (!(await engine.rename(standbyName(keyOf(input)), name).catch(() => false))) return undefined;
  let run: string | undefined;
  let why = '';
  return {
    name,
    egressRun: () => run,
    why: () => why,
    verify: async () => {
      const seen = await engine.inspect([name, input.image, input.install.volume]);
      const container = seen.containers.get(name);
      const labels = container?.labels ?? {};
      const started = labels[LABEL.startedAt] ? new Date(labels[LABEL.startedAt]!) : undefined;
      if (container?.running !== true) why = 'it had ended';
      else if (container.image !== seen.imageIds.get(input.image)) why = `its image is not what ${input.image} is now`;
      else if (seen.volumeIds.get(input.install.volume) !== input.install.volumeId) why = `the install volume ${input.install.volume} was recreated since it started`;
      else if (!freshEnough(started, Number(labels[LABEL.standbyIdle]) || 0, new Date())) why = 'it was about to reach its idle time';
      if (why) return 'retry';
      run = labels[LABEL.egressRun];
      // Its own idle timer stops: it serves a client now. Off the way to the first byte.
      void engine.call(['kill', '--signal', 'USR1', name]).catch(() => {});
      return 'ok';
    },
  };
}

/**
 * Runs this very command again, detached, with LEAVE_STANDBY set: it plans as this run did and
 * leaves a standby. Its stdin is a pipe (as a client's is: the plan must be a client's); what it
 * says goes to standby.log in the state directory.
 */
export function respawnToLeaveStandby(argv: readonly string[], cwd: string, env: NodeJS.ProcessEnv, stateDir: string): void {
  try {
    mkdirSync(stateDir, { recursive: true });
    const file = join(stateDir, 'standby.log');
    // A line or two per session: started afresh once it passes a megabyte.
    const size = (() => {
      try {
        return statSync(file).size;
      } catch {
        return 0;
      }
    })();
    const log = openSync(file, size > 1024 ** 2 ? 'w' : 'a', 0o600);
    const child = spawn(argv[0]!, argv.slice(1), { cwd, env: { ...env, [LEAVE_STANDBY]: '1' }, detached: true, stdio: ['pipe', 'ignore', log], windowsHide: true });
    closeSync(log);
    child.on('error', () => {});
    child.stdin?.end();
    child.unref();
  } catch {
    // A standby is a speed-up: never a reason for a session to fail.
  }
}
