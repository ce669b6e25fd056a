/**
 * Which tools a server may offer and be called with (#17): `tools: { allow: [...] }` or
 * `{ deny: [...] }` per server; a project's may only narrow (both lists intersect). Pure.
 */
export interface ToolPolicy {
  readonly allow?: readonly string[];
  readonly deny?: readonly string[];
}

export function toolAllowed(name: string, policy: ToolPolicy | undefined): boolean {
  if (!policy) return true;
  if (policy.deny?.includes(name)) return false;
  return policy.allow === undefined || policy.allow.includes(name);
}

/** A project's policy on top of the user's: only narrower (allow lists intersect, deny lists add up). */
export function narrowToolPolicy(user: ToolPolicy | undefined, project: ToolPolicy | undefined): ToolPolicy | undefined {
  if (!project) return user;
  if (!user) return project;
  const allow = user.allow && project.allow ? user.allow.filter((n) => project.allow!.includes(n)) : (user.allow ?? project.allow);
  const deny = [...new Set([...(user.deny ?? []), ...(project.deny ?? [])])];
  return { ...(allow && { allow }), ...(deny.length > 0 && { deny }) };
}
