import { describe, expect, it } from 'vitest';
import { enginePath, locateEngine, wellKnownEnginePaths } from '../../src/engine/locate.js';
import { EngineNotFoundError } from '../../src/errors.js';

const only = (...paths: string[]) => (path: string) => paths.includes(path);

describe('finding the docker CLI', () => {
  it('MCPBOX_DOCKER wins', () => {
    expect(locateEngine({ env: { MCPBOX_DOCKER: '/opt/d/docker', PATH: '/usr/bin' }, isExecutable: only('/opt/d/docker', '/usr/bin/docker') })).toEqual({
      path: '/opt/d/docker',
      source: 'MCPBOX_DOCKER',
    });
  });

  it('MCPBOX_DOCKER naming nothing is an error, not a fallback', () => {
    expect(() => locateEngine({ env: { MCPBOX_DOCKER: '/nope/docker' }, isExecutable: only('/usr/local/bin/docker') })).toThrow(EngineNotFoundError);
  });

  it('the config setting comes next', () => {
    expect(locateEngine({ env: {}, configured: '/cfg/docker', isExecutable: only('/cfg/docker') }).source).toBe('config');
  });

  it('a minimal PATH (GUI clients) falls back to the usual install locations', () => {
    const home = '/Users/me';
    for (const path of ['/usr/local/bin/docker', '/opt/homebrew/bin/docker', `${home}/.docker/bin/docker`, '/Applications/Docker.app/Contents/Resources/bin/docker', `${home}/.orbstack/bin/docker`, `${home}/.rd/bin/docker`]) {
      expect(locateEngine({ env: { PATH: '/usr/bin:/bin' }, platform: 'darwin', home, isExecutable: only(path) })).toEqual({ path, source: 'well-known' });
    }
  });

  it('nothing anywhere: EngineNotFoundError with exit 72', () => {
    try {
      locateEngine({ env: { PATH: '' }, platform: 'linux', home: '/h', isExecutable: () => false });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(EngineNotFoundError);
      expect((error as EngineNotFoundError).exitCode).toBe(72);
    }
  });

  it('Windows has its own places', () => {
    expect(wellKnownEnginePaths('win32', 'C:\\Users\\me')[0]).toMatch(/Docker\\resources\\bin\\docker\.exe$/);
  });

  it("puts the CLI's own directory first on its PATH (credential helpers live there)", () => {
    expect(enginePath('/Applications/Docker.app/Contents/Resources/bin/docker', '/usr/bin:/bin')).toBe('/Applications/Docker.app/Contents/Resources/bin:/usr/bin:/bin');
    expect(enginePath('/usr/bin/docker', '/usr/bin:/bin')).toBe('/usr/bin:/bin');
  });
});
