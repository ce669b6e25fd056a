import { UsageError } from '../errors.js';
import type { CommandContext } from './context.js';

/**
 * `mcpbox shell-init bash|zsh|fish`: aliases that make npx and uvx sandboxed in a shell, for
 * `eval "$(mcpbox shell-init bash)"` in ~/.bashrc (zsh: ~/.zshrc; fish: `mcpbox shell-init fish | source`).
 */
export const SHELLS = ['bash', 'zsh', 'fish'] as const;

const HEADER = [
  '# mcpbox: npx and uvx run sandboxed (mcpbox run …).',
  '# The real, unsandboxed tools stay one word away: command npx …, command uvx …',
];

export function shellInit(shell: string, ctx: Pick<CommandContext, 'stdout'>): number {
  if (!(SHELLS as readonly string[]).includes(shell)) throw new UsageError(`unknown shell "${shell}"`, `one of: ${SHELLS.join(', ')}`);
  const lines =
    shell === 'fish'
      ? [...HEADER, "alias npx 'mcpbox run npx'", "alias uvx 'mcpbox run uvx'"]
      : [...HEADER, "alias npx='mcpbox run npx'", "alias uvx='mcpbox run uvx'"];
  ctx.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
