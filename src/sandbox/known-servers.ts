import { HOME_DIR } from '../runners/types.js';

/**
 * What well-known servers need to work unchanged in the sandbox, by package name. Pure.
 * - env: fixed variables, e.g. moving what a server would write beside its own (read-only, locked)
 *   code into its data volume; a forwarded variable of the same name (-e, settings) wins.
 * - variant: the image they need (browser automation: Debian's chromium).
 * - args: flags appended when the user's arguments don't name them already (how a server that
 *   reads no variable finds the browser).
 * - installEnv: variables for their install container (skip a browser download the install's
 *   egress would refuse anyway).
 */
export interface KnownServer {
  readonly env?: Readonly<Record<string, string>>;
  readonly variant?: 'browser';
  readonly args?: readonly (readonly [flag: string, ...values: string[]])[];
  readonly installEnv?: Readonly<Record<string, string>>;
}

/** Where the browser variant has Debian's chromium (its wrapper adds the flags in /etc/chromium.d). */
export const BROWSER = '/usr/bin/chromium';

export const KNOWN_SERVERS: Readonly<Record<string, KnownServer>> = {
  // Keeps its graph beside its script unless told otherwise: in its data volume instead.
  '@modelcontextprotocol/server-memory': { env: { MEMORY_FILE_PATH: `${HOME_DIR}/memory.jsonl` } },
  // Headless: the sandbox has no display. No Chromium sandbox: it needs privileges the container drops.
  '@playwright/mcp': {
    variant: 'browser',
    env: { PLAYWRIGHT_MCP_EXECUTABLE_PATH: BROWSER, PLAYWRIGHT_MCP_HEADLESS: 'true', PLAYWRIGHT_MCP_NO_SANDBOX: 'true' },
    installEnv: { PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: '1' },
  },
  'chrome-devtools-mcp': {
    variant: 'browser',
    args: [['--executablePath', BROWSER], ['--headless']],
    env: { CHROME_DEVTOOLS_MCP_NO_USAGE_STATISTICS: '1', CHROME_DEVTOOLS_MCP_NO_UPDATE_CHECKS: '1' },
  },
  // Depends on puppeteer, whose install downloads a Chrome it doesn't need to start (and the install's
  // egress would refuse): skipped, so it installs as on a host that can reach Google's storage.
  '@wonderwhy-er/desktop-commander': { installEnv: { PUPPETEER_SKIP_DOWNLOAD: 'true' } },
  '@modelcontextprotocol/server-puppeteer': {
    variant: 'browser',
    // DOCKER_CONTAINER: its own switch to headless with --no-sandbox.
    env: { PUPPETEER_EXECUTABLE_PATH: BROWSER, DOCKER_CONTAINER: 'true' },
    installEnv: { PUPPETEER_SKIP_DOWNLOAD: 'true' },
  },
};

const known = (packages: readonly string[]) => packages.map((p) => KNOWN_SERVERS[p]).filter((k): k is KnownServer => k !== undefined);

/** The fixed variables of the known servers among these packages. */
export function knownServerEnv(packages: readonly string[]): Record<string, string> {
  return Object.assign({}, ...known(packages).map((k) => k.env ?? {})) as Record<string, string>;
}

export function knownInstallEnv(packages: readonly string[]): Record<string, string> {
  return Object.assign({}, ...known(packages).map((k) => k.installEnv ?? {})) as Record<string, string>;
}

export function knownVariant(packages: readonly string[]): 'browser' | undefined {
  return known(packages).find((k) => k.variant)?.variant;
}

/** The flags to append to a known server's arguments: those it doesn't carry already (`--flag` or `--flag=`). */
export function knownArgs(packages: readonly string[], args: readonly string[]): string[] {
  const given = (flag: string) => args.some((a) => a === flag || a.startsWith(`${flag}=`));
  return known(packages).flatMap((k) => (k.args ?? []).filter(([flag]) => !given(flag)).flatMap((entry) => [...entry]));
}
