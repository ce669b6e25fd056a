import { existsSync, statSync } from 'node:fs';
import { runArgv } from '../sandbox/argv.js';
import type { DockerEngine, EngineDescription } from '../engine/docker.js';
import { engineCliOf, locateEngine } from '../engine/locate.js';
import { CA_VARS, PROXY_VARS } from '../sandbox/env.js';
import { eofWatcher } from '../lifecycle/eof-watch.js';
import { McpboxError } from '../errors.js';
import { chooseImage } from '../sandbox/images.js';
import { findLock, readLock } from '../install/lock-files.js';
import { stateDir } from '../paths.js';
import { parseRunnerArgs, RUNNER_NAMES, type Runner } from '../runners/table.js';
import { LABEL } from '../engine/containers.js';
import { containerSpec } from '../sandbox/spec.js';
import { VERSION } from '../version.js';
import { settingsFor } from '../config/files.js';
import type { CommandContext } from './context.js';
import type { Settings } from '../config/settings.js';
import type { HostEnv } from '../host.js';
import { DEFAULT_FLAGS, planRun } from '../sandbox/plan.js';

/**
 * `mcpbox doctor`: is this machine ready to run sandboxed servers, and if not, what fixes it. Each
 * check says ok, warn (works, but worth knowing) or fail (mcpbox can't work: exit 1).
 */
export type Status = 'ok' | 'warn' | 'fail';

export interface Check {
  readonly id: string;
  readonly status: Status;
  readonly detail: string;
  readonly fix?: string;
}

export async function doctor(flags: { json?: boolean }, ctx: CommandContext): Promise<number> {
  const checks: Check[] = [{ id: 'mcpbox', status: 'ok', detail: `mcpbox ${VERSION} on Node ${process.version} (${process.platform}/${process.arch})` }];
  const settings = await settingsFor(ctx);
  checks.push(...(await engineChecks(settings, ctx)), ...hostChecks(ctx.env), await tlsCheck(ctx.env), ...rootCheck(ctx.uid, ctx.cwd));

  const failed = checks.filter((c) => c.status === 'fail').length;
  if (flags.json) {
    ctx.stdout.write(`${JSON.stringify({ ok: failed === 0, checks }, null, 2)}\n`);
  } else {
    const mark = { ok: '✓', warn: '!', fail: '✗' } as const;
    for (const c of checks) ctx.stdout.write(`${mark[c.status]} ${c.id.padEnd(24)} ${c.detail}${c.fix ? `\n  ${''.padEnd(24)} fix: ${c.fix}` : ''}\n`);
    ctx.stdout.write(failed === 0 ? 'mcpbox is ready.\n' : `${failed} check(s) failed.\n`);
  }
  return failed === 0 ? 0 : 1;
}

/** The engine: found, answering, which kind; then the default images, caches and a real sandbox. */
async function engineChecks(settings: Settings, ctx: CommandContext): Promise<Check[]> {
  const checks: Check[] = [];
  let engine: DockerEngine;
  try {
    const located = locateEngine({ env: ctx.env, configured: settings.docker, engine: settings.engine });
    checks.push({ id: 'engine', status: 'ok', detail: `${engineCliOf(located.path)} CLI at ${located.path} (found via ${located.source})` });
    engine = (await ctx.openEngine(settings)).engine;
  } catch (error) {
    return [...checks, failure('engine', error)];
  }
  try {
    const described = await engine.describe();
    checks.push({ id: 'daemon', status: 'ok', detail: `engine ${described.version} answers (client ${described.client})` });
    checks.push({ id: 'engine-kind', status: 'ok', detail: engineKind(described) });
    // Rootless on cgroup v1: the engine can't apply memory, CPU or process limits, and says so only in passing.
    if (described.rootless && described.cgroupVersion === '1') checks.push({ id: 'limits', status: 'warn', detail: `${described.product} runs rootless on cgroup v1: memory, CPU and process limits are not enforced (the rest of the sandbox is)`, fix: 'use cgroup v2 (systemd.unified_cgroup_hierarchy=1) with delegated controllers, or a rootful engine' });
  } catch (error) {
    return [...checks, failure('daemon', error)];
  }

  const images = RUNNER_NAMES.map((runner) => ({ runner, image: chooseImage(runner, undefined, ctx.env, settings).image }));
  const { missing } = await engine.inspect(images.map((i) => i.image));
  for (const { runner, image } of images) {
    checks.push(
      missing.has(image)
        ? { id: `image-${runner}`, status: 'warn', detail: `${image} is not built yet (it is built on first use)`, fix: `mcpbox pull ${runner}` }
        : { id: `image-${runner}`, status: 'ok', detail: `${image} is present` },
    );
  }
  for (const runner of RUNNER_NAMES) checks.push(await baseCheck(engine, runner, missing.has(images.find((i) => i.runner === runner)!.image), settings, ctx));
  const volumes = await engine.call(['volume', 'ls', '--filter', `label=${LABEL.managed}=true`, '--format', '{{.Name}}']);
  const names = volumes.stdout.split('\n').filter(Boolean);
  const lock = findLock(ctx.cwd, stateDir(ctx.env));
  const locked = Object.keys(readLock(lock.path).servers).length;
  checks.push({ id: 'caches', status: 'ok', detail: `${names.length} cache volume(s); ${locked} server(s) locked in ${lock.path}` });
  const present = images.find((i) => !missing.has(i.image));
  checks.push(present ? await smoke(engine, present.runner, settings, ctx) : { id: 'smoke', status: 'warn', detail: 'no image to try the sandbox in yet', fix: 'mcpbox pull npx' });
  return checks;
}

