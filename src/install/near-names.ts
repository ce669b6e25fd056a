import { distance } from 'fastest-levenshtein';
import { SupplyChainError } from '../errors.js';
import { RUNNERS } from '../runners/table.js';
import type { Runner, RunnerInvocation } from '../runners/types.js';
import { findLock, lockedNames, PROJECT_LOCK } from './lock-files.js';
import { join } from 'node:path';

/**
 * The near-name gate: a typosquat waits one or two letters from a name people type every day
 * (`@modelcontextprotocol/server-filesytem`, `mcp-server-gti`), or under another scope. Before the
 * first install of a name never installed here, it is compared with the names in the user's locks
 * and with these popular MCP server packages; a near miss stops with the likely intended name. Pure.
 */
export const POPULAR_SERVERS: Readonly<Record<Runner, readonly string[]>> = {
  npx: [
    '@modelcontextprotocol/server-everything',
    '@modelcontextprotocol/server-filesystem',
    '@modelcontextprotocol/server-memory',
    '@modelcontextprotocol/server-sequential-thinking',
    '@modelcontextprotocol/server-github',
    '@modelcontextprotocol/server-gitlab',
    '@modelcontextprotocol/server-slack',
    '@modelcontextprotocol/server-brave-search',
    '@modelcontextprotocol/server-google-maps',
    '@modelcontextprotocol/server-postgres',
    '@modelcontextprotocol/server-puppeteer',
    '@modelcontextprotocol/server-redis',
    '@modelcontextprotocol/server-gdrive',
    '@modelcontextprotocol/server-aws-kb-retrieval',
    '@modelcontextprotocol/server-everart',
    '@modelcontextprotocol/inspector',
    '@playwright/mcp',
    '@upstash/context7-mcp',
    '@notionhq/notion-mcp-server',
    '@wonderwhy-er/desktop-commander',
    '@supabase/mcp-server-supabase',
    '@sentry/mcp-server',
    '@cloudflare/mcp-server-cloudflare',
    '@stripe/mcp',
    '@browserbasehq/mcp-server-browserbase',
    '@heroku/mcp-server',
    '@azure/mcp',
    '@hubspot/mcp-server',
    '@shopify/dev-mcp',
    '@vercel/mcp-adapter',
    '@executeautomation/playwright-mcp-server',
    '@agentdeskai/browser-tools-mcp',
    '@21st-dev/magic',
    'chrome-devtools-mcp',
    'firecrawl-mcp',
    'figma-developer-mcp',
    'tavily-mcp',
    'exa-mcp-server',
    'mcp-remote',
    'task-master-ai',
    'puppeteer-mcp-server',
    'mongodb-mcp-server',
    'airtable-mcp-server',
    'obsidian-mcp',
    'linear-mcp-server',
  ],
  uvx: [
    'mcp-server-time',
    'mcp-server-fetch',
    'mcp-server-git',
    'mcp-server-sqlite',
    'mcp-server-sentry',
    'mcp-server-qdrant',
    'mcp-server-docker',
    'mcp-server-kubernetes',
    'mcp-server-motherduck',
    'mcp-server-aws',
    'mcp-server-bigquery',
    'mcp-server-snowflake',
    'mcp-server-tree-sitter',
    'mcp-proxy',
    'mcp-atlassian',
    'mcp-obsidian',
    'basic-memory',
    'awslabs-core-mcp-server',
    'serena',
    'zen-mcp-server',
    'markitdown-mcp',
    'arxiv-mcp-server',
    'duckduckgo-mcp-server',
    'postgres-mcp',
    'mcp-clickhouse',
    'mcp-neo4j-cypher',
    'mcp-server-elasticsearch',
    'mcp',
  ],
};

/** Splits `@scope/name` into its scope (or '') and its bare name. */
function parts(name: string): { scope: string; bare: string } {
  const slash = name.startsWith('@') ? name.indexOf('/') : -1;
  return slash === -1 ? { scope: '', bare: name } : { scope: name.slice(0, slash), bare: name.slice(slash + 1) };
}

/**
 * The name this one is probably a typo or a squat of, or undefined. `known` are names already
 * installed here (the user's locks): a known name is never questioned, and a near miss of one is.
 * A near miss: edit distance 1 (2 for names of 10 letters or more) on the whole name, or the same
 * bare name under another scope (or none).
 */
export function likelyIntended(name: string, runner: Runner, known: readonly string[]): string | undefined {
  const candidates = [...new Set([...known, ...POPULAR_SERVERS[runner]])];
  if (candidates.includes(name)) return undefined;
  const mine = parts(name);
  let best: { name: string; score: number } | undefined;
  for (const candidate of candidates) {
    const theirs = parts(candidate);
    const whole = distance(name, candidate);
    const limit = candidate.length >= 10 ? 2 : 1;
    // Short names (mcp, serena) are too close to too many real packages to question.
    const near = candidate.length >= 5 && whole <= limit;
    // A bare name as plain as `mcp` lives under many scopes: only specific ones count.
    const scopeSwap = theirs.scope !== '' && mine.scope !== theirs.scope && mine.bare === theirs.bare && mine.bare.length >= 8;
    if (!near && !scopeSwap) continue;
    const score = scopeSwap ? 0.5 : whole;
    if (!best || score < best.score) best = { name: candidate, score };
  }
  return best?.name;
}

/**
 * The refusal for an invocation that would install a near miss of a popular or installed name, or
 * undefined. Registry packages only (a git URL or a path is what it says). `known`: the names in the
 * user's locks, which are never questioned.
 */
export function nearNameRefusal(invocation: Pick<RunnerInvocation, 'runner' | 'packages'>, known: readonly string[], command: string): SupplyChainError | undefined {
  for (const ref of invocation.packages) {
    if (ref.kind === 'other' || /[/:\\]/.test(ref.name.replace(/^@[^/]+\//, ''))) continue;
    const intended = likelyIntended(ref.name, invocation.runner, known);
    if (!intended) continue;
    const where = known.includes(intended) ? 'which you have installed' : 'a popular MCP server';
    return new SupplyChainError(
      'near-name',
      `${ref.name} is never installed here and is a near miss of ${intended} (${where}): a typo, or a typosquat?`,
      `did you mean ${intended}? If ${ref.name} is really the one, add --yes: ${command} --yes …`,
    );
  }
  return undefined;
}

/** The names installed here: those in the lock in use (a project's, or the user's) and the user's own. */
export function installedNames(cwd: string, stateDir: string): string[] {
  const paths = [...new Set([findLock(cwd, stateDir).path, join(stateDir, PROJECT_LOCK)])];
  return lockedNames(paths, (runner, spec) => RUNNERS[runner].parsePackage(spec).name);
}
