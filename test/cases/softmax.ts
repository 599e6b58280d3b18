import type { KernelCase } from '../harness/cases.ts';
import { poisoned } from '../harness/cases.ts';
import { Rng } from '../harness/rng.ts';
import { compareArrays, type Tolerance } from '../harness/compare.ts';
import { softmaxRef } from '../reference/softmax.ts';
import { SoftmaxKernel } from '../../src/kernels/softmax.ts';
import type { ReduceVariant } from '../../src/kernels/reduce.ts';
import { expectTypedError, fillSentinel, folded, VARIANTS } from './ops_common.ts';

/** exp in f32 (WGSL: 3 + 2|x| ulp) over logits up to ~50 in magnitude: a few 1e-6 relative per element. */
const TOL_SOFTMAX: Tolerance = { relL2: 2e-5, atol: 1e-7, rtol: 3e-5 };

function softmaxCase(R: number, C: number, variant: ReduceVariant, needs?: KernelCase['needs'], masked = false): KernelCase {
  return {
    name: `softmax:R=${R},C=${C},${variant}${masked ? ',-inf masked' : ''}`,
    quick: R * C <= 4096 && variant !== 'subgroups',
    needs,
    async run(gpu, seed) {
      const rng = new Rng(seed);
      // Large logits (scale 8, offsets up to ±1000) would overflow exp without the max subtraction.
      const x = new Float32Array(R * C);
      for (let r = 0; r < R; r++) {
        const offset = rng.uniform(-1000, 1000);
        for (let c = 0; c < C; c++) x[r * C + c] = offset + rng.normal() * 8;
      }
      if (masked) {
        for (let i = 0; i < x.length; i++) if (rng.next() < 0.3) x[i] = -Infinity;
        for (let c = 0; c < C; c++) x[c] = -Infinity; // row 0 fully masked: NaN, as torch
        x[C + 0] = -Infinity; // row 1 starts masked
      }
      const tx = gpu.upload(x, [R, C], 'f32', 'x');
      // Masked: NaN is the right answer for row 0, so poison with a finite sentinel there.
      const out = masked ? fillSentinel(gpu, [R, C]) : poisoned(gpu, [R, C]);
      const k = await SoftmaxKernel.create(gpu, { variant });
      const batch = gpu.batch();
      k.encode(batch, tx, out);
      await batch.submit();
      const got = await gpu.read(out);
      compareArrays(this.name, got, softmaxRef(x, R, C), TOL_SOFTMAX);
      gpu.release(tx, out);
    },
  };
}

export const softmaxCases: KernelCase[] = [
  softmaxCase(1, 1, 'auto'),
  softmaxCase(3, 7, 'auto'),
  softmaxCase(5, 1000, 'auto'),
  softmaxCase(2, 131075, 'auto'),
  softmaxCase(70, 257, 'auto'),
  folded(softmaxCase(10, 300, 'auto'), 4),
  folded(softmaxCase(10, 300, 'workgroup'), 4),
  ...VARIANTS.filter((v) => v.variant !== 'auto').flatMap((v) => [softmaxCase(4, 3001, v.variant, v.needs), softmaxCase(1, 131075, v.variant, v.needs)]),
  ...VARIANTS.map((v) => softmaxCase(3, 513, v.variant, v.needs, true)),
  {
    name: 'softmax:typed errors',
    quick: true,
    async run(gpu) {
      const k = await SoftmaxKernel.create(gpu);
      const x = gpu.empty([2, 3], 'f32', 'x');
      const o = gpu.empty([3, 2], 'f32', 'out');
      const b = gpu.batch();
      await expectTypedError('shape', 'SHAPE', 'out', () => k.encode(b, x, o));
      await expectTypedError('alias', 'SHAPE', 'share', () => k.encode(b, x, x));
      await b.submit();
      gpu.release(x, o);
    },
  },
];
