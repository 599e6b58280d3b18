#!/usr/bin/env node
// Builds the embeddable ES module: dist/index.js (one ESM file for browsers, Deno and Node; the
// shaders are embedded; `webgpu` (Dawn, Node only) and `node:*` are loaded lazily and left
// external, as are the npm dependencies) and its type declarations under dist/types/.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
execFileSync(process.execPath, [join(root, 'scripts/embed-shaders.mjs')], { stdio: 'inherit' });
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
await build({
  entryPoints: [join(root, 'src/index.ts')],
  bundle: true,
  platform: 'neutral',
  format: 'esm',
  target: 'es2022',
  external: ['webgpu', 'node:*', ...Object.keys(pkg.dependencies ?? {})],
  outfile: join(root, 'dist/index.js'),
  logLevel: 'warning',
});
execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
// Declarations keep the sources' `.ts` specifiers; published .d.ts files import `.js`.
const walk = (d) => {
  for (const name of readdirSync(d)) {
    const p = join(d, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.d.ts')) writeFileSync(p, readFileSync(p, 'utf8').replace(/(from\s+|import\()(['"])(\.{1,2}\/[^'"]+)\.ts\2/g, '$1$2$3.js$2'));
  }
};
walk(join(root, 'dist/types'));
console.log('built dist/index.js and dist/types/');
