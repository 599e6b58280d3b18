import type { KernelCase } from '../harness/cases.ts';
import { poisoned } from '../harness/cases.ts';
import { compareArrays } from '../harness/compare.ts';
import { fillRandomRef } from '../reference/fill_random.ts';
import { FillRandomKernel } from '../../src/kernels/fill_random.ts';
import { roundTo } from '../../src/util/half.ts';
import type { DType } from '../../src/tensor.ts';

// f32 is exact up to the f32 rounding of offset + scale * (2u - 1); halves are compared after
// rounding the reference the way the shader does (bf16 truncates, f16 rounds to nearest).
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
    compareArrays(this.name, await gpu.read(out), expect, { relL2: 1e-7, atol: 1e-7, rtol: 0 });
    gpu.release(out);
  },
}));
