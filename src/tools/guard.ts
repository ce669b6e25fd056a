import type { ToolChangesPolicy, ToolPolicy } from '../config/settings.js';
import { compareOffers, OFFER_KINDS, OFFERS, type OfferedItem, type OfferKind, pinOffers, type ToolChange, type ToolPin } from './pin.js';
import { poisonFindings } from './poison.js';
import { toolAllowed } from './policy.js';

/**
 * The decisions behind the relay (#17), apart from any stream: what a list the server sent may
 * show the client, and whether a request for one name may reach the server. Tools, prompts and
 * resource templates are each pinned by name; a kind the pin lacks is pinned from the session's
 * first list of it (all its pages), and every later list is compared with the pin. Pure apart from
 * the callbacks.
 */
export interface GuardOptions {
  readonly server: string;
  /** `mcpbox tools <package>`: where a change is reviewed and accepted. */
  readonly review: string;
  readonly pin: ToolPin | undefined;
  readonly version: string | undefined;
  readonly toolChanges: ToolChangesPolicy;
  readonly policy: ToolPolicy | undefined;
  /** The pin grew: `kind` was pinned from `items` (all of that kind this session has listed). */
  readonly onPin: (pin: ToolPin, kind: OfferKind, items: readonly OfferedItem[]) => void;
  /** A list that differs from the pin: kept so the user can review and accept it. */
  readonly onChanged: (kind: OfferKind, items: readonly OfferedItem[]) => void;
  readonly warn: (message: string) => void;
  /** Tool names other servers offer (their pins): a description that names one is flagged. */
  readonly otherTools?: () => readonly string[];
}

/** What the guard knows of one kind during a session. */
interface KindState {
  /** Names the server may be asked for (pinned, plus new ones under `warn`); undefined until known. */
  offered: Set<string> | undefined;
  /** Changed or new names held back, with what changed. */
  readonly blocked: Map<string, string>;
  /** Pinning in this session: what was listed so far, and the cursor of the page that continues it. */
  pinning: { items: OfferedItem[]; cursor: unknown } | undefined;
}

export class OfferGuard {
  readonly #options: GuardOptions;
  readonly #kinds: Record<OfferKind, KindState>;
  readonly #said = new Set<string>();
  #pin: ToolPin;

  constructor(options: GuardOptions) {
    this.#options = options;
    this.#pin = options.pin ?? {};
    const known = (kind: OfferKind) => (this.#pin[kind] ? new Set(Object.keys(this.#pin[kind])) : undefined);
    this.#kinds = Object.fromEntries(OFFER_KINDS.map((kind) => [kind, { offered: known(kind), blocked: new Map(), pinning: undefined }])) as Record<OfferKind, KindState>;
  }

  /** The items of a list answer the client may see. `cursor`: the page the request asked for; `next`: the answer's nextCursor. */
  filter(kind: OfferKind, items: OfferedItem[], cursor: unknown, next: unknown): OfferedItem[] {
    const allowed = (list: OfferedItem[]) => (kind === 'tools' ? list.filter((t) => toolAllowed(t.name, this.#options.policy)) : list);
    if (this.#options.toolChanges === 'off') return allowed(items);
    const state = this.#kinds[kind];
    const continuing = state.pinning !== undefined && cursor !== undefined && cursor === state.pinning.cursor;
    if (!this.#pin[kind] || continuing) {
      this.#pinFrom(kind, [...(continuing ? state.pinning!.items : []), ...items], next);
      return allowed(items);
    }
    const changes = compareOffers(kind, this.#pin[kind], items).filter((c) => c.kind !== 'removed');
    if (changes.length > 0) this.#options.onChanged(kind, items);
    for (const change of changes) {
      this.#report(kind, change);
      if (this.#options.toolChanges === 'block') state.blocked.set(change.name, change.detail);
    }
    state.offered = new Set([...Object.keys(this.#pin[kind]), ...(this.#options.toolChanges === 'warn' ? items.map((t) => t.name) : [])]);
    return allowed(items).filter((t) => !state.blocked.has(t.name));
  }

  /** Why a request for `name` (a tools/call or prompts/get) is refused, or undefined when it may pass. */
  refusal(kind: OfferKind, name: string): string | undefined {
    if (kind === 'tools' && !toolAllowed(name, this.#options.policy)) return "your tools setting doesn't allow it";
    const state = this.#kinds[kind];
    const change = state.blocked.get(name);
    const review = this.#options.review;
    if (change) return `it changed since it was pinned (${change}); review with: ${review} --diff; accept with: ${review} --accept`;
    if (state.offered && !state.offered.has(name) && this.#options.toolChanges !== 'off') return 'the server never offered it';
    return undefined;
  }

  #pinFrom(kind: OfferKind, items: OfferedItem[], next: unknown): void {
    const { version } = this.#options;
    this.#pin = { ...this.#pin, ...pinOffers(kind, items), ...(this.#pin.version === undefined && version !== undefined && { version }) };
    this.#kinds[kind].offered = new Set(items.map((t) => t.name));
    this.#kinds[kind].pinning = { items, cursor: next ?? undefined };
    const others = this.#options.otherTools?.() ?? [];
    for (const finding of poisonFindings(items, others)) {
      this.#options.warn(`${this.#options.server} ${OFFERS[kind].noun} "${finding.tool}" ${finding.reason} (a heuristic: review it with ${this.#options.review})`);
    }
    this.#options.onPin(this.#pin, kind, items);
  }

  #report(kind: OfferKind, { kind: what, name, detail }: ToolChange): void {
    const { server, version, review, toolChanges } = this.#options;
    const noun = OFFERS[kind].noun;
    const line = `${server} ${what === 'new' ? `offers a new ${noun}` : `changed ${noun}`} "${name}": ${detail}`;
    if (this.#said.has(line)) return;
    this.#said.add(line);
    const sameVersion = this.#pin.version !== undefined && this.#pin.version === version;
    const loud = sameVersion ? ` — the same version ${version} as when pinned: a server changing its ${noun}s at run time` : '';
    this.#options.warn(`${line}${loud}${toolChanges === 'block' ? ' (hidden from the client)' : ''}; review with: ${review} --diff; accept with: ${review} --accept`);
  }
}
