#!/usr/bin/env node
// Bundles bench/main.ts into dist/gpu/bench.mjs and bench/device-check.ts into dist/gpu/check.mjs
// (ESM files that run under Node with Dawn and under Deno), after embedding the shaders. Only
// `webgpu` (Dawn's native binding) stays external.
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

const common = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'es2022',
  external: ['webgpu'],
  define: { __BENCH_COMMIT__: JSON.stringify(commit) },
  logLevel: 'warning',
};
// The benchmark, and beside it the kernel cases as a device check (bench/device-check.ts).
await build({ ...common, entryPoints: [join(root, 'bench/main.ts')], outfile });
const checkfile = join(dirname(outfile), 'check.mjs');
await build({ ...common, entryPoints: [join(root, 'bench/device-check.ts')], outfile: checkfile });
console.log(`built ${outfile} and ${checkfile} (commit ${commit})`);
