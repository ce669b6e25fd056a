import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { applyPackagePolicies } from '../config.js';
import { engineLaunch } from '../engine/argv.js';
import { ConfigError, UsageError } from '../errors.js';
import { installRequest } from '../lock.js';
import { findLock } from '../lock-files.js';
import { stateDir } from '../paths.js';
import { hostProbe } from '../processes.js';
import { parseRunnerArgs } from '../runners.js';
import { LABEL } from '../sandbox.js';
import { type ServedServer, parseServeConfig } from '../serve-config.js';
import { authorize, tokenDigest } from '../serve/auth.js';
import { ContainerChannel } from '../serve/channel.js';
import { originPolicy, rebindingRefusal } from '../serve/origin.js';
import { type Backend, PrivateBackend, Session, SharedBackend } from '../serve/sessions.js';
import { removeStale } from '../sweep.js';
import { VERSION } from '../version.js';
import { type CommandContext, openEngine, settingsFor } from './context.js';
import { DEFAULT_FLAGS, launchSpec, planRun, prepare, respec, type RunPlan } from './plan.js';

/**
 * `mcpbox serve --config servers.json`: sandboxed MCP servers over Streamable HTTP
 * (/servers/<name>/mcp) and legacy SSE (/servers/<name>/sse + /servers/<name>/messages), behind bearer
 * tokens. Each session gets its own container unless the server is `shared`. Servers are prepared
 * (image, install, lock) before the port opens, so sessions start warm.
 */
export interface ServeFlags {
  config?: string;
  host: string;
  port: string;
  logFormat: string;
  grace?: string;
}

interface Served {
  readonly server: ServedServer;
  readonly plan: RunPlan;
  readonly launch: (plan: RunPlan) => RunPlan['spec'];
  readonly tokens: Buffer[];
  shared?: SharedBackend;
}

type Log = (event: string, fields: Record<string, unknown>, text: string) => void;

const MAX_BODY = 4 * 1024 * 1024;

