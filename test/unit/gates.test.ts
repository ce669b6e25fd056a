import { execFile } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { narrowSettings, parseReleaseAge, supplyGates, validateSettings } from '../../src/config/settings.js';
import { formatAge, type GateReport, gateEnv, gateMessages as messagesOf, lockVerification } from '../../src/install/gates.js';

const gateMessages = (...args: Parameters<typeof messagesOf>) => messagesOf(...args).map((m) => (m.level === 'note' ? `(note) ${m.text}` : m.text));
import { likelyIntended, nearNameRefusal } from '../../src/install/near-names.js';
import { parseInstallReport } from '../../src/runners/report.js';
import { isRegistryOption, parseRunnerArgs, RUNNERS } from '../../src/runners/table.js';
import { scopeRegistryLines, scopeRegistryRefusal, userScopeRegistries } from '../../src/install/before-install.js';
import { installRequest } from '../../src/install/lock.js';
import { withFlags, DEFAULT_FLAGS } from '../../src/sandbox/plan.js';

const NOW = new Date('2026-11-30T12:00:00Z');
const hoursAgo = (h: number) => new Date(NOW.getTime() - h * 3_600_000).toISOString();

describe('release-age cooldown: the setting', () => {
  it.each([
    ['3d', 72],
    ['72h', 72],
    ['90m', 1.5],
    ['2 weeks', 336],
    ['0', 0],
    [3, 72],
    [0, 0],
    ['1.5 days', 36],
  ])('%s is %s hours', (value, hours) => expect(parseReleaseAge(value)).toBe(hours));

  it.each([['soon'], ['-1d'], ['3 months'], [-2], [true]])('%s is refused', (value) => expect(parseReleaseAge(value)).toBeUndefined());

  it('defaults to 3 days and warn; a bad value names the file and key', () => {
    expect(supplyGates({})).toEqual({ minReleaseAgeHours: 72, provenance: 'warn' });
    const { problems } = validateSettings({ minReleaseAge: 'later', packages: { x: { provenance: 'always' } } }, '/u/config.json');
    expect(problems.map((p) => `${p.file} ${p.key}`)).toEqual(['/u/config.json minReleaseAge', '/u/config.json packages.x.provenance']);
  });

  it('--min-release-age 0 turns it off for one run; a bad flag is a usage error', () => {
    expect(supplyGates(withFlags({ minReleaseAge: '7d' }, { ...DEFAULT_FLAGS, minReleaseAge: '0' })).minReleaseAgeHours).toBe(0);
    expect(() => withFlags({}, { ...DEFAULT_FLAGS, minReleaseAge: 'whenever' })).toThrow(/--minReleaseAge must be an age/);
  });

  it('a project may lengthen the cooldown and tighten provenance, never the reverse', () => {
    const user = { minReleaseAge: '3d', provenance: 'warn' as const };
    expect(supplyGates(narrowSettings(user, { minReleaseAge: '7d', provenance: 'require' }))).toEqual({ minReleaseAgeHours: 168, provenance: 'require' });
    expect(supplyGates(narrowSettings(user, { minReleaseAge: 0, provenance: 'off' }))).toEqual({ minReleaseAgeHours: 72, provenance: 'warn' });
  });

  it('the cutoff goes to the install container only when the cooldown is on', () => {
    expect(gateEnv(['a', 'b'], { minReleaseAgeHours: 72, provenance: 'warn' }, NOW)).toEqual({ MCPBOX_CUTOFF: '2026-11-27T12:00:00Z', MCPBOX_PROVENANCE: 'warn', MCPBOX_GATE_NAMES: 'a b' });
    expect(gateEnv(['a'], { minReleaseAgeHours: 0, provenance: 'off' }, NOW)).not.toHaveProperty('MCPBOX_CUTOFF');
  });

  it.each([
    [72, '3 days'],
    [2152, '90 days'],
    [24, '1 day'],
    [5, '5 h'],
    [0.5, '30 min'],
  ])('%s hours reads as %s', (hours, text) => expect(formatAge(hours)).toBe(text));
});

