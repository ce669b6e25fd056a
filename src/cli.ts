import module from 'node:module';
import { homedir } from 'node:os';
import { Command, CommanderError, Option } from 'commander';
import { CLIENT_NAMES } from './clients/table.js';
import type { ExportFlags } from './commands/export.js';
import type { RunFlags } from './commands/run.js';
import type { GateFlags } from './sandbox/plan.js';
import type { ServeFlags } from './commands/serve.js';
import type { WrapFlags } from './commands/wrap.js';
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

// Node 22.1+: the command chunks loaded from here on (run's above all) are compiled once and cached
// on disk, not at every start. Older Nodes have no such cache; nothing happens there.
(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();

const MIN_RELEASE_AGE_HELP = 'resolve unpinned packages to versions published at least this long ago: 3d (default), 12h, 0 to turn it off';
const YES_HELP = 'install a package whose name is one or two letters from a popular or installed one (a typosquat check)';

/**
 * One row per command: how commander reads it (arguments, options, help), and what runs it. The
 * module behind `run` is imported only then. `args` are commander's: the positionals, then the options.
 */
interface CommandEntry {
  readonly name: string;
  readonly define: (command: Command) => Command;
  readonly run: (ctx: CommandContext, args: readonly unknown[]) => Promise<number> | number;
}

const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'run',
    define: (c) =>
      c
        .summary('run an npx or uvx command (an MCP server) in the sandbox')
        .description(
          'Runs `npx …` or `uvx …` in a hardened container and passes stdin/stdout through, so an MCP client\n' +
            'sees an ordinary stdio server. Everything after the runner name goes to the runner untouched.',
        )
        .argument('<runner>', 'npx or uvx')
        .argument('[args...]', "the runner's own arguments and the package, passed through verbatim")
        .option('-e, --env <NAME[=VALUE]>', "pass a variable into the sandbox (value from mcpbox's environment unless given); repeatable", collect, [])
        .option('--image <image>', 'image to run in (default: mcpbox/<runner>, built on first use)')
        .option('--image-variant <variant>', "browser: the default image with Debian's chromium (chosen by itself for known browser servers)")
        .option('--network <mode>', 'container network: bridge (default), none, or a network name')
        .option('--egress <policy>', 'where the server may connect: learn (default: its first session records the hosts it uses), none, open, or HOST,HOST… (*.domain, host:port)')
        .option('--memory <size>', 'memory limit, e.g. 512m or 2g (default 2g)')
        .option('--cpus <n>', 'CPU limit (default 2)')
        .option('--pids <n>', 'process/thread limit (default 512)')
        .option('--mount <PATH[:ro|rw]>', 'mount a host path at the same path (read-write unless :ro); repeatable', collect, [])
        .option('--copy-in', 'with an engine on another machine: copy the paths a run would mount into volumes of its own, read-only, for this session')
        .addOption(new Option('--no-auto-mount', 'mount nothing implicitly: neither paths named in arguments nor the working directory'))
        .addOption(new Option('--no-lock', 'resolve the package on every start through npx/uvx, as typed, instead of installing it once and locking it'))
        .option('--grace <seconds>', 'time a server gets to exit after its input ends or a signal (default 2)')
        .addOption(new Option('--no-stop-on-eof', 'keep the server running after its input ends (for commands fed from a pipe)'))
        .addOption(new Option('--no-standby', 'start this server fresh and leave no standby for its next run (standby: false)'))
        .addOption(new Option('--no-inspect', "pass the client's messages raw: no tool pins, tool policy or audit for this run (toolChanges: off)"))
        .option('--min-release-age <age>', MIN_RELEASE_AGE_HELP)
        .option('--yes', YES_HELP)
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
        ),
    run: async (ctx, [runner, args, flags]) => (await import('./commands/run.js')).run(runner as string, args as string[], flags as RunFlags, ctx),
  },
  {
    name: 'wrap',
    define: (c) =>
      c
        .description("rewrite MCP clients' configurations so their npx/uvx servers run through mcpbox (a backup first)")
        .option('--client <name>', `only this client: ${CLIENT_NAMES.join(', ')}`)
        .option('--config <file>', 'a configuration file of any of these shapes; repeatable', collect, [])
        .option('--command <path>', 'the mcpbox command to write (default: mcpbox; an absolute path for clients with a minimal PATH)')
        .option('--dry-run', 'show the changes as a diff and write nothing'),
    run: async (ctx, [flags]) => (await import('./commands/wrap.js')).wrap(flags as WrapFlags, ctx),
  },
  {
    name: 'unwrap',
    define: (c) =>
      c
        .description('restore the entries mcpbox wrap changed, exactly as they were')
        .option('--client <name>', 'only this client')
        .option('--config <file>', 'a configuration file; repeatable', collect, [])
        .option('--dry-run', 'show the changes as a diff and write nothing'),
    run: async (ctx, [flags]) => (await import('./commands/wrap.js')).unwrap(flags as WrapFlags, ctx),
  },
  {
    name: 'pull',
    define: (c) =>
      c
        .description("prepare an image and packages ahead of time, so a client's first start doesn't time out")
        .argument('<runner>', 'npx or uvx')
        .argument('[packages...]', 'packages to resolve, install and lock (none: just the image)')
        .option('--min-release-age <age>', MIN_RELEASE_AGE_HELP)
        .option('--yes', YES_HELP),
    run: async (ctx, [runner, packages, flags]) => (await import('./commands/pull.js')).pull(runner as string, packages as string[], ctx, flags as GateFlags),
  },
  {
    name: 'export',
    // `export kubernetes` is a subcommand, so its options may follow it (and stop at the runner).
    define: (c) =>
      c
        .description('write the manifests that run the same sandbox elsewhere')
        .command('kubernetes')
        .description('a Pod per session with the same confinement, its volume claims, a NetworkPolicy for its egress, env from a Secret by name')
        .argument('[runner]', 'npx or uvx (or --serve)')
        .argument('[args...]', "the runner's own arguments and the package")
        .option('--serve <file>', 'every server of a serve configuration (servers.json), with mcpbox serve in front starting a pod per session')
        .option('--serve-image <image>', "serve's image with --serve (images/serve/Dockerfile; default mcpbox/serve:<version>)")
        .option('--name <name>', 'the name in the cluster (default: mcpbox-<runner>-<package>)')
        .option('--image <image>', 'the image, as the cluster pulls it (default: the local mcpbox/<runner> tag: push it to your registry)')
        .option('-e, --env <NAME>', 'a variable the server gets, from the Secret <name>-env; repeatable', collect, [])
        .option('--egress <policy>', 'none, open, learn (the registry only) or HOST,HOST…')
        .option('--memory <size>', 'memory limit (default 2g)')
        .option('--cpus <n>', 'CPU limit (default 2)')
        .option('--cache-size <size>', 'the cache claim (default 4Gi)')
        .option('--data-size <size>', "the server's data claim (default 1Gi)")
        .passThroughOptions(),
    run: async (ctx, [runner, args, flags]) => (await import('./commands/export.js')).exportManifests('kubernetes', runner as string | undefined, args as string[], flags as ExportFlags, ctx),
  },
  {
    name: 'doctor',
    define: (c) => c.description('check the engine, images, caches, CA and proxy settings, and try the sandbox for real').option('--json', 'print JSON'),
    run: async (ctx, [flags]) => (await import('./commands/doctor.js')).doctor(flags as { json?: boolean }, ctx),
  },
  {
    name: 'tools',
    define: (c) =>
      c
        .description("what a server's tools pin holds, what changed since, and accepting the change (MCP-aware protection)")
        .argument('<package>', 'a locked server, e.g. @modelcontextprotocol/server-everything')
        .option('--diff', 'show each changed tool, prompt or resource template as a diff of its pinned and its new definition')
        .option('--accept', 'pin what the server offered in its last changed lists')
        .option('--json', 'print JSON'),
    run: async (ctx, [name, flags]) => (await import('./commands/tools.js')).tools(name as string, flags as { diff?: boolean; accept?: boolean; json?: boolean }, ctx),
  },
  {
    name: 'log',
    define: (c) => c.description('the audit trail of tool calls: time, server, tool, sizes, duration, error (never argument values)').argument('[package]', 'only this server').option('--json', 'print JSON lines'),
    run: async (ctx, [name, flags]) => (await import('./commands/tools.js')).log(name as string | undefined, flags as { json?: boolean }, ctx),
  },
  {
    name: 'images',
    define: (c) =>
      c
        .description('images bootstrap: build the base images without a registry (air-gapped hosts) and record them in your settings')
        .argument('<action>', 'bootstrap')
        .option('--rebuild', 'build the bases again even where they exist'),
    run: async (ctx, [action, flags]) => (await import('./commands/images.js')).images(action as string, flags as { rebuild?: boolean }, ctx),
  },
  {
    name: 'shell-init',
    define: (c) => c.description('print aliases that sandbox npx and uvx in your shell: eval "$(mcpbox shell-init bash)"').argument('<shell>', 'bash, zsh or fish'),
    run: async (ctx, [shell]) => (await import('./commands/shell-init.js')).shellInit(shell as string, ctx),
  },
  {
    name: 'serve',
    define: (c) =>
      c
        .description('serve sandboxed MCP servers over Streamable HTTP and SSE, behind bearer tokens')
        .requiredOption('--config <file>', 'servers.json: { "authTokens": [...], "mcpServers": { name: { "command": "npx", "args": [...] } } } (mode 0600)')
        .option('--host <address>', 'address to listen on', '127.0.0.1')
        .option('--port <port>', 'port to listen on', '9090')
        .option('--log-format <format>', 'text or json (one object per line, on stderr)', 'text')
        .option('--grace <seconds>', 'time a server gets to exit when its session ends (default 2)')
        .option('--kubernetes <dir>', "sessions as Kubernetes pods (kubectl), from each server's Pod in DIR/<server>.json (export kubernetes --serve writes them)"),
    run: async (ctx, [flags]) => (await import('./commands/serve.js')).serve(flags as ServeFlags, ctx),
  },
  {
    name: 'update',
    define: (c) =>
      c
        .description('resolve locked servers again now (all, or the packages named), install what changed, rewrite the lock')
        .argument('[packages...]', 'package names as locked, e.g. @modelcontextprotocol/server-everything')
        .option('--min-release-age <age>', MIN_RELEASE_AGE_HELP),
    run: async (ctx, [packages, flags]) => (await import('./commands/update.js')).update(packages as string[], ctx, flags as GateFlags),
  },
  {
    name: 'egress',
    define: (c) =>
      c
        .description('show what each server may connect to (learned in its first session), or with --log what it did')
        .argument('[package]', 'only this package')
        .option('--log', 'the egress proxy\'s decisions: time, server, allowed or refused, host')
        .option('--json', 'print JSON'),
    run: async (ctx, [pkg, flags]) => (await import('./commands/egress.js')).egress(pkg as string | undefined, flags as { log?: boolean; json?: boolean }, ctx),
  },
  {
    name: 'allow',
    define: (c) =>
      c
        .description("let a server connect to these hosts too (its egress list)")
        .argument('<package>', 'the package, as locked, e.g. @modelcontextprotocol/server-github')
        .argument('<hosts...>', 'api.example.com, *.example.net (subdomains), example.org:8443'),
    run: async (ctx, [pkg, hosts]) => (await import('./commands/egress.js')).allow(pkg as string, hosts as string[], ctx),
  },
  {
    name: 'deny',
    define: (c) => c.description("take hosts off a server's egress list").argument('<package>', 'the package').argument('<hosts...>', 'hosts, as listed'),
    run: async (ctx, [pkg, hosts]) => (await import('./commands/egress.js')).deny(pkg as string, hosts as string[], ctx),
  },
  {
    name: 'data',
    define: (c) =>
      c
        .description("show what each server keeps (its HOME in the sandbox, kept across sessions), or delete it with `data rm <package>`")
        .argument('[package]', 'only this package; or `rm` to delete')
        .argument('[package-to-remove]', 'with rm: the package whose data to delete')
        .option('-y, --yes', 'rm: delete without asking')
        .option('--json', 'print JSON'),
    run: async (ctx, [first, second, flags]) => (await import('./commands/data.js')).data(first as string | undefined, second as string | undefined, flags as { json?: boolean; yes?: boolean }, ctx),
  },
  {
    name: 'ps',
    define: (c) => c.description("list mcpbox's containers: name, runner, package, owner pid, uptime").option('--json', 'print JSON'),
    run: async (ctx, [flags]) => (await import('./commands/ps.js')).ps(flags as { json?: boolean }, ctx),
  },
  {
    name: 'stop',
    define: (c) =>
      c
        .description('stop mcpbox containers (SIGTERM, then kill after the grace period); they are removed')
        .argument('[names...]', 'container names, as `mcpbox ps` shows them')
        .option('--all', 'stop every running mcpbox container')
        .option('-t, --time <seconds>', 'seconds before the kill (default: the grace setting, 2)'),
    run: async (ctx, [names, flags]) => (await import('./commands/stop.js')).stop(names as string[], flags as { all?: boolean; time?: string }, ctx),
  },
  {
    name: 'prune',
    define: (c) => c.description('remove containers whose mcpbox process is gone, and standbys waiting for a client; say which').option('--json', 'print JSON'),
    run: async (ctx, [flags]) => (await import('./commands/prune.js')).prune(flags as { json?: boolean }, ctx),
  },
];

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
    // Loaded when a command needs the engine: --version and help never do.
    openEngine: async (choice, engineLog) => (await import('./engine/open.js')).openEngine({ env: process.env, log: engineLog ?? log }, choice),
    selfArgv: [process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    selfCommand: [process.execPath, ...process.execArgv, ...process.argv.slice(1, 2)],
  });
  const program = new Command('mcpbox')
    .description('Run MCP servers from npx and uvx in a hardened container: a drop-in, sandboxed npx/uvx.')
    .version(VERSION, '-v, --version', 'print the mcpbox version (-V too)')
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({
      writeErr: (text) => process.stderr.write(text),
      outputError: (text) => {
        // commander's did-you-mean comes on a second line: it is the hint.
        const [message, suggestion] = text.replace(/^error:\s*/i, '').trim().split(/\n\(Did you mean (.+)\?\)/);
        log.error(message!.trim(), suggestion ? `did you mean mcpbox ${suggestion}? (mcpbox --help lists the commands)` : 'see mcpbox --help');
      },
    });
  for (const entry of COMMANDS) {
    // commander passes the positionals, the options and the command itself.
    entry.define(program.command(entry.name)).action(async (...args: unknown[]) => setExitCode(await entry.run(context(), args.slice(0, -1))));
  }
  program.addHelpText(
    'after',
    '\nExamples:\n' +
      '  mcpbox run npx -y @modelcontextprotocol/server-everything     run a server sandboxed (what a client config says)\n' +
      '  mcpbox run uvx mcp-server-time                                 the same for a Python server\n' +
      '  mcpbox wrap --dry-run                                          see what wrapping your clients would change\n' +
      '  mcpbox wrap                                                    sandbox every npx/uvx server your clients run\n' +
      '  mcpbox pull npx @modelcontextprotocol/server-filesystem        install ahead of a first start\n' +
      '  mcpbox doctor                                                  check this machine\n' +
      '  eval "$(mcpbox shell-init bash)"                               npx and uvx sandboxed in your shell\n' +
      '\nmcpbox help <command> shows a command\'s options.',
  );
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  const log = createLogger({ quiet: process.env.MCPBOX_QUIET === '1' });
  let exitCode: number = ExitCode.ok;
  const program = buildProgram(log, (code) => {
    exitCode = code;
  });
  // `mcpbox npx …` reads as meaning `mcpbox run npx …`: say so rather than "unknown command".
  const first = argv[2];
  // The runner table is loaded only for a first word that is no command (start-up stays fast).
  if (first !== undefined && !first.startsWith('-') && first !== 'help' && !COMMANDS.some((c) => c.name === first) && (await import('./runners/table.js')).isRunner(first)) {
    log.error(`unknown command '${first}'`, `to run it sandboxed: mcpbox run ${argv.slice(2).join(' ')}`);
    return ExitCode.usage;
  }
  try {
    await program.parseAsync(argv[2] === '-V' ? [...argv.slice(0, 2), '--version', ...argv.slice(3)] : argv);
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
