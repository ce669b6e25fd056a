import { createHash } from 'node:crypto';

/**
 * What a server offers, pinned (#17): a canonical hash of each tool's name, title, description,
 * input and output schema and annotations — and of each prompt and resource template — and of the
 * set of tool names, so that a later list can be compared field by field. Canonical: keys sorted
 * at every depth, strings NFC-normalised, so two servers saying the same thing hash the same. Pure.
 */
export interface OfferedTool {
  readonly name: string;
  readonly title?: string;
  readonly description?: string;
  readonly inputSchema?: unknown;
  readonly outputSchema?: unknown;
  readonly annotations?: unknown;
}

/** A tool, prompt or resource template as a server lists it: a name and fields. */
export type OfferedItem = { readonly name: string; readonly description?: string } & Readonly<Record<string, unknown>>;

/** The three lists a server offers the model, each pinned by name. */
export type OfferKind = 'tools' | 'prompts' | 'resourceTemplates';

export interface OfferSpec {
  /** The request that lists them; its result holds them under the kind's name. */
  readonly list: string;
  /** The request that uses one by name (refused when it is changed or never offered). */
  readonly use: string | undefined;
  readonly noun: string;
  readonly fields: readonly string[];
}

/** One table for what differs between tools, prompts and resource templates. */
export const OFFERS = {
  tools: { list: 'tools/list', use: 'tools/call', noun: 'tool', fields: ['title', 'description', 'inputSchema', 'outputSchema', 'annotations'] },
  prompts: { list: 'prompts/list', use: 'prompts/get', noun: 'prompt', fields: ['title', 'description', 'arguments'] },
  // A template is used through resources/read with a URI, not by name: a changed one is hidden from the list only.
  resourceTemplates: { list: 'resources/templates/list', use: undefined, noun: 'resource template', fields: ['title', 'description', 'uriTemplate', 'mimeType', 'annotations'] },
} as const satisfies Record<OfferKind, OfferSpec>;

export const OFFER_KINDS = Object.keys(OFFERS) as OfferKind[];

/** One item as pinned: its whole hash, and each field's, with the description's length for the diff. */
export interface PinnedTool {
  readonly hash: string;
  readonly fields: Readonly<Record<string, string>>;
  readonly descriptionLength: number;
}

const FIELD_NAMES: Readonly<Record<string, string>> = { inputSchema: 'input schema', outputSchema: 'output schema', uriTemplate: 'URI template', mimeType: 'MIME type' };

export interface ToolPin {
  /** sha256 of the sorted tool names: the set itself. */
  readonly names?: string;
  readonly tools?: Readonly<Record<string, PinnedTool>>;
  readonly prompts?: Readonly<Record<string, PinnedTool>>;
  readonly resourceTemplates?: Readonly<Record<string, PinnedTool>>;
  /** The server's version when pinned: a change under the same version is reported as such. */
  readonly version?: string;
}

export interface ToolChange {
  readonly name: string;
  readonly kind: 'new' | 'changed' | 'removed';
  /** What changed, short: `description +212 chars, input schema`. */
  readonly detail: string;
}

/** JSON with sorted keys and NFC strings at every depth; undefined fields left out. */
export function canonicalJson(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.normalize('NFC'));
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => [k.normalize('NFC'), v] as const)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return value === undefined ? 'null' : JSON.stringify(value);
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const nameOf = (item: OfferedItem) => String(item.name).normalize('NFC');

export function pinItem(kind: OfferKind, item: OfferedItem): PinnedTool {
  const fields = OFFERS[kind].fields;
  return {
    hash: sha256(canonicalJson({ name: item.name, ...Object.fromEntries(fields.map((f) => [f, item[f]])) })),
    fields: Object.fromEntries(fields.map((field) => [field, sha256(canonicalJson(item[field] ?? null))])),
    descriptionLength: (item.description ?? '').normalize('NFC').length,
  };
}

export const pinTool = (tool: OfferedTool): PinnedTool => pinItem('tools', tool as OfferedItem);

/** A kind's items pinned by name (and, for tools, the set of names). */
export function pinOffers(kind: OfferKind, items: readonly OfferedItem[]): ToolPin {
  const pinned = Object.fromEntries(items.map((item) => [nameOf(item), pinItem(kind, item)]));
  if (kind !== 'tools') return { [kind]: pinned };
  return { names: sha256(canonicalJson(items.map(nameOf).sort())), tools: pinned };
}

export const pinTools = (tools: readonly OfferedTool[]) => pinOffers('tools', tools as OfferedItem[]) as Required<Pick<ToolPin, 'names' | 'tools'>>;

/** What differs between a kind's pinned items and what the server offers now: new, changed and removed. */
export function compareOffers(kind: OfferKind, pinned: Readonly<Record<string, PinnedTool>>, items: readonly OfferedItem[]): ToolChange[] {
  const changes: ToolChange[] = [];
  const now = new Map(items.map((item) => [nameOf(item), item]));
  for (const [name, item] of now) {
    const before = pinned[name];
    if (!before) {
      changes.push({ name, kind: 'new', detail: 'not offered when pinned' });
      continue;
    }
    const after = pinItem(kind, item);
    if (after.hash === before.hash) continue;
    const parts = OFFERS[kind].fields
      .filter((f) => after.fields[f] !== before.fields[f])
      .map((f) => {
        if (f !== 'description') return FIELD_NAMES[f] ?? f;
        const delta = after.descriptionLength - before.descriptionLength;
        return `description ${delta >= 0 ? '+' : ''}${delta} chars`;
      });
    changes.push({ name, kind: 'changed', detail: parts.join(', ') || 'changed' });
  }
  for (const name of Object.keys(pinned)) if (!now.has(name)) changes.push({ name, kind: 'removed', detail: 'no longer offered' });
  return changes;
}

export const compareTools = (pin: ToolPin, tools: readonly OfferedTool[]) => compareOffers('tools', pin.tools ?? {}, tools as OfferedItem[]);