describe('what the gates tell the user', () => {
  const gates = { minReleaseAgeHours: 72, provenance: 'warn' as const };
  const times = (packages: NonNullable<GateReport['times']>['packages']): GateReport => ({ times: { cutoff: hoursAgo(72), before: hoursAgo(72), packages }, verify: null });

  it('a newer version held back, with its age and the version used', () => {
    const report = times([{ name: 'pkg', spec: 'pkg', newest: '2.1.0', time: hoursAgo(5) }]);
    expect(gateMessages(report, new Map([['pkg', '2.0.9']]), gates, NOW)).toEqual(['pkg 2.1.0 is 5 h old; using 2.0.9 (minReleaseAge 3 days)']);
  });

  it('nothing when the newest is what was installed, or is older than the cutoff', () => {
    expect(gateMessages(times([{ name: 'pkg', spec: 'pkg', newest: '2.1.0', time: hoursAgo(5) }]), new Map([['pkg', '2.1.0']]), gates, NOW)).toEqual([]);
    expect(gateMessages(times([{ name: 'pkg', spec: 'pkg@^1', newest: '1.9.0', time: hoursAgo(100) }]), new Map([['pkg', '1.8.0']]), gates, NOW)).toEqual([]);
  });

  it('an exact pin younger than the cooldown: one note, installed as written', () => {
    const report = times([{ name: 'pkg', spec: 'pkg@1.2.3', pinned: '1.2.3', time: hoursAgo(10) }]);
    expect(gateMessages(report, new Map([['pkg', '1.2.3']]), gates, NOW)).toEqual([
      'pkg@1.2.3 is 10 h old, younger than minReleaseAge 3 days: installing it as pinned (its dependencies as of its release)',
    ]);
    expect(gateMessages(times([{ name: 'pkg', spec: 'pkg@1.2.3', pinned: '1.2.3', time: hoursAgo(100) }]), new Map([['pkg', '1.2.3']]), gates, NOW)).toEqual([]);
  });

  it('signatures: what could not be verified is said under warn, and recorded in the lock', () => {
    const verify = { keys: 1, packages: 3, verified: 2, unsigned: ['dep@1.0.0'], invalid: [], attested: ['other@1.0.0'] };
    const report: GateReport = { times: null, verify };
    expect(gateMessages(report, new Map([['pkg', '1.0.0']]), gates, NOW)).toEqual([
      '1 of 3 packages carry no registry signature (dep@1.0.0)',
      'pkg: no provenance attestation (built where, from what, is not attested)',
    ]);
    expect(lockVerification(report, ['pkg'])).toEqual({ signatures: { status: 'partial', verified: 2, packages: 3, provenance: [] } });
    expect(lockVerification({ times: null, verify: { ...verify, unsigned: [], attested: ['@s/pkg@1.0.0'] } }, ['@s/pkg'])).toEqual({
      signatures: { status: 'verified', verified: 2, packages: 3, provenance: ['@s/pkg'] },
    });
    expect(gateMessages({ times: null, verify: { ...verify, keys: 0 } }, new Map(), gates, NOW)).toEqual(['(note) the registry serves no signing keys: registry signatures were not checked (provenance policy warn)']);
    expect(gateMessages(report, new Map([['pkg', '1.0.0']]), { ...gates, provenance: 'off' }, NOW)).toEqual([]);
  });

  it("the install report carries the gates' line before its header", () => {
    const body = 'MCPBOX-TREE ' + 'a'.repeat(64) + '\nMCPBOX-DIR /x\nMCPBOX-STAT ' + 'b'.repeat(64) + '\nMCPBOX-CONTENT ' + 'c'.repeat(64) + '\nMCPBOX-BINS x\n{}';
    expect(parseInstallReport(`MCPBOX-GATE {"times":null,"verify":null}\n${body}`)).toMatchObject({ gate: '{"times":null,"verify":null}', lockfile: '{}' });
    expect(parseInstallReport(body)).not.toHaveProperty('gate');
  });
});

