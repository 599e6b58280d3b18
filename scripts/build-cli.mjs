#!/usr/bin/env node
// Bundles the CLI (src/cli/main.ts) into dist/cli.mjs, the package's `bin`, after embedding the
// shaders. Only `webgpu` (Dawn's native binding, loaded at runtime under Node) stays external.
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = join(root, 'dist/cli.mjs');
execFileSync(process.execPath, [join(root, 'scripts/embed-shaders.mjs')], { stdio: 'inherit' });
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

await build({
  entryPoints: [join(root, 'src/cli/main.ts')],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'es2022',
  external: ['webgpu'],
  outfile,
  define: { __SP_VERSION__: JSON.stringify(version) },
  logLevel: 'warning',
});
chmodSync(outfile, 0o755);
console.log(`built ${outfile}`);
