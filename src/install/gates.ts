import type { SupplyGates } from '../config/settings.js';
import type { LockEntry } from './lock.js';

/**
 * The supply-chain gates of a first install (and of every refresh): hijacked versions, typosquats and
 * unsigned trees are refused before anything is installed. The checks that need the registry run in
 * the install container (images/scripts/npm-gate.cjs, uv-gate.py); this module decides what they are
 * asked and says what they found. Pure.
 *
 * Release-age cooldown: an unpinned spec resolves, for the package and its whole tree, to what the
 * registry served `minReleaseAge` ago (npm --before, uv --exclude-newer): hijacked versions are
 * usually found and pulled within hours to days. An exact pin is honoured as written; when it is
 * younger than the cooldown the cutoff moves to just after its release, so its dependencies resolve
 * as of then.
 *
 * Provenance policy (npm): `off` checks nothing; `warn` (the default) refuses invalid registry
 * signatures and reports unsigned packages and servers without provenance; `require` refuses those
 * too, and a registry that serves no signing keys.
 */
/** 72 → "3 days", 5 → "5 h", 0.5 → "30 min". */
export function formatAge(hours: number): string {
  if (hours >= 48) return `${Math.round(hours / 24)} days`;
  if (hours === 24) return '1 day';
  if (hours >= 1) return `${Math.round(hours)} h`;
  return `${Math.max(1, Math.round(hours * 60))} min`;
}

/** What the install container is told: the cutoff (when the cooldown is on), the policy, the requested names. */
export function gateEnv(names: readonly string[], gates: SupplyGates, now: Date): Record<string, string> {
  const env: Record<string, string> = { MCPBOX_PROVENANCE: gates.provenance, MCPBOX_GATE_NAMES: names.join(' ') };
  if (gates.minReleaseAgeHours > 0) env.MCPBOX_CUTOFF = new Date(now.getTime() - gates.minReleaseAgeHours * 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return env;
}

/** What the gate scripts reported (install-common.sh: the MCPBOX-GATE line). */
export interface GateReport {
  readonly times: {
    readonly cutoff: string;
    readonly before: string;
    readonly packages: readonly { name: string; spec: string; pinned?: string; newest?: string; time?: string; missing?: boolean }[];
  } | null;
  readonly verify: SignatureCheck | null;
}

/** npm-gate.cjs verify: the registry's signatures over the tree, and which packages carry provenance. */
export interface SignatureCheck {
  /** Signing keys the registry served (0: it serves none, so nothing could be verified). */
  readonly keys: number;
  readonly packages: number;
  readonly verified: number;
  readonly unsigned: readonly string[];
  readonly invalid: readonly string[];
  /** name@version of packages with a provenance attestation. */
  readonly attested: readonly string[];
}

/** What the lock records of the gates: the cutoff the tree was resolved at, and the signature check. */
export type LockVerification = Pick<LockEntry, 'resolvedBefore' | 'signatures'>;

export function lockVerification(report: GateReport | undefined, requested: readonly string[]): LockVerification {
  const out: { resolvedBefore?: string; signatures?: LockEntry['signatures'] } = {};
  if (report?.times) out.resolvedBefore = report.times.before;
  const check = report?.verify;
  if (check) {
    out.signatures = {
      status: check.keys === 0 ? 'unavailable' : check.invalid.length > 0 ? 'invalid' : check.unsigned.length > 0 ? 'partial' : 'verified',
      verified: check.verified,
      packages: check.packages,
      provenance: requested.filter((name) => check.attested.some((id) => id.slice(0, id.lastIndexOf('@')) === name)),
    };
  }
  return out;
}

export interface GateMessage {
  readonly text: string;
  /** warn: said even where progress is quiet (pull without a terminal); note: at a terminal. */
  readonly level: 'warn' | 'note';
}

/**
 * The lines the user reads on stderr about what the gates did: a newer version held back, a pin
 * younger than the cooldown, and (policy warn) what could not be verified. `resolved` maps each
 * requested name to the version installed.
 */
export function gateMessages(report: GateReport | undefined, resolved: ReadonlyMap<string, string>, gates: SupplyGates, now: Date): GateMessage[] {
  const lines: GateMessage[] = [];
  const say = (text: string, level: GateMessage['level'] = 'warn') => lines.push({ text, level });
  const policy = `minReleaseAge ${formatAge(gates.minReleaseAgeHours)}`;
  const age = (time: string) => formatAge(Math.max(0, now.getTime() - Date.parse(time)) / 3_600_000);
  for (const p of report?.times?.packages ?? []) {
    const got = resolved.get(p.name);
    if (p.pinned && p.time && Date.parse(p.time) > Date.parse(report!.times!.cutoff)) {
      say(`${p.name}@${p.pinned} is ${age(p.time)} old, younger than ${policy}: installing it as pinned (its dependencies as of its release)`);
    } else if (p.newest && p.time && got && got !== p.newest && Date.parse(p.time) > Date.parse(report!.times!.cutoff)) {
      say(`${p.name} ${p.newest} is ${age(p.time)} old; using ${got} (${policy})`);
    }
  }
  const check = report?.verify;
  if (check && gates.provenance === 'warn') {
    // A mirror that serves no keys would say so on every install: a note (shown at a terminal), not a warning.
    if (check.keys === 0) say('the registry serves no signing keys: registry signatures were not checked (provenance policy warn)', 'note');
    else if (check.unsigned.length > 0) say(`${check.unsigned.length} of ${check.packages} packages carry no registry signature (${check.unsigned.slice(0, 3).join(', ')}${check.unsigned.length > 3 ? ', …' : ''})`);
    const requested = [...resolved.keys()];
    const bare = requested.filter((name) => !check.attested.some((id) => id.slice(0, id.lastIndexOf('@')) === name));
    if (check.keys > 0 && bare.length > 0) say(`${bare.join(', ')}: no provenance attestation (built where, from what, is not attested)`);
  }
  return lines;
}

/** The MCPBOX-GATE line's JSON, or undefined when there is none or it doesn't parse (the gates' messages are then lost, nothing else). */
export function parseGateReport(line: string | undefined): GateReport | undefined {
  if (!line) return undefined;
  try {
    const parsed = JSON.parse(line) as GateReport;
    return typeof parsed === 'object' && parsed !== null ? parsed : undefined;
  } catch {
    return undefined;
  }
}
