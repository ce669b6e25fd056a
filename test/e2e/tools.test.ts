import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { connect, mcpbox, quietStateDir, testEnv, textOf } from './helpers.js';

/**
 * MCP-aware protection with a real server and the MCP SDK's client: the first session pins the
 * tools; a tool that differs from its pin is hidden and its calls refused until accepted; a tool
 * policy hides and refuses; every call is in the audit log, without its arguments.
 */
const engine = inject('engine');
const EVERYTHING = '@modelcontextprotocol/server-everything';

describe.skipIf(!engine)('tools: pinned, compared, refused, audited', () => {
  const state = quietStateDir();
  const env = testEnv({ XDG_STATE_HOME: state });
  const lockPath = join(state, 'mcpbox', 'mcpbox.lock');
  afterAll(() => rmSync(state, { recursive: true, force: true }));

  const names = async (session: Awaited<ReturnType<typeof connect>>) => (await session.client.listTools()).tools.map((t) => t.name);

  it('the first session pins what the server offers; its calls are audited without their arguments', async () => {
    const session = await connect(['npx', '-y', EVERYTHING], env);
    try {
      expect(await names(session)).toContain('echo');
      expect(textOf(await session.client.callTool({ name: 'echo', arguments: { message: 'mcpbox-secret-argument' } }))).toContain('mcpbox-secret-argument');
    } finally {
      await session.close();
    }
    const entry = Object.values((JSON.parse(readFileSync(lockPath, 'utf8')) as { servers: Record<string, { tools?: { tools: Record<string, unknown>; version?: string } }> }).servers)[0]!;
    expect(Object.keys(entry.tools!.tools)).toContain('echo');
    const log = await mcpbox(['log', EVERYTHING, '--json'], { env });
    const calls = log.stdout.trim().split('\n').map((l) => JSON.parse(l) as { tool: string; argumentBytes: number });
    expect(calls.at(-1)).toMatchObject({ tool: 'echo', argumentBytes: expect.any(Number) });
    expect(log.stdout).not.toContain('mcpbox-secret-argument');
  });

  it('a tool that no longer matches its pin is hidden and its calls refused, until accepted', async () => {
    // What a rug pull looks like from here: the pin says one thing, the server now offers another.
    const lock = JSON.parse(readFileSync(lockPath, 'utf8')) as { servers: Record<string, { tools: { tools: Record<string, { hash: string; fields: Record<string, string>; descriptionLength: number }> } }> };
    const echo = Object.values(lock.servers)[0]!.tools.tools.echo!;
    Object.assign(echo, { hash: '0'.repeat(64), descriptionLength: 3, fields: { ...echo.fields, description: '0'.repeat(64) } });
    writeFileSync(lockPath, JSON.stringify(lock, null, 2));

    const session = await connect(['npx', '-y', EVERYTHING], env);
    try {
      expect(await names(session)).not.toContain('echo');
      await expect(session.client.callTool({ name: 'echo', arguments: { message: 'x' } })).rejects.toThrow(/mcpbox refused the call to tool "echo": it changed since it was pinned/);
      await expect(session.client.callTool({ name: 'never-offered', arguments: {} })).rejects.toThrow(/the server never offered it/);
      expect(session.stderr()).toMatch(/changed tool "echo": description \+\d+ chars — the same version .* \(hidden from the client\); review with: mcpbox tools .* --diff; accept with: mcpbox tools .* --accept/);
    } finally {
      await session.close();
    }
    const shown = await mcpbox(['tools', EVERYTHING], { env });
    expect(shown.stdout).toMatch(/^ {2}changed echo: description \+\d+ chars$/m);
    const accepted = await mcpbox(['tools', EVERYTHING, '--accept'], { env });
    expect(accepted.exitCode, accepted.stderr).toBe(0);
    const after = await connect(['npx', '-y', EVERYTHING], env);
    try {
      expect(await names(after)).toContain('echo');
      expect(after.stderr()).not.toMatch(/changed tool/);
    } finally {
      await after.close();
    }
  });

  it('a tools policy hides a tool and refuses its calls', async () => {
    const config = join(state, 'tools-policy.json');
    writeFileSync(config, JSON.stringify({ packages: { [EVERYTHING]: { tools: { deny: ['get-sum'] } } } }));
    const session = await connect(['npx', '-y', EVERYTHING], { ...env, MCPBOX_CONFIG: config });
    try {
      const offered = await names(session);
      expect(offered).toContain('echo');
      expect(offered).not.toContain('get-sum');
      await expect(session.client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } })).rejects.toThrow(/your tools setting doesn't allow it/);
    } finally {
      await session.close();
    }
  });
});
