import { execa } from 'execa';
import type { TestProject } from 'vitest/node';
import { MCPBOX, testEnv, WORKDIR } from './helpers.js';

declare module 'vitest' {
  export interface ProvidedContext {
    engine: boolean;
  }
}

/**
 * End-to-end tests need a real Docker engine. In CI a missing engine fails the run (.ci/run starts
 * one); on a laptop without Docker they are skipped, loudly. The default images are then prepared
 * through mcpbox itself: a first run builds them from images/ (on the bootstrap's bases in CI).
 */
export default async function setup(project: TestProject) {
  const info = await execa('docker', ['info', '--format', '{{.ServerVersion}}'], { reject: false });
  if (info.exitCode !== 0) {
    const why = String(info.stderr || info.message || 'no docker CLI').split('\n')[0];
    if (process.env.CI) throw new Error(`e2e: no Docker engine (${why}); CI must provide one: .ci/run starts dockerd`);
    const bar = '!'.repeat(78);
    console.warn(`\n${bar}\n!! e2e tests SKIPPED: no Docker engine answers (${why}).\n!! Start Docker and run \`npm test\` again; CI never skips them.\n${bar}\n`);
    project.provide('engine', false);
    return;
  }
  for (const runner of ['npx', 'uvx']) {
    const prepared = await execa('node', [MCPBOX, 'run', runner, '--version'], { cwd: WORKDIR, env: testEnv(), reject: false, stdin: 'ignore', stderr: 'inherit' });
    if (prepared.exitCode !== 0) throw new Error(`e2e: could not prepare the ${runner} image (exit ${prepared.exitCode})`);
  }
  project.provide('engine', true);
}
