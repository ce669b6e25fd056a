import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseExports, recordBases } from '../../src/commands/images.js';

/** mcpbox images bootstrap: what the script printed becomes baseImages in your settings, nothing else changed. */
describe('images bootstrap records the bases', () => {
  let home: string;
  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'mcpbox-images-'));
  });
  afterEach(() => rmSync(home, { recursive: true, force: true }));
  const bases = { npx: 'mcpbox-bootstrap/node:22-bookworm', uvx: 'mcpbox-bootstrap/uv-python:trixie' };

  it("reads the script's export lines, ignoring its comments", () => {
    const out = '# mcpbox-bootstrap/node:22-bookworm is sha256:aa\nexport MCPBOX_NPX_BASE_IMAGE=mcpbox-bootstrap/node:22-bookworm\nexport MCPBOX_UVX_BASE_IMAGE=mcpbox-bootstrap/uv-python:trixie\n';
    expect(parseExports(out)).toEqual(bases);
    expect(() => parseExports('nothing\n')).toThrow(/named no images/);
  });

  it('creates ~/.config/mcpbox/config.json when there is none', () => {
    const file = recordBases({}, home, bases);
    expect(file).toBe(join(home, '.config', 'mcpbox', 'config.json'));
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ baseImages: bases });
  });

  it('merges into an existing file: other keys and its private mode kept', () => {
    const dir = join(home, 'cfg', 'mcpbox');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ memory: '1g', env: ['TOKEN=x'], baseImages: { 'npx-browser': 'b' } }), { mode: 0o600 });
    expect(recordBases({ XDG_CONFIG_HOME: join(home, 'cfg') }, home, bases)).toBe(file);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ memory: '1g', env: ['TOKEN=x'], baseImages: { 'npx-browser': 'b', ...bases } });
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('a YAML settings file is not rewritten: the error says what to add', () => {
    const dir = join(home, '.config', 'mcpbox');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'config.yaml'), 'memory: 1g\n');
    expect(() => recordBases({}, home, bases)).toThrow(/is not JSON and mcpbox doesn't rewrite it/);
    expect(readFileSync(join(dir, 'config.yaml'), 'utf8')).toBe('memory: 1g\n');
  });

  it('the script ships in the npm package', () => {
    const pkg = JSON.parse(readFileSync(join(__dirname, '../../package.json'), 'utf8')) as { files: string[] };
    expect(pkg.files).toContain('scripts/bootstrap-base-images.sh');
  });
});
