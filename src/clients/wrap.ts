import { applyEdits, findNodeAtLocation, getNodeValue, type JSONPath, modify, type Node, parse, parseTree, printParseErrorCode, type ParseError } from 'jsonc-parser';
import { ClientConfigError } from '../errors.js';
import { isRunner, RUNNER_NAMES, type Runner } from '../runners/table.js';

/**
 * Rewriting MCP client configurations so their npx/uvx servers start through mcpbox, and back. Pure:
 * text in, text out. Edits touch only the entries they change (comments and formatting elsewhere are
 * kept, JSONC included), and each change is recorded so `unwrap` can put the original text back byte
 * for byte.
 */

/** Where the servers sit in a file: `mcpServers` (most clients), `servers` (VS Code), and per project (Claude Code). */
export function serverMaps(root: Node): JSONPath[] {
  const paths: JSONPath[] = [];
  for (const key of ['mcpServers', 'servers']) {
    const node = findNodeAtLocation(root, [key]);
    if (node?.type === 'object') paths.push([key]);
  }
  // Claude Code's ~/.claude.json keeps project-scoped servers under projects.<path>.mcpServers.
  const projects = findNodeAtLocation(root, ['projects']);
  for (const project of projects?.type === 'object' ? (projects.children ?? []) : []) {
    const name = project.children?.[0]?.value as string | undefined;
    if (name === undefined) continue;
    const node = findNodeAtLocation(root, ['projects', name, 'mcpServers']);
    if (node?.type === 'object') paths.push(['projects', name, 'mcpServers']);
  }
  return paths;
}

export interface ServerEntry {
  /** Where the entry is: its map's path and its name. */
  readonly path: JSONPath;
  readonly name: string;
  readonly value: { command?: unknown; args?: unknown; env?: unknown; url?: unknown; serverUrl?: unknown; type?: unknown };
  /** The entry's exact text in the file. */
  readonly text: string;
}