/**
 * images/scripts/npm-gate.cjs against a registry on 127.0.0.1 that signs with a key made here: the
 * same checks `npm audit signatures` makes (ECDSA P-256 over name@version:integrity), for real.
 */
describe('npm-gate.cjs against a local registry', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keyid = 'SHA256:test-key';
  const integrity = (name: string) => `sha512-${Buffer.from(name).toString('base64')}`;
  const signed = (name: string, version: string) => sign('sha256', Buffer.from(`${name}@${version}:${integrity(name)}`), privateKey).toString('base64');
  let serveKeys = true;
  let tamper = false;
  let flaky = 0;
  let denied = 0;
  let server: Server;
  let registry: string;
  let dir: string;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const url = decodeURIComponent(req.url ?? '');
      const json = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (url === '/-/npm/v1/keys') return serveKeys ? json(200, { keys: [{ keyid, key: publicKey.export({ format: 'der', type: 'spki' }).toString('base64'), expires: null }] }) : json(404, {});
      const manifest = /^\/(.+)\/(\d+\.\d+\.\d+)$/.exec(url);
      if (manifest) {
        const [, name, version] = manifest as unknown as [string, string, string];
        const dist: Record<string, unknown> = { integrity: integrity(name) };
        if (name !== 'unsigned-dep') dist.signatures = [{ keyid, sig: tamper && name === 'dep' ? signed('evil', version) : signed(name, version) }];
        if (name === '@s/server') dist.attestations = { url: 'x', provenance: { predicateType: 'https://slsa.dev/provenance/v1' } };
        return json(200, { name, version, dist });
      }
      if (url === '/@s/flaky' && flaky-- > 0) return json(503, {});
      if (url === '/@s/denied') {
        denied++;
        return json(403, {});
      }
      if (url === '/@s/server' || url === '/@s/flaky') {
        return json(200, {
          'dist-tags': { latest: '2.1.0' },
          versions: { '1.0.0': {}, '2.0.9': {}, '2.1.0': {} },
          time: { '1.0.0': '2026-01-01T00:00:00.000Z', '2.0.9': '2026-11-01T00:00:00.000Z', '2.1.0': '2026-11-30T07:00:00.000Z' },
        });
      }
      return json(404, {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    registry = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    dir = mkdtempSync(join(tmpdir(), 'mcpbox-gate-'));
    const lock = { packages: { '': {}, 'node_modules/@s/server': { version: '2.0.9', integrity: integrity('@s/server') }, 'node_modules/dep': { version: '1.0.0', integrity: integrity('dep') } } };
    writeFileSync(join(dir, 'package-lock.json'), JSON.stringify(lock));
  });
  afterAll(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const gate = (...args: string[]) =>
    new Promise<{ code: number; out: string; err: string }>((resolve) => {
      const env = { PATH: process.env.PATH!, npm_config_registry: registry };
      execFile(process.execPath, [join(__dirname, '../../images/scripts/npm-gate.cjs'), ...args], { cwd: dir, env }, (error, out, err) => resolve({ code: error ? Number(error.code) : 0, out, err }));
    });

  it('verifies every signature of the tree and sees provenance', async () => {
    serveKeys = true;
    tamper = false;
    const { code, out } = await gate('verify', 'require', '@s/server');
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual({ keys: 1, packages: 2, verified: 2, unsigned: [], invalid: [], attested: ['@s/server@2.0.9'] });
  });

  it('a signature that does not verify is refused whatever the policy (exit 3)', async () => {
    tamper = true;
    const { code, out, err } = await gate('verify', 'warn', '@s/server');
    tamper = false;
    expect(code).toBe(3);
    expect(JSON.parse(out).invalid).toEqual(['dep@1.0.0']);
    expect(err).toMatch(/^mcpbox: registry signature check failed for dep@1\.0\.0/);
  });

  it('require refuses a server without provenance, and a registry without keys; warn lets both through', async () => {
    expect((await gate('verify', 'require', 'dep')).err).toMatch(/dep carries no provenance attestation/);
    serveKeys = false;
    const refused = await gate('verify', 'require', '@s/server');
    const warned = await gate('verify', 'warn', '@s/server');
    serveKeys = true;
    expect(refused.code).toBe(3);
    expect(refused.err).toMatch(/serves no signing keys/);
    expect(warned.code).toBe(0);
    expect(JSON.parse(warned.out)).toMatchObject({ keys: 0, verified: 0 });
  });

  it('times: the newest a spec would get, and a young exact pin moves the cutoff to just after it', async () => {
    const cutoff = '2026-11-27T12:00:00Z';
    const ranged = JSON.parse((await gate('times', cutoff, '@s/server@^2')).out);
    expect(ranged).toEqual({ cutoff, before: '2026-11-27T12:00:00.000Z', packages: [{ name: '@s/server', spec: '@s/server@^2', newest: '2.1.0', time: '2026-11-30T07:00:00.000Z' }] });
    const pinned = JSON.parse((await gate('times', cutoff, '@s/server@2.1.0')).out);
    expect(pinned.before).toBe('2026-11-30T07:00:01.000Z');
    expect(pinned.packages[0]).toMatchObject({ pinned: '2.1.0', time: '2026-11-30T07:00:00.000Z' });
  });
  it('a registry that fails for a moment is retried as npm retries; a refusal is final', async () => {
    flaky = 2;
    const retried = await gate('times', '2026-11-27T12:00:00Z', '@s/flaky@^2');
    expect(flaky).toBe(-1);
    expect(retried.code).toBe(0);
    expect(JSON.parse(retried.out).packages[0]).toMatchObject({ newest: '2.1.0' });
    const refused = await gate('times', '2026-11-27T12:00:00Z', '@s/denied@^2');
    expect(denied).toBe(1);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/^mcpbox: the supply-chain check could not read the registry: .*HTTP 403/);
  }, 15_000);
});

