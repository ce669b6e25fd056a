/**
 * Every failure mcpbox reports is one of these, thrown up to src/cli.ts, the one place that prints it
 * (one line, with a hint) and picks the exit status. The statuses are documented in the README; they
 * sit in the sysexits range so they rarely collide with a server's own exit code, which passes through.
 */
export const ExitCode = {
  ok: 0,
  usage: 64,
  clientConfig: 65,
  engineUnreachable: 69,
  internal: 70,
  engineMissing: 72,
  imageUnavailable: 73,
  installFailed: 75,
  integrityMismatch: 76,
  supplyChain: 77,
  config: 78,
} as const;

export class McpboxError extends Error {
  constructor(
    /** Stable, machine-readable identifier (shown by --json outputs and tests). */
    readonly code: string,
    message: string,
    /** What the user can do about it; printed after the message on the same line. */
    readonly hint: string | undefined,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class UsageError extends McpboxError {
  constructor(message: string, hint?: string) {
    super('usage', message, hint ?? 'see mcpbox --help', ExitCode.usage);
  }
}

export class ConfigError extends McpboxError {
  constructor(message: string, hint?: string) {
    super('config', message, hint, ExitCode.config);
  }
}

export class EngineNotFoundError extends McpboxError {
  constructor(message: string, hint?: string) {
    super(
      'engine-missing',
      message,
      hint ?? 'install Docker or Podman, or set MCPBOX_DOCKER to the engine CLI (MCPBOX_ENGINE=podman picks Podman)',
      ExitCode.engineMissing,
    );
  }
}

export class EngineUnreachableError extends McpboxError {
  constructor(message: string, hint?: string) {
    super(
      'engine-unreachable',
      message,
      hint ?? 'start Docker (Docker Desktop, or `sudo systemctl start docker`) and check `docker info`',
      ExitCode.engineUnreachable,
    );
  }
}

export class ImageUnavailableError extends McpboxError {
  constructor(message: string, hint?: string) {
    super('image-unavailable', message, hint, ExitCode.imageUnavailable);
  }
}

export class InstallError extends McpboxError {
  constructor(
    message: string,
    hint?: string,
    /** The registry could not be reached: a locked install may still start. */
    readonly offline = false,
  ) {
    super('install-failed', message, hint ?? 'see the install output above', ExitCode.installFailed);
  }
}

export class IntegrityError extends McpboxError {
  constructor(message: string, hint?: string) {
    super('integrity-mismatch', message, hint ?? 'if the change is expected, delete its entry from the lock file (or run mcpbox update) to resolve it again', ExitCode.integrityMismatch);
  }
}

/** A supply-chain gate refused a package before anything of it was installed (src/install/gates.ts). */
export class SupplyChainError extends McpboxError {
  constructor(code: 'signature' | 'near-name' | 'private-scope', message: string, hint: string) {
    super(`refused-${code}`, message, hint, ExitCode.supplyChain);
  }
}

export class ClientConfigError extends McpboxError {
  constructor(message: string, hint?: string) {
    super('client-config', message, hint, ExitCode.clientConfig);
  }
}
