import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import type { HostFs } from '../../src/host.js';
import { refusalReason } from '../../src/host-paths.js';
import { parseMountSpec, planMounts, sandboxUser } from '../../src/sandbox/mounts.js';

/** A host with these paths; `links` are symlinks (path → target). */
function fakeFs(paths: Record<string, 'dir' | 'file' | 'socket'>, links: Record<string, string> = {}): HostFs {
  const resolve = (path: string): string => {
    for (const [link, target] of Object.entries(links)) {
      if (path === link || path.startsWith(`${link}/`)) return resolve(target + path.slice(link.length));
    }
    return path;
  };
  return {
    realpath: (path) => {
      const real = resolve(path);
      return real === '/' || paths[real] || Object.keys(paths).some((p) => p.startsWith(`${real}/`)) ? real : undefined;
    },
    kind: (path) => paths[path] ?? (Object.keys(paths).some((p) => p.startsWith(`${path}/`)) ? 'dir' : undefined),
  };
}

const HOME = '/home/me';
const fs = fakeFs(
  {
    '/home/me/notes': 'dir',
    '/home/me/project/src': 'dir',
    '/home/me/project/data.db': 'file',
    '/home/me/top.db': 'file',
    '/home/me/.ssh/id_ed25519': 'file',
    '/home/me/.aws/credentials': 'file',
    '/data/shared': 'dir',
    '/etc/shadow': 'file',
    '/usr/share/dict': 'dir',
    '/var/run/docker.sock': 'socket',
    '/run/user/1000/podman/podman.sock': 'socket',
    '/tmp/x': 'dir',
    '/proc/1': 'dir',
    '/var/tmp/scratch': 'dir',
    '/real/dir': 'dir',
  },
  { '/home/me/link': '/real/dir', '/home/me/to-etc': '/etc' },
);

const plan = (args: string[], options: Partial<Parameters<typeof planMounts>[0]> = {}) =>
  planMounts({ args, cwd: '/home/me/project', home: HOME, autoMount: true, mountCwd: true, explicit: [], fs, ...options });

