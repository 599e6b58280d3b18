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

// Last (Deno runs a file's tests in order): release the shared device before the process exits,
// rather than leaving its teardown to exit time (see scripts/test.sh on the exit crash).
Deno.test({
  name: 'teardown: the shared device is released',
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const gpu = await testGpu();
    await gpu.sync();
    gpu.destroy();
  },
});
