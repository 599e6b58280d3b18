import type { KernelCase } from '../harness/cases.ts';
import { poisoned } from '../harness/cases.ts';
import { Rng } from '../harness/rng.ts';
import { compareArrays, TOL_F32 } from '../harness/compare.ts';
import { addRef } from '../reference/add.ts';
import { AddKernel } from '../../src/kernels/add.ts';

export const addCases: KernelCase[] = [1, 255, 256, 257, 1000, 70001].map((n) => ({
  name: `add:n=${n}`,
  quick: n <= 1000,
  async run(gpu, seed) {
    const rng = new Rng(seed);
    const a = rng.normals(n);
    const b = rng.normals(n);
    const ta = gpu.upload(a, [n], 'f32', 'a');
    const tb = gpu.upload(b, [n], 'f32', 'b');
    const out = poisoned(gpu, [n]);
    const k = await AddKernel.create(gpu);
    const batch = gpu.batch();
    k.encode(batch, ta, tb, out);
    await batch.submit();
    compareArrays(this.name, await gpu.read(out), addRef(a, b), TOL_F32);
    gpu.release(ta, tb, out);
  },
}));