describe('paths named in arguments', () => {
  it.each([
    ['absolute dir', ['/home/me/notes'], [['/home/me/notes', '/home/me/notes', false]]],
    ['two dirs, as server-filesystem takes them', ['/home/me/notes', '/data/shared'], [['/home/me/notes', '/home/me/notes', false], ['/data/shared', '/data/shared', false]]],
    ['a file', ['--db', '/tmp/x'], [['/tmp/x', '/tmp/x', false]]],
    ['--flag=/path', ['--root=/data/shared'], [['/data/shared', '/data/shared', false]]],
    ['~/ path', ['~/notes'], [['/home/me/notes', '/home/me/notes', false]]],
    ['symlink: the target at both paths', ['/home/me/link'], [['/real/dir', '/real/dir', false], ['/real/dir', '/home/me/link', false]]],
    ['a temp dir under /var', ['/var/tmp/scratch'], [['/var/tmp/scratch', '/var/tmp/scratch', false]]],
  ])('%s', (_label, args, binds) => {
    const { binds: planned } = plan(args, { cwd: '/', autoMount: true });
    expect(planned.map((b) => [b.source, b.target, b.readonly])).toEqual(binds);
  });

  it('bare words are never paths (they may be package names)', () => {
    expect(plan(['-y', 'notes', 'src'], { cwd: '/' }).binds).toEqual([]);
  });

  it('URLs are not paths', () => {
    expect(plan(['https://example.org/x', 'git+ssh://host/repo'], { cwd: '/' }).binds).toEqual([]);
  });

  it('a file the server will create: its nearest existing directory is mounted, so the file lands on the host', () => {
    expect(plan(['--db-path', '/home/me/notes/new.db'], { cwd: '/' }).binds).toEqual([{ source: '/home/me/notes', target: '/home/me/notes', readonly: false }]);
    expect(plan(['--out=/home/me/notes/a/b/report.md'], { cwd: '/' }).binds.map((b) => b.source)).toEqual(['/home/me/notes']);
    const relative = plan(['--output', './report.md'], { cwd: '/home/me/project', mountCwd: false });
    // The working directory is mounted now (as the parent), so the server works there and ./ resolves in place.
    expect([relative.binds.map((b) => b.source), relative.args, relative.workdir]).toEqual([['/home/me/project'], ['--output', './report.md'], '/home/me/project']);
  });

  it('a file to be created where nothing may be mounted (right in home): a warning with the fix, nothing mounted', () => {
    const result = plan(['/home/me/missing.db'], { cwd: '/' });
    expect([result.binds, result.args]).toEqual([[], ['/home/me/missing.db']]);
    expect(result.warnings[0]).toMatch(/missing\.db does not exist yet, and \/home\/me, where it would be created, is not mounted \(it is your whole home directory\).*lost.*mkdir \/home\/me\/mcp-data/);
  });

  it('a path under nothing that exists (a URL path, say) passes through with a note', () => {
    const result = plan(['/api/v1/items'], { cwd: '/' });
    expect([result.binds, result.warnings]).toEqual([[], []]);
    expect(result.notes).toContain('/api/v1/items does not exist on this host: passed through, not mounted');
  });

  it('an existing file is mounted by its directory (a database writes its journal beside it)', () => {
    expect(plan(['--db-path', '/home/me/project/data.db'], { cwd: '/' }).binds).toEqual([{ source: '/home/me/project', target: '/home/me/project', readonly: false }]);
  });

  it('a file that is a link to a file elsewhere: its real directory at its own path, the file at the path as written', () => {
    const linked = fakeFs({ '/data/x.db': 'file', '/srv/links/keep': 'file' }, { '/srv/links/x.db': '/data/x.db' });
    expect(plan(['/srv/links/x.db'], { cwd: '/', fs: linked }).binds).toEqual([
      { source: '/data', target: '/data', readonly: false },
      { source: '/data/x.db', target: '/srv/links/x.db', readonly: false },
    ]);
  });

  it('a file in a linked directory: the real directory at both paths', () => {
    expect(plan(['/home/me/link/file.db'], { cwd: '/', fs: fakeFs({ '/real/dir/file.db': 'file' }, { '/home/me/link': '/real/dir' }) }).binds).toEqual([
      { source: '/real/dir', target: '/real/dir', readonly: false },
      { source: '/real/dir', target: '/home/me/link', readonly: false },
    ]);
  });

  it("a file whose directory may not be mounted (home) is mounted alone, with a note", () => {
    const result = plan(['/home/me/top.db'], { cwd: '/' });
    expect(result.binds).toEqual([{ source: '/home/me/top.db', target: '/home/me/top.db', readonly: false }]);
    expect(result.notes.join('\n')).toMatch(/mounting only the file \/home\/me\/top\.db, not its directory \(it is your whole home directory\)/);
  });

  it('~ is expanded as a shell would: the sandbox has its own HOME', () => {
    expect(plan(['~/notes', '--dir=~/notes'], { cwd: '/' }).args).toEqual(['/home/me/notes', '--dir=/home/me/notes']);
  });

  it('relative paths stay verbatim when the working directory is mounted', () => {
    const result = plan(['./src', '../notes']);
    expect(result.args).toEqual(['./src', '../notes']);
    expect(result.workdir).toBe('/home/me/project');
    expect(result.binds.map((b) => b.target)).toEqual(['/home/me/project', '/home/me/notes']);
  });

  it('relative paths become absolute when the working directory is not mounted', () => {
    const result = plan(['./notes'], { cwd: HOME });
    expect(result.args).toEqual(['/home/me/notes']);
    expect(result.workdir).toBeUndefined();
  });

  it('everything else passes through verbatim', () => {
    const args = ['-y', '@scope/pkg@1', '--port', '8080', 'a b', '$(id)', ';rm -rf /'];
    expect(plan(args, { cwd: '/' }).args).toEqual(args);
  });
});

