/**
 * Runs the matmul kernel cases (test/cases/matmul.ts) on a real GPU with experimental features, so
 * that the paths software adapters lack (shader-f16 under Dawn, subgroup matrices) are checked
 * against the float64 reference too. Bundled beside the benchmark:
 *   npx esbuild bench/matmul-check.ts --bundle --platform=node --format=esm --external:webgpu --outfile=dist/gpu-matmul/check.mjs
 *   node dist/gpu-matmul/check.mjs        (or: deno run -A dist/gpu-matmul/check.mjs)
 * Exit code 1 if any case fails.
 */
import process from 'node:process';
import { requestGpu } from '../src/gpu/device.ts';
import { hasCapability } from '../test/harness/cases.ts';
import { matmulCases } from '../test/cases/matmul.ts';

const gpu = await requestGpu({ experimental: true, label: 'matmul-check' });
let failed = 0;
let ran = 0;
const seed = 12345;
for (const c of matmulCases) {
  if (!hasCapability(gpu, c.needs)) {
    console.log(`skip ${c.name} (no ${c.needs})`);
    continue;
  }
  ran++;
  try {
    await c.run(gpu, seed);
    console.log(`ok   ${c.name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${c.name}: ${(e as Error).message.split('\n').slice(0, 4).join(' | ')}`);
  }
}
console.log(`matmul-check (${gpu.caps.runtime}): ${ran - failed}/${ran} passed, ${failed} failed`);
gpu.destroy();
process.exit(failed ? 1 : 0);
