import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { dockerSocket, engineCliOf, engineLocation, enginePath, locateEngine, wellKnownEnginePaths } from '../../src/engine/locate.js';
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

  it('podman: where there is no docker, or when MCPBOX_ENGINE or the engine setting asks for it; anything else is refused', () => {
    expect(locateEngine({ env: { PATH: '/usr/bin' }, platform: 'linux', home: '/h', isExecutable: only('/usr/bin/podman') })).toEqual({ path: '/usr/bin/podman', source: 'PATH' });
    expect(locateEngine({ env: { PATH: '/usr/bin' }, platform: 'linux', home: '/h', isExecutable: only('/usr/bin/podman', '/usr/bin/docker') }).path).toBe('/usr/bin/docker');
    expect(locateEngine({ env: { PATH: '/usr/bin', MCPBOX_ENGINE: 'podman' }, platform: 'linux', home: '/h', isExecutable: only('/usr/bin/podman', '/usr/bin/docker') }).path).toBe('/usr/bin/podman');
    expect(locateEngine({ env: { PATH: '' }, engine: 'podman', platform: 'darwin', home: '/h', isExecutable: only('/opt/homebrew/bin/podman', '/usr/local/bin/docker') })).toEqual({ path: '/opt/homebrew/bin/podman', source: 'well-known' });
    expect(() => locateEngine({ env: { PATH: '/usr/bin', MCPBOX_ENGINE: 'podman' }, platform: 'linux', home: '/h', isExecutable: only('/usr/bin/docker') })).toThrow(/no podman CLI found .*MCPBOX_ENGINE or the engine setting asks for podman/);
    expect(() => locateEngine({ env: { MCPBOX_ENGINE: 'lxc' }, isExecutable: only('/usr/bin/docker') })).toThrow(/MCPBOX_ENGINE=lxc: not an engine mcpbox drives/);
    expect(engineCliOf('/usr/bin/podman')).toBe('podman');
    expect(engineCliOf('C:\\Program Files\\RedHat\\Podman\\podman.exe')).toBe('podman');
    expect(engineCliOf('/usr/local/bin/docker')).toBe('docker');
  });

  it('Windows has its own places', () => {
    expect(wellKnownEnginePaths('win32', 'C:\\Users\\me')[0]).toMatch(/Docker\\resources\\bin\\docker\.exe$/);
  });

  it("puts the CLI's own directory first on its PATH (credential helpers live there)", () => {
    expect(enginePath('/Applications/Docker.app/Contents/Resources/bin/docker', '/usr/bin:/bin')).toBe('/Applications/Docker.app/Contents/Resources/bin:/usr/bin:/bin');
    expect(enginePath('/usr/bin/docker', '/usr/bin:/bin')).toBe('/usr/bin:/bin');
  });
});

describe('where the engine runs', () => {
  const meta = (name: string) => `/h/.docker/contexts/meta/${createHash('sha256').update(name).digest('hex')}/meta.json`;
  const files = (map: Record<string, string>) => (path: string) => map[path];

  it('a socket is this machine; tcp:// and ssh:// are another, by DOCKER_HOST, a docker context or CONTAINER_HOST', () => {
    expect(engineLocation({}, 'docker', files({}), '/h')).toEqual({ remote: false });
    expect(engineLocation({ DOCKER_HOST: 'unix:///run/user/1000/docker.sock' }, 'docker', files({}), '/h').remote).toBe(false);
    expect(engineLocation({ DOCKER_HOST: 'tcp://127.0.0.1:2375' }, 'docker', files({}), '/h')).toEqual({ remote: true, endpoint: 'tcp://127.0.0.1:2375', via: 'DOCKER_HOST' });
    const context = files({ '/h/.docker/config.json': '{"currentContext":"vps"}', [meta('vps')]: '{"Endpoints":{"docker":{"Host":"ssh://me@vps"}}}' });
    expect(engineLocation({}, 'docker', context, '/h')).toEqual({ remote: true, endpoint: 'ssh://me@vps', via: 'docker context vps' });
    expect(engineLocation({ DOCKER_CONTEXT: 'default' }, 'docker', context, '/h').remote).toBe(false);
    expect(engineLocation({ CONTAINER_HOST: 'ssh://core@localhost:50123/run/podman/podman.sock' }, 'podman', files({}), '/h').remote).toBe(true);
    expect(engineLocation({ DOCKER_HOST: 'tcp://127.0.0.1:2375', MCPBOX_LOCAL_ENGINE: '1' }, 'docker', files({}), '/h').remote).toBe(false);
  });

  it("the local socket mcpbox may ask the API itself: the CLI's own, only when it is plainly one", () => {
    expect(dockerSocket({}, 'docker', 'linux', files({}), '/h')).toBe('/var/run/docker.sock');
    expect(dockerSocket({ DOCKER_HOST: 'unix:///run/user/1000/docker.sock' }, 'docker', 'linux', files({}), '/h')).toBe('/run/user/1000/docker.sock');
    expect(dockerSocket({ DOCKER_HOST: 'tcp://127.0.0.1:2375' }, 'docker', 'linux', files({}), '/h')).toBeUndefined();
    const socketContext = files({ '/h/.docker/config.json': '{"currentContext":"colima"}', [meta('colima')]: '{"Endpoints":{"docker":{"Host":"unix:///h/.colima/default/docker.sock"}}}' });
    expect(dockerSocket({}, 'docker', 'darwin', socketContext, '/h')).toBe('/h/.colima/default/docker.sock');
    // A context named but unreadable is not the default socket.
    expect(dockerSocket({ DOCKER_CONTEXT: 'gone' }, 'docker', 'linux', files({}), '/h')).toBeUndefined();
    expect(engineLocation({ DOCKER_CONTEXT: 'gone' }, 'docker', files({}), '/h')).toEqual({ remote: false });
    expect(dockerSocket({}, 'podman', 'linux', files({}), '/h')).toBeUndefined();
    expect(dockerSocket({}, 'docker', 'win32', files({}), '/h')).toBeUndefined();
  });
});
