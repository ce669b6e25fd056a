import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { docker, mcpbox, quietStateDir, testEnv } from './helpers.js';

/**
 * The supply-chain gates against the real registries: a version younger than a (test-lowered)
 * cooldown is held back, for the package and its tree; an exact pin installs with a note; a near
 * name stops before anything is installed and --yes lets it through; a provenance policy the
 * registry can't satisfy refuses with nothing left behind; a scope's or index's own registry is
 * never swapped for the public one.
 */
const engine = inject('engine');
const EVERYTHING = '@modelcontextprotocol/server-everything';

interface Entry {
  name: string;
  version: string;
  lockfile: string;
  resolvedBefore?: string;
  signatures?: { status: string; packages: number };
}

const lockOf = (state: string) => JSON.parse(readFileSync(join(state, 'mcpbox', 'mcpbox.lock'), 'utf8')) as { servers: Record<string, Entry> };
const npmDoc = async (name: string) => (await (await fetch(`https://registry.npmjs.org/${name.replace('/', '%2f')}`)).json()) as { 'dist-tags': Record<string, string>; time: Record<string, string> };
const pypiFirstUpload = async (name: string, version: string) => {
  const doc = (await (await fetch(`https://pypi.org/pypi/${name}/json`)).json()) as { releases: Record<string, { upload_time_iso_8601: string }[]> };
  return doc.releases[version]!.map((f) => Date.parse(f.upload_time_iso_8601)).sort()[0]!;
};
/** A cooldown (as an age in hours) whose cutoff falls just before this moment. */
const ageBefore = (time: number) => `${((Date.now() - time) / 3_600_000 + 1 / 60).toFixed(4)}h`;
/** mcpbox's volumes but the egress proxy's (one per state dir, made by the first command that opens the engine). */
const volumes = async () => new Set((await docker(['volume', 'ls', '-q', '--filter', 'label=dev.mcpbox.managed'])).stdout.split('\n').filter((v) => v && !v.startsWith('mcpbox-egress-')));

describe.skipIf(!engine)('release-age cooldown', () => {
  const state = quietStateDir();
  const env = testEnv({ XDG_STATE_HOME: state });
  afterAll(() => rmSync(state, { recursive: true, force: true }));

  it('npm: the latest version, younger than the cooldown, is held back; the dependencies it got are no younger than the cutoff', async () => {
    const doc = await npmDoc(EVERYTHING);
    const latest = doc['dist-tags'].latest!;
    const pulled = await mcpbox(['pull', '--min-release-age', ageBefore(Date.parse(doc.time[latest]!)), 'npx', EVERYTHING], { env });
    expect(pulled.exitCode, pulled.stderr).toBe(0);
    const entry = Object.values(lockOf(state).servers).find((e) => e.name === EVERYTHING)!;
    expect(entry.version).not.toBe(latest);
    const cutoff = Date.parse(entry.resolvedBefore!);
    expect(Date.parse(doc.time[entry.version]!)).toBeLessThan(cutoff);
    expect(pulled.stderr).toContain(`mcpbox: ${EVERYTHING} ${latest} is `);
    expect(pulled.stderr).toContain(`old; using ${entry.version} (minReleaseAge `);
    // Transitively: each direct dependency as locked was published before the cutoff.
    const lock = JSON.parse(entry.lockfile) as { packages: Record<string, { version: string; dependencies?: Record<string, string> }> };
    const direct = Object.keys(lock.packages[`node_modules/${EVERYTHING}`]!.dependencies ?? {});
    expect(direct.length).toBeGreaterThan(2);
    for (const name of direct) {
      const version = lock.packages[`node_modules/${name}`]!.version;
      expect(Date.parse((await npmDoc(name)).time[version]!), `${name}@${version}`).toBeLessThan(cutoff);
    }
    // The registry served here signs nothing: that is recorded, not hidden.
    expect(entry.signatures).toMatchObject({ status: 'unavailable' });
    expect(entry.signatures!.packages).toBeGreaterThan(10);
  });

  it('npm: an exact pin younger than the cooldown installs as written, with one note', async () => {
    const doc = await npmDoc(EVERYTHING);
    const latest = doc['dist-tags'].latest!;
    const pulled = await mcpbox(['pull', '--min-release-age', ageBefore(Date.parse(doc.time[latest]!) - 3_600_000), 'npx', `${EVERYTHING}@${latest}`], { env });
    expect(pulled.exitCode, pulled.stderr).toBe(0);
    expect(pulled.stdout).toContain(`${EVERYTHING}@${latest} ready`);
    expect(pulled.stderr.match(/younger than minReleaseAge/g)).toHaveLength(1);
    expect(pulled.stderr).toContain(`mcpbox: ${EVERYTHING}@${latest} is `);
  });

  it('uv: the newest mcp-server-time younger than the cooldown is held back, and its tree too', async () => {
    const doc = (await (await fetch('https://pypi.org/pypi/mcp-server-time/json')).json()) as { info: { version: string } };
    const newest = doc.info.version;
    const pulled = await mcpbox(['pull', '--min-release-age', ageBefore(await pypiFirstUpload('mcp-server-time', newest)), 'uvx', 'mcp-server-time'], { env });
    expect(pulled.exitCode, pulled.stderr).toBe(0);
    const entry = Object.values(lockOf(state).servers).find((e) => e.name === 'mcp-server-time')!;
    expect(entry.version).not.toBe(newest);
    expect(pulled.stderr).toContain(`mcpbox: mcp-server-time ${newest} is `);
    const cutoff = Date.parse(entry.resolvedBefore!);
    const pins = [...entry.lockfile.matchAll(/^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)/gm)].map((m) => [m[1]!.toLowerCase(), m[2]!] as const);
    expect(pins.length).toBeGreaterThan(5);
    for (const [name, version] of pins) expect(await pypiFirstUpload(name, version), `${name}==${version}`).toBeLessThan(cutoff);
  });
});