export function parseConfig(text: string, file: string): Node {
  const errors: ParseError[] = [];
  const root = parseTree(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (errors.length > 0 || !root) {
    const first = errors[0];
    const where = first ? lineColumn(text, first.offset) : { line: 1, column: 1 };
    throw new ClientConfigError(
      `${file} is not valid JSON (${first ? printParseErrorCode(first.error) : 'empty'} at line ${where.line}, column ${where.column}); left untouched`,
      'fix the file (or restore it from your client) and run mcpbox again',
    );
  }
  if (root.type !== 'object') throw new ClientConfigError(`${file} is not a JSON object; left untouched`, 'point --config at an MCP client configuration');
  return root;
}

export function listEntries(text: string, root: Node): ServerEntry[] {
  const entries: ServerEntry[] = [];
  for (const path of serverMaps(root)) {
    const map = findNodeAtLocation(root, path)!;
    for (const property of map.children ?? []) {
      const [key, valueNode] = property.children ?? [];
      if (!key || !valueNode || valueNode.type !== 'object') continue;
      entries.push({
        path,
        name: key.value as string,
        value: getNodeValue(valueNode) as ServerEntry['value'],
        text: text.slice(valueNode.offset, valueNode.offset + valueNode.length),
      });
    }
  }
  return entries;
}

export type Verdict =
  | { readonly kind: 'wrap'; readonly runner: Runner; readonly shell?: readonly string[] }
  | { readonly kind: 'wrapped' }
  | { readonly kind: 'remote' }
  | { readonly kind: 'other'; readonly command: string };

const basename = (command: string) => command.split(/[\\/]/).pop()!.toLowerCase().replace(/\.(cmd|exe|bat)$/, '');

/** What wrap does with an entry. Windows configs often say `cmd /c npx …`: that prefix is kept. */
export function classify(entry: ServerEntry['value']): Verdict {
  if (typeof entry.url === 'string' || typeof entry.serverUrl === 'string' || entry.type === 'http' || entry.type === 'sse') return { kind: 'remote' };
  if (typeof entry.command !== 'string') return { kind: 'other', command: '(no command)' };
  const args = Array.isArray(entry.args) ? entry.args.filter((a): a is string => typeof a === 'string') : [];
  const shellPrefix = basename(entry.command) === 'cmd' && /^\/c$/i.test(args[0] ?? '') ? [entry.command, args[0]!] : undefined;
  const command = shellPrefix ? (args[1] ?? '') : entry.command;
  const rest = shellPrefix ? args.slice(2) : args;
  const name = basename(command);
  if (name === 'mcpbox' && rest[0] === 'run') return { kind: 'wrapped' };
  if (isRunner(name)) return shellPrefix ? { kind: 'wrap', runner: name, shell: shellPrefix } : { kind: 'wrap', runner: name };
  return { kind: 'other', command: entry.command };
}

/** A change wrap made: the entry's text before and after, so unwrap can put it back exactly. */
export interface WrapRecord {
  readonly path: JSONPath;
  readonly name: string;
  readonly original: string;
  readonly wrapped: string;
}

export interface WrapOutcome {
  readonly text: string;
  readonly records: readonly WrapRecord[];
  readonly wrapped: readonly string[];
  readonly alreadyWrapped: readonly string[];
  readonly remote: readonly string[];
  readonly other: readonly { name: string; command: string }[];
}

export function wrapConfig(text: string, file: string, mcpbox = 'mcpbox'): WrapOutcome {
  const root = parseConfig(text, file);
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const { insertSpaces, tabSize } = indentation(text);
  let result = text;
  const records: WrapRecord[] = [];
  const outcome = { wrapped: [] as string[], alreadyWrapped: [] as string[], remote: [] as string[], other: [] as { name: string; command: string }[] };
  // Last entry first: earlier offsets stay valid while later text changes.
  for (const entry of listEntries(text, root).reverse()) {
    const label = entryLabel(entry);
    const verdict = classify(entry.value);
    if (verdict.kind === 'wrapped') outcome.alreadyWrapped.unshift(label);
    else if (verdict.kind === 'remote') outcome.remote.unshift(label);
    else if (verdict.kind === 'other') outcome.other.unshift({ name: label, command: verdict.command });
    if (verdict.kind !== 'wrap') continue;

    const args = Array.isArray(entry.value.args) ? (entry.value.args as unknown[]) : [];
    const runnerArgs = verdict.shell ? args.slice(2) : args;
    const envNames = entry.value.env && typeof entry.value.env === 'object' ? Object.keys(entry.value.env as object) : [];
    const mcpboxArgs = ['run', ...envNames.flatMap((name) => ['-e', name]), verdict.runner, ...runnerArgs];
    const options = { formattingOptions: { insertSpaces, tabSize, eol } };
    const at = [...entry.path, entry.name];
    const edits = verdict.shell
      ? modify(result, [...at, 'args'], [verdict.shell[1], mcpbox, ...mcpboxArgs], options)
      : [...modify(result, [...at, 'command'], mcpbox, options)];
    result = applyEdits(result, edits);
    if (!verdict.shell) result = applyEdits(result, modify(result, [...at, 'args'], mcpboxArgs, options));
    const node = findNodeAtLocation(parseTree(result)!, at)!;
    records.unshift({ path: entry.path, name: entry.name, original: entry.text, wrapped: result.slice(node.offset, node.offset + node.length) });
    outcome.wrapped.unshift(label);
  }
  return { text: result, records, ...outcome };
}

export interface UnwrapOutcome {
  readonly text: string;
  /** Put back exactly as they were. */
  readonly restored: readonly string[];
  /** Changed since they were wrapped: put back as npx/uvx, other edits kept. */
  readonly rebuilt: readonly string[];
  /** Wrapped entries mcpbox has no record of (wrapped by hand or elsewhere): rebuilt the same way. */
  readonly missing: readonly string[];
}

export function unwrapConfig(text: string, file: string, records: readonly WrapRecord[]): UnwrapOutcome {
  const root = parseConfig(text, file);
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const { insertSpaces, tabSize } = indentation(text);
  let result = text;
  const restored: string[] = [];
  const rebuilt: string[] = [];
  const missing: string[] = [];
  for (const entry of listEntries(text, root).reverse()) {
    if (classify(entry.value).kind !== 'wrapped') continue;
    const label = entryLabel(entry);
    const record = records.find((r) => r.name === entry.name && JSON.stringify(r.path) === JSON.stringify(entry.path));
    const node = findNodeAtLocation(parseTree(result)!, [...entry.path, entry.name])!;
    if (record && record.wrapped === entry.text) {
      result = result.slice(0, node.offset) + record.original + result.slice(node.offset + node.length);
      restored.unshift(label);
      continue;
    }
    // Edited since: take mcpbox out of the command, keep everything else as it now is.
    const { command, args } = unwrappedCommand(entry.value, record ? (parse(record.original) as ServerEntry['value']) : undefined);
    const options = { formattingOptions: { insertSpaces, tabSize, eol } };
    const at = [...entry.path, entry.name];
    result = applyEdits(result, modify(result, [...at, 'command'], command, options));
    result = applyEdits(result, modify(result, [...at, 'args'], args, options));
    (record ? rebuilt : missing).unshift(label);
  }
  return { text: result, restored, rebuilt, missing };
}

const RUN_OPTIONS_WITH_VALUES = new Set(['-e', '--env', '--image', '--network', '--memory', '--cpus', '--pids', '--grace', '--mount']);

/** `mcpbox run [-e NAME…] npx …` (possibly behind `cmd /c`) back to `npx …`. */
function unwrappedCommand(value: ServerEntry['value'], original: ServerEntry['value'] | undefined): { command: string; args: string[] } {
  const args = (Array.isArray(value.args) ? value.args : []).filter((a): a is string => typeof a === 'string');
  const shell = typeof value.command === 'string' && basename(value.command) === 'cmd' && /^\/c$/i.test(args[0] ?? '');
  const rest = shell ? args.slice(2) : args;
  let i = 1; // after "run": mcpbox's own options, then the runner
  while (i < rest.length && rest[i]!.startsWith('-')) i += RUN_OPTIONS_WITH_VALUES.has(rest[i]!) ? 2 : 1;
  const runner = rest[i] ?? RUNNER_NAMES[0]!;
  const runnerArgs = rest.slice(i + 1);
  const originalCommand = typeof original?.command === 'string' && basename(original.command) === runner ? original.command : runner;
  return shell ? { command: value.command as string, args: [args[0]!, runner, ...runnerArgs] } : { command: originalCommand, args: runnerArgs };
}

function entryLabel(entry: Pick<ServerEntry, 'path' | 'name'>): string {
  return entry.path[0] === 'projects' ? `${entry.name} (project ${String(entry.path[1])})` : entry.name;
}

function indentation(text: string): { insertSpaces: boolean; tabSize: number } {
  const indent = /\n([ \t]+)\S/.exec(text)?.[1] ?? '  ';
  return indent.startsWith('\t') ? { insertSpaces: false, tabSize: 1 } : { insertSpaces: true, tabSize: indent.length };
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, column: before.at(-1)!.length + 1 };
}
