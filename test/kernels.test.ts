// Kernel cases under Node + Dawn (SwiftShader on machines without a GPU).
import { describe, it } from 'vitest';
import { allCases } from './cases/index.ts';
import { hasCapability } from './harness/cases.ts';
import { testGpu } from './harness/gpu.ts';
import { runSeed } from './harness/rng.ts';

describe('kernels (node-dawn)', () => {
  for (const c of allCases) {
    it(c.name, async (ctx) => {
      const gpu = await testGpu();
      if (!hasCapability(gpu, c.needs)) ctx.skip();
      const seed = runSeed();
      try {
        await c.run(gpu, seed);
      } catch (e) {
        (e as Error).message += ` [seed ${seed}; rerun with KERNEL_SEED=${seed}]`;
        throw e;
      }
    });
  }
});
