import { spawn } from 'node:child_process';
import { findOnPath } from '../engine/locate.js';

/**
 * Noticing that the client closed stdin without reading stdin. The docker CLI reads the client's
 * stdin itself (inherited: no copy, no extra hop for a message), so mcpbox can't see its end the
 * usual way. A tiny helper shares the same stdin and poll()s it for hang-up only (POLLHUP, and
 * POLLRDHUP for a client's half-closed socket), never for data, so it never consumes a byte; it
 * prints "eof" when the client is done. It also watches its own stdout, so it ends with mcpbox.
 * perl (essential on Debian/Ubuntu, shipped with macOS) or python3 runs it; with neither, mcpbox
 * copies stdin through itself instead (see src/lifecycle.ts).
 */
const PERL = [
  'use IO ();',
  "my $m = 0x10 | ($^O eq 'linux' ? 0x2000 : 0);",
  'while (1) {',
  '  my @p = (0, $m, 1, 0);',
  '  my $n = IO::Poll::_poll(-1, @p);',
  '  if ($n > 0 && ($p[1] & 0x2038)) { syswrite(STDOUT, "eof\\n"); exit 0 }',
  '  if ($n > 0 && ($p[3] & 0x38)) { exit 0 }',
  '}',
].join('\n');

const PYTHON = [
  'import select, sys, os',
  'rd = getattr(select, "POLLRDHUP", 0)',
  'p = select.poll()',
  'p.register(0, select.POLLHUP | rd)',
  'p.register(1, 0)',
  'gone = select.POLLHUP | select.POLLERR | select.POLLNVAL',
  'while True:',
  '    for fd, ev in p.poll():',
  '        if fd == 0 and ev & (gone | rd):',
  '            os.write(1, b"eof\\n"); sys.exit(0)',
  '        if fd == 1 and ev & gone:',
  '            sys.exit(0)',
].join('\n');

export interface EofWatch {
  stop(): void;
}

/**
 * How this host can watch for hang-up: a starter, or undefined when it has no perl or python3 (then
 * copy stdin instead). Finding the interpreter is cheap; starting it waits until the engine runs.
 */
export function eofWatcher(env: Readonly<Record<string, string | undefined>>): ((onEnd: () => void) => EofWatch) | undefined {
  if (process.platform === 'win32') return undefined;
  const perl = findOnPath('perl', env, process.platform);
  const python = perl ? undefined : findOnPath('python3', env, process.platform);
  const command = perl ? ([perl, ['-e', PERL]] as const) : python ? ([python, ['-I', '-S', '-c', PYTHON]] as const) : undefined;
  if (!command) return undefined;
  return (onEnd) => {
    const helper = spawn(command[0], command[1], { stdio: ['inherit', 'pipe', 'ignore'], env: { PATH: env.PATH ?? '' }, windowsHide: true });
    helper.on('error', () => {});
    let said = '';
    helper.stdout.setEncoding('utf8');
    helper.stdout.on('data', (chunk: string) => {
      said += chunk;
      if (said.includes('eof')) onEnd();
    });
    helper.unref();
    (helper.stdout as unknown as { unref?: () => void }).unref?.();
    return {
      stop: () => {
        helper.stdout.destroy();
        helper.kill('SIGTERM');
      },
    };
  };
}
