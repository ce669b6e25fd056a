import type { InstallReport } from './report.js';
import { CACHE_DIR, type Described, flag, type Lockable, type PackageRef, type RunnerInvocation, type RunnerOption, type RunnerSpec } from './types.js';

/** uvx (uv tool run): its option grammar, PEP 508 requirements, and how uv installs are locked. */
// uv tool run / uvx. Everything after the command is the command's.
const UVX_OPTIONS: readonly RunnerOption[] = [
  flag(true, 'from', '--from'),
  flag(true, 'package', '-w', '--with'),
  flag(true, undefined, '--with-editable'),
  flag(true, undefined, '--with-requirements'),
  flag(true, undefined, '--with-executables-from'),
  flag(true, undefined, '-c', '--constraints', '--constraint'),
  flag(true, undefined, '--overrides', '--override'),
  flag(true, undefined, '-p', '--python'),
  flag(true, undefined, '-i', '--index-url'),
  flag(true, undefined, '--extra-index-url'),
  flag(true, undefined, '--index'),
  flag(true, undefined, '--default-index'),
  flag(true, undefined, '-f', '--find-links'),
  flag(true, undefined, '--index-strategy'),
  flag(true, undefined, '--keyring-provider'),
  flag(true, undefined, '--resolution'),
  flag(true, undefined, '--prerelease'),
  flag(true, undefined, '--exclude-newer'),
  flag(true, undefined, '--exclude-newer-package'),
  flag(true, undefined, '--fork-strategy'),
  flag(true, undefined, '--link-mode'),
  flag(true, undefined, '-P', '--upgrade-package'),
  flag(true, undefined, '--reinstall-package'),
  flag(true, undefined, '--refresh-package'),
  flag(true, undefined, '--no-build-package'),
  flag(true, undefined, '--no-binary-package'),
  flag(true, undefined, '--config-setting', '-C'),
  flag(true, undefined, '--env-file'),
  flag(true, undefined, '--python-preference'),
  flag(true, undefined, '--color'),
  flag(true, undefined, '--allow-insecure-host', '--trusted-host'),
  flag(true, undefined, '--cache-dir'),
  flag(true, undefined, '--config-file'),
  flag(true, undefined, '--directory'),
  flag(true, undefined, '--project'),
  flag(false, undefined, '--isolated'),
  flag(false, undefined, '--no-env-file'),
  flag(false, undefined, '-U', '--upgrade'),
  flag(false, undefined, '--reinstall'),
  flag(false, undefined, '--refresh'),
  flag(false, undefined, '--no-sources'),
  flag(false, undefined, '--no-build'),
  flag(false, undefined, '--no-binary'),
  flag(false, undefined, '--no-build-isolation'),
  flag(false, undefined, '--compile-bytecode'),
  flag(false, undefined, '--no-deps'),
  flag(false, undefined, '-n', '--no-cache'),
  flag(false, undefined, '--offline'),
  flag(false, undefined, '--no-progress'),
  flag(false, undefined, '--native-tls'),
  flag(false, undefined, '--managed-python'),
  flag(false, undefined, '--no-managed-python'),
  flag(false, undefined, '--no-python-downloads'),
  flag(false, undefined, '--no-config'),
  flag(false, undefined, '-q', '--quiet'),
  flag(false, undefined, '-v', '--verbose'),
  flag(false, 'info', '-V', '--version'),
  flag(false, 'info', '-h', '--help'),
];

const UVX_LOCKABLE = new Set(['--from', '--with', '--python', '--quiet']);

export const UVX = {
  executable: 'uvx',
  options: UVX_OPTIONS,
  parsePackage: parsePythonSpec,
  // --from names the package; the positional is the command (and the package when there is no --from).
  packages: (positional, roles) => {
    const from = roles.get('from');
    const main = from ? from.map(parsePythonSpec) : positional !== undefined ? [parsePythonSpec(positional)] : [];
    return { packages: [...main, ...(roles.get('package') ?? []).map(parsePythonSpec)], complete: positional !== undefined };
  },
  negatable: false,
  strictBooleans: true,
  usage: 'mcpbox run uvx <package> [args…], e.g. mcpbox run uvx mcp-server-time',
  cacheEnv: {
    UV_CACHE_DIR: `${CACHE_DIR}/uv/cache`,
    UV_TOOL_DIR: `${CACHE_DIR}/uv/tools`,
    UV_TOOL_BIN_DIR: `${CACHE_DIR}/uv/bin`,
    UV_PYTHON_INSTALL_DIR: `${CACHE_DIR}/uv/python`,
  },
  // uv's default, pinned: a name found on an earlier index (--index-url, --extra-index-url) is never looked up on PyPI.
  resolutionEnv: { UV_INDEX_STRATEGY: 'first-index' },
  quietEnv: { UV_NO_PROGRESS: '1' },
  image: {
    dir: 'uvx',
    // Pinned by digest: a tag can be moved to other content. Updated with mcpbox releases.
    base: 'ghcr.io/astral-sh/uv:python3.13-trixie-slim@sha256:dc6831ca75771711b69e2fcaf47f2b4938bcfd7721daf254c1131791249d000d',
    imageEnv: 'MCPBOX_UVX_IMAGE',
    baseEnv: 'MCPBOX_UVX_BASE_IMAGE',
  },
  caEnv: 'SSL_CERT_FILE',
  registries: ['pypi.org', 'files.pythonhosted.org'],
  registryOptions: ['--index-url', '--extra-index-url', '--index', '--default-index', '--find-links'],
  lock: {
    options: UVX_LOCKABLE,
    request: uvxRequest,
    lockfile: 'requirements.txt',
    binDir: 'venv/bin',
    script: 'uvx-install.sh',
    gate: { script: 'uv-gate.py', variable: 'uv_gate_py' },
    scriptArgs: (ask) => [ask.python ?? '-'],
    describe: describeUvInstall,
    lockfileProblem: (lockfile) => requirementsProblem(lockfile),
    versionOf: (lockfile, name) => requirementBlock(lockfile, name)?.version,
    argsFor: (ask) => [
      ...(ask.python !== undefined ? ['--python', ask.python] : []),
      '--from',
      ask.specs[0]!,
      ...ask.specs.slice(1).flatMap((w) => ['--with', w]),
      ask.command!,
    ],
    argsForPackage: (spec) => [spec],
  },
} as const satisfies RunnerSpec;

