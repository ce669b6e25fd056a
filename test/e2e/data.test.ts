import { chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { connect, docker, mcpbox, quietStateDir, testEnv, textOf } from './helpers.js';

/**
 * Nothing is lost: what a server keeps in its HOME survives restarts (its data volume), a file it
 * will create lands on the host, a database beside which it writes a journal works; `prune` never
 * removes data, `mcpbox data rm` does, and only when asked.
 */
const engine = inject('engine');
const MEMORY = '@modelcontextprotocol/server-memory';

describe.skipIf(!engine)('a server keeps its data across sessions', () => {
  const state = quietStateDir();
  const env = testEnv({ XDG_STATE_HOME: state });
  afterAll(() => rmSync(state, { recursive: true, force: true }));

  it('server-memory: an entity created in one session is there in the next (written beside its code on the host)', async () => {
    const first = await connect(['npx', '-y', MEMORY], env);
    try {
      const created = await first.client.callTool({ name: 'create_entities', arguments: { entities: [{ name: 'mcpbox-e2e-kept', entityType: 'test', observations: ['survives a restart'] }] } });
      expect(textOf(created)).toContain('mcpbox-e2e-kept');
    } finally {
      await first.close();
    }
    const second = await connect(['npx', '-y', MEMORY], env);
    try {
      const graph = textOf(await second.client.callTool({ name: 'read_graph', arguments: {} }));
      expect(graph).toContain('survives a restart');
      expect(second.stderr()).not.toMatch(/EROFS|read-only/i);
    } finally {
      await second.close();
    }
  });

  it('mcpbox data lists it with its size; prune leaves it; data rm asks, and without a terminal needs --yes', async () => {
    const listed = await mcpbox(['data', MEMORY, '--json'], { env });
    expect(listed.exitCode, listed.stderr).toBe(0);
    const [volume] = JSON.parse(listed.stdout) as { volume: string; package: string; sizeKb: number }[];
    expect(volume).toMatchObject({ package: MEMORY });
    expect(volume!.sizeKb).toBeGreaterThan(0);

    expect((await mcpbox(['prune'], { env })).exitCode).toBe(0);
    expect((await docker(['volume', 'inspect', volume!.volume])).exitCode).toBe(0);

    const refused = await mcpbox(['data', 'rm', MEMORY], { env, input: '' });
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/no terminal is here to ask.*--yes/s);
    expect((await docker(['volume', 'inspect', volume!.volume])).exitCode).toBe(0);

    const removed = await mcpbox(['data', 'rm', MEMORY, '--yes'], { env });
    expect(removed.exitCode, removed.stderr).toBe(0);
    expect((await docker(['volume', 'inspect', volume!.volume])).exitCode).not.toBe(0);
  });
});

describe.skipIf(!engine)('files a server creates and databases it writes land on the host', () => {
  const state = quietStateDir();
  const env = testEnv({ XDG_STATE_HOME: state });
  const dir = mkdtempSync(join(tmpdir(), 'mcpbox-e2e-sqlite-'));
  const notes = join(dir, 'notes');
  mkdirSync(notes);
  // As root (CI), the directory belongs to another user: the server runs as its owner, never as root.
  if (process.getuid?.() === 0) chownSync(notes, 1000, 1000);
  const db = join(notes, 'new.db');
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(state, { recursive: true, force: true });
  });

  it('a database path that does not exist yet: its directory is mounted, so the file is created on the host', async () => {
    const session = await connect(['uvx', '--with', 'mcp<2', 'mcp-server-sqlite', '--db-path', db], env);
    try {
      const created = await session.client.callTool({ name: 'create_table', arguments: { query: 'CREATE TABLE kept (note TEXT)' } });
      expect(created.isError ?? false, textOf(created)).toBe(false);
    } finally {
      await session.close();
    }
    expect(existsSync(db)).toBe(true);
    expect(statSync(db).uid).toBe(statSync(notes).uid);
  });

  it('the existing database is written in place, journal and all (its directory is mounted, not just the file)', async () => {
    const session = await connect(['uvx', '--with', 'mcp<2', 'mcp-server-sqlite', '--db-path', db], env);
    try {
      const inserted = await session.client.callTool({ name: 'write_query', arguments: { query: "INSERT INTO kept VALUES ('on the host')" } });
      expect(textOf(inserted)).not.toMatch(/readonly|read-only/i);
      expect(textOf(await session.client.callTool({ name: 'read_query', arguments: { query: 'SELECT note FROM kept' } }))).toContain('on the host');
    } finally {
      await session.close();
    }
  });
});
