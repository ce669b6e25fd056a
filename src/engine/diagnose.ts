import type { McpboxError } from '../errors.js';
import { EngineUnreachableError } from '../errors.js';

/**
 * Reads the docker CLI's stderr for the failures that are about the engine rather than the request:
 * daemon down, socket permissions, a context or host that doesn't answer. Pure.
 */
export function engineFailure(stderr: string): McpboxError | undefined {
  const text = stderr.trim();
  const first = text.split('\n').find((l) => l.trim() !== '') ?? '';
  if (/permission denied.*(docker|podman).*(socket|sock)/i.test(text)) {
    return new EngineUnreachableError(
      `no permission to use the Docker engine: ${first}`,
      'add your user to the docker group (then log in again) or use rootless Docker',
    );
  }
  // "Error response from daemon" means the engine answered: whatever follows is about the request
  // (a registry it can't reach, a missing image), not about the engine.
  const answered = /Error response from daemon/i.test(text);
  if (!answered && /Cannot connect to the Docker daemon|Is the docker daemon running|error during connect|Cannot connect to Podman|failed to connect to the docker API|unable to resolve docker endpoint|context "[^"]*":? (?:context )?(?:does not exist|not found)/i.test(text)) {
    const reason = text.split('\n').find((l) => /connect|context/i.test(l)) ?? first;
    return new EngineUnreachableError(`the ${/podman/i.test(text) ? 'Podman' : 'Docker'} engine is not answering: ${reason.trim()}`);
  }
  return undefined;
}

/** `docker inspect` names each object it can't find on its own stderr line. */
export function missingObjects(stderr: string, names: readonly string[]): Set<string> {
  const missing = new Set<string>();
  for (const line of stderr.split('\n')) {
    // docker: `Error: No such object: name`; podman: `Error: inspecting object: no such object: "name"`.
    const match = /No such (?:object|image|volume): "?([^"\s]+)"?/i.exec(line);
    if (!match) continue;
    const named = match[1]!;
    for (const name of names) if (named === name || named === `${name}:latest`) missing.add(name);
  }
  return missing;
}