describe('near names: a typo or a typosquat stops before the first install', () => {
  it.each([
    ['@modelcontextprotocol/server-filesytem', 'npx', '@modelcontextprotocol/server-filesystem'],
    ['@modelcontextprotocol/server-filesystemm', 'npx', '@modelcontextprotocol/server-filesystem'],
    ['@modelcontextprotcol/server-memory', 'npx', '@modelcontextprotocol/server-memory'],
    ['@mcp-official/server-filesystem', 'npx', '@modelcontextprotocol/server-filesystem'],
    ['server-sequential-thinking', 'npx', '@modelcontextprotocol/server-sequential-thinking'],
    ['mcp-server-gti', 'uvx', 'mcp-server-git'],
    ['mcp-server-tme', 'uvx', 'mcp-server-time'],
    ['my-internal-servr', 'npx', 'my-internal-server'],
  ])('%s (%s) → %s', (name, runner, intended) => {
    expect(likelyIntended(name, runner as 'npx' | 'uvx', ['my-internal-server'])).toBe(intended);
  });

  it.each([
    ['@modelcontextprotocol/server-filesystem', 'npx'],
    ['mcp-server-git', 'uvx'],
    ['mcp', 'npx'],
    ['cowsay', 'npx'],
    ['@acme/mcp', 'npx'],
    ['mcp-server-gitlab-ce', 'uvx'],
    ['prettier', 'npx'],
    ['mcp-server-tim', 'uvx'],
  ])('%s (%s) passes', (name, runner) => {
    // mcp-server-tim is in the user's locks: a name installed here is never questioned.
    expect(likelyIntended(name, runner as 'npx' | 'uvx', ['mcp-server-tim'])).toBeUndefined();
  });

  it('the refusal names the intended package and how to go on; git and path specs are not questioned', () => {
    const invocation = parseRunnerArgs('npx', ['-y', '@modelcontextprotocol/server-filesytem', '/tmp']);
    const refusal = nearNameRefusal(invocation, [], 'mcpbox run');
    expect(refusal).toMatchObject({ exitCode: 77, code: 'refused-near-name' });
    expect(refusal!.message).toBe('@modelcontextprotocol/server-filesytem is never installed here and is a near miss of @modelcontextprotocol/server-filesystem (a popular MCP server): a typo, or a typosquat?');
    expect(refusal!.hint).toMatch(/^did you mean @modelcontextprotocol\/server-filesystem\? .*mcpbox run --yes/);
    expect(nearNameRefusal(parseRunnerArgs('npx', ['-y', 'github:someone/server-filesytem']), [], 'mcpbox run')).toBeUndefined();
  });
});

