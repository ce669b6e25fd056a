// What a script's mcpbox runs leave on the engine, and its removal (compat.mjs, bench.mjs). Each run
// of those gets a fresh state dir, so its data and egress volumes are its own: removed at the end,
// with the egress proxies and standbys it started. What existed before is left alone, and caches and
// installs are kept (a run after this one starts warm).
import { execFileSync } from 'node:child_process';

const docker = (...a) => execFileSync('docker', a, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n').filter(Boolean);
const ids = (role) => docker('ps', '--all', '--quiet', '--filter', `label=dev.mcpbox.role=${role}`);

/** Call before the first run; the function it returns removes what the runs since left. */
export function trackLeftovers() {
  const volumesBefore = new Set(docker('volume', 'ls', '--quiet', '--filter', 'name=mcpbox-'));
  const proxiesBefore = new Set(ids('egress'));
  const standbysBefore = new Set(ids('standby'));
  return function cleanUp() {
    // The standbys the sessions left hold the volumes (a data volume, a proxy's socket), and the last
    // session's may still be starting: a moment for it, then removed until none holds a volume.
    execFileSync('sleep', ['3']);
    for (let attempt = 0; ; attempt++) {
      const standbys = ids('standby').filter((id) => !standbysBefore.has(id));
      if (standbys.length > 0) docker('rm', '--force', ...standbys);
      const proxies = ids('egress').filter((id) => !proxiesBefore.has(id));
      if (proxies.length > 0) docker('rm', '--force', ...proxies);
      const made = docker('volume', 'ls', '--quiet', '--filter', 'name=mcpbox-').filter((v) => !volumesBefore.has(v) && (/-data$/.test(v) || /^mcpbox-egress-/.test(v)));
      try {
        if (made.length > 0) docker('volume', 'rm', '--force', ...made);
        return;
      } catch (error) {
        if (attempt >= 20) throw error;
        execFileSync('sleep', ['1']);
      }
    }
  };
}
