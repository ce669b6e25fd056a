import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { VERSION } from '../version.js';
import { authorize } from './auth.js';
import type { ServeConfig } from './config.js';
import { header, INVALID, readJson, reply, short } from './http.js';
import { type OriginPolicy, originPolicy, rebindingRefusal } from './origin.js';
import type { ServeLog } from './containers.js';
import type { ServedTarget } from './prepare.js';
import { type Backend, PrivateBackend, Session, SharedBackend } from './sessions.js';

type Transport = StreamableHTTPServerTransport | SSEServerTransport;

interface OpenSession {
  readonly session: Session;
  readonly transport: Transport;
  readonly close: () => Promise<void>;
}

/**
 * serve's HTTP side: routes (/healthz, /servers/<name>/mcp, /sse, /messages), the checks every
 * request passes (DNS rebinding, then the bearer token), sessions and their backends, idle ends and
 * the shutdown that ends them all.
 */
export class ServeApp {
  readonly http: Server;
  readonly #targets: ReadonlyMap<string, ServedTarget>;
  readonly #config: ServeConfig;
  readonly #graceMs: number;
  readonly #log: ServeLog;
  readonly #origins: OriginPolicy;
  readonly #sessions = new Map<string, OpenSession>();
  /** Sessions on their way out (out of the table, their container not yet gone): shutdown waits for them too. */
  readonly #ending = new Set<Promise<void>>();
  readonly #idleCheck: NodeJS.Timeout;