describe('dependency confusion: a private scope never comes from the public registry', () => {
  const npmrc = '; user config\n@corp:registry=https://npm.corp.example/\n//npm.corp.example/:_authToken=secret\nregistry=https://registry.npmjs.org/\n';

  it('reads only the scope lines of the user npmrc', () => {
    expect(scopeRegistryLines(npmrc)).toEqual([['@corp', 'https://npm.corp.example/']]);
  });

  it('reads the user npmrc and npm_config_@scope:registry variables, never a project .npmrc', () => {
    const home = mkdtempSync(join(tmpdir(), 'mcpbox-npmrc-'));
    try {
      writeFileSync(join(home, '.npmrc'), npmrc);
      const scopes = userScopeRegistries({ home, env: { 'npm_config_@other:registry': 'https://npm.other.example/' } });
      expect([...scopes]).toEqual([
        ['@corp', 'https://npm.corp.example/'],
        ['@other', 'https://npm.other.example/'],
      ]);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('refuses a privately scoped package unless the command line names its registry', () => {
    const scopes = new Map([['@corp', 'https://npm.corp.example/']]);
    const refusal = scopeRegistryRefusal(parseRunnerArgs('npx', ['-y', '@corp/mcp-server']), scopes, 'mcpbox run');
    expect(refusal).toMatchObject({ exitCode: 77, code: 'refused-private-scope' });
    expect(refusal!.message).toMatch(/gets @corp from https:\/\/npm\.corp\.example\/.*dependency confusion/);
    expect(refusal!.hint).toBe('name the scope\'s registry on the command line: mcpbox run npx --@corp:registry=https://npm.corp.example/ …');
    const named = parseRunnerArgs('npx', ['--@corp:registry=https://npm.corp.example/', '-y', '@corp/mcp-server']);
    expect(scopeRegistryRefusal(named, scopes, 'mcpbox run')).toBeUndefined();
    expect(scopeRegistryRefusal(parseRunnerArgs('npx', ['-y', '@public/server']), scopes, 'mcpbox run')).toBeUndefined();
  });

  it('--@scope:registry is an npx option with a value, a registry option the run may reach, and never locked', () => {
    const invocation = parseRunnerArgs('npx', ['--@corp:registry', 'https://npm.corp.example/', '-y', '@corp/x']);
    expect(invocation.options[0]).toEqual({ name: '--@corp:registry', value: 'https://npm.corp.example/' });
    expect(isRegistryOption('npx', '--@corp:registry')).toBe(true);
    expect(installRequest(invocation)).toBeUndefined();
  });

  it('uv asks the first index that has a name, whatever a project uv.toml says', () => {
    expect(RUNNERS.uvx.resolutionEnv).toEqual({ UV_INDEX_STRATEGY: 'first-index' });
  });
});
