import type { EngineChoice, OpenedEngine } from '../engine/open.js';
import type { HostContext } from '../host.js';
import type { Logger } from '../log.js';

/**
 * Everything a command takes from outside: the process (HostContext) and the engine, opened on
 * demand. src/cli.ts gives the real ones; tests stand in for either.
 */
export interface CommandContext extends HostContext {
  /** Finds and opens the engine CLI (`choice`: the docker and engine settings); its messages go to `log` (default: the context's). */
  readonly openEngine: (choice: EngineChoice | undefined, log?: Logger) => Promise<OpenedEngine>;
  /**
   * This process's own command line (node, its flags, the script, the arguments): src/cli.ts gives
   * it, so that a run can start itself again to leave a standby (src/lifecycle/standby-run.ts).
   */
  readonly selfArgv?: readonly string[];
  /** How to start mcpbox again with other arguments: node, its flags, the script (pull's standbys). */
  readonly selfCommand?: readonly string[];
}
