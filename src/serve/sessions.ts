import type { JSONRPCMessage, RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { ContainerChannel } from './channel.js';

/**
 * The bridge between HTTP sessions and sandboxed servers. A session's messages go to a backend:
 * its own container (the default: nothing shared between users), or one container shared by every
 * session of that server, where request ids are renumbered so answers find their way back.
 */
export interface Downstream {
  /** To the HTTP client; `relatedRequestId` routes a notification to the request it belongs to. */
  send(message: JSONRPCMessage, relatedRequestId?: RequestId): Promise<void>;
}

export interface Backend {
  /** The container the session's messages go to (serve's log names it). */
  readonly container: string;
  attach(session: Session): void;
  fromClient(session: Session, message: JSONRPCMessage): void;
  detach(session: Session): Promise<void>;
}

export interface SessionEvents {
  toolCall(session: Session, tool: string): void;
}

/** The id of mcpbox's own initialize request to a shared server (session requests are renumbered s1, s2, …). */
const INITIALIZE_ID = 'mcpbox-initialize';

type Message = JSONRPCMessage & { id?: RequestId; method?: string; params?: Record<string, unknown>; result?: unknown; error?: unknown };

export class Session {
  readonly id: string;
  readonly server: string;
  readonly transport: 'streamable-http' | 'sse';
  readonly token: Buffer;
  readonly startedAt = Date.now();
  lastActivity = Date.now();
  calls = 0;
  ended = false;
  downstream: Downstream | undefined;
  /** Called when the session's server ends by itself. */
  onServerExit: (() => void) | undefined;
  readonly #backend: Backend;
  readonly #events: SessionEvents;
  /** progress tokens → the request they belong to, so progress reaches that request's stream. */
  readonly #progress = new Map<string | number, RequestId>();
  /** The client's requests not answered yet: a server that ends answers them with an error, not silence. */
  readonly #unanswered = new Set<RequestId>();

  constructor(init: { id: string; server: string; transport: 'streamable-http' | 'sse'; token: Buffer; backend: Backend; events: SessionEvents }) {
    this.id = init.id;
    this.server = init.server;
    this.transport = init.transport;
    this.token = init.token;
    this.#backend = init.backend;
    this.#events = init.events;
    this.#backend.attach(this);
  }

  /** A message from the HTTP client. */
  fromClient(message: JSONRPCMessage): void {
    this.lastActivity = Date.now();
    const m = message as Message;
    if (m.method === 'tools/call') {
      this.calls++;
      const tool = (m.params as { name?: unknown } | undefined)?.name;
      this.#events.toolCall(this, typeof tool === 'string' ? tool : '(unnamed)');
    }
    const progress = (m.params?._meta as { progressToken?: string | number } | undefined)?.progressToken;
    if (progress !== undefined && m.id !== undefined) this.#progress.set(progress, m.id);
    if (m.method !== undefined && m.id !== undefined) this.#unanswered.add(m.id);
    this.#backend.fromClient(this, message);
  }

  /** A message for the HTTP client. */
  deliver(message: JSONRPCMessage): Promise<void> {
    if (this.ended || !this.downstream) return Promise.resolve();
    const m = message as Message;
    const token = (m.params as { progressToken?: string | number } | undefined)?.progressToken;
    const related = m.method === 'notifications/progress' && token !== undefined ? this.#progress.get(token) : undefined;
    if (m.id !== undefined && (m.result !== undefined || m.error !== undefined)) {
      this.#unanswered.delete(m.id);
      for (const [key, id] of this.#progress) if (id === m.id) this.#progress.delete(key);
    }
    return this.downstream.send(message, related).catch(() => {});
  }

  /** The server ended by itself: what it left unanswered gets an error (the client learns now, not at its timeout), then the session ends. */
  serverExited(): void {
    if (this.ended) return;
    const error = { code: -32000, message: `${this.server} ended before it answered (serve's log has its last words)` };
    const answers = [...this.#unanswered].map((id) => this.deliver({ jsonrpc: '2.0', id, error } as JSONRPCMessage));
    if (answers.length === 0) this.onServerExit?.();
    else void Promise.all(answers).finally(() => this.onServerExit?.());
  }

  async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.#backend.detach(this);
  }
}

/** One container per session. */
export class PrivateBackend implements Backend {
  readonly #channel: ContainerChannel;
  readonly #graceMs: number;

  constructor(channel: ContainerChannel, graceMs: number) {
    this.#channel = channel;
    this.#graceMs = graceMs;
  }

  get container(): string {
    return this.#channel.name;
  }

  attach(session: Session): void {
    this.#channel.onmessage = (message) => session.deliver(message);
    this.#channel.onclose = () => session.serverExited();
  }

  fromClient(_session: Session, message: JSONRPCMessage): void {
    this.#channel.send(message);
  }

  async detach(): Promise<void> {
    await this.#channel.close(this.#graceMs);
  }
}

/**
 * One container for every session of a server. mcpbox initializes it once and answers each session's
 * initialize from that; requests are renumbered on the way in and their answers routed back; progress
 * goes to the session whose request it is; other notifications to every session. Requests from the
 * server to a client (sampling, elicitation, roots) have no single client here and are refused.
 */
export class SharedBackend implements Backend {
  readonly #channel: ContainerChannel;
  readonly #sessions = new Set<Session>();
  readonly #pending = new Map<RequestId, { session: Session; id: RequestId }>();
  readonly #progress = new Map<string | number, Session>();
  #next = 1;
  #initialize: Promise<Message> | undefined;

  constructor(channel: ContainerChannel) {
    this.#channel = channel;
    channel.onmessage = (message) => this.#fromServer(message as Message);
    // A shared server that ends takes its sessions with it.
    channel.onclose = () => {
      for (const session of [...this.#sessions]) session.serverExited();
    };
  }

  get channel(): ContainerChannel {
    return this.#channel;
  }

  get container(): string {
    return this.#channel.name;
  }

  attach(session: Session): void {
    this.#sessions.add(session);
  }

  fromClient(session: Session, message: JSONRPCMessage): void {
    const m = message as Message;
    if (m.method === 'initialize' && m.id !== undefined) {
      void this.#initialized(m).then((answer) => session.deliver({ ...answer, id: m.id! } as JSONRPCMessage));
      return;
    }
    if (m.method === 'notifications/initialized') return; // mcpbox sent its own, once
    if (m.method !== undefined && m.id !== undefined) {
      const id = `s${this.#next++}`;
      this.#pending.set(id, { session, id: m.id });
      const progress = (m.params?._meta as { progressToken?: string | number } | undefined)?.progressToken;
      if (progress !== undefined) this.#progress.set(progress, session);
      this.#channel.send({ ...m, id } as JSONRPCMessage);
      return;
    }
    if (m.method === 'notifications/cancelled') {
      const requestId = (m.params as { requestId?: RequestId } | undefined)?.requestId;
      const upstream = [...this.#pending].find(([, p]) => p.session === session && p.id === requestId)?.[0];
      if (upstream !== undefined) this.#channel.send({ ...m, params: { ...m.params, requestId: upstream } } as JSONRPCMessage);
      return;
    }
    if (m.method !== undefined) this.#channel.send(message);
  }

  async detach(session: Session): Promise<void> {
    this.#sessions.delete(session);
    for (const [id, pending] of this.#pending) if (pending.session === session) this.#pending.delete(id);
    for (const [token, owner] of this.#progress) if (owner === session) this.#progress.delete(token);
  }

  /** mcpbox's own initialize, once; every session's initialize is answered with its result. */
  #initialized(request: Message): Promise<Message> {
    this.#initialize ??= new Promise<Message>((resolve) => {
      this.#onInitialized = (answer) => {
        resolve(answer);
        if (answer.result !== undefined) this.#channel.send({ jsonrpc: '2.0', method: 'notifications/initialized' } as JSONRPCMessage);
      };
      this.#channel.send({ jsonrpc: '2.0', id: INITIALIZE_ID, method: 'initialize', params: request.params } as JSONRPCMessage);
    });
    return this.#initialize;
  }

  #onInitialized: ((answer: Message) => void) | undefined;

  #fromServer(m: Message): void {
    if (m.id !== undefined && (m.result !== undefined || m.error !== undefined)) {
      if (m.id === INITIALIZE_ID) {
        this.#onInitialized?.(m);
        return;
      }
      const pending = this.#pending.get(m.id);
      if (!pending) return;
      this.#pending.delete(m.id);
      pending.session.deliver({ ...m, id: pending.id } as JSONRPCMessage);
      return;
    }
    if (m.id !== undefined && m.method !== undefined) {
      this.#channel.send({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: `${m.method} is not available: this server is shared by several clients` } } as JSONRPCMessage);
      return;
    }
    const token = (m.params as { progressToken?: string | number } | undefined)?.progressToken;
    const owner = token !== undefined ? this.#progress.get(token) : undefined;
    if (owner) owner.deliver(m as JSONRPCMessage);
    else for (const session of this.#sessions) session.deliver(m as JSONRPCMessage);
  }
}