describe.skipIf(!engine)('refusals before anything is installed', () => {
  const state = quietStateDir();
  const env = testEnv({ XDG_STATE_HOME: state });
  const strict = join(state, 'strict.json');
  writeFileSync(strict, JSON.stringify({ provenance: 'require' }));
  afterAll(() => rmSync(state, { recursive: true, force: true }));

  it('a one-letter typo of a popular server stops with the intended name; --yes goes on to the registry', async () => {
    const before = await volumes();
    const typo = '@modelcontextprotocol/server-filesytem';
    const refused = await mcpbox(['run', 'npx', '-y', typo, '/tmp'], { env, input: '' });
    expect(refused.exitCode).toBe(77);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/^mcpbox: .*server-filesytem is never installed here and is a near miss of @modelcontextprotocol\/server-filesystem.*--yes/m);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(await volumes()).toEqual(before);

    // Past the gate, the registry has the last word: no such package.
    const forced = await mcpbox(['pull', '--yes', 'npx', typo], { env });
    expect(forced.exitCode).toBe(75);
    expect(forced.stderr).not.toMatch(/near miss/);
    expect(forced.stderr).toMatch(/E404, no such package/);
  });

  it('provenance "require" on a registry that signs nothing: refused, no lock entry, no volume left', async () => {
    const before = await volumes();
    const refused = await mcpbox(['pull', 'npx', 'cowsay@1.6.0'], { env: { ...env, MCPBOX_CONFIG: strict } });
    expect(refused.exitCode).toBe(77);
    expect(refused.stderr).toMatch(/provenance policy "require": the registry serves no signing keys.*refusing to install/);
    expect(await volumes()).toEqual(before);
    expect(() => lockOf(state)).toThrow();
  });

  it("npm: a scope's own registry is the only one asked for it, even when it lacks the package", async () => {
    // pypi.org stands in for a private registry: it has no @modelcontextprotocol, registry.npmjs.org does.
    const run = await mcpbox(['run', '--no-stop-on-eof', 'npx', '--@modelcontextprotocol:registry=https://pypi.org/simple/', '-y', EVERYTHING], { env, input: '' });
    expect(run.exitCode).not.toBe(0);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/pypi\.org|E404|404/);
  });

  it('uv: --index-url replaces PyPI for every name, with no fallback', async () => {
    const run = await mcpbox(['run', '--no-stop-on-eof', 'uvx', '--index-url', 'https://registry.npmjs.org/', 'mcp-server-time'], { env, input: '' });
    expect(run.exitCode).not.toBe(0);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/not found in the package registry|No solution found|registry\.npmjs\.org/);
  });

  it('a scope the user gets from a private registry (in ~/.npmrc) is refused unless the command line names it', async () => {
    const home = join(state, 'home');
    rmSync(home, { recursive: true, force: true });
    mkdirSync(home);
    writeFileSync(join(home, '.npmrc'), '@modelcontextprotocol:registry=https://pypi.org/simple/\n');
    const refused = await mcpbox(['run', 'npx', '-y', EVERYTHING], { env: { ...env, HOME: home, npm_config_userconfig: join(home, '.npmrc') }, input: '' });
    expect(refused.exitCode).toBe(77);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/gets @modelcontextprotocol from https:\/\/pypi\.org\/simple\/.*dependency confusion.*--@modelcontextprotocol:registry=/);
  });
});
