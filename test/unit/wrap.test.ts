import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'jsonc-parser';
import { describe, expect, it } from 'vitest';
import { ClientConfigError } from '../../src/errors.js';
import { classify, unwrapConfig, wrapConfig } from '../../src/clients/wrap.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'clients');
const fixture = (name: string) => readFileSync(join(FIXTURES, name), 'utf8');

type Servers = Record<string, { command?: string; args?: string[]; env?: Record<string, string> }>;
const servers = (text: string, key = 'mcpServers') => (parse(text) as Record<string, Servers>)[key]!;

describe('wrap, per client shape', () => {
  it.each([
    ['Claude Desktop', 'claude_desktop_config.json', ['filesystem', 'github', 'time'], [], [{ name: 'custom', command: 'node' }]],
    ['Claude Desktop on Windows', 'claude_desktop_config.windows.json', ['filesystem', 'sqlite'], [], []],
    ['Claude Code (~/.claude.json)', 'claude.json', ['everything', 'time (project /home/username/project)'], ['sentry'], []],
    ['Claude Code (.mcp.json)', '.mcp.json', ['shared-server'], ['api-server'], []],
    ['Cursor', 'cursor-mcp.json', ['server-name'], ['remote-server'], []],
    ['VS Code (JSONC)', 'vscode-mcp.json', ['github', 'fetch'], ['remote'], []],
    ['Windsurf', 'windsurf-mcp_config.json', ['github'], ['figma'], []],
  ])('%s', (_label, file, wrapped, remote, other) => {
    const outcome = wrapConfig(fixture(file), file);
    expect(outcome.wrapped).toEqual(wrapped);
    expect(outcome.remote).toEqual(remote);
    expect(outcome.other).toEqual(other);
    expect(outcome.alreadyWrapped).toEqual([]);
    expect(outcome.records.map((r) => r.name)).toHaveLength(wrapped.length);
  });

  it('npx/uvx become mcpbox run, env keys become -e NAME, values and paths stay', () => {
    const before = servers(fixture('claude_desktop_config.json'));
    const after = servers(wrapConfig(fixture('claude_desktop_config.json'), 'f').text);
    expect(after.filesystem).toEqual({ command: 'mcpbox', args: ['run', 'npx', '-y', '@modelcontextprotocol/server-filesystem', '/Users/username/Desktop', '/Users/username/Downloads'] });
    expect(after.github).toEqual({ command: 'mcpbox', args: ['run', '-e', 'GITHUB_PERSONAL_ACCESS_TOKEN', 'npx', '-y', '@modelcontextprotocol/server-github'], env: before.github!.env });
    expect(after.time).toEqual({ command: 'mcpbox', args: ['run', 'uvx', 'mcp-server-time', '--local-timezone=America/New_York'] });
    expect(after.custom).toEqual(before.custom);
  });

  it('keeps `cmd /c` on Windows and handles a full path to the runner', () => {
    const after = servers(wrapConfig(fixture('claude_desktop_config.windows.json'), 'f').text);
    expect(after.filesystem).toEqual({ command: 'cmd', args: ['/c', 'mcpbox', 'run', 'npx', '-y', '@modelcontextprotocol/server-filesystem', 'C:\\Users\\username\\Desktop'] });
    expect(after.sqlite).toEqual({ command: 'mcpbox', args: ['run', 'uvx', 'mcp-server-sqlite', '--db-path', 'C:\\Users\\username\\test.db'] });
  });

  it('VS Code: JSONC comments, tabs and trailing commas are kept', () => {
    const text = fixture('vscode-mcp.json');
    const wrapped = wrapConfig(text, 'f').text;
    for (const comment of text.match(/\/\/.*|\/\*[\s\S]*?\*\//g)!) expect(wrapped).toContain(comment);
    expect(wrapped).toMatch(/\t\t"github": \{\n\t\t\t"type": "stdio",\n\t\t\t"command": "mcpbox",/);
    expect(servers(wrapped, 'servers').github!.args).toEqual(['run', '-e', 'GITHUB_PERSONAL_ACCESS_TOKEN', 'npx', '-y', '@modelcontextprotocol/server-github']);
    expect(wrapped).toContain('"${input:github-token}"');
  });

  it('only the wrapped entries change; everything else stays byte for byte', () => {
    const text = fixture('claude.json');
    const wrapped = wrapConfig(text, 'f').text;
    expect(wrapped.split('"projects"')[0]!.split('"mcpServers"')[0]).toBe(text.split('"projects"')[0]!.split('"mcpServers"')[0]);
    expect(wrapped).toContain('"hasTrustDialogAccepted": true');
    expect(wrapped).toMatchSnapshot();
  });

  it('a custom mcpbox command (for GUI clients with a minimal PATH)', () => {
    expect(servers(wrapConfig(fixture('cursor-mcp.json'), 'f', '/opt/homebrew/bin/mcpbox').text)['server-name']!.command).toBe('/opt/homebrew/bin/mcpbox');
  });
});

describe('wrapping twice, and unwrapping', () => {
  const files = ['claude_desktop_config.json', 'claude_desktop_config.windows.json', 'claude.json', '.mcp.json', 'cursor-mcp.json', 'vscode-mcp.json', 'windsurf-mcp_config.json'];

  it.each(files)('%s: wrapping twice changes nothing', (file) => {
    const once = wrapConfig(fixture(file), file);
    const twice = wrapConfig(once.text, file);
    expect(twice.text).toBe(once.text);
    expect(twice.records).toEqual([]);
    expect(twice.alreadyWrapped).toEqual(once.wrapped);
  });

  it.each(files)('%s: unwrap gives back the file byte for byte', (file) => {
    const original = fixture(file);
    const once = wrapConfig(original, file);
    const back = unwrapConfig(once.text, file, once.records);
    expect(back.text).toBe(original);
    expect(back.restored).toEqual(once.wrapped);
  });

  it('unwrap keeps edits made elsewhere since', () => {
    const original = fixture('claude_desktop_config.json');
    const once = wrapConfig(original, 'f');
    const edited = once.text.replace('"custom": {', '"added": { "command": "python", "args": ["x.py"] },\n    "custom": {');
    const back = unwrapConfig(edited, 'f', once.records);
    expect(back.text).toBe(original.replace('"custom": {', '"added": { "command": "python", "args": ["x.py"] },\n    "custom": {'));
  });

  it('an entry edited since it was wrapped goes back to npx with the edit kept', () => {
    const once = wrapConfig(fixture('claude_desktop_config.json'), 'f');
    const edited = once.text.replace('"/Users/username/Downloads"', '"/Users/username/Downloads",\n        "/Users/username/Music"');
    const back = unwrapConfig(edited, 'f', once.records);
    expect(back.rebuilt).toEqual(['filesystem']);
    expect(servers(back.text).filesystem).toEqual({ command: 'npx', args: ['-y', '@modelcontextprotocol/server-filesystem', '/Users/username/Desktop', '/Users/username/Downloads', '/Users/username/Music'] });
  });

  it('a full path to the runner comes back too', () => {
    const original = fixture('.mcp.json');
    const once = wrapConfig(original, 'f');
    const edited = once.text.replace('"-y"', '"--yes"');
    expect(servers(unwrapConfig(edited, 'f', once.records).text)['shared-server']!.command).toBe('/usr/local/bin/npx');
  });

  it('entries wrapped by hand (no record) are rebuilt and listed', () => {
    const text = '{ "mcpServers": { "x": { "command": "mcpbox", "args": ["run", "-e", "T", "--network", "none", "uvx", "tool", "--flag"] } } }';
    const back = unwrapConfig(text, 'f', []);
    expect(back.missing).toEqual(['x']);
    expect(servers(back.text).x).toEqual({ command: 'uvx', args: ['tool', '--flag'] });
  });
});

describe('refusals', () => {
  it('a file that does not parse: an error naming where, nothing changed', () => {
    expect(() => wrapConfig(fixture('malformed.json'), 'malformed.json')).toThrow(ClientConfigError);
    expect(() => wrapConfig(fixture('malformed.json'), 'malformed.json')).toThrow(/malformed\.json is not valid JSON \(\w+ at line 6, column \d+\); left untouched/);
  });

  it.each([['[]'], ['"text"'], ['']])('not an object: %j', (text) => {
    expect(() => wrapConfig(text, 'f')).toThrow(ClientConfigError);
  });
});

describe('classify', () => {
  it.each([
    [{ command: 'npx', args: [] }, 'wrap'],
    [{ command: '/home/me/.nvm/versions/node/v22/bin/npx' }, 'wrap'],
    [{ command: 'C:\\Program Files\\nodejs\\npx.cmd' }, 'wrap'],
    [{ command: 'uvx' }, 'wrap'],
    [{ command: 'mcpbox', args: ['run', 'npx'] }, 'wrapped'],
    [{ command: 'cmd', args: ['/c', 'mcpbox', 'run', 'npx'] }, 'wrapped'],
    [{ command: 'docker', args: ['run'] }, 'other'],
    [{ command: 'uv', args: ['run', 'server.py'] }, 'other'],
    [{ url: 'https://x/mcp' }, 'remote'],
    [{ type: 'sse', command: 'npx' }, 'remote'],
  ])('%j → %s', (entry, kind) => {
    expect(classify(entry).kind).toBe(kind);
  });
});

describe('replacing a client file', () => {
  it('an edit saved while mcpbox was editing wins: nothing replaced, nothing left behind', async () => {
    const { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { writeFileAtomic } = await import('../../src/files.js');
    const { ClientConfigError } = await import('../../src/errors.js');
    const replaceIfUnchanged = (path: string, text: string, expected: string) =>
      writeFileAtomic(path, text, { unless: { expected, error: () => new ClientConfigError(`${path} changed while mcpbox was editing it; left as it is now`) } });
    const dir = mkdtempSync(join(tmpdir(), 'mcpbox-wrap-race-'));
    try {
      const file = join(dir, 'mcp.json');
      writeFileSync(file, '{"mcpServers":{}}\n');
      // What mcpbox read, then the client saved its own change.
      const read = readFileSync(file, 'utf8');
      writeFileSync(file, '{"mcpServers":{"new":{"command":"x"}}}\n');
      expect(() => replaceIfUnchanged(file, '{"wrapped":true}\n', read)).toThrow(/changed while mcpbox was editing it; left as it is now/);
      expect(readFileSync(file, 'utf8')).toBe('{"mcpServers":{"new":{"command":"x"}}}\n');
      expect(readdirSync(dir)).toEqual(['mcp.json']);
      replaceIfUnchanged(file, '{"wrapped":true}\n', readFileSync(file, 'utf8'));
      expect(readFileSync(file, 'utf8')).toBe('{"wrapped":true}\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
