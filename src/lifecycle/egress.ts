import { appendFileSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Settings } from '../config/settings.js';
import { EgressAccess } from '../egress/access.js';
import { canonicalEntry, effectiveEgress, type EgressPolicy } from '../egress/policy.js';
import type { EgressEvent } from '../egress/proxy.js';
import { learnedHosts, recordLearned } from '../install/learned.js';
import type { InstallRequest } from '../install/lock.js';
import type { Logger } from '../log.js';
import { isRegistryOption, RUNNERS, type RunnerSpec } from '../runners/table.js';
import { type RunPlan, respec } from '../sandbox/plan.js';

/**
 * A server's egress at run time: the policy it gets (its settings, --egress, a built-in default, what
 * it learned), the plan with that policy applied (no network; or the proxy's socket, a forwarder and
 * a signed grant), and, while it runs, what the proxy decides about it: blocked hosts reported on
 * stderr with the fix, hosts learned in its first session recorded, everything in the audit log.
 */
export interface ServerEgress {
  readonly policy: EgressPolicy;
  readonly plan: RunPlan;
  /** Whether it goes through the proxy (learn, allow), which must then run. */
  readonly proxied: boolean;
  /**
   * Follows the proxy from now on (after `delayMs`: the engine CLI processes that asks for stay off
   * the way to the server's first byte; the log is read from now on all the same); the function it
   * returns stops following and, when the server did run (`ran`), records what its session learned.
   * `runOf`: the run id the server's token really carries, when it is not this plan's (a standby's).
   */
  watch(delayMs?: number, runOf?: () => string | undefined): (ran: boolean) => Promise<void>;
  /** The run id in this plan's egress token (absent when it has none). */
  readonly run?: string;
}

export interface ServerEgressInput {
  readonly plan: RunPlan;
  readonly settings: Settings;
  /** The proxy; a dry run has only the name of its socket volume (no key made, nothing followed). */
  readonly access: EgressAccess | { readonly volume: string };
  readonly locked: { readonly request: InstallRequest; readonly lockPath: string } | undefined;
  readonly lockPath: string;
  readonly stateDir: string;
  readonly log: Logger;
}

export function serverEgress(input: ServerEgressInput): ServerEgress {
  const { plan, log } = input;
  const invocation = plan.input.invocation;
  const packages = invocation.packages.map((p) => p.name);
  const server = input.locked?.request.name ?? packages[0] ?? invocation.runner;
  const places = { lockPath: input.lockPath, stateDir: input.stateDir };
  const policy = effectiveEgress({
    setting: input.settings.egress,
    network: input.settings.network,
    packages,
    learned: learnedHosts(places, input.locked?.request, packages),
  });
  const none = { policy, proxied: false, watch: () => async () => {} };
  if (policy.mode === 'none') return { ...none, plan: respec(plan, { policy: { ...plan.input.policy, network: 'none' } }) };
  if (policy.mode === 'open') return { ...none, plan };

  // What isn't locked resolves its packages at run time: its registries (the ones it names too) come
  // with whatever it may reach.
  const runner: RunnerSpec = RUNNERS[invocation.runner];
  const named = invocation.options.filter((o) => isRegistryOption(invocation.runner, o.name)).flatMap((o) => urlHost(o.value));
  const registries: readonly string[] = input.locked ? [] : [...runner.registries, ...named];
  const hosts = policy.mode === 'allow' ? [...new Set([...policy.hosts, ...registries])] : [];
  const access = input.access instanceof EgressAccess ? input.access : undefined;
  const grant = access ? access.grant({ server, mode: policy.mode, hosts }) : { volume: input.access.volume, token: '', run: 'dry-run' };
  const egressPlan = respec(plan, { egress: { volume: grant.volume, token: grant.token } });
  return {
    policy,
    plan: egressPlan,
    proxied: true,
    run: grant.run,
    watch: (delayMs = 0, runOf = () => undefined) => {
      const learned = new Set<string>();
      if (!access) return async () => {};
      const since = new Date();
      let follower: { stop(): void } | undefined;
      let stopped = false;
      const onEvent = (event: EgressEvent) => {
        audit(input.stateDir, event);
        const entry = canonicalEntry(event.host, event.port);
        if (event.action === 'refused') {
          log.warn(`blocked ${server} → ${event.host}:${event.port} (${event.reason ?? 'refused'}; allow with: mcpbox allow ${server} ${entry})`);
        } else if (policy.mode === 'learn' && !learned.has(entry) && !registries.includes(entry)) {
          learned.add(entry);
          log.info(`learning egress for ${server}: ${entry}`);
        }
      };
      // Followed once the proxy runs (a first run starts it); its log from `since` on loses nothing.
      const timer = setTimeout(
        () =>
          void access.ensure().then(
            () => (follower = stopped ? undefined : access.follow(runOf() ?? grant.run, since, onEvent)),
            (error: Error) => log.warn(`the egress proxy could not start (${error.message}): the server has no network`),
          ),
        delayMs,
      );
      return async (ran) => {
        clearTimeout(timer);
        if (!follower) {
          // A session shorter than the delay: its decisions are read now, from its start.
          follower = access.follow(runOf() ?? grant.run, since, onEvent);
          await new Promise((resolve) => setTimeout(resolve, 400));
        } else if (policy.mode === 'learn') {
          // The proxy's last decisions reach its log a moment after the server's last connection.
          await new Promise((resolve) => setTimeout(resolve, 150));
        }
        stopped = true;
        follower?.stop();
        if (policy.mode !== 'learn' || !ran) return;
        recordLearned(places, input.locked?.request, packages, [...learned]);
        const list = learned.size > 0 ? [...learned].join(', ') : 'no host';
        log.note(`learned egress for ${server}: ${list}; from its next session only that is allowed (mcpbox allow ${server} HOST adds more)`);
      };
    },
  };
}

/** An index or registry URL's host as an egress entry (`https://npm.corp:8443/x` → npm.corp:8443). */
function urlHost(value: string | undefined): string[] {
  try {
    const url = new URL(value ?? '');
    return url.protocol === 'https:' || url.protocol === 'http:' ? [canonicalEntry(url.hostname.replace(/^\[|\]$/g, ''), Number(url.port || (url.protocol === 'https:' ? 443 : 80)))] : [];
  } catch {
    return [];
  }
}

const AUDIT_LIMIT = 1024 * 1024;

/** One JSON line per decision in the state dir's egress.log (kept to about a megabyte, one older file). */
export function audit(stateDir: string, event: EgressEvent): void {
  const file = join(stateDir, 'egress.log');
  try {
    mkdirSync(stateDir, { recursive: true });
    try {
      if (statSync(file).size > AUDIT_LIMIT) renameSync(file, `${file}.1`);
    } catch {
      // no log yet
    }
    const { t, server, host, port, action, reason } = event;
    appendFileSync(file, `${JSON.stringify({ t, server, host, port, action, ...(reason && { reason }) })}\n`, { mode: 0o600 });
  } catch {
    // The audit log never stops a server.
  }
}