  constructor(init: { targets: ReadonlyMap<string, ServedTarget>; config: ServeConfig; graceMs: number; log: ServeLog; bindHost: string }) {
    this.#targets = init.targets;
    this.#config = init.config;
    this.#graceMs = init.graceMs;
    this.#log = init.log;
    this.#origins = originPolicy(init.bindHost, init.config);
    this.http = createServer((req, res) => {
      this.#handle(req, res).catch((error: Error) => {
        this.#log('error', { message: error.message }, `request failed: ${error.message}`);
        if (!res.headersSent) reply(res, 500, { error: 'internal error' });
        else res.end();
      });
    });
    // Idle sessions end, and take their containers with them.
    const idleMs = init.config.idleTimeout * 1000;
    this.#idleCheck = setInterval(() => this.#endIdle(idleMs), Math.min(10_000, Math.max(500, idleMs / 4)));
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** Stops taking connections, ends every session (its container with it) and every shared server. */
  async shutdown(): Promise<void> {
    clearInterval(this.#idleCheck);
    this.http.close();
    await Promise.all([...[...this.#sessions.values()].map((s) => s.close()), ...this.#ending]);
    await Promise.all([...this.#targets.values()].map((t) => Promise.all([t.shared?.channel.close(this.#graceMs), t.standby?.close()])));
    this.http.closeAllConnections();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://mcpbox');
    if (url.pathname === '/healthz') {
      reply(res, 200, { status: 'ok', version: VERSION });
      return;
    }
    // Before anything else: a page that rebound its name to this address gets nothing.
    const refused = rebindingRefusal(this.#origins, req.headers.host, header(req, 'origin'));
    if (refused) {
      this.#log('refused', { reason: refused }, `refused a request: ${refused}`);
      reply(res, 403, { error: refused });
      return;
    }
    const match = /^\/servers\/([^/]+)\/(mcp|sse|messages)$/.exec(url.pathname);
    const target = match ? this.#targets.get(decodeURIComponent(match[1]!)) : undefined;
    if (!match || !target) {
      reply(res, 404, { error: 'not found' });
      return;
    }
    // Nothing reaches a container without a valid token.
    const token = authorize(req.headers.authorization, target.tokens);
    if (!token) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="mcpbox"');
      reply(res, 401, { error: 'a valid bearer token is required' });
      return;
    }
    const kind = match[2]!;
    if (kind === 'mcp') await this.#streamable(req, res, target, token);
    else if (kind === 'sse') await this.#sse(req, res, target, token);
    else await this.#messages(req, res, url, target, token);
  }

  async #streamable(req: IncomingMessage, res: ServerResponse, target: ServedTarget, token: Buffer): Promise<void> {
    const body = req.method === 'POST' ? await readJson(req, res) : undefined;
    if (body === INVALID) return;
    const sessionId = header(req, 'mcp-session-id');
    if (sessionId) {
      const existing = this.#sessions.get(sessionId);
      if (!existing || existing.session.server !== target.server.name || !existing.session.token.equals(token)) {
        reply(res, 404, { jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
        return;
      }
      await (existing.transport as StreamableHTTPServerTransport).handleRequest(req, res, body);
      return;
    }
    if (req.method !== 'POST' || !isInitializeRequest(body)) {
      reply(res, 400, { jsonrpc: '2.0', error: { code: -32000, message: 'Bad Request: no session; start one with initialize' }, id: null });
      return;
    }
    if (this.#full(target)) {
      res.setHeader('Retry-After', '10');
      reply(res, 503, { jsonrpc: '2.0', error: { code: -32000, message: 'too many sessions; try again later' }, id: null });
      return;
    }
    const id = randomUUID();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => id });
    this.#open(target, 'streamable-http', id, token, transport, (message, related) => transport.send(message, related === undefined ? undefined : { relatedRequestId: related }));
    await transport.handleRequest(req, res, body);
  }

  async #sse(req: IncomingMessage, res: ServerResponse, target: ServedTarget, token: Buffer): Promise<void> {
    if (req.method !== 'GET') {
      reply(res, 405, { error: 'GET opens an SSE session' });
      return;
    }
    if (this.#full(target)) {
      res.setHeader('Retry-After', '10');
      reply(res, 503, { error: 'too many sessions; try again later' });
      return;
    }
    const transport = new SSEServerTransport(`/servers/${encodeURIComponent(target.server.name)}/messages`, res);
    this.#open(target, 'sse', transport.sessionId, token, transport, (message) => transport.send(message));
    await transport.start();
  }

  async #messages(req: IncomingMessage, res: ServerResponse, url: URL, target: ServedTarget, token: Buffer): Promise<void> {
    const existing = this.#sessions.get(url.searchParams.get('sessionId') ?? '');
    if (!existing || existing.session.transport !== 'sse' || existing.session.server !== target.server.name || !existing.session.token.equals(token)) {
      reply(res, 404, { error: 'session not found' });
      return;
    }
    const body = await readJson(req, res);
    if (body === INVALID) return;
    await (existing.transport as SSEServerTransport).handlePostMessage(req, res, body);
  }

  /** A session: its backend, its transport, its entry in the table, and how it ends. */
  #open(target: ServedTarget, kind: 'streamable-http' | 'sse', id: string, token: Buffer, transport: Transport, send: (m: JSONRPCMessage, related?: string | number) => Promise<void>): void {
    const log = this.#log;
    const events = { toolCall: (s: Session, tool: string) => log('tool-call', { server: s.server, session: short(s.id), tool }, `[${s.server} ${short(s.id)}] tools/call ${tool}`) };
    const backend = this.#backendFor(target, id);
    const session = new Session({ id, server: target.server.name, transport: kind, token, backend, events });
    session.downstream = { send };
    const closeIt = () => this.#close(session, 'closed', () => transport.close());
    session.onServerExit = () => void this.#close(session, 'server exited', () => transport.close());
    this.#sessions.set(id, { session, transport, close: closeIt });
    transport.onmessage = (message) => session.fromClient(message);
    transport.onclose = () => void this.#close(session, 'client closed', async () => {});
    const fields = { server: session.server, session: short(id), transport: kind, shared: target.server.shared, container: backend.container };
    log('session-start', fields, `[${session.server} ${short(id)}] session started (${kind}${target.server.shared ? ', shared' : ''}) in ${backend.container}`);
  }

  #backendFor(target: ServedTarget, session: string): Backend {
    if (!target.server.shared) return new PrivateBackend(target.container(session), this.#graceMs);
    if (!target.shared || !target.shared.channel.running) target.shared = new SharedBackend(target.container('shared'));
    return target.shared;
  }

  async #close(session: Session, reason: string, transportClose: () => Promise<void>): Promise<void> {
    if (session.ended) return;
    this.#sessions.delete(session.id);
    const ended = session.end();
    this.#ending.add(ended);
    await ended.finally(() => this.#ending.delete(ended));
    await transportClose().catch(() => {});
    const seconds = Math.round((Date.now() - session.startedAt) / 1000);
    const fields = { server: session.server, session: short(session.id), reason, seconds, toolCalls: session.calls };
    this.#log('session-end', fields, `[${session.server} ${short(session.id)}] session ended (${reason}) after ${seconds} s, ${session.calls} tool call(s)`);
  }

  #full(target: ServedTarget): boolean {
    const sessions = [...this.#sessions.values()];
    return sessions.length >= this.#config.maxSessions || sessions.filter((s) => s.session.server === target.server.name).length >= target.server.maxSessions;
  }

  #endIdle(idleMs: number): void {
    const now = Date.now();
    for (const { session, close } of [...this.#sessions.values()]) {
      if (now - session.lastActivity > idleMs) {
        this.#log('session-idle', { server: session.server, session: short(session.id) }, `[${session.server} ${short(session.id)}] idle for ${this.#config.idleTimeout} s`);
        void close();
      }
    }
  }
}
