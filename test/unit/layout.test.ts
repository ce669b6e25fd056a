import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The architecture, as a test: src/ is layered, and a module imports only from its own layer or
 * below. DEVELOPERS.md describes each layer.
 */
const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');
const LAYERS: readonly (readonly string[])[] = [
  ['errors.ts', 'log.ts', 'version.ts', 'paths.ts', 'host.ts', 'host-paths.ts', 'files.ts'],
  ['runners/'],
  ['engine/'],
  ['egress/'],
  ['config/'],
  ['sandbox/'],
  ['install/'],
  ['tools/'],
  ['lifecycle/'],
  ['clients/'],
  ['serve/'],
  ['commands/'],
  ['cli.ts'],
];

function layerOf(file: string): number {
  const index = LAYERS.findIndex((layer) => layer.some((place) => (place.endsWith('/') ? file.startsWith(place) : file === place)));
  if (index === -1) throw new Error(`${file} is in no layer: add it to test/unit/layout.test.ts and DEVELOPERS.md`);
  return index;
}

function sources(dir = SRC): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [relative(SRC, join(dir, entry.name))] : [],
  );
}

/** Every relative import (static, dynamic, type-only) of a module, as paths under src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(SRC, file), 'utf8');
  return [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.\.?\/[^']+)\.js'/g)].map((m) => relative(SRC, resolve(SRC, dirname(file), `${m[1]}.ts`)));
}

const files = sources();
const graph = new Map(files.map((f) => [f, importsOf(f)]));

describe('the layout', () => {
  it('every module is in a layer', () => {
    for (const file of files) expect(() => layerOf(file)).not.toThrow();
  });

  it('nothing imports upward', () => {
    const upward = [...graph].flatMap(([file, imports]) => imports.filter((target) => layerOf(target) > layerOf(file)).map((target) => `${file} → ${target}`));
    expect(upward).toEqual([]);
  });

  it('engine/ imports nothing of the domain (only the ground floor and itself)', () => {
    const engine = [...graph].filter(([file]) => file.startsWith('engine/'));
    const outside = engine.flatMap(([file, imports]) => imports.filter((t) => !t.startsWith('engine/') && layerOf(t) !== 0).map((t) => `${file} → ${t}`));
    expect(outside).toEqual([]);
  });

  it('no import cycles', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'visiting') {
        cycles.push([...path.slice(path.indexOf(file)), file].join(' → '));
        return;
      }
      state.set(file, 'visiting');
      for (const target of graph.get(file) ?? []) visit(target, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of files) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it('only the runner table knows the runners by name', () => {
    const named = files.filter((f) => !f.startsWith('runners/')).filter((f) => /=== '(?:npx|uvx)'|'(?:npx|uvx)' ===/.test(readFileSync(join(SRC, f), 'utf8')));
    expect(named).toEqual([]);
  });
});
