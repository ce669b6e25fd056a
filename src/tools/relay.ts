import { Transform } from 'node:stream';
import type { ToolCallRecord } from './audit.js';
import { type GuardOptions, OfferGuard } from './guard.js';
import { OFFER_KINDS, OFFERS, type OfferedItem, type OfferKind } from './pin.js';

/**
 * MCP-aware protection on a session (#17): the client's and the server's JSON-RPC lines pass
 * through here. Answers to tools/list, prompts/list and resources/templates/list go through the
 * guard (src/tools/guard.ts), which compares them with the pin and filters them; a tools/call or
 * prompts/get the guard refuses is answered here with an error and never reaches the server; every
 * tool call is audited. Every other line passes as the same bytes: only list answers are
 * re-serialised, and a line is parsed only when it might be one of these.
 */
export interface RelayOptions extends GuardOptions {
  readonly audit: (record: ToolCallRecord) => void;
  readonly now?: () => number;
}

type Message = { jsonrpc?: string; id?: string | number | null; method?: string; params?: Record<string, unknown>; result?: Record<string, unknown>; error?: { message?: string } };

export interface Relay {
  /** Client → server. */
  readonly toServer: Transform;
  /** Server → client (and mcpbox's own answers to refused requests). */
  readonly toClient: Transform;
}

const USES = new Map(OFFER_KINDS.flatMap((kind) => (OFFERS[kind].use ? [[OFFERS[kind].use as string, kind] as const] : [])));
const LISTS = new Map(OFFER_KINDS.map((kind) => [OFFERS[kind].list as string, kind] as const));

export function createRelay(options: RelayOptions): Relay {
  const now = options.now ?? Date.now;
  const guard = new OfferGuard(options);
  const lists = new Map<string, { kind: OfferKind; cursor: unknown }>();
  const calls = new Map<string, { tool: string; start: number; argumentBytes: number }>();
  const key = (id: unknown) => JSON.stringify(id);

  // Only answers are looked at, and only while one is awaited.
  const awaited = () => lists.size > 0 || calls.size > 0;
  const toClient = lineTransform((line) => {
    const message = parse(line);
    if (!message || message.method !== undefined || message.id === undefined) return line;
    const id = key(message.id);
    const list = lists.get(id);
    if (list) {
      lists.delete(id);
      const items = message.result?.[list.kind];
      if (!Array.isArray(items)) return line;
      message.result![list.kind] = guard.filter(list.kind, items as OfferedItem[], list.cursor, message.result!.nextCursor);
      return JSON.stringify(message);
    }
    const call = calls.get(id);
    if (call) {
      calls.delete(id);
      const error = message.error?.message ?? (message.result?.isError === true ? 'tool error' : undefined);
      options.audit({ time: new Date(call.start).toISOString(), server: options.server, tool: call.tool, argumentBytes: call.argumentBytes, resultBytes: Buffer.byteLength(line), durationMs: now() - call.start, ...(error !== undefined && { error }) });
    }
    return line;
  }, awaited);

  const toServer = lineTransform((line) => {
    const message = parse(line);
    if (!message || message.id === undefined || message.method === undefined) return line;
    const listed = LISTS.get(message.method);
    if (listed) lists.set(key(message.id), { kind: listed, cursor: message.params?.cursor });
    const kind = USES.get(message.method);
    if (!kind) return line;
    const name = String(message.params?.name ?? '');
    const argumentBytes = Buffer.byteLength(JSON.stringify(message.params?.arguments ?? {}));
    const refusal = guard.refusal(kind, name);
    if (refusal === undefined) {
      if (kind === 'tools') calls.set(key(message.id), { tool: name, start: now(), argumentBytes });
      return line;
    }
    const noun = OFFERS[kind].noun;
    options.warn(`refused a ${kind === 'tools' ? 'call to' : 'request for'} ${options.server} ${noun} "${name}": ${refusal}`);
    if (kind === 'tools') options.audit({ time: new Date(now()).toISOString(), server: options.server, tool: name, argumentBytes, resultBytes: 0, durationMs: 0, error: `refused: ${refusal}` });
    const what = kind === 'tools' ? `the call to tool "${name}"` : `the request for ${noun} "${name}"`;
    toClient.push(`${JSON.stringify({ jsonrpc: '2.0', id: message.id, error: { code: -32602, message: `mcpbox refused ${what}: ${refusal}` } })}\n`);
    return null;
  }, mayConcern);

  return { toServer, toClient };
}

/** A client line that might list or use a tool, prompt or template (the others are not parsed). */
const mayConcern = (line: Buffer) => line.includes('tools') || line.includes('prompts') || line.includes('templates');

function parse(line: string): Message | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value = JSON.parse(line) as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Message) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A newline-framed transform on bytes: a line `inspect` passes over goes on as the same bytes; one
 * it wants is decoded and handed to `handle`, whose answer replaces it (null drops it, the same text
 * keeps the original bytes). A newline byte is never inside a UTF-8 character, so splitting on it
 * never cuts one; a partial last line passes on at the end.
 */
export function lineTransform(handle: (line: string) => string | null, inspect: (line: Buffer) => boolean = () => true): Transform {
  // The pieces of a line not yet ended: joined once, when its newline arrives (a 10 MB line is copied once).
  let pending: Buffer[] = [];
  const deliver = (out: Transform, line: Buffer) => {
    if (!inspect(line)) return out.push(line);
    const end = line.length - (line.at(-2) === 13 ? 2 : 1);
    const text = line.toString('utf8', 0, end);
    const handled = text === '' ? text : handle(text);
    if (handled === text) out.push(line);
    else if (handled !== null) out.push(`${handled}\n`);
  };
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      let start = 0;
      let newline = chunk.indexOf(10);
      while (newline !== -1) {
        const piece = chunk.subarray(start, newline + 1);
        deliver(this, pending.length > 0 ? Buffer.concat([...pending, piece]) : piece);
        pending = [];
        start = newline + 1;
        newline = chunk.indexOf(10, start);
      }
      if (start < chunk.length) pending.push(chunk.subarray(start));
      done();
    },
    flush(done) {
      if (pending.length > 0) this.push(Buffer.concat(pending));
      done();
    },
  });
}
