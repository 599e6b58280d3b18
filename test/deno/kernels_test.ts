// Kernel cases under Deno (its own WebGPU, wgpu; lavapipe on machines without a GPU).
import { allCases } from '../cases/index.ts';
import { hasCapability, runCase } from '../harness/cases.ts';
import { testGpu } from '../harness/gpu.ts';

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
      await runCase(gpu, c);
    },
  });
}