describe('refusals name the flag that overrides them', () => {
  it.each([
    ['the root filesystem', ['/'], /refusing to mount \/ into the sandbox: it is the root filesystem/, /name the directories/],
    ['the whole home', ['~'], /it is your whole home directory/, /--mount \/home\/me/],
    ['the whole home, absolute', ['/home/me'], /whole home/, /--mount \/home\/me/],
    ['/etc', ['/etc/shadow'], /inside \/etc, a system directory/, /--mount \/etc\/shadow/],
    ['/usr', ['/usr/share/dict'], /inside \/usr/, /--mount/],
    ['/proc', ['/proc/1'], /inside \/proc/, /--mount/],
    ['the engine socket', ['/var/run/docker.sock'], /socket/, /--mount \/var\/run\/docker\.sock/],
    ['a podman socket', ['/run/user/1000/podman/podman.sock'], /socket/, /--mount/],
    ['~/.ssh', ['~/.ssh/id_ed25519'], /holds credentials \(\/home\/me\/\.ssh\)/, /--mount \/home\/me\/\.ssh\/id_ed25519/],
    ['~/.aws', ['/home/me/.aws/credentials'], /holds credentials/, /--mount/],
    ['a symlink into /etc', ['/home/me/to-etc/shadow'], /inside \/etc/, /--mount \/home\/me\/to-etc\/shadow/],
    ['. when the working directory is home', ['.'], /whole home/, /--no-auto-mount/],
  ])('%s', (_label, args, message, hint) => {
    try {
      plan(args, { cwd: HOME });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(UsageError);
      expect((error as UsageError).message).toMatch(message);
      expect((error as UsageError).hint).toMatch(hint);
    }
  });

  it('--no-auto-mount: no detection, no refusal, nothing mounted', () => {
    const result = plan(['/', '/etc/shadow', '~/notes'], { autoMount: false });
    expect([result.binds, result.args, result.workdir]).toEqual([[], ['/', '/etc/shadow', '~/notes'], undefined]);
  });

  it('an explicit --mount covers what it names, refused or not', () => {
    const result = plan(['/home/me/.ssh/id_ed25519'], { cwd: '/', explicit: ['~/.ssh:ro'] });
    expect(result.binds).toEqual([{ source: '/home/me/.ssh', target: '/home/me/.ssh', readonly: true }]);
  });
});

describe('the working directory', () => {
  it('is mounted at its own path and used as the working directory', () => {
    const result = plan([]);
    expect([result.binds, result.workdir]).toEqual([[{ source: '/home/me/project', target: '/home/me/project', readonly: false }], '/home/me/project']);
  });

  it.each([
    ['home', HOME, /not mounting the working directory \/home\/me: it is your whole home directory/],
    ['/', '/', /not mounting the working directory \/: it is the root filesystem/],
    ['/etc', '/etc', /inside \/etc/],
  ])('refused places (%s) are not mounted, with a note', (_label, cwd, note) => {
    const result = plan([], { cwd });
    expect(result.binds).toEqual([]);
    expect(result.workdir).toBeUndefined();
    expect(result.notes.join('\n')).toMatch(note);
  });

  it('MCP clients (mountCwd off): not mounted; relative paths become absolute', () => {
    const result = plan(['./src'], { mountCwd: false });
    expect(result.binds.map((b) => b.target)).toEqual(['/home/me/project/src']);
    expect([result.workdir, result.args, result.notes]).toEqual([undefined, ['/home/me/project/src'], []]);
  });

  it('MCP clients naming "." get the working directory, and work in it', () => {
    const result = plan(['.'], { mountCwd: false });
    expect([result.binds.map((b) => b.target), result.workdir, result.args]).toEqual([['/home/me/project'], '/home/me/project', ['.']]);
  });

  it('paths inside it add no mounts of their own', () => {
    expect(plan(['/home/me/project/src', './data.db']).binds).toHaveLength(1);
  });
});

