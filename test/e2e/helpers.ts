import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { execa } from 'execa';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** The built CLI, started exactly as a client's config would start it. */
export const MCPBOX = join(ROOT, 'bin/mcpbox.js');
export const FIXTURES = join(ROOT, 'test/fixtures');
/** Tests never read anybody's own mcpbox configuration. */
export const EMPTY_CONFIG = join(FIXTURES, 'config/empty.json');

/**
 * A state dir (lock, install records) whose sweep stamp lies in the future: runs in tests don't
 * sweep, except where a test gives its own XDG_STATE_HOME to watch the sweep.
 */
export function quietStateDir(): string {
  const state = mkdtempSync(join(tmpdir(), 'mcpbox-e2e-state-'));
  mkdirSync(join(state, 'mcpbox'), { recursive: true });
  writeFileSync(join(state, 'mcpbox', 'last-sweep'), 'tests\n');
  const future = new Date(Date.now() + 365 * 86_400_000);
  utimesSync(join(state, 'mcpbox', 'last-sweep'), future, future);
  return state;
}

const QUIET_STATE = quietStateDir();

/**
 * A neutral working directory for CLI runs: terminal-style runs mount their working directory, and
 * the checkout may sit where the sandbox user can't reach it (say under /root).
 */
export const WORKDIR = mkdtempSync(join(tmpdir(), 'mcpbox-e2e-cwd-'));
chmodSync(WORKDIR, 0o755);

export function testEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  return { ...env, MCPBOX_CONFIG: EMPTY_CONFIG, XDG_STATE_HOME: QUIET_STATE, ...extra };
}

export interface Session {
  readonly client: Client;
  readonly transport: StdioClientTransport;
  /** mcpbox's pid (the owner-pid label of its container). */
  readonly pid: number;
  readonly stderr: () => string;
  /** Anything the transport choked on: a stray byte on stdout shows up here. */
  readonly errors: Error[];
  close(): Promise<void>;
}

/** An MCP SDK client launching `mcpbox run …` over stdio, as Claude Desktop or Cursor would. */
export async function connect(args: string[], env: Record<string, string> = testEnv()): Promise<Session> {
  const transport = new StdioClientTransport({ command: process.execPath, args: [MCPBOX, 'run', ...args], env, stderr: 'pipe', cwd: WORKDIR });
  let stderr = '';
  transport.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const errors: Error[] = [];
  const client = new Client({ name: 'mcpbox-e2e', version: '0.0.0' });
  client.onerror = (error) => errors.push(error);
  try {
    await client.connect(transport, { timeout: 180_000 });
  } catch (error) {
    await transport.close().catch(() => {});
    throw new Error(`could not connect: ${(error as Error).message}\nmcpbox stderr:\n${stderr}`);
  }
  const pid = transport.pid;
  if (pid === null) throw new Error('no pid');
  return { client, transport, pid, stderr: () => stderr, errors, close: () => client.close() };
}

/** The engine CLI the e2e run drives: docker, or podman when MCPBOX_ENGINE says so (the Podman matrix in .ci/run). */
export const ENGINE_CLI = process.env.MCPBOX_ENGINE === 'podman' ? 'podman' : 'docker';

/**
 * Whether the engine enforces memory, CPU and process limits. Rootless Podman on cgroup v1 ignores
 * them (doctor warns): a test of a limit there would only find the machine's own memory.
 */
export const LIMITS_ENFORCED = ENGINE_CLI !== 'podman' || !/^true v?1$/.test(podmanHost());