export async function serve(flags: ServeFlags, ctx: CommandContext): Promise<number> {
  if (!flags.config) throw new UsageError('serve needs --config FILE', 'a JSON file like a client’s: { "authTokens": [...], "mcpServers": { ... } } (see the README)');
  const port = Number(flags.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port ${flags.port}: not a port number`);
  if (!['text', 'json'].includes(flags.logFormat)) throw new UsageError(`--log-format ${flags.logFormat}: text or json`);
  const graceMs = Number(flags.grace ?? 2) * 1000;
  const config = readServeConfig(flags.config, ctx);

  const log: Log = (event, fields, text) => {
    if (flags.logFormat === 'json') process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), event, ...fields })}\n`);
    else ctx.log.info(text);
  };

  const base = await settingsFor(ctx);
  const { engine, env: engineEnv } = openEngine(ctx, base);
  const probe = hostProbe();
  const stale = await removeStale(engine, probe);
  if (stale.length > 0) log('swept', { containers: stale.map((c) => c.name) }, `removed ${stale.length} container(s) left by mcpbox processes that are gone`);
  const watchdog = engine.watchdogOwner(ctx.pid, probe.host);

  // Everything a session needs, before the port opens.
  const served = new Map<string, Served>();
  const state = stateDir(ctx.env);
  const lock = findLock(ctx.cwd, state);
  for (const server of config.servers) {
    const invocation = parseRunnerArgs(server.runner, [...server.args]);
    const settings = applyPackagePolicies(base, invocation.runner, invocation.packages.map((p) => p.name));
    const env = Object.entries(server.env).map(([name, value]) => `${name}=${value}`);
    const plan = planRun(invocation, settings, { ...DEFAULT_FLAGS, env, client: true }, ctx);
    const request = installRequest(invocation);
    log('prepare', { server: server.name }, `preparing ${server.name} (${server.runner} ${server.args.join(' ')})`);
    const { server: locked } = await prepare(engine, engineEnv, plan, request ? { request, lockPath: lock.path } : undefined, {
      hostEnv: ctx.env,
      log: ctx.log,
      stateDir: state,
      intervalHours: settings.updateInterval ?? 24,
    });
    const launch = (p: RunPlan) => (request && locked ? launchSpec(p, request, locked.entry, locked.record) : p.spec);
    served.set(server.name, { server, plan, launch, tokens: server.authTokens.map(tokenDigest) });
  }

  type Transport = StreamableHTTPServerTransport | SSEServerTransport;
  const sessions = new Map<string, { session: Session; transport: Transport; close: () => Promise<void> }>();
  const events = { toolCall: (s: Session, tool: string) => log('tool-call', { server: s.server, session: short(s.id), tool }, `[${s.server} ${short(s.id)}] tools/call ${tool}`) };

  /** A container for `target`: a fresh name and labels on the prepared plan. */
  const container = (target: Served, session: string) => {
    const plan = respec(target.plan, {
      name: `mcpbox-serve-${target.server.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').slice(0, 40)}-${randomBytes(3).toString('hex')}`,
      labels: { ...target.plan.input.labels, [LABEL.startedAt]: new Date().toISOString(), [LABEL.served]: target.server.name, [LABEL.session]: session },
    });
    const spec = target.launch(plan);
    const launch = engineLaunch(spec, ctx.env, engineEnv, (lines) => engine.envFile(lines));
    const channel = new ContainerChannel(engine, launch, spec.name);
    channel.onstderr = (line) => log('server-stderr', { server: target.server.name, session: short(session), line }, `[${target.server.name} ${short(session)}] ${line}`);
    return channel;
  };

  const backendFor = (target: Served, session: string): Backend => {
    if (!target.server.shared) return new PrivateBackend(container(target, session), graceMs);
    if (!target.shared || !target.shared.channel.running) target.shared = new SharedBackend(container(target, 'shared'));
    return target.shared;
  };

  /** A session: its backend, its transport, its entry in `sessions`, and how it ends. */
  const open = (target: Served, kind: 'streamable-http' | 'sse', id: string, token: Buffer, transport: Transport, send: (m: JSONRPCMessage, related?: string | number) => Promise<void>) => {
    const session = new Session({ id, server: target.server.name, transport: kind, token, backend: backendFor(target, id), events });
    session.downstream = { send };
    const closeIt = () => close(session, 'closed', () => transport.close());
    session.onServerExit = () => void close(session, 'server exited', () => transport.close());
    sessions.set(id, { session, transport, close: closeIt });
    transport.onmessage = (message) => session.fromClient(message);
    transport.onclose = () => void close(session, 'client closed', async () => {});
    log('session-start', { server: session.server, session: short(id), transport: kind, shared: target.server.shared }, `[${session.server} ${short(id)}] session started (${kind}${target.server.shared ? ', shared' : ''})`);
    return session;
  };

  const close = async (session: Session, reason: string, transportClose: () => Promise<void>) => {
    if (session.ended) return;
    sessions.delete(session.id);
    await session.end();
    await transportClose().catch(() => {});
    const seconds = Math.round((Date.now() - session.startedAt) / 1000);
    log('session-end', { server: session.server, session: short(session.id), reason, seconds, toolCalls: session.calls }, `[${session.server} ${short(session.id)}] session ended (${reason}) after ${seconds} s, ${session.calls} tool call(s)`);
  };

  const full = (target: Served): boolean =>
    sessions.size >= config.maxSessions || [...sessions.values()].filter((s) => s.session.server === target.server.name).length >= target.server.maxSessions;

  const http = createServer((req, res) => {
    handle(req, res).catch((error: Error) => {
      log('error', { message: error.message }, `request failed: ${error.message}`);
      if (!res.headersSent) reply(res, 500, { error: 'internal error' });
      else res.end();
    });
  });

  const origins = originPolicy(flags.host, config);

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://mcpbox');
    if (url.pathname === '/healthz') {
      reply(res, 200, { status: 'ok', version: VERSION });
      return;
    }
    // Before anything else: a page that rebound its name to this address gets nothing.
    const refused = rebindingRefusal(origins, req.headers.host, header(req, 'origin'));
    if (refused) {
      log('refused', { reason: refused }, `refused a request: ${refused}`);
      reply(res, 403, { error: refused });
      return;
    }
    const match = /^\/servers\/([^/]+)\/(mcp|sse|messages)$/.exec(url.pathname);
    const target = match ? served.get(decodeURIComponent(match[1]!)) : undefined;
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
    if (kind === 'mcp') await streamable(req, res, target, token);
    else if (kind === 'sse') await sse(req, res, target, token);
    else await messages(req, res, url, target, token);
  }

  async function streamable(req: IncomingMessage, res: ServerResponse, target: Served, token: Buffer) {
    const body = req.method === 'POST' ? await readJson(req, res) : undefined;
    if (body === INVALID) return;
    const sessionId = header(req, 'mcp-session-id');
    if (sessionId) {
      const existing = sessions.get(sessionId);
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
    if (full(target)) {
      res.setHeader('Retry-After', '10');
      reply(res, 503, { jsonrpc: '2.0', error: { code: -32000, message: 'too many sessions; try again later' }, id: null });
      return;
    }
    const id = randomUUID();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => id });
    open(target, 'streamable-http', id, token, transport, (message, related) => transport.send(message, related === undefined ? undefined : { relatedRequestId: related }));
    await transport.handleRequest(req, res, body);
  }

  async function sse(req: IncomingMessage, res: ServerResponse, target: Served, token: Buffer) {
    if (req.method !== 'GET') {
      reply(res, 405, { error: 'GET opens an SSE session' });
      return;
    }
    if (full(target)) {
      res.setHeader('Retry-After', '10');
      reply(res, 503, { error: 'too many sessions; try again later' });
      return;
    }
    const transport = new SSEServerTransport(`/servers/${encodeURIComponent(target.server.name)}/messages`, res);
    open(target, 'sse', transport.sessionId, token, transport, (message) => transport.send(message));
    await transport.start();
  }

  async function messages(req: IncomingMessage, res: ServerResponse, url: URL, target: Served, token: Buffer) {
    const existing = sessions.get(url.searchParams.get('sessionId') ?? '');
    if (!existing || existing.session.transport !== 'sse' || existing.session.server !== target.server.name || !existing.session.token.equals(token)) {
      reply(res, 404, { error: 'session not found' });
      return;
    }
    const body = await readJson(req, res);
    if (body === INVALID) return;
    await (existing.transport as SSEServerTransport).handlePostMessage(req, res, body);
  }

  // Idle sessions end, and take their containers with them.
  const idleCheck = setInterval(
    () => {
      const now = Date.now();
      for (const { session, close: closeIt } of [...sessions.values()]) {
        if (now - session.lastActivity > config.idleTimeout * 1000) {
          log('session-idle', { server: session.server, session: short(session.id) }, `[${session.server} ${short(session.id)}] idle for ${config.idleTimeout} s`);
          void closeIt();
        }
      }
    },
    Math.min(10_000, Math.max(500, (config.idleTimeout * 1000) / 4)),
  );

  await new Promise<void>((resolve, reject) => {
    http.once('error', (error: NodeJS.ErrnoException) => reject(new UsageError(`cannot listen on ${flags.host}:${port}: ${error.message}`, error.code === 'EADDRINUSE' ? 'choose another --port' : undefined)));
    http.listen(port, flags.host, () => resolve());
  });
  const address = http.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  log('listening', { host: flags.host, port: bound, servers: [...served.keys()] }, `listening on http://${flags.host}:${bound} — ${[...served.keys()].map((n) => `/servers/${n}/mcp`).join(', ')}`);
  if (!/^(127\.|::1$|localhost$)/.test(flags.host)) {
    log('exposed', { host: flags.host }, `listening beyond this host on ${flags.host}: tokens travel in clear text unless a TLS proxy is in front`);
  }

  // Shutdown: stop taking connections, end every session (its container with it), then leave.
  const code = await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      log('shutdown', { signal, sessions: sessions.size }, `${signal}: ending ${sessions.size} session(s) and their containers`);
      clearInterval(idleCheck);
      http.close();
      void Promise.all([...sessions.values()].map((s) => s.close()))
        .then(() => Promise.all([...served.values()].map((t) => t.shared?.channel.close(graceMs))))
        .then(() => {
          http.closeAllConnections();
          watchdog.release();
          log('stopped', {}, 'stopped');
          resolve(0);
        });
    };
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(signal, stop);
  });
  return code;
}

function readServeConfig(file: string, ctx: CommandContext) {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read ${file}: ${(error as Error).message}`);
  }
  // It names tokens and the servers' secrets: it must be the owner's alone.
  if (process.platform !== 'win32') {
    const mode = statSync(file).mode & 0o777;
    if (mode & 0o077) throw new ConfigError(`${file} is readable by others (mode ${mode.toString(8).padStart(4, '0')}); it holds auth tokens`, `chmod 600 ${file}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${file} is not valid JSON: ${(error as Error).message}`);
  }
  return parseServeConfig(raw, file, ctx.env);
}

const INVALID = Symbol('invalid body');

async function readJson(req: IncomingMessage, res: ServerResponse): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) {
      reply(res, 413, { error: 'request too large' });
      return INVALID;
    }
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    reply(res, 400, { jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null });
    return INVALID;
  }
}

function reply(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

const short = (id: string) => id.slice(0, 8);
