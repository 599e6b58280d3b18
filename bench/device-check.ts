/**
 * Runs the kernel cases (test/cases) on a real GPU with experimental features, so that the paths
 * software adapters lack (shader-f16 under Dawn, subgroups, subgroup matrices) are checked against
 * the float64 references too. Bundled beside the benchmark by scripts/build-bench.mjs:
 *
 *   node dist/gpu/check.mjs [substring ...]     (or: deno run -A dist/gpu/check.mjs ...)
 *
 * Only cases whose name contains one of the substrings run (all when none is given). Prints one
 * line per case and a summary; exit code 1 if any case fails.
 */
import process from 'node:process';
import { requestGpu } from '../src/gpu/device.ts';
import { hasCapability, runCase } from '../test/harness/cases.ts';
import { allCases } from '../test/cases/index.ts';
import { errorLine } from './harness.ts';

const filters = process.argv.slice(2);
const gpu = await requestGpu({ experimental: true, label: 'device-check' });
let failed = 0;
let ran = 0;
for (const c of allCases) {
  if (filters.length && !filters.some((f) => c.name.includes(f))) continue;
  if (!hasCapability(gpu, c.needs)) {
    console.log(`skip ${c.name} (no ${c.needs})`);
    continue;
  }
  ran++;
  const t0 = performance.now();
  try {
    await runCase(gpu, c);
    console.log(`ok   ${c.name} (${(performance.now() - t0).toFixed(0)} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${c.name}: ${errorLine(e)}`);
  }
}
console.log(`device-check (${gpu.caps.runtime}, ${gpu.caps.adapter.description || gpu.caps.adapter.vendor}): ${ran - failed}/${ran} passed, ${failed} failed`);
gpu.destroy();
process.exit(failed ? 1 : 0);