function podmanHost(): string {
  try {
    return execFileSync('podman', ['info', '--format', '{{.Host.Security.Rootless}} {{.Host.CgroupsVersion}}'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

/** A container label in a ps --format template: docker's .Label, podman's index into .Labels. */
export const labelFormat = (name: string) => (ENGINE_CLI === 'podman' ? `{{index .Labels "${name}"}}` : `{{.Label "${name}"}}`);

export async function docker(args: string[]) {
  return execa(ENGINE_CLI, args, { reject: false });
}

/**
 * Containers (running or not) that a given mcpbox process owns: by its owner label, or, for a
 * standby it claimed, by its name (src/engine/containers.ts, claimedName); a standby it left for
 * the next run is nobody's.
 */
export async function containersOf(ownerPid: number): Promise<string[]> {
  const format = ['{{.Names}}', labelFormat('dev.mcpbox.owner-pid'), labelFormat('dev.mcpbox.role')].join('\t');
  const result = await docker(['ps', '-a', '--filter', 'label=dev.mcpbox.managed=true', '--format', format]);
  return result.stdout
    .split('\n')
    .map((line) => line.split('\t'))
    .filter(([name = '', pid, role]) => (pid === String(ownerPid) && role !== 'standby') || name.includes(`-standby-by-${ownerPid}-`))
    .map(([name]) => name!);
}

/** Standbys waiting for a client (src/lifecycle/standby.ts); `running`: started ones only (not just created). */
export async function standbys(running = false): Promise<string[]> {
  const result = await docker(['ps', ...(running ? [] : ['-a']), '--filter', 'label=dev.mcpbox.role=standby', '--format', '{{.Names}}']);
  return result.stdout.split('\n').filter((name) => name.startsWith('mcpbox-standby-'));
}

/**
 * Removes every waiting standby: for tests whose premise is that no server runs (a standby's server
 * runs, and keeps its egress proxy, for up to its idle time).
 */
export async function removeStandbys(): Promise<void> {
  const waiting = await standbys();
  if (waiting.length > 0) await docker(['rm', '--force', ...waiting]);
}

export async function waitFor<T>(probe: () => Promise<T | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface ContainerProcess {
  pid: number;
  ppid: number;
  uid: string;
  capEff: string;
  noNewPrivs: string;
  seccomp: string;
  cmdline: string;
  environ: string[];
}

/**
 * The processes of a running container, read from inside it. `docker exec` processes have parent 0
 * (outside the namespace), so the server's own are PID 1 and its descendants.
 */
export async function serverProcesses(container: string): Promise<ContainerProcess[]> {
  const script =
    'for d in /proc/[0-9]*; do [ -r "$d/status" ] || continue; echo "@@ ${d#/proc/}"; cat "$d/status"; ' +
    'printf "cmdline: "; tr "\\000" " " < "$d/cmdline"; echo; tr "\\000" "\\n" < "$d/environ" | sed "s/^/env: /"; done';
  const result = await docker(['exec', container, 'sh', '-c', script]);
  const all: ContainerProcess[] = [];
  for (const block of result.stdout.split('@@ ').slice(1)) {
    const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(block)?.[1]?.trim() ?? '';
    all.push({
      pid: Number(block.split('\n')[0]),
      ppid: Number(field('PPid')),
      uid: field('Uid'),
      capEff: field('CapEff'),
      noNewPrivs: field('NoNewPrivs'),
      seccomp: field('Seccomp'),
      cmdline: field('cmdline'),
      environ: block
        .split('\n')
        .filter((l) => l.startsWith('env: '))
        .map((l) => l.slice(5)),
    });
  }
  const tree = new Set([1]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of all) if (!tree.has(p.pid) && tree.has(p.ppid)) grew = tree.add(p.pid) !== undefined;
  }
  return all.filter((p) => tree.has(p.pid));
}

/** Host processes whose parent is `pid`, with their argv. */
export function childrenOf(pid: number): { pid: number; argv: string[] }[] {
  const children: { pid: number; argv: string[] }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== pid) continue;
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean);
      children.push({ pid: Number(entry), argv });
    } catch {
      // gone meanwhile
    }
  }
  return children;
}

/** Runs the CLI to completion, capturing everything. */
export async function mcpbox(args: string[], options: { env?: Record<string, string>; input?: string; cwd?: string } = {}) {
  const child = execa(process.execPath, [MCPBOX, ...args], {
    cwd: options.cwd ?? WORKDIR,
    env: options.env ?? testEnv(),
    extendEnv: false,
    reject: false,
    ...(options.input !== undefined ? { input: options.input } : { stdin: 'ignore' as const }),
  });
  const pid = child.pid!;
  const result = await child;
  return { pid, exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr };
}

export function textOf(result: unknown): string {
  const content = (result as { content?: { type: string; text?: string }[] }).content ?? [];
  return content.map((c) => c.text ?? '').join('\n');
}

export const STUBBORN_SERVER = readFileSync(join(FIXTURES, 'stubborn-server.js'), 'utf8');
/** mcpbox run arguments that start the stubborn fixture server inside the real npx image. */
export const STUBBORN_ARGS = ['-e', 'STUBBORN_SERVER', '-e', 'STUBBORN_IGNORE_SIGTERM', '-e', 'STUBBORN_EXIT_CODE', 'npx', '-c', 'node -e "$STUBBORN_SERVER"'];

/**
 * mcpbox started the way a client starts it (stdin and stdout pipes), initialized by hand so the
 * test keeps the process: its exit code, its signals.
 */
export async function startRaw(args: string[], env: Record<string, string> = testEnv({ STUBBORN_SERVER })) {
  const child = execa(process.execPath, [MCPBOX, 'run', ...args], { cwd: WORKDIR, env, extendEnv: false, reject: false, stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', buffer: { stdout: false } });
  let stdout = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stdin!.write(
    '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"0"}}}\n',
  );
  await waitFor(async () => stdout.includes('"id":1'), 180_000, `the initialize response (stdout so far: ${JSON.stringify(stdout)})`);
  const pid = child.pid!;
  const [container] = await waitFor(async () => {
    const found = await containersOf(pid);
    return found.length > 0 && found;
  }, 10_000, 'the container');
  return { child, pid, container: container!, stdout: () => stdout };
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
