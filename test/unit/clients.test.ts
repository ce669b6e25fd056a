import { describe, expect, it } from 'vitest';
import { CLIENTS, clientFiles } from '../../src/clients/table.js';
import { engineKind } from '../../src/commands/doctor.js';
import { forwardedNames, wrappedLaunches } from '../../src/clients/launches.js';

const places = (platform: NodeJS.Platform, env: Record<string, string> = {}) => ({ home: platform === 'win32' ? 'C:\\Users\\me' : platform === 'darwin' ? '/Users/me' : '/home/me', platform, env, cwd: '/work/project' });

describe('where clients keep their configuration', () => {
  it.each([
    ['darwin', '/Users/me/Library/Application Support/Claude/claude_desktop_config.json'],
    ['linux', '/home/me/.config/Claude/claude_desktop_config.json'],
  ] as const)('Claude Desktop on %s', (platform, path) => {
    expect(CLIENTS['claude-desktop'].files(places(platform))).toEqual([path]);
  });

  it('Claude Desktop on Windows, under %APPDATA%', () => {
    expect(CLIENTS['claude-desktop'].files(places('win32', { APPDATA: 'C:\\Users\\me\\AppData\\Roaming' }))[0]).toMatch(/AppData.Roaming.Claude.claude_desktop_config\.json$/);
  });

  it.each([
    ['claude-code', ['/home/me/.claude.json', '/work/project/.mcp.json']],
    ['cursor', ['/home/me/.cursor/mcp.json', '/work/project/.cursor/mcp.json']],
    ['vscode', ['/home/me/.config/Code/User/mcp.json', '/work/project/.vscode/mcp.json']],
    ['windsurf', ['/home/me/.codeium/windsurf/mcp_config.json']],
  ] as const)('%s', (client, files) => {
    expect(CLIENTS[client].files(places('linux'))).toEqual(files);
  });

  it('XDG_CONFIG_HOME moves the Linux ones', () => {
    expect(CLIENTS['claude-desktop'].files(places('linux', { XDG_CONFIG_HOME: '/cfg' }))).toEqual(['/cfg/Claude/claude_desktop_config.json']);
  });

  it('only files that exist, each once; or one client', () => {
    const exists = (p: string) => p.endsWith('.claude.json') || p.endsWith('.cursor/mcp.json');
    expect(clientFiles(places('linux'), exists)).toEqual([
      { client: 'claude-code', file: '/home/me/.claude.json' },
      { client: 'cursor', file: '/home/me/.cursor/mcp.json' },
      { client: 'cursor', file: '/work/project/.cursor/mcp.json' },
    ]);
    expect(clientFiles(places('linux'), exists, 'claude-code')).toEqual([{ client: 'claude-code', file: '/home/me/.claude.json' }]);
  });
});

describe('engine kind', () => {
  const base = { product: 'Docker Engine', rootless: false, os: undefined, cgroupVersion: undefined, remote: false } as const;
  it.each([
    [{ ...base, product: 'Docker Desktop', os: 'Docker Desktop', cgroupVersion: '2' }, 'Docker Desktop, on Docker Desktop, cgroup v2'],
    [{ ...base, product: 'Podman', os: 'fedora' }, 'Podman, on fedora'],
    [{ ...base, os: 'Ubuntu 24.04', rootless: true }, 'Docker Engine, rootless, on Ubuntu 24.04'],
    [{ ...base, product: 'Podman', rootless: true, cgroupVersion: '1', os: 'debian 12' }, 'Podman, rootless, on debian 12, cgroup v1'],
  ] as const)('%j', (engine, text) => {
    expect(engineKind(engine)).toBe(text);
  });
});

describe('the servers a client starts through mcpbox (pull leaves their standbys)', () => {
  const config = JSON.stringify({
    mcpServers: {
      everything: { command: 'mcpbox', args: ['run', 'npx', '-y', '@modelcontextprotocol/server-everything'] },
      github: { command: 'mcpbox', args: ['run', '-e', 'GITHUB_TOKEN', 'npx', '-y', '@modelcontextprotocol/server-github'], env: { GITHUB_TOKEN: 'ghp_x' } },
      // Its value would come from the client's own environment: unknown here, so no standby.
      shell: { command: '/usr/local/bin/mcpbox', args: ['run', '--env', 'API_KEY', 'uvx', 'some-server'] },
      inline: { command: 'mcpbox', args: ['run', '-e', 'MODE=fast', 'uvx', 'mcp-server-time'] },
      plain: { command: 'npx', args: ['-y', 'not-wrapped'] },
      windows: { command: 'cmd', args: ['/c', 'mcpbox', 'run', 'npx', '-y', 'win-server'] },
      remote: { url: 'https://example.invalid/mcp' },
    },
    projects: { '/work/app': { mcpServers: { memory: { command: 'mcpbox', args: ['run', 'npx', '-y', '@modelcontextprotocol/server-memory'] } } } },
  });

  it('wrapped entries only, with their run arguments, their env values and their project', () => {
    expect(wrappedLaunches(config, 'x.json')).toEqual([
      { name: 'everything', runArgs: ['npx', '-y', '@modelcontextprotocol/server-everything'], env: {}, project: undefined },
      { name: 'github', runArgs: ['-e', 'GITHUB_TOKEN', 'npx', '-y', '@modelcontextprotocol/server-github'], env: { GITHUB_TOKEN: 'ghp_x' }, project: undefined },
      { name: 'inline', runArgs: ['-e', 'MODE=fast', 'uvx', 'mcp-server-time'], env: {}, project: undefined },
      { name: 'windows', runArgs: ['npx', '-y', 'win-server'], env: {}, project: undefined },
      { name: 'memory', runArgs: ['npx', '-y', '@modelcontextprotocol/server-memory'], env: {}, project: '/work/app' },
    ]);
  });

  it.each([
    [['-e', 'A', '--env', 'B', '-eC', '--env=D', 'npx', 'x'], ['A', 'B', 'C', 'D']],
    [['-e', 'A=1', '--env=B=2', 'npx', 'x'], []],
    [['npx', 'x'], []],
  ])('forwarded names of %j', (args, names) => {
    expect(forwardedNames(args)).toEqual(names);
  });
});
