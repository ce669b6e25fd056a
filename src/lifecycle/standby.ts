import { createHmac } from 'node:crypto';
import type { EgressPolicy } from '../egress/policy.js';
import { LABEL } from '../engine/containers.js';
import { runArgv } from '../sandbox/argv.js';
import type { ContainerSpec } from '../sandbox/spec.js';

/**
 * Standby: the next container of a locked server, started (server process running, its modules
 * loaded) before its client asks, so that a warm launch attaches to it instead of starting one. The
 * container start, which no amount of shaving mcpbox's own start can get under, is then paid ahead.
 * This module is the pure part: which spec a standby is for, its name, its launcher, and what the
 * sweep makes of it. src/lifecycle/standby-run.ts starts and claims run's; serve keeps its own
 * (src/serve/standby.ts).
 */

/**
 * The in-container launcher (POSIX sh, as every base image has): starts the server with the
 * container's stdin, and ends it with SIGTERM if no client claims it (SIGUSR1, sent once one has)
 * within the idle time: no host daemon is needed for a standby to go. Signals reach the server as
 * they would without it (tini → this shell → the server), and its exit status is the container's.
 * A background job's stdin is /dev/null unless redirected, so stdin goes through fd 3.
 */
export const STANDBY_LAUNCHER = [
  'idle=$1; shift',
  'exec 3<&0',
  '"$@" 0<&3 3<&- &',
  'pid=$!',
  'exec 3<&- 0</dev/null',
  '(sleep "$idle"; kill -USR2 $$) >/dev/null 2>&1 &',
  'timer=$!',
  "trap 'kill $timer 2>/dev/null; timer=' USR1",
  "trap '[ -n \"$timer\" ] && kill -TERM $pid 2>/dev/null' USR2",
  'for s in TERM INT HUP; do trap "kill -$s \\$pid 2>/dev/null" $s; done',
  // A trapped signal interrupts wait (status > 128) while the server runs on: wait again.
  'while :; do',
  '  wait $pid; code=$?',
  '  if [ $code -gt 128 ] && kill -0 $pid 2>/dev/null; then continue; fi',
  '  if [ $code -gt 128 ]; then wait $pid; c=$?; [ $c -ne 127 ] && code=$c; fi',
  '  break',
  'done',
  '[ -n "$timer" ] && kill $timer 2>/dev/null',
  'exit $code',
].join('\n');

/** Labels that differ between two runs of the very same server: who started it and when. */
const PER_RUN_LABELS: readonly string[] = [LABEL.ownerPid, LABEL.startedAt, LABEL.role, LABEL.standbyIdle, LABEL.egressRun];

/**
 * What a standby must match, as one keyed hash: the full `docker run` argv of the server's spec (image
 * name, the locked tree and its hashes, mounts, env names, network, limits, user, labels) without its
 * name and per-run labels; every value it is given (forwarded ones too, so values never sit in a label:
 * the hash is keyed with the user's secret); its egress policy; the engine CLI. The egress token
 * differs per run and is left out: its policy is in. The image's and the install volume's identity
 * are checked when it is claimed (an image rebuilt under the same name is a mismatch).
 */
export function standbyKey(spec: ContainerSpec, egress: EgressPolicy, engine: string, secret: Buffer): string {
  const neutral: ContainerSpec = {
    ...spec,
    name: 'standby',
    labels: Object.fromEntries(Object.entries(spec.labels).filter(([key]) => !PER_RUN_LABELS.includes(key))),
    env: spec.env.map((v) => (v.name === 'MCPBOX_EGRESS_TOKEN' ? { ...v, value: '' } : v)),
  };
  const material = JSON.stringify({ argv: runArgv(neutral, 'env-file'), env: neutral.env, egress: { mode: egress.mode, hosts: [...egress.hosts].sort() }, engine });
  return createHmac('sha256', secret).update(`mcpbox standby v1\0${material}`).digest('hex').slice(0, 24);
}

/** At most one standby per spec: the engine refuses a second container of the same name. */
export function standbyName(key: string): string {
  return `mcpbox-standby-${key}`;
}

/** The standby of a spec: the same container under the launcher, labelled as one, named `name`. */
export function standbySpec(spec: ContainerSpec, name: string, idleSeconds: number, egressRun: string | undefined): ContainerSpec {
  return {
    ...spec,
    name,
    labels: { ...spec.labels, [LABEL.role]: 'standby', [LABEL.standbyIdle]: String(idleSeconds), ...(egressRun && { [LABEL.egressRun]: egressRun }) },
    entrypoint: 'sh',
    args: ['-c', STANDBY_LAUNCHER, 'mcpbox-standby', String(idleSeconds), spec.entrypoint, ...spec.args],
  };
}

/**
 * `docker create` rather than `run --detach`: a created container that was meant to be attached
 * keeps StdinOnce, so the client's end of input still ends the server's once it is attached.
 */
export function standbyCreateArgv(spec: ContainerSpec, envFile: string | undefined): string[] {
  const [, ...rest] = runArgv(spec, envFile);
  return ['create', ...rest];
}

/**
 * A standby still waiting that the sweep removes: one that never started (its starter was killed
 * between create and start), and one well past its idle time (its own timer should have ended it:
 * the engine was paused, say). A claimed one is judged by its owner, like any server.
 */
export function staleStandby(state: string, startedAt: Date | undefined, idleSeconds: number, now: Date): boolean {
  if (!startedAt) return state !== 'running';
  const age = now.getTime() - startedAt.getTime();
  if (state !== 'running') return age > 60_000;
  return age > (idleSeconds + 120) * 1000;
}

/** A claimed standby is used only well inside its idle time, so its own timer can't end it mid-claim. */
export function freshEnough(startedAt: Date | undefined, idleSeconds: number, now: Date): boolean {
  const margin = Math.min(15, idleSeconds / 4);
  return startedAt !== undefined && now.getTime() - startedAt.getTime() < (idleSeconds - margin) * 1000;
}
