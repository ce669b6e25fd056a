import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    engine: boolean;
  }
}

/**
 * End-to-end tests need a real Docker engine. In CI a missing engine fails the run (.ci/run starts
 * one); on a laptop without Docker they are skipped, loudly. The default images are then prepared
 * through mcpbox itself: a first run builds them from images/ (on the bootstrap's bases in CI).
 *
 * Nothing is left behind: every temporary directory the tests (and the mcpbox processes they start)
 * make is under one root, TMPDIR for the whole run, removed at the end with every mcpbox volume the
 * run created.
 */
/** docker, or podman for the Podman matrix (MCPBOX_ENGINE=podman; mcpbox reads the same variable). */
const ENGINE_CLI = process.env.MCPBOX_ENGINE === 'podman' ? 'podman' : 'docker';

export default async function setup(project: TestProject) {
  const root = mkdtempSync(join(tmpdir(), 'mcpbox-e2e-'));
  // The non-root test user (fidelity tests) must reach the directories made for it inside.
  chmodSync(root, 0o755);
  process.env.TMPDIR = root;
  const volumesBefore = new Set(await mcpboxVolumes());
  const teardown = async () => {
    // Standbys the runs left for a next client hold volumes: they go first. The last session's may
    // still be on its way (a detached mcpbox starts it as the session ends): a moment for it, then
    // removed until no standby holds a volume of the run.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    for (let attempt = 0; attempt < 20; attempt++) {
      const waiting = await execa(ENGINE_CLI, ['ps', '-aq', '--filter', 'label=dev.mcpbox.role=standby'], { reject: false });
      const ids = waiting.stdout.split('\n').filter(Boolean);
      if (ids.length > 0) await execa(ENGINE_CLI, ['rm', '--force', ...ids], { reject: false });
      const made = (await mcpboxVolumes()).filter((v) => !volumesBefore.has(v));
      if (made.length === 0 || (await execa(ENGINE_CLI, ['volume', 'rm', '--force', ...made], { reject: false })).exitCode === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    rmSync(root, { recursive: true, force: true });
  };

  const info = await execa(ENGINE_CLI, ['info', '--format', ENGINE_CLI === 'podman' ? '{{.Version.Version}}' : '{{.ServerVersion}}'], { reject: false });
  if (info.exitCode !== 0) {
    const why = String(info.stderr || info.message || 'no docker CLI').split('\n')[0];
    if (process.env.CI) {
      // A setup that throws gets no teardown from vitest: it cleans up before it fails.
      await teardown();
      throw new Error(`e2e: no Docker engine (${why}); CI must provide one: .ci/run starts dockerd`);
    }
    const bar = '!'.repeat(78);
    console.warn(`\n${bar}\n!! e2e tests SKIPPED: no Docker engine answers (${why}).\n!! Start Docker and run \`npm test\` again; CI never skips them.\n${bar}\n`);
    project.provide('engine', false);
    return teardown;
  }
  // Loaded only now: it makes its working and state directories as it loads, and they belong under the root.
  const { MCPBOX, testEnv, WORKDIR } = await import('./helpers.js');
  for (const runner of ['npx', 'uvx']) {
    const prepared = await execa('node', [MCPBOX, 'run', runner, '--version'], { cwd: WORKDIR, env: testEnv(), reject: false, stdin: 'ignore', stderr: 'inherit' });
    if (prepared.exitCode !== 0) {
      await teardown();
      throw new Error(`e2e: could not prepare the ${runner} image (exit ${prepared.exitCode})`);
    }
  }
  project.provide('engine', true);
  return teardown;
}

async function mcpboxVolumes(): Promise<string[]> {
  // By name too: the engine makes a volume of its own (unlabelled) when a start names one that was removed.
  const listed = await execa(ENGINE_CLI, ['volume', 'ls', '--quiet', '--filter', 'name=mcpbox-'], { reject: false });
  return listed.exitCode === 0 ? listed.stdout.split('\n').filter(Boolean) : [];
}
