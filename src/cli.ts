import { homedir } from 'node:os';
import { Command, CommanderError, Option } from 'commander';
import type { CommandContext } from './commands/context.js';
import { ExitCode, McpboxError } from './errors.js';
import { createLogger, type Logger } from './log.js';
import { VERSION } from './version.js';

/**
 * Wires the commands. Each command's module is imported only when it runs, so `mcpbox --version`
 * and the path to a server's first byte load as little as possible. This is the one place that
 * prints errors and the one place the process exits.
 */
const collect = (value: string, previous: string[]) => [...previous, value];

export function buildProgram(log: Logger, setExitCode: (code: number) => void): Command {
  const context = (): CommandContext => ({
    env: process.env,
    cwd: process.cwd(),
    stdin: process.stdin,
    stdout: process.stdout,
    log,
    pid: process.pid,
    home: homedir(),
    platform: process.platform,
    uid: process.getuid?.(),
    gid: process.getgid?.(),
    username: process.env.USER ?? process.env.LOGNAME,
  });
  const program = new Command('mcpbox')
    .description('Run MCP servers from npx and uvx in a hardened container: a drop-in, sandboxed npx/uvx.')
    .version(VERSION, '-V, --version', 'print the mcpbox version')
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({
      writeErr: (text) => process.stderr.write(text),
      outputError: (text) => log.error(text.replace(/^error:\s*/i, '').trim(), 'see mcpbox --help'),
    });

  program
    .command('run')
    .summary('run an npx or uvx command (an MCP server) in the sandbox')
    .description(
      'Runs `npx …` or `uvx …` in a hardened container and passes stdin/stdout through, so an MCP client\n' +
        'sees an ordinary stdio server. Everything after the runner name goes to the runner untouched.',
    )
    .argument('<runner>', 'npx or uvx')
    .argument('[args...]', "the runner's own arguments and the package, passed through verbatim")
    .option('-e, --env <NAME[=VALUE]>', "pass a variable into the sandbox (value from mcpbox's environment unless given); repeatable", collect, [])
    .option('--image <image>', 'image to run in (default: mcpbox/<runner>, built on first use)')
    .option('--network <mode>', 'container network: bridge (default), none, or a network name')
    .option('--memory <size>', 'memory limit, e.g. 512m or 2g (default 2g)')
    .option('--cpus <n>', 'CPU limit (default 2)')
    .option('--pids <n>', 'process/thread limit (default 512)')
    .option('--mount <PATH[:ro|rw]>', 'mount a host path at the same path (read-write unless :ro); repeatable', collect, [])
    .addOption(new Option('--no-auto-mount', 'mount nothing implicitly: neither paths named in arguments nor the working directory'))
    .addOption(new Option('--no-lock', 'resolve the package on every start through npx/uvx, as typed, instead of installing it once and locking it'))
    .option('--grace <seconds>', 'time a server gets to exit after its input ends or a signal (default 2)')
    .addOption(new Option('--no-stop-on-eof', 'keep the server running after its input ends (for commands fed from a pipe)'))
    .option('--dry-run', 'print the engine command, shell-quoted, and run nothing')
    .passThroughOptions()
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  mcpbox run npx -y @modelcontextprotocol/server-everything\n' +
        '  mcpbox run -e GITHUB_PERSONAL_ACCESS_TOKEN npx -y @modelcontextprotocol/server-github\n' +
        '  mcpbox run uvx mcp-server-time --local-timezone Europe/Paris\n' +
        '  mcpbox run npx -y @modelcontextprotocol/server-filesystem ~/notes   # mounts ~/notes only\n' +
        '  mcpbox run npx prettier --check .                                  # works in the current directory\n' +
        '  mcpbox run --dry-run --network none npx -y some-server',
    )
    .action(async (runner: string, args: string[], flags) => {
      const { run } = await import('./commands/run.js');
      setExitCode(await run(runner, args, flags, context()));
    });

  program
    .command('update')
    .description('resolve locked servers again now (all, or the packages named), install what changed, rewrite the lock')
    .argument('[packages...]', 'package names as locked, e.g. @modelcontextprotocol/server-everything')
    .action(async (packages: string[]) => {
      const { update } = await import('./commands/update.js');
      setExitCode(await update(packages, context()));
    });

  program
    .command('ps')
    .description("list mcpbox's containers: name, runner, package, owner pid, uptime")
    .option('--json', 'print JSON')
    .action(async (flags) => {
      const { ps } = await import('./commands/ps.js');
      setExitCode(await ps(flags, context()));
    });

  program
    .command('stop')
    .description('stop mcpbox containers (SIGTERM, then kill after the grace period); they are removed')
    .argument('[names...]', 'container names, as `mcpbox ps` shows them')
    .option('--all', 'stop every running mcpbox container')
    .option('-t, --time <seconds>', 'seconds before the kill (default: the grace setting, 2)')
    .action(async (names: string[], flags) => {
      const { stop } = await import('./commands/stop.js');
      setExitCode(await stop(names, flags, context()));
    });

  program
    .command('prune')
    .description('remove containers whose mcpbox process is gone, and say which')
    .option('--json', 'print JSON')
    .action(async (flags) => {
      const { prune } = await import('./commands/prune.js');
      setExitCode(await prune(flags, context()));
    });

  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  const log = createLogger({ quiet: process.env.MCPBOX_QUIET === '1' });
  let exitCode: number = ExitCode.ok;
  const program = buildProgram(log, (code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and --version are not errors; everything else commander rejects is usage.
      return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    if (error instanceof McpboxError) {
      log.error(error.message, error.hint);
      return error.exitCode;
    }
    log.error(`internal error: ${(error as Error)?.stack ?? String(error)}`, 'please report this at https://github.com/mcpbox/mcpbox/issues');
    return ExitCode.internal;
  }
}

// Exit only once stdout and stderr have drained (a dry run's output may be going into a pipe).
const code = await main(process.argv);
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
