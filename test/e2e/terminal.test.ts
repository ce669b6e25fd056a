import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { docker, MCPBOX, quietStateDir, testEnv } from './helpers.js';

/**
 * The shell aliases behave like the real npx: under a real terminal (script(1) gives one), a tool
 * reading a pipe isn't stopped when its input ends, and a project's own bin runs with its own version.
 */
const engine = inject('engine');
const quote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

/** Runs a shell line under a pseudo-terminal (stdin, stdout and stderr a terminal, as in a person's shell), typing `typed`. */
async function inTerminal(line: string, cwd: string, env: Record<string, string>, typed?: string) {
  const result = await execa('script', ['-qec', line, '/dev/null'], { cwd, env, reject: false, timeout: 240_000, ...(typed === undefined ? { stdin: 'ignore' as const } : { input: typed }) });
  return { exitCode: result.exitCode, output: result.stdout.replace(/\r/g, '') };
}

describe.skipIf(!engine)('terminal tools', () => {
  const state = quietStateDir();
  const project = mkdtempSync(join(tmpdir(), 'mcpbox-e2e-project-'));
  // npm's own "yes" setting (npm test passes the user's npm config down) would skip the question.
  const env = testEnv({ XDG_STATE_HOME: state, npm_config_yes: '', NPM_CONFIG_YES: '' });
  const mcpbox = `${quote(process.execPath)} ${quote(MCPBOX)}`;

  beforeAll(async () => {
    chmodSync(project, 0o755);
    // The project's own prettier, installed without running anything of it (no scripts).
    const installed = await execa('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error', 'prettier@3.3.0'], { cwd: project, reject: false });
    expect(installed.exitCode, installed.stderr).toBe(0);
  });
  afterAll(() => {
    rmSync(state, { recursive: true, force: true });
    rmSync(project, { recursive: true, force: true });
  });

  it('piped input, output to a terminal: the tool reads its input to the end and finishes its work', async () => {
    const line = `echo hello-pipe | ${mcpbox} run npx -y -p cowsay -c ${quote('cat; sleep 4; echo done-after-eof')}`;
    const result = await inTerminal(line, project, env);
    expect(result.output).toContain('hello-pipe');
    expect(result.output).toContain('done-after-eof');
    expect(result.exitCode).toBe(0);
  });

  it("npx prettier runs the project's own prettier (3.3.0), not the registry's latest", async () => {
    const result = await inTerminal(`${mcpbox} run npx prettier --version`, join(project, 'node_modules'), env);
    // At a terminal npm's spinner draws first, then erases its line (ESC[1G ESC[0K) for the output.
    expect(result.output).toMatch(/(?:^|\u001b\[0K)3\.3\.0$/m);
    expect(result.exitCode).toBe(0);
    // Nothing was installed or locked for it.
    expect(existsSync(join(state, 'mcpbox', 'mcpbox.lock'))).toBe(false);
  });

  it('without -y, npx asks before installing, like npx: "n" installs nothing, "y" goes ahead', async () => {
    const refused = await inTerminal(`${mcpbox} run npx cowsay@1.6.0 mcpbox-asked`, project, env, 'n\n');
    expect(refused.output).toMatch(/Need to install the following packages:\n {2}cowsay@1\.6\.0\nOk to proceed\? \(y\)/);
    expect(refused.output).toMatch(/mcpbox: npx canceled: cowsay@1\.6\.0 was not installed/);
    expect(refused.exitCode).toBe(1);
    expect(existsSync(join(state, 'mcpbox', 'mcpbox.lock'))).toBe(false);

    const accepted = await inTerminal(`${mcpbox} run npx cowsay@1.6.0 mcpbox-asked`, project, env, 'y\n');
    expect(accepted.output).toContain('< mcpbox-asked >');
    expect(accepted.exitCode).toBe(0);
    // Installed now: no question the next time.
    const again = await inTerminal(`${mcpbox} run npx cowsay@1.6.0 mcpbox-again`, project, env, '');
    expect(again.output).not.toContain('Need to install');
    expect(again.output).toContain('< mcpbox-again >');
  });

  it('--no refuses a package that is not installed, as npx does', async () => {
    const result = await inTerminal(`${mcpbox} run npx --no cowsay@1.5.0 x`, project, env);
    expect(result.exitCode).toBe(1);
    expect(result.output).toMatch(/npx canceled: cowsay@1\.5\.0 is not installed yet and --no was given/);
  });

  it('Ctrl-C ends even a server that ignores it, within the grace period, and leaves no container', async () => {
    const stubborn = 'process.on("SIGINT",()=>console.log("ignored"));console.log("ready-for-ctrl-c");setInterval(()=>{},1000)';
    const line = `${mcpbox} run npx -y -p cowsay -c ${quote(`node -e '${stubborn}'`)}`;
    const before = (await docker(['ps', '-q', '--filter', 'label=dev.mcpbox.owner-pid'])).stdout;
    const child = execa('script', ['-qec', line, '/dev/null'], { cwd: project, env, reject: false, timeout: 120_000 });
    let output = '';
    let pressed = 0;
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (!pressed && output.includes('ready-for-ctrl-c')) {
        pressed = Date.now();
        child.stdin!.write('\u0003');
      }
    });
    const result = await child;
    expect(pressed).toBeGreaterThan(0);
    // The grace period is 2 s: SIGINT, then the container is removed.
    expect(Date.now() - pressed).toBeLessThan(12_000);
    expect(result.exitCode).toBe(130);
    expect((await docker(['ps', '-q', '--filter', 'label=dev.mcpbox.owner-pid'])).stdout).toBe(before);
  });
});
