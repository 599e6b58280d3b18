// Kernel cases under Deno (its own WebGPU, wgpu; lavapipe on machines without a GPU).
import { allCases } from '../cases/index.ts';
import { hasCapability } from '../harness/cases.ts';
import { testGpu } from '../harness/gpu.ts';
import { runSeed } from '../harness/rng.ts';

for (const c of allCases) {
  Deno.test({
    name: c.name,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn(t) {
      const gpu = await testGpu();
      if (!hasCapability(gpu, c.needs)) {
        await t.step({ name: `skipped: no ${c.needs}`, ignore: true, fn() {} });
        return;
      }
      const seed = runSeed();
      try {
        await c.run(gpu, seed);
      } catch (e) {
        (e as Error).message += ` [seed ${seed}; rerun with KERNEL_SEED=${seed}]`;
        throw e;
      }
    },
  });
}