describe('explicit mounts', () => {
  it.each([
    ['/data/shared', { path: '/data/shared', readonly: false }],
    ['/data/shared:ro', { path: '/data/shared', readonly: true }],
    ['/data/shared:rw', { path: '/data/shared', readonly: false }],
    ['/odd:name', { path: '/odd:name', readonly: false }],
  ])('%s', (spec, parsed) => {
    expect(parseMountSpec(spec)).toEqual(parsed);
  });

  it('must exist', () => {
    expect(() => plan([], { explicit: ['/nope'] })).toThrow(/--mount \/nope: nothing there/);
  });

  it('can never be the root filesystem', () => {
    expect(() => plan([], { explicit: ['/'] })).toThrow(/cannot be mounted at its own path/);
  });

  it('an explicit socket is mounted, with a warning', () => {
    const result = plan([], { cwd: '/', explicit: ['/var/run/docker.sock'] });
    expect(result.binds).toHaveLength(1);
    expect(result.notes[0]).toMatch(/now reachable from the sandbox/);
  });
});

describe('who the server runs as', () => {
  const rw = [{ source: '/a', target: '/a', readonly: false }];
  const ro = [{ source: '/a', target: '/a', readonly: true }];
  it.each([
    ['linux user with a writable mount', 'linux', 1000, rw, '1000:1000'],
    ['linux user, read-only mounts only', 'linux', 1000, ro, '65534:65534'],
    ['linux user, nothing mounted', 'linux', 1000, [], '65534:65534'],
    ['root, owner unknown: never root inside', 'linux', 0, rw, '65534:65534'],
    ['macOS (Docker Desktop maps ownership itself)', 'darwin', 501, rw, '65534:65534'],
  ] as const)('%s', (_label, platform, uid, binds, user) => {
    expect(sandboxUser({ platform, uid, gid: uid, binds }).user).toBe(user);
  });

  it('root: runs as the owner of the path it writes, so the files stay theirs', () => {
    expect(sandboxUser({ platform: 'linux', uid: 0, gid: 0, binds: rw, owner: () => ({ uid: 1001, gid: 1002 }) })).toEqual({ user: '1001:1002' });
  });

  it('root, a root-owned path: nobody, and a note that says the path stays read-only to it', () => {
    const result = sandboxUser({ platform: 'linux', uid: 0, gid: 0, binds: rw, owner: () => ({ uid: 0, gid: 0 }) });
    expect(result.user).toBe('65534:65534');
    expect(result.note).toMatch(/\/a belongs to root and the sandbox never runs as root.*hint: chown/);
  });
});

describe('refusalReason', () => {
  it.each(['/home', '/home/', '/Users', '/'])('refuses %s, which contains the home directory', (path) => {
    const home = path === '/Users' ? '/Users/me' : HOME;
    expect(refusalReason(path.replace(/\/$/, '') || '/', home, fs)).toMatch(/root filesystem|contains your home directory/);
  });

  it('a working directory above home is not mounted; an argument naming ~/.. is refused', () => {
    const above = plan([], { cwd: '/home' });
    expect(above.binds).toEqual([]);
    expect(above.notes).toEqual(['not mounting the working directory /home: it contains your home directory (/home/me)']);
    expect(() => plan(['~/..'])).toThrow(/refusing to mount ~\/\.\. into the sandbox: it contains your home directory/);
  });

  it('the shared temporary directories themselves are not mounted implicitly; what is inside them is', () => {
    for (const path of ['/tmp', '/private/tmp', '/var/tmp']) expect(refusalReason(path, HOME, fs)).toMatch(/shared temporary directory.*sockets/);
    const inTmp = plan([], { cwd: '/tmp' });
    expect(inTmp.binds).toEqual([]);
    expect(inTmp.notes[0]).toMatch(/^not mounting the working directory \/tmp: it is the shared temporary directory/);
  });

  it('lets ordinary places through', () => {
    for (const path of ['/home/me/notes', '/tmp/x', '/data/shared', '/Users/me/src', '/private/var/folders/xy/T/tmp1', '/opt/work']) {
      expect(refusalReason(path, HOME, fs)).toBeUndefined();
    }
  });
});
