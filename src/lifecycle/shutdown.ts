/**
 * The one staged shutdown, as the MCP SDK's stdio transport does it: the server's input ends, it gets
 * the grace period to exit, then SIGTERM and another grace period, then its container is removed.
 * `run` starts it when the client closes stdin (the input has already ended) or passes a signal on;
 * serve starts it when a session ends (it ends the input itself).
 */
export interface StopTarget {
  /** Settles when the server has exited. */
  readonly exited: Promise<unknown>;
  readonly signal: (signal: NodeJS.Signals) => void;
  /** Removes the container outright; `why` says why, for whoever logs it. */
  readonly remove: (why: string) => Promise<void>;
}

export interface StopStages {
  readonly graceMs: number;
  /** End the server's input first (serve); absent when the client already did (run). */
  readonly endInput?: () => void;
  /** A signal mcpbox received: passed on at once, instead of ending input and waiting for SIGTERM. */
  readonly signal?: NodeJS.Signals;
  /** Called just before SIGTERM goes out, once the input's grace period has passed. */
  readonly onTerm?: () => void;
  /** Why the container is removed when even that didn't end it. */
  readonly removeWhy: string;
}

export async function stagedStop(target: StopTarget, stages: StopStages): Promise<void> {
  if (stages.signal) {
    target.signal(stages.signal);
  } else {
    stages.endInput?.();
    if (await exitedWithin(target.exited, stages.graceMs)) return;
    stages.onTerm?.();
    target.signal('SIGTERM');
  }
  if (await exitedWithin(target.exited, stages.graceMs)) return;
  await target.remove(stages.removeWhy);
}

/** Whether `exited` settles within `ms`; the timer goes as soon as it does. */
export function exitedWithin(exited: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  return Promise.race([exited.then(() => true, () => true), timeout]).finally(() => clearTimeout(timer));
}
