import type { KernelCase } from '../harness/cases.ts';
import { poisoned } from '../harness/cases.ts';
import { compareArrays } from '../harness/compare.ts';
import { fillRandomRef } from '../reference/fill_random.ts';
import { FillRandomKernel } from '../../src/kernels/fill_random.ts';
import { roundTo } from '../../src/util/half.ts';
import type { DType } from '../../src/tensor.ts';

// The reference rounds offset + scale * (2u - 1) to f32 once; the GPU rounds the product and the
// sum separately, or once where it contracts them into an FMA (lavapipe does), so f32 results agree
// within 2 ulp. Halves are compared with the reference rounded the way the shader rounds (bf16
// truncates, f16 rounds to nearest); near a rounding boundary that 2-ulp f32 difference can move a
// half by one of its own ulps.
const cases: [number, DType][] = [
  [1, 'f32'],
  [257, 'f32'],
  [1, 'bf16'],
  [513, 'bf16'],
  [1001, 'f16'],
];

function truncateBf16(v: Float64Array): Float64Array {
  const f = new Float32Array(v);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < u.length; i++) u[i] = u[i]! & 0xffff0000;
  return Float64Array.from(f);
}

export const fillRandomCases: KernelCase[] = cases.map(([n, dtype]) => ({
  name: `fill_random:n=${n};dtype=${dtype}`,
  quick: n < 600,
  async run(gpu, seed) {
    const out = poisoned(gpu, [n], dtype);
    const k = await FillRandomKernel.create(gpu);
    const batch = gpu.batch();
    k.encode(batch, out, { seed, scale: 0.02, offset: 0.5 });
    await batch.submit();
    const ref = fillRandomRef(n, seed, 0.02, 0.5);
    const expect = dtype === 'bf16' ? truncateBf16(ref) : dtype === 'f16' ? Float64Array.from(roundTo('f16', ref)) : Float64Array.from(new Float32Array(ref));
    // f32: 2 ulp. bf16/f16: one unit in the last place of the half type (a 2-ulp f32 difference can
    // cross a truncation or rounding boundary).
    const rtol = dtype === 'f32' ? 2 ** -22 : dtype === 'bf16' ? 2 ** -7 : 2 ** -10;
    compareArrays(this.name, await gpu.read(out), expect, { relL2: rtol, atol: 0, rtol });
    gpu.release(out);
  },
}));
