import type { ToolPolicy } from '../config/settings.js';

/**
 * Which tools a server may offer and be called with (#17): `tools: { allow: [...] }` or
 * `{ deny: [...] }` in the settings and per package; a project's only narrows
 * (config/settings.ts, narrowToolPolicy). Pure.
 */
export function toolAllowed(name: string, policy: ToolPolicy | undefined): boolean {
  if (!policy) return true;
  if (policy.deny?.includes(name)) return false;
  return policy.allow === undefined || policy.allow.includes(name);
}
