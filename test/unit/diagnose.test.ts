import { describe, expect, it } from 'vitest';
import { engineFailure, missingObjects } from '../../src/engine/diagnose.js';

describe('engine failures', () => {
  it.each([
    ['daemon down', 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?', 'engine-unreachable'],
    ['tcp host refused', 'Cannot connect to the Docker daemon at tcp://127.0.0.1:1. Is the docker daemon running?', 'engine-unreachable'],
    ['windows pipe', 'error during connect: this error may indicate that the docker daemon is not running: Get "http://%2F%2F.%2Fpipe%2Fdocker_engine/v1.24/version": open //./pipe/docker_engine: The system cannot find the file specified.', 'engine-unreachable'],
    ['missing context', 'context "colima" does not exist', 'engine-unreachable'],
    ['missing context (CLI 28)', 'Failed to initialize: unable to resolve docker endpoint: context "nope": context not found: open /root/.docker/contexts/meta/x/meta.json: no such file or directory', 'engine-unreachable'],
    ['socket permission', 'permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock: Get "http://%2Fvar%2Frun%2Fdocker.sock/v1.24/version": dial unix /var/run/docker.sock: connect: permission denied', 'engine-unreachable'],
    ['legacy build banner then daemon down', 'DEPRECATED: The legacy builder is deprecated\nCannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?', 'engine-unreachable'],
  ])('%s', (_label, stderr, code) => {
    expect(engineFailure(stderr)?.code).toBe(code);
  });

  it.each([
    ['registry unreachable during pull', 'Error response from daemon: Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io: no such host'],
    ['registry unreachable during build', 'Step 2/9 : FROM x\nGet "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io: no such host'],
    ['no such image', 'Error: No such object: mcpbox/npx:abc'],
    ['pull access denied', "Error response from daemon: pull access denied for x, repository does not exist or may require 'docker login'"],
  ])('not the engine: %s', (_label, stderr) => {
    expect(engineFailure(stderr)).toBeUndefined();
  });

  it('names the reason on the first line that has it', () => {
    expect(engineFailure('DEPRECATED: legacy builder\nCannot connect to the Docker daemon at unix:///x.sock. Is the docker daemon running?')?.message).toBe(
      'the Docker engine is not answering: Cannot connect to the Docker daemon at unix:///x.sock. Is the docker daemon running?',
    );
  });
});

describe('missing objects', () => {
  it.each([
    ['both missing', 'Error: No such object: img:1\nError: No such object: vol', ['img:1', 'vol'], ['img:1', 'vol']],
    ['one missing', 'Error: No such object: vol', ['img:1', 'vol'], ['vol']],
    ['untagged image gets :latest', 'Error: No such object: node:latest', ['node'], ['node']],
    ['other error', 'template parsing error', ['img'], []],
  ])('%s', (_label, stderr, names, missing) => {
    expect([...missingObjects(stderr, names)]).toEqual(missing);
  });
});
