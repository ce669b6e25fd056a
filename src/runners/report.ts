/** What an install script reports on stdout (images/scripts/install-common.sh, report). */
export interface InstallReport {
  readonly tree: string;
  readonly dir: string;
  readonly signature: string;
  readonly content: string;
  readonly bins: readonly string[];
  readonly lockfile: string;
  /** The supply-chain gates' findings (src/install/gates.ts), when they ran: JSON. */
  readonly gate?: string;
}

/** The install scripts' stdout: the gates' line (when they ran), five header lines, then the lockfile itself. */
export function parseInstallReport(stdout: string): InstallReport {
  const gate = /^MCPBOX-GATE ([^\n]*)\n/.exec(stdout);
  if (gate) return { ...parseInstallReport(stdout.slice(gate[0].length)), gate: gate[1]! };
  const header = /^MCPBOX-TREE ([0-9a-f]{64})\nMCPBOX-DIR (\/\S+)\nMCPBOX-STAT ([0-9a-f]{64})\nMCPBOX-CONTENT ([0-9a-f]{64})\nMCPBOX-BINS ?([^\n]*)\n/.exec(stdout);
  if (!header) throw new Error(`the install script reported nothing usable: ${JSON.stringify(stdout.slice(0, 200))}`);
  return {
    tree: header[1]!,
    dir: header[2]!,
    signature: header[3]!,
    content: header[4]!,
    bins: header[5]!.split(' ').filter(Boolean),
    lockfile: stdout.slice(header[0].length),
  };
}
