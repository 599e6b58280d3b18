#!/usr/bin/env node
// Bundles bench/main.ts into dist/gpu/bench.mjs (one ESM file that runs under Node with Dawn and
// under Deno), after embedding the shaders. Only `webgpu` (Dawn's native binding) stays external.
// The commit id is embedded with --define from `git rev-parse --short HEAD` (suffix "+dirty" when
// the working tree has uncommitted changes, so results never claim a commit they did not run).
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = process.argv[2] ?? join(root, 'dist/gpu/bench.mjs');

execFileSync(process.execPath, [join(root, 'scripts/embed-shaders.mjs')], { stdio: 'inherit' });

function git(args) {
  try {
    return execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}
let commit = git(['rev-parse', '--short', 'HEAD']) || 'unknown';
if (commit !== 'unknown' && git(['status', '--porcelain', '--untracked-files=no', '--', 'src', 'shaders', 'bench'])) commit += '+dirty';

await build({
  entryPoints: [join(root, 'bench/main.ts')],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'es2022',
  external: ['webgpu'],
  outfile,
  define: { __BENCH_COMMIT__: JSON.stringify(commit) },
  logLevel: 'warning',
});
console.log(`built ${outfile} (commit ${commit})`);
