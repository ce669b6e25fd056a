import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { OwnerProbe } from '../engine/containers.js';

/** Liveness and start times of host processes, for telling whether a container's owner is gone. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, it just isn't ours.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let bootTime: number | undefined;

/** Linux: /proc/<pid>/stat field 22 (start time in clock ticks since boot) + boot time. */
export function startTime(pid: number): Date | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    bootTime ??= Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]) * 1000;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]);
    if (!bootTime || !Number.isFinite(ticks)) return undefined;
    // USER_HZ is 100 on every Linux architecture mcpbox runs on.
    return new Date(bootTime + (ticks / 100) * 1000);
  } catch {
    return undefined;
  }
}

export function hostProbe(): OwnerProbe {
  return { host: hostname(), isAlive, startTime };
}
