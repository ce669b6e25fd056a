import { StringDecoder } from 'node:string_decoder';
import { Transform } from 'node:stream';
import type { ToolCallRecord } from './audit.js';
import { compareTools, type OfferedTool, pinTools, type ToolPin } from './pin.js';
import { poisonFindings } from './poison.js';
import type { ToolChangesPolicy, ToolPolicy } from '../config/settings.js';
import { toolAllowed } from './policy.js';

/**
 * MCP-aware protection on a stdio session (#17): the client's and the server's JSON-RPC lines pass
 * through here. tools/list answers are compared with the server's pin and filtered (changed or new
 * tools under `block`, tools the policy denies); tools/call requests for a refused, changed or
 * never-offered tool are answered here with an error and never reach the server; every call is
 * audited. Anything that isn't a JSON-RPC line passes unchanged.
 */
export interface RelayOptions {
  /** The server, as messages and the audit name it (its package). */
  readonly server: string;
  /** Where the user reviews and accepts a change: `mcpbox tools <package>`. */
  readonly review: string;
  /** The pin from the lock; undefined: this session's first tools/list is pinned (onPin). */
  readonly pin: ToolPin | undefined;
  /** The version the server runs now: the pin says which version it was made with. */
  readonly version: string | undefined;
  readonly toolChanges: ToolChangesPolicy;
  readonly policy: ToolPolicy | undefined;
  readonly onPin: (pin: ToolPin, tools: readonly OfferedTool[]) => void;
  /** A tools/list that differs from the pin: kept so the user can review and accept it. */
  readonly onChanged: (tools: readonly OfferedTool[]) => void;
  readonly audit: (record: ToolCallRecord) => void;
  readonly warn: (message: string) => void;
  readonly now?: () => number;
}

type Message = { jsonrpc?: string; id?: string | number | null; method?: string; params?: Record<string, unknown>; result?: Record<string, unknown>; error?: { message?: string } };

export interface Relay {
  /** Client → server. */
  readonly toServer: Transform;
  /** Server → client (and mcpbox's own answers to refused calls). */
  readonly toClient: Transform;
}

export function createRelay(options: RelayOptions): Relay {
  const now = options.now ?? Date.now;
  const lists = new Set<string>();
  const calls = new Map<string, { tool: string; start: number; argumentBytes: number }>();
  const blocked = new Map<string, string>();
  const said = new Set<string>();
  let pin = options.pin;
  let offered: Set<string> | undefined = pin ? new Set(Object.keys(pin.tools)) : undefined;
  const key = (id: unknown) => JSON.stringify(id);

  const toClient = lineTransform((line) => {
    const message = parse(line);
    if (!message || message.method !== undefined || message.id === undefined) return line;
    const id = key(message.id);
    if (lists.delete(id) && message.result && Array.isArray(message.result.tools)) {
      message.result.tools = filterTools(message.result.tools as OfferedTool[]);
      return JSON.stringify(message);
    }
    const call = calls.get(id);
    if (call) {
      calls.delete(id);
      const error = message.error?.message ?? (message.result?.isError === true ? 'tool error' : undefined);
      options.audit({ time: new Date(call.start).toISOString(), server: options.server, tool: call.tool, argumentBytes: call.argumentBytes, resultBytes: Buffer.byteLength(line), durationMs: now() - call.start, ...(error !== undefined && { error }) });
    }
    return line;
  });

  const toServer = lineTransform((line) => {
    const message = parse(line);
    if (!message || message.id === undefined || message.method === undefined) return line;
    if (message.method === 'tools/list') lists.add(key(message.id));
    if (message.method !== 'tools/call') return line;
    const tool = String(message.params?.name ?? '');
    const argumentBytes = Buffer.byteLength(JSON.stringify(message.params?.arguments ?? {}));
    const refusal = refusalOf(tool);
    if (refusal === undefined) {
      calls.set(key(message.id), { tool, start: now(), argumentBytes });
      return line;
    }
    options.warn(`refused a call to ${options.server} tool "${tool}": ${refusal}`);
    options.audit({ time: new Date(now()).toISOString(), server: options.server, tool, argumentBytes, resultBytes: 0, durationMs: 0, error: `refused: ${refusal}` });
    toClient.push(`${JSON.stringify({ jsonrpc: '2.0', id: message.id, error: { code: -32602, message: `mcpbox refused the call to tool "${tool}": ${refusal}` } })}\n`);
    return null;
  });

  function refusalOf(tool: string): string | undefined {
    if (!toolAllowed(tool, options.policy)) return "your tools setting doesn't allow it";
    const change = blocked.get(tool);
    if (change) return `it changed since it was pinned (${change}); review with: ${options.review} --diff; accept with: ${options.review} --accept`;
    if (offered && !offered.has(tool) && options.toolChanges !== 'off') return 'the server never offered it';
    return undefined;
  }

  function filterTools(tools: OfferedTool[]): OfferedTool[] {
    const allowed = (list: OfferedTool[]) => list.filter((t) => toolAllowed(t.name, options.policy));
    if (options.toolChanges === 'off') return allowed(tools);
    if (!pin) {
      pin = { ...pinTools(tools), ...(options.version !== undefined && { version: options.version }) };
      offered = new Set(tools.map((t) => t.name));
      for (const finding of poisonFindings(tools)) options.warn(`${options.server} tool "${finding.tool}" ${finding.reason} (a heuristic: review it with ${options.review})`);
      options.onPin(pin, tools);
      return allowed(tools);
    }
    const changes = compareTools(pin, tools).filter((c) => c.kind !== 'removed');
    if (changes.length > 0) options.onChanged(tools);
    const sameVersion = pin.version !== undefined && pin.version === options.version;
    for (const change of changes) {
      const what = `${options.server} ${change.kind === 'new' ? 'offers a new tool' : 'changed tool'} "${change.name}": ${change.detail}`;
      if (!said.has(what)) {
        said.add(what);
        const loud = sameVersion ? ` — the same version ${options.version} as when pinned: a server changing its tools at run time` : '';
        options.warn(`${what}${loud}${options.toolChanges === 'block' ? ' (hidden from the client)' : ''}; review with: ${options.review} --diff; accept with: ${options.review} --accept`);
      }
      if (options.toolChanges === 'block') blocked.set(change.name, change.detail);
    }
    offered = new Set([...Object.keys(pin.tools), ...(options.toolChanges === 'warn' ? tools.map((t) => t.name) : [])]);
    return allowed(tools).filter((t) => !blocked.has(t.name));
  }

  return { toServer, toClient };
}

function parse(line: string): Message | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value = JSON.parse(line) as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Message) : undefined;
  } catch {
    return undefined;
  }
}

/** A newline-framed transform: each whole line goes through `handle` (null drops it); a partial last line passes on at the end. */
export function lineTransform(handle: (line: string) => string | null): Transform {
  let pending = '';
  // A character split across two chunks is joined before the line is read.
  const decoder = new StringDecoder('utf8');
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      pending += decoder.write(chunk);
      let newline = pending.indexOf('\n');
      while (newline !== -1) {
        const line = pending.slice(0, newline).replace(/\r$/, '');
        pending = pending.slice(newline + 1);
        const out = line === '' ? '' : handle(line);
        if (out !== null) this.push(`${out}\n`);
        newline = pending.indexOf('\n');
      }
      done();
    },
    flush(done) {
      pending += decoder.end();
      if (pending !== '') this.push(pending);
      done();
    },
  });
}
