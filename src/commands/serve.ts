import { settingsFor } from '../config/files.js';
import { UsageError } from '../errors.js';
import type { CommandContext } from './context.js';
import { findLock } from '../install/lock-files.js';
import { egressAccessFor } from '../install/prepare.js';
import { hostProbe } from '../lifecycle/processes.js';
import { graceMs as settingsGraceMs } from '../lifecycle/start.js';
import { removeStale } from '../lifecycle/sweep.js';
import { stateDir } from '../paths.js';
import { ServeApp } from '../serve/app.js';
import { readServeConfig, type ServeConfig } from '../serve/config.js';
import type { ServeLog } from '../serve/containers.js';
import { type SessionSite, podTargets } from '../serve/pods.js';
import { prepareServed } from '../serve/prepare.js';

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
  /** Sessions as Kubernetes pods: the directory of each server's Pod (src/serve/pods.ts). */
  kubernetes?: string;
}

export async function serve(flags: ServeFlags, ctx: CommandContext): Promise<number> {
  if (!flags.config) throw new UsageError('serve needs --config FILE', 'a JSON file like a client’s: { "authTokens": [...], "mcpServers": { ... } } (see the README)');
  const port = Number(flags.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port ${flags.port}: not a port number`);
  if (!['text', 'json'].includes(flags.logFormat)) throw new UsageError(`--log-format ${flags.logFormat}: text or json`);
  const config = readServeConfig(flags.config, ctx.env, flags.kubernetes !== undefined);
  const log: ServeLog = (event, fields, text) => {
    if (flags.logFormat === 'json') process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), event, ...fields })}\n`);
    else ctx.log.info(text);
  };

  const settings = await settingsFor(ctx);
  // --grace, else the grace setting, as for run.
  const graceMs = flags.grace !== undefined ? Number(flags.grace) * 1000 : settingsGraceMs(settings);
  const state = stateDir(ctx.env);
  const site = { settings, ctx, stateDir: state, lockPath: findLock(ctx.cwd, state).path, log };
  const { targets, release } = flags.kubernetes ? await podTargets(config.servers, flags.kubernetes, site) : await engineTargets(config, { ...site, graceMs });
  const app = new ServeApp({ targets, config, graceMs, log, bindHost: flags.host });
  await new Promise<void>((resolve, reject) => {
    app.http.once('error', (error: NodeJS.ErrnoException) => reject(new UsageError(`cannot listen on ${flags.host}:${port}: ${error.message}`, error.code === 'EADDRINUSE' ? 'choose another --port' : undefined)));
    app.http.listen(port, flags.host, () => resolve());
  });
  const address = app.http.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  log('listening', { host: flags.host, port: bound, servers: [...targets.keys()] }, `listening on http://${flags.host}:${bound} — ${[...targets.keys()].map((n) => `/servers/${n}/mcp`).join(', ')}`);
  if (!/^(127\.|::1$|localhost$)/.test(flags.host)) {
    log('exposed', { host: flags.host }, `listening beyond this host on ${flags.host}: tokens travel in clear text unless a TLS proxy is in front`);
  }

  // Shutdown: stop taking connections, end every session (its container with it), then leave.
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    for (const name of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(name, resolve);
  });
  log('shutdown', { signal, sessions: app.sessionCount }, `${signal}: ending ${app.sessionCount} session(s) and their containers`);
  await app.shutdown();
  release();
  log('stopped', {}, 'stopped');
  return 0;
}

/** Sessions in containers of the engine: stale ones swept, a watchdog for this process, every server prepared. */
async function engineTargets(config: ServeConfig, at: SessionSite & { ctx: CommandContext; graceMs: number }) {
  const { ctx, settings, log } = at;
  const { engine, env: engineEnv } = await ctx.openEngine(settings);
  const probe = hostProbe();
  const stale = await removeStale(engine, probe);
  if (stale.length > 0) log('swept', { containers: stale.map((c) => c.name) }, `removed ${stale.length} container(s) left by mcpbox processes that are gone`);
  const watchdog = engine.watchdogOwner(ctx.pid, probe.host);
  const egress = egressAccessFor(engine, ctx, settings, at.stateDir, ctx.log);
  const targets = await prepareServed(config.servers, { engine, engineEnv, settings, ctx, lockPath: at.lockPath, stateDir: at.stateDir, log, egress, graceMs: at.graceMs });
  return { targets, release: () => watchdog.release() };
}
