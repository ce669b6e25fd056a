import { createHash } from 'node:crypto';

/**
 * What a server offers, pinned (#17): a canonical hash of each tool's name, title, description,
 * input and output schema and annotations, and of the set of names, so that a later tools/list
 * can be compared field by field. Canonical: keys sorted at every depth, strings NFC-normalised,
 * so two servers saying the same thing hash the same. Pure.
 */
export interface OfferedTool {
  readonly name: string;
  readonly title?: string;
  readonly description?: string;
  readonly inputSchema?: unknown;
  readonly outputSchema?: unknown;
  readonly annotations?: unknown;
}

/** One tool as pinned: its whole hash, and each field's, with the description's length for the diff. */
export interface PinnedTool {
  readonly hash: string;
  readonly fields: Readonly<Record<PinnedField, string>>;
  readonly descriptionLength: number;
}

export type PinnedField = 'title' | 'description' | 'inputSchema' | 'outputSchema' | 'annotations';
const FIELDS: readonly PinnedField[] = ['title', 'description', 'inputSchema', 'outputSchema', 'annotations'];
const FIELD_NAMES: Readonly<Record<PinnedField, string>> = {
  title: 'title',
  description: 'description',
  inputSchema: 'input schema',
  outputSchema: 'output schema',
  annotations: 'annotations',
};

export interface ToolPin {
  /** sha256 of the sorted names: the set itself. */
  readonly names: string;
  readonly tools: Readonly<Record<string, PinnedTool>>;
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

export function pinTool(tool: OfferedTool): PinnedTool {
  const fields = Object.fromEntries(FIELDS.map((field) => [field, sha256(canonicalJson(tool[field] ?? null))])) as Record<PinnedField, string>;
  return {
    hash: sha256(canonicalJson({ name: tool.name, ...Object.fromEntries(FIELDS.map((f) => [f, tool[f]])) })),
    fields,
    descriptionLength: (tool.description ?? '').normalize('NFC').length,
  };
}

export function pinTools(tools: readonly OfferedTool[]): ToolPin {
  const names = tools.map((t) => t.name.normalize('NFC')).sort();
  return { names: sha256(canonicalJson(names)), tools: Object.fromEntries(tools.map((t) => [t.name.normalize('NFC'), pinTool(t)])) };
}

/** What differs between a pin and what the server offers now: new, changed and removed tools. */
export function compareTools(pin: ToolPin, tools: readonly OfferedTool[]): ToolChange[] {
  const changes: ToolChange[] = [];
  const now = new Map(tools.map((t) => [t.name.normalize('NFC'), t]));
  for (const [name, tool] of now) {
    const before = pin.tools[name];
    if (!before) {
      changes.push({ name, kind: 'new', detail: 'not offered when pinned' });
      continue;
    }
    const after = pinTool(tool);
    if (after.hash === before.hash) continue;
    const parts = FIELDS.filter((f) => after.fields[f] !== before.fields[f]).map((f) => {
      if (f !== 'description') return FIELD_NAMES[f];
      const delta = after.descriptionLength - before.descriptionLength;
      return `description ${delta >= 0 ? '+' : ''}${delta} chars`;
    });
    changes.push({ name, kind: 'changed', detail: parts.join(', ') || 'changed' });
  }
  for (const name of Object.keys(pin.tools)) if (!now.has(name)) changes.push({ name, kind: 'removed', detail: 'no longer offered' });
  return changes;
}
