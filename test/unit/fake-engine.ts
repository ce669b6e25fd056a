import { createHash } from 'node:crypto';
import type { DockerEngine } from '../../src/engine/docker.js';

/**
 * A stand-in for the Docker engine that records what a command asks of it, for unit tests of the
 * command layer: images and volumes exist or not as the test says, installs report a small npm tree,
 * containers exit with the code the test gives.
 */
export interface FakeEngineState {
  /** Images and volumes that don't exist yet. */
  readonly missing: Set<string>;
  /** Version the "registry" resolves an unpinned spec to. */
  version: string;
  /** What a started container exits with. */
  exitCode: number;
  readonly calls: string[];
  /** argv of every `docker run` of a server (not installs). */
  readonly runs: string[][];
  /** Containers other than servers (the egress proxy), by name. */
  readonly containers: Map<string, { running: boolean; status: string; labels: Record<string, string> }>;
  /** Who follows a container's output (the proxy's decisions): the test can feed them lines. */
  readonly followers: ((line: string) => void)[];
  /** The lines of every env file handed to the CLI. */
  readonly envFiles: (readonly { name: string; value: string }[])[];
  /** What the next installs end with instead of success (the install script's exit and stderr). */
  installFailure?: { exitCode: number; stderr: string };
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** The report npx-install.sh prints for `name@version` (images/scripts/install-common.sh, report). */
export function npmInstallReport(name: string, version: string, bin: string): string {
  const lockfile = `${JSON.stringify(
    {
      name: 'mcpbox-install',
      lockfileVersion: 3,
      packages: {
        '': { dependencies: { [name]: `^${version}` } },
        [`node_modules/${name}`]: { version, integrity: `sha512-${Buffer.from(`${name}@${version}`).toString('base64')}`, bin: { [bin]: 'index.js' } },
      },
    },
    null,
    2,
  )}\n`;
  const tree = sha256(lockfile);
  return `MCPBOX-TREE ${tree}\nMCPBOX-DIR /mcpbox/install/tree-${tree.slice(0, 12)}-abc123\nMCPBOX-STAT ${'a'.repeat(64)}\nMCPBOX-CONTENT ${'c'.repeat(64)}\nMCPBOX-BINS ${bin}\n${lockfile}`;
}

export function fakeEngine(options: { bin?: string } = {}): { engine: DockerEngine; state: FakeEngineState } {
  const state: FakeEngineState = { missing: new Set(), version: '1.0.0', exitCode: 0, calls: [], runs: [], containers: new Map(), followers: [], envFiles: [] };
  const volumeIds = new Map<string, string>();
  const engine = {
    bin: '/usr/bin/docker',
    inspect: async (names: readonly string[]) => {
      state.calls.push(`inspect ${names.join(' ')}`);
      const missing = new Set(names.filter((n) => state.missing.has(n)));
      const ids = new Map(names.filter((n) => !missing.has(n) && n.startsWith('mcpbox-') && !state.containers.has(n)).map((n) => [n, volumeIds.get(n) ?? 'id-0']));
      const containers = new Map(names.filter((n) => state.containers.has(n)).map((n) => [n, state.containers.get(n)!]));
      return { missing, volumeIds: ids, containers };
    },
    build: async (input: { tag: string }) => {
      state.calls.push(`build ${input.tag}`);
      state.missing.delete(input.tag);
    },
    pull: async (image: string) => {
      state.calls.push(`pull ${image}`);
      state.missing.delete(image);
    },
    handOverVolume: async (volume: string, _image: string, user: string) => {
      state.calls.push(`hand over ${volume} to ${user}`);
    },
    prepareVolume: async (volume: string) => {
      state.calls.push(`volume ${volume}`);
      state.missing.delete(volume);
      volumeIds.set(volume, `id-${volumeIds.size + 1}`);
      return volumeIds.get(volume)!;
    },
    capture: async (argv: readonly string[]) => {
      const specs = argv.slice(argv.indexOf('mcpbox-install') + 2);
      const name = (specs[0] ?? 'locked-pkg').replace(/@[^@]*$/, '') || specs[0]!;
      state.calls.push(`install ${specs.join(' ') || '(from the lock)'}`);
      if (state.installFailure) return { ...state.installFailure, stdout: '' };
      return { exitCode: 0, stdout: npmInstallReport(name, state.version, options.bin ?? 'server'), stderr: '' };
    },
    envFile: (lines: readonly { name: string; value: string }[]) => {
      state.envFiles.push(lines);
      return { path: '/run/fake/env', close: () => {} };
    },
    watchdog: () => ({ release: () => {} }),
    run: (argv: readonly string[]) => {
      state.calls.push('run');
      state.runs.push([...argv]);
      return { pid: 1, stdin: null, stdout: null, stderr: null, kill: () => true, exit: Promise.resolve({ exitCode: state.exitCode, signal: null }) };
    },
    remove: async (names: readonly string[]) => {
      state.calls.push(`remove ${names.join(' ')}`);
      for (const name of names) state.containers.delete(name);
    },
    runDetached: async (argv: readonly string[]) => {
      const name = argv[argv.indexOf('--name') + 1]!;
      state.calls.push(`start ${name}`);
      const key = argv.find((a) => a.startsWith('dev.mcpbox.egress-key='))!.split('=')[1]!;
      state.containers.set(name, { running: true, status: 'running', labels: { 'dev.mcpbox.egress-key': key } });
      return { exitCode: 0, stderr: '' };
    },
    follow: (_name: string, _since: Date, onLine: (line: string) => void) => {
      state.followers.push(onLine);
      return { stop: () => {}, ended: Promise.resolve() };
    },
    exitCause: async () => undefined,
    listManaged: async () => [],
  };
  return { engine: engine as unknown as DockerEngine, state };
}