/**
 * What a default image is built on, by digest: the shipped bases are pinned by digest (a tag can be
 * moved to other content; a digest can't), the bootstrap's are local images known by their id.
 */
async function baseCheck(engine: DockerEngine, runner: Runner, imageMissing: boolean, settings: Settings, ctx: CommandContext): Promise<Check> {
  const choice = chooseImage(runner, undefined, ctx.env, settings);
  const base = choice.build?.base;
  if (!base) return { id: `base-${runner}`, status: 'ok', detail: `${choice.image} is used as it is (no base to build on)` };
  const pinned = /@sha256:[0-9a-f]{64}$/.test(base);
  const found = await engine.call(['image', 'inspect', '--format', '{{.Id}} {{range .RepoDigests}}{{.}},{{end}}', base]);
  if (found.exitCode === 0) {
    const [id, digests] = found.stdout.trim().split(' ');
    const digest = pinned ? base.slice(base.indexOf('@') + 1) : digests ? digests.split(',')[0]!.split('@')[1] : undefined;
    return { id: `base-${runner}`, status: 'ok', detail: `${choice.image} builds on ${base}: ${digest ? `digest ${digest}` : 'a local image'}, id ${id}${pinned ? '' : ' (not pinned by digest: a local or configured base)'}` };
  }
  if (!imageMissing) return { id: `base-${runner}`, status: 'ok', detail: `${choice.image} is built; its base ${base} is no longer here (needed only to build again)` };
  // Not built and no base: the first run would fail unless the base can be pulled. Pulling it now
  // answers that for real (and the first build then needs no registry).
  const pulled = await engine.call(['pull', '--quiet', base], 180_000).catch((error: Error) => ({ exitCode: 1, stdout: '', stderr: error.message }));
  return pulled.exitCode === 0
    ? { id: `base-${runner}`, status: 'ok', detail: `${choice.image} builds on ${base}: pulled now` }
    : {
        id: `base-${runner}`,
        status: 'fail',
        detail: `${choice.image} can't be built: its base ${base} is not here and can't be pulled (${pulled.stderr.trim().split('\n').pop() ?? 'no registry'})`,
        fix: 'without a registry, build the bases here: mcpbox images bootstrap (it records them in your settings)',
      };
}

/**
 * Does this network intercept TLS? A connection to the npm registry checked against the public roots
 * only (what a sandbox without your CA bundle trusts) says so; then a CA bundle must be configured,
 * or every first install fails (and npm retries for a minute before it says why).
 */
async function tlsCheck(env: HostEnv): Promise<Check> {
  const host = 'registry.npmjs.org';
  const { connect, rootCertificates } = await import('node:tls');
  const outcome = await new Promise<'trusted' | 'untrusted' | 'unreachable'>((resolve) => {
    const socket = connect({ host, port: 443, servername: host, ca: [...rootCertificates], timeout: 8000 }, () => {
      socket.destroy();
      resolve('trusted');
    });
    socket.on('timeout', () => {
      socket.destroy();
      resolve('unreachable');
    });
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(/CERT|SELF_SIGNED|UNABLE_TO|certificate/i.test(`${error.code} ${error.message}`) ? 'untrusted' : 'unreachable'));
  });
  const bundle = CA_VARS.map((name) => env[name]).find((path) => path && existsSync(path));
  if (outcome === 'trusted') return { id: 'tls', status: 'ok', detail: `${host} presents a publicly trusted certificate` };
  if (outcome === 'unreachable') return { id: 'tls', status: 'warn', detail: `${host} can't be reached from here: first runs need their registry`, fix: 'check the network and proxy settings' };
  return bundle
    ? { id: 'tls', status: 'ok', detail: `${host}'s certificate is not publicly trusted (a TLS-intercepting proxy): your CA bundle ${bundle} is mounted into every sandbox` }
    : {
        id: 'tls',
        status: 'fail',
        detail: `${host}'s certificate is not publicly trusted (a TLS-intercepting proxy) and no CA bundle is configured: every install would fail`,
        fix: "export NODE_EXTRA_CA_CERTS=/path/to/the-proxy's-ca.pem where mcpbox runs (and in your client's env block)",
      };
}

/**
 * Root (devcontainers, CI, WSL): the sandbox never runs as root, so it runs as the owner of the paths
 * it writes, and as nobody when root owns them: those are then read-only to it (`prettier --write`:
 * EACCES; `ruff`: no cache). Said here and, per run, when it happens.
 */