/** uvx with registry requirements (by name, version or specifiers) and plain options only. */
function uvxRequest(invocation: RunnerInvocation): Lockable | undefined {
  const optionNames = invocation.options.map((o) => o.name);
  if (!invocation.positional || !optionNames.every((n) => UVX_LOCKABLE.has(n))) return undefined;
  const from = invocation.options.find((o) => o.name === '--from')?.value;
  const withs = invocation.options.filter((o) => o.name === '--with').map((o) => o.value!);
  const main = from ?? invocation.positional.value;
  const requirements = [main, ...withs].map(pythonRequirement);
  if (requirements.some((r) => r === undefined)) return undefined;
  const command = from ? invocation.positional.value : parsePythonSpec(invocation.positional.value).name;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(command)) return undefined;
  return {
    specs: requirements as string[],
    command,
    python: invocation.options.find((o) => o.name === '--python')?.value,
    name: parsePythonSpec(main).name,
    pinned: requirements.every((r) => /==[^=,;<>~!*]+$/.test(r!.replace(/\s/g, ''))),
  };
}

/** uvx's `pkg@1.2` → `pkg==1.2`, `pkg@latest` → `pkg`; URLs and paths aren't locked. */
function pythonRequirement(spec: string): string | undefined {
  const ref = parsePythonSpec(spec);
  if (ref.name === spec && /[/:\\]/.test(spec)) return undefined;
  const at = /^([^@\s]+)\s*@\s*([^\s/:]+)$/.exec(spec.trim());
  if (at) return at[2] === 'latest' ? at[1]! : `${at[1]!}==${at[2]!}`;
  return spec.trim();
}

// name [extras] then nothing, `@ version` (uv), `@ url` (PEP 508 direct reference) or specifiers.
const REQUIREMENT = /^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[[^\]]*\])?\s*(?:@\s*(\S+)|([<>=!~][^;]*))?\s*(?:;.*)?$/s;

/** PEP 508 requirement (plus uv's `name@version`), enough to name the package; paths and URLs stay whole. */
export function parsePythonSpec(spec: string): PackageRef {
  const match = REQUIREMENT.exec(spec.trim());
  if (!match) return { name: spec, spec };
  const name = match[1]!.toLowerCase().replace(/[-_.]+/g, '-');
  const at = match[2];
  const pinned = at && !/[/:]/.test(at) ? at : /^===?\s*([^\s,]+)\s*$/.exec(match[3] ?? '')?.[1];
  return pinned ? { name, spec, version: pinned } : { name, spec };
}

const REQUIREMENT_LINE = /^[A-Za-z0-9][A-Za-z0-9._-]*(?:\[[A-Za-z0-9,._ -]*\])?==[^\s;\\]+(?:\s*;[^\\]*)?(?:\s*\\)?$/;
const HASH_LINE = /^--hash=sha256:[0-9a-f]{64}(?:\s*\\)?$/;

export function requirementsProblem(lockfile: string): string | undefined {
  for (const raw of lockfile.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || REQUIREMENT_LINE.test(line) || HASH_LINE.test(line)) continue;
    return `its requirements.txt holds ${JSON.stringify(line.slice(0, 80))}, which is neither a pinned requirement nor a hash`;
  }
  return undefined;
}


/** Reads uv's hash-pinned requirements.txt for the first package's version and hashes. */
export function describeUvInstall(request: Pick<Lockable, 'name' | 'command'>, report: InstallReport): Described {
  const found = requirementBlock(report.lockfile, request.name);
  if (!found) throw new Error(`${request.name} is not in the resolved requirements`);
  const hashes = [...found.block.matchAll(/--hash=(sha256:[0-9a-f]{64})/g)].map((m) => m[1]!).sort();
  const executable = request.command!;
  if (!report.bins.includes(executable)) {
    throw new Error(`${request.name} provides no executable ${executable} (found: ${report.bins.filter((b) => !/^(python|pip|activate|deactivate)/.test(b)).join(', ') || 'none'})`);
  }
  return { version: found.version, integrity: hashes.join(' '), executable };
}

/** A package's lines in uv's hash-pinned requirements.txt, and its version. */
function requirementBlock(lockfile: string, name: string): { block: string; version: string } | undefined {
  const normalise = (text: string) => text.toLowerCase().replace(/[-_.]+/g, '-');
  const block = lockfile.split(/\n(?=\S)/).find((b) => {
    const head = /^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==/.exec(b);
    return head && normalise(head[1]!) === name;
  });
  const version = block && /==([^\s\\;]+)/.exec(block)?.[1];
  return block && version ? { block, version } : undefined;
}
