import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DockerEngine } from '../../src/engine/docker.js';
import { createLogger } from '../../src/log.js';

/** A first image build reads as progress: one line per step, the legacy builder's chatter only on failure. */
describe('image build progress', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mcpbox-build-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const fakeDocker = (exit: number) => {
    const bin = join(dir, `docker-${exit}`);
    const out = [
      'DEPRECATED: The legacy builder is deprecated and will be removed in a future release.',
      '            Install the buildx component to build images with BuildKit:',
      'Sending build context to Docker daemon  4.096kB',
      'Step 1/3 : ARG BASE_IMAGE=node:22',
      'Step 2/3 : FROM ${BASE_IMAGE}',
      ' ---> 3b127e69acdb',
      'Step 3/3 : RUN apt-get install -y git',
      exit === 0 ? 'Successfully built 0123456789ab' : 'E: Unable to locate package git',
    ];
    writeFileSync(bin, `#!/bin/sh\ncat >&2 <<'EOF'\n${out.join('\n')}\nEOF\nexit ${exit}\n`);
    chmodSync(bin, 0o755);
    return bin;
  };
  const build = async (exit: number) => {
    const lines: string[] = [];
    const engine = new DockerEngine({ bin: fakeDocker(exit), env: { PATH: process.env.PATH! }, log: createLogger({ write: (l) => lines.push(l.replace(/\u001b\[[0-9;]*m/g, '')) }), runtimeDir: dir });
    const error = await engine.build({ tag: 't', context: dir, buildArgs: {}, labels: {} }).catch((e: unknown) => e);
    return { lines: lines.map((l) => l.trim()), error };
  };

  it('success: one line per step, nothing else', async () => {
    const { lines, error } = await build(0);
    expect(error).toBeUndefined();
    expect(lines).toEqual([
      expect.stringMatching(/^mcpbox: build: step 1\/3 \(\d+ s\) ARG BASE_IMAGE=node:22$/),
      expect.stringMatching(/^mcpbox: build: step 2\/3 \(\d+ s\) FROM \$\{BASE_IMAGE\}$/),
      expect.stringMatching(/^mcpbox: build: step 3\/3 \(\d+ s\) RUN apt-get install -y git$/),
    ]);
  });

  it('failure: the full output, then the error naming its last line', async () => {
    const { lines, error } = await build(1);
    expect(lines.some((l) => l.includes('DEPRECATED: The legacy builder'))).toBe(true);
    expect(lines.at(-1)).toBe('mcpbox: build: E: Unable to locate package git');
    expect(error).toMatchObject({ exitCode: 73, message: expect.stringMatching(/E: Unable to locate package git$/) });
  });
});

/** Removal means at once: Podman's `rm --force` first waits 10 s for a stop, Docker's kills. */
describe('removing a container', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mcpbox-rm-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['docker', 'rm --force box'],
    ['podman', 'rm --force --time 0 box'],
  ])('%s: %s', async (cli, expected) => {
    const bin = join(dir, cli);
    const log = join(dir, `${cli}.log`);
    writeFileSync(bin, `#!/bin/sh\necho "$*" >> '${log}'\n`);
    chmodSync(bin, 0o755);
    const engine = new DockerEngine({ bin, env: { PATH: process.env.PATH! }, log: createLogger({ write: () => {} }), runtimeDir: dir });
    await engine.remove(['box']);
    expect(readFileSync(log, 'utf8').trim()).toBe(expected);
  });
});
