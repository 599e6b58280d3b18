// Kernel cases under Node + Dawn (SwiftShader on machines without a GPU).
import { describe, it } from 'vitest';
import { allCases } from './cases/index.ts';
import { hasCapability, runCase } from './harness/cases.ts';
import { testGpu } from './harness/gpu.ts';

describe('kernels (node-dawn)', () => {
  for (const c of allCases) {
    it(c.name, async (ctx) => {
      const gpu = await testGpu();
      if (!hasCapability(gpu, c.needs)) ctx.skip();
      await runCase(gpu, c);
    });
  }
});