function rootCheck(uid: number | undefined, cwd: string): Check[] {
  if (uid !== 0) return [];
  let owner: number | undefined;
  try {
    owner = statSync(cwd).uid;
  } catch {
    return [];
  }
  return owner === 0
    ? [{ id: 'root', status: 'warn', detail: `mcpbox runs as root and ${cwd} belongs to root: sandboxes never run as root, so they can read it but not write it (tools that write there fail with EACCES)`, fix: 'run mcpbox as a regular user, or chown your project directories to one' }]
    : [{ id: 'root', status: 'ok', detail: `mcpbox runs as root: sandboxes run as the owner of the paths they write (uid ${owner} here), never as root` }];
}

/** This host: CA bundles, proxies, and how the end of a client's input is seen. */
function hostChecks(env: HostEnv): Check[] {
  const checks: Check[] = [];
  for (const name of CA_VARS) {
    const path = env[name];
    if (!path) continue;
    checks.push(
      existsSync(path) && statSync(path).isFile()
        ? { id: `ca-${name}`, status: 'ok', detail: `${name}=${path}: mounted read-only into every sandbox` }
        : { id: `ca-${name}`, status: 'fail', detail: `${name}=${path}: no such file`, fix: `point ${name} at your CA bundle, or unset it` },
    );
  }
  if (!CA_VARS.some((name) => env[name])) checks.push({ id: 'ca', status: 'ok', detail: 'no CA bundle set (NODE_EXTRA_CA_CERTS, SSL_CERT_FILE, REQUESTS_CA_BUNDLE): sandboxes use their own' });
  const proxies = PROXY_VARS.filter((name) => env[name]);
  const local = proxies.filter((name) => /\/\/(localhost|127\.|\[::1\])/.test(env[name]!));
  if (proxies.length > 0) {
    checks.push(
      local.length > 0
        ? { id: 'proxy', status: 'warn', detail: `${local.join(', ')} point at this host's loopback, which a container can't reach`, fix: "use the host's address on the Docker network (host.docker.internal on Docker Desktop)" }
        : { id: 'proxy', status: 'ok', detail: `${proxies.join(', ')} carried into every sandbox` },
    );
  }
  checks.push(
    eofWatcher(env)
      ? { id: 'stdin', status: 'ok', detail: 'perl or python3 found: the client’s stdin goes straight to the engine' }
      : { id: 'stdin', status: 'warn', detail: 'no perl or python3: mcpbox copies stdin itself to see its end (a little slower per message)', fix: 'install perl or python3' },
  );
  return checks;
}

function failure(id: string, error: unknown): Check {
  if (error instanceof McpboxError) return { id, status: 'fail', detail: error.message, ...(error.hint && { fix: error.hint }) };
  return { id, status: 'fail', detail: (error as Error).message };
}

export function engineKind(engine: Pick<EngineDescription, 'product' | 'rootless' | 'os' | 'cgroupVersion' | 'remote'>): string {
  const parts: string[] = [engine.product];
  if (engine.rootless) parts.push('rootless');
  if (engine.remote) parts.push('remote');
  if (engine.os) parts.push(`on ${engine.os}`);
  if (engine.cgroupVersion) parts.push(`cgroup v${engine.cgroupVersion}`);
  return parts.join(', ');
}

/** A throwaway container with exactly a server's hardening, reporting what it can do from inside. */
async function smoke(engine: DockerEngine, runner: (typeof RUNNER_NAMES)[number], settings: Awaited<ReturnType<typeof settingsFor>>, ctx: CommandContext): Promise<Check> {
  const plan = planRun(parseRunnerArgs(runner, ['--version']), settings, { ...DEFAULT_FLAGS, autoMount: false }, ctx);
  const probe = 'id -u; grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status; if touch /mcpbox-probe 2>/dev/null; then echo root=writable; else echo root=read-only; fi';
  const spec = containerSpec({ ...plan.input, name: `${plan.input.name}-doctor`, command: { entrypoint: 'sh', args: ['-c', probe], network: 'none' } });
  // A throwaway: no forwarded values (it runs nothing of the user's).
  const result = await engine.call(runArgv({ ...spec, env: spec.env.filter((v) => v.via === 'argv') }), 60_000);
  const out = result.stdout;
  const expected = [/^65534$/m, /^CapEff:\s+0+$/m, /^NoNewPrivs:\s+1$/m, /^Seccomp:\s+2$/m, /^root=read-only$/m];
  if (result.exitCode === 0 && expected.every((e) => e.test(out))) {
    return { id: 'smoke', status: 'ok', detail: `a sandbox in ${spec.image}: uid 65534, no capabilities, no-new-privileges, seccomp filter, read-only root` };
  }
  return {
    id: 'smoke',
    status: 'fail',
    detail: `the sandbox in ${spec.image} is not what it should be: ${(out || result.stderr).trim().replace(/\n/g, '; ')}`,
    fix: 'check the engine supports --read-only, --cap-drop, no-new-privileges and seccomp (rootless setups may need cgroup v2); see the README',
  };
}
