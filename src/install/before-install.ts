import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SupplyChainError } from '../errors.js';
import type { RunnerInvocation } from '../runners/types.js';
import { installedNames, nearNameRefusal } from './near-names.js';

/**
 * The gates that need nothing but the command line and the user's files, checked before any engine
 * is asked for anything: a near miss of a popular or installed name, and a scope the user gets from a
 * private registry that the sandbox would otherwise fetch from the public one (dependency confusion).
 */
export function refuseBeforeInstall(
  invocation: Pick<RunnerInvocation, 'runner' | 'packages' | 'options' | 'info'>,
  host: { readonly cwd: string; readonly home: string; readonly env: Readonly<Record<string, string | undefined>> },
  stateDir: string,
  options: { readonly yes: boolean; readonly command: string },
): void {
  if (invocation.info) return;
  const confusion = scopeRegistryRefusal(invocation, userScopeRegistries(host), options.command);
  if (confusion) throw confusion;
  const near = options.yes ? undefined : nearNameRefusal(invocation, installedNames(host.cwd, stateDir), options.command);
  if (near) throw near;
}

/**
 * `@scope:registry=URL` lines of the user's npm configuration (NPM_CONFIG_USERCONFIG or ~/.npmrc) and
 * npm_config_@scope:registry variables. Only these lines are read: the file also holds tokens. A
 * project's .npmrc is not read: it comes with the repository, and could point a scope anywhere.
 */
export function userScopeRegistries(host: { readonly home: string; readonly env: Readonly<Record<string, string | undefined>> }): Map<string, string> {
  const scopes = new Map<string, string>();
  let text = '';
  try {
    text = readFileSync(host.env.NPM_CONFIG_USERCONFIG ?? host.env.npm_config_userconfig ?? join(host.home, '.npmrc'), 'utf8');
  } catch {
    // No user configuration: no scope registries.
  }
  for (const [scope, url] of scopeRegistryLines(text)) scopes.set(scope, url);
  for (const [name, value] of Object.entries(host.env)) {
    const match = /^npm_config_(@[a-z0-9-~][a-z0-9-._~]*):registry$/i.exec(name);
    if (match && value) scopes.set(match[1]!.toLowerCase(), value);
  }
  return scopes;
}

/** Pure: the `@scope:registry=URL` entries of an .npmrc text. */
export function scopeRegistryLines(text: string): [string, string][] {
  const out: [string, string][] = [];
  for (const line of text.split(/\r?\n/)) {
    const match = /^\s*(@[a-z0-9-~][a-z0-9-._~]*):registry\s*=\s*"?([^"\s]+)"?\s*$/i.exec(line);
    if (match) out.push([match[1]!.toLowerCase(), match[2]!]);
  }
  return out;
}

/**
 * The refusal for an npm package whose scope the user gets from a private registry, unless the
 * command line names that scope's registry (npx --@scope:registry=URL, which the sandbox then uses
 * and may reach). Without it the sandbox, which sees none of ~/.npmrc, would ask the public registry
 * for the name: exactly where a dependency-confusion attacker publishes it. Pure.
 */
export function scopeRegistryRefusal(
  invocation: Pick<RunnerInvocation, 'runner' | 'packages' | 'options'>,
  scopes: ReadonlyMap<string, string>,
  command: string,
): SupplyChainError | undefined {
  if (invocation.runner !== 'npx') return undefined;
  const given = new Set(invocation.options.map((o) => o.name.toLowerCase()).filter((n) => n.endsWith(':registry')).map((n) => n.slice(2, -':registry'.length)));
  for (const ref of invocation.packages) {
    const scope = /^(@[^/]+)\//.exec(ref.name)?.[1]?.toLowerCase();
    const url = scope && scopes.get(scope);
    if (!scope || !url || given.has(scope) || invocation.options.some((o) => o.name === '--registry')) continue;
    return new SupplyChainError(
      'private-scope',
      `${ref.name}: your npm configuration gets ${scope} from ${url}, which the sandbox doesn't read; it would ask the public registry for ${ref.name} instead (dependency confusion)`,
      `name the scope's registry on the command line: ${command} npx --${scope}:registry=${url} …`,
    );
  }
  return undefined;
}
