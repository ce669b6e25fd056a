import { join } from 'node:path';

/**
 * Where MCP clients keep their server configurations, per platform, as their documentation says.
 * Pure: home, platform, environment and project directory are passed in.
 */
export type ClientName = 'claude-desktop' | 'claude-code' | 'cursor' | 'vscode' | 'windsurf';

export interface ClientPlaces {
  readonly home: string;
  readonly platform: NodeJS.Platform;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The project: where project-level files (.mcp.json, .cursor/, .vscode/) are looked for. */
  readonly cwd: string;
}

const appData = ({ home, env }: ClientPlaces) => env.APPDATA ?? join(home, 'AppData', 'Roaming');
const macSupport = ({ home }: ClientPlaces) => join(home, 'Library', 'Application Support');
const xdgConfig = ({ home, env }: ClientPlaces) => env.XDG_CONFIG_HOME ?? join(home, '.config');

export const CLIENTS: Readonly<Record<ClientName, { readonly label: string; readonly files: (places: ClientPlaces) => string[] }>> = {
  'claude-desktop': {
    label: 'Claude Desktop',
    files: (p) => [
      join(p.platform === 'darwin' ? join(macSupport(p), 'Claude') : p.platform === 'win32' ? join(appData(p), 'Claude') : join(xdgConfig(p), 'Claude'), 'claude_desktop_config.json'),
    ],
  },
  'claude-code': {
    label: 'Claude Code',
    files: (p) => [join(p.home, '.claude.json'), join(p.cwd, '.mcp.json')],
  },
  cursor: {
    label: 'Cursor',
    files: (p) => [join(p.home, '.cursor', 'mcp.json'), join(p.cwd, '.cursor', 'mcp.json')],
  },
  vscode: {
    label: 'VS Code',
    files: (p) => [
      join(p.platform === 'darwin' ? join(macSupport(p), 'Code') : p.platform === 'win32' ? join(appData(p), 'Code') : join(xdgConfig(p), 'Code'), 'User', 'mcp.json'),
      join(p.cwd, '.vscode', 'mcp.json'),
    ],
  },
  windsurf: {
    label: 'Windsurf',
    files: (p) => [join(p.home, '.codeium', 'windsurf', 'mcp_config.json')],
  },
};

export const CLIENT_NAMES = Object.keys(CLIENTS) as ClientName[];

export function isClient(name: string): name is ClientName {
  return Object.hasOwn(CLIENTS, name);
}

/** Every client's files that exist (or one client's), without duplicates, in table order. */
export function clientFiles(places: ClientPlaces, exists: (path: string) => boolean, only?: ClientName): { client: ClientName; file: string }[] {
  const found: { client: ClientName; file: string }[] = [];
  for (const client of only ? [only] : CLIENT_NAMES) {
    for (const file of CLIENTS[client].files(places)) {
      if (exists(file) && !found.some((f) => f.file === file)) found.push({ client, file });
    }
  }
  return found;
}
