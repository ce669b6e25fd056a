/** Label keys; `managed` marks a container (or volume) as mcpbox's. */
export const LABEL = {
  managed: 'dev.mcpbox.managed',
  ownerPid: 'dev.mcpbox.owner-pid',
  ownerHost: 'dev.mcpbox.owner-host',
  startedAt: 'dev.mcpbox.started-at',
  runner: 'dev.mcpbox.runner',
  package: 'dev.mcpbox.package',
  version: 'dev.mcpbox.version',
  /** 'install' for the containers that install packages (and for install volumes), 'data' for data volumes, 'egress' for the proxy, 'standby' for a server waiting for its client, 'copy' for a --copy-in volume (and its helper); absent for servers. */
  role: 'dev.mcpbox.role',
  /** The invoking host user a volume belongs to (data volumes: `mcpbox data` lists yours). */
  owner: 'dev.mcpbox.owner',
  /** mcpbox serve: the server name and the HTTP session a container serves. */
  served: 'dev.mcpbox.served',
  session: 'dev.mcpbox.session',
  /** A standby (src/lifecycle/standby.ts): seconds it waits for a client before it ends itself. */
  standbyIdle: 'dev.mcpbox.standby-idle',
  /** A standby's egress run id: the session that claims it follows the proxy's log for it. */
  egressRun: 'dev.mcpbox.egress-run',
} as const;

/**
 * A standby once a session has claimed it (renamed it: atomic, so two launches never share one). Its
 * labels can't change, so its owner is in its name: the sweep, ps and the tests read it from there.
 */
export function claimedName(sessionName: string, pid: number, at: Date): string {
  return `${sessionName}-standby-by-${pid}-${Math.floor(at.getTime() / 1000).toString(36)}`;
}

const CLAIMED = /-standby-by-(\d+)-([0-9a-z]+)$/;

/** The owner of a claimed standby, from its name; undefined for one still waiting. */
export function claimOf(name: string): { pid: number; at: Date } | undefined {
  const match = CLAIMED.exec(name);
  return match ? { pid: Number(match[1]), at: new Date(parseInt(match[2]!, 36) * 1000) } : undefined;
}


/**
 * mcpbox's containers as `docker ps` reports them, and which are stale: owned by an mcpbox process on
 * this host that is gone. Pure: liveness and process start times are passed in.
 */
export interface ManagedContainer {
  readonly name: string;
  readonly state: string;
  readonly runner: string;
  readonly package: string;
  readonly ownerPid: number;
  readonly ownerHost: string;
  /** From the started-at label: when mcpbox started it. */
  readonly startedAt: Date | undefined;
  /** 'install', 'egress' (the proxy), 'standby' (a server waiting for a client), or '' for a server (a claimed standby too). */
  readonly role: string;
  /** A standby's idle time in seconds (src/lifecycle/standby.ts). */
  readonly standbyIdle?: number;
}

/** `docker ps --format` template: one tab-separated line per container. Podman's ps has no .Label: it indexes .Labels. */
export function psFormat(cli: 'docker' | 'podman'): string {
  const label = (name: string) => (cli === 'podman' ? `{{index .Labels "${name}"}}` : `{{.Label "${name}"}}`);
  // Podman's .State is the human status ("Up 5 minutes"); the machine one is under .ListContainer.
  return ['{{.Names}}', cli === 'podman' ? '{{.ListContainer.State}}' : '{{.State}}', ...[LABEL.runner, LABEL.package, LABEL.ownerPid, LABEL.ownerHost, LABEL.startedAt, LABEL.role, LABEL.standbyIdle].map(label)].join('\t');
}

export function parsePs(stdout: string): ManagedContainer[] {
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [name = '', state = '', runner = '', pkg = '', pid = '', host = '', started = '', role = '', idle = ''] = line.split('\t');
      const startedAt = started ? new Date(started) : undefined;
      const container = {
        name,
        state,
        runner,
        package: pkg,
        ownerPid: Number(pid) || 0,
        ownerHost: host,
        startedAt: startedAt && !Number.isNaN(startedAt.getTime()) ? startedAt : undefined,
        role,
      };
      if (role !== 'standby') return container;
      // A claimed standby is its session's server: owned by the process its name says, since the claim.
      const claim = claimOf(name);
      return claim ? { ...container, role: '', ownerPid: claim.pid, startedAt: claim.at } : { ...container, standbyIdle: Number(idle) || 0 };
    });
}

export interface OwnerProbe {
  readonly host: string;
  readonly isAlive: (pid: number) => boolean;
  /** When the process started, where the platform tells (Linux); undefined otherwise. */
  readonly startTime: (pid: number) => Date | undefined;
}

export type Ownership = 'alive' | 'gone' | 'elsewhere';

/**
 * 'elsewhere': started by mcpbox on another host sharing this engine; its owner can't be checked.
 * A live pid that started after the container did is a reused pid: the owner is gone.
 */
export function ownership(container: ManagedContainer, probe: OwnerProbe): Ownership {
  if (container.ownerHost !== probe.host) return 'elsewhere';
  if (container.ownerPid <= 0 || !probe.isAlive(container.ownerPid)) return 'gone';
  const started = probe.startTime(container.ownerPid);
  // One second of slack: the label is written after the process started, clocks round.
  if (started && container.startedAt && started.getTime() > container.startedAt.getTime() + 1000) return 'gone';
  return 'alive';
}

export function formatUptime(seconds: number): string {
  if (seconds < 60) return `${Math.floor(seconds)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(Math.floor(seconds % 60)).padStart(2, '0')}s`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(seconds / 86_400)}d${String(Math.floor((seconds % 86_400) / 3600)).padStart(2, '0')}h`;
}
