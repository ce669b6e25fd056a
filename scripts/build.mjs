// Bundles the CLI into dist/: one entry chunk holding only what every command needs, and one chunk per
// command and per heavy dependency, loaded by the lazy import()s in src/cli.ts. A bundle spares Node
// resolving and compiling hundreds of files at every start (see `npm run bench`: start-up).
import { build } from 'esbuild';
import { rmSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
await build({
  entryPoints: ['src/cli.ts'],
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  chunkNames: 'chunk-[name]-[hash]',
  // Prefer packages' ES module builds (jsonc-parser's UMD build can't be bundled).
  mainFields: ['module', 'main'],
  // CommonJS dependencies need require() inside an ES module bundle.
  banner: { js: "import { createRequire as __mcpboxRequire } from 'node:module'; const require = __mcpboxRequire(import.meta.url);" },
  // cosmiconfig loads TypeScript config files only when typescript is installed; mcpbox doesn't ship it.
  // npm-package-arg is loaded at run time by createRequire, only for unusual npm specs (src/runners.ts).
  external: ['typescript', 'npm-package-arg'],
  logLevel: 'warning',
});
