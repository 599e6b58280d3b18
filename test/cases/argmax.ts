import type { KernelCase } from '../harness/cases.ts';
import { Rng } from '../harness/rng.ts';
import { expectEqualInts } from '../harness/compare.ts';
import { argmaxRef } from '../reference/argmax.ts';
import { ArgmaxKernel } from '../../src/kernels/argmax.ts';
import type { ReduceVariant } from '../../src/kernels/reduce.ts';
import { expectTypedError, folded, VARIANTS } from './ops_common.ts';

/** Output poison for u32 results: a value no row can legitimately produce here. */
const POISON_U32 = 0xdeadbeef;

function argmaxCase(R: number, V: number, variant: ReduceVariant, needs?: KernelCase['needs'], vector = false): KernelCase {
  return {
    name: `argmax:${vector ? `[V=${V}]` : `R=${R},V=${V}`},${variant}`,
    quick: R * V <= 5000 && variant !== 'subgroups',
    needs,
    async run(gpu, seed) {
      const rng = new Rng(seed);
      // Coarse values (multiples of 1/4 in a narrow range) so rows contain many exact ties.
      const x = new Float32Array(R * V);
      for (let i = 0; i < x.length; i++) x[i] = Math.round(rng.normal() * 4) / 4;
      for (let r = 0; r < R; r++) {
        const row = x.subarray(r * V, (r + 1) * V);
        switch ((r + 2) % 5) {
          case 1: // a unique peak at a random column
            row[rng.int(0, V)] = 100;
            break;
          case 2: {
            // The maximum tied at several places, also at columns 256 apart (one thread's stride
            // in the kernel, so its in-thread tie-break is exercised too): the first must win.
            for (let k = 0; k < 3; k++) row[rng.int(0, V)] = 50;
            const c0 = rng.int(0, Math.max(1, V >> 1));
            for (let c = c0; c < V; c += 256) row[c] = 50;
            break;
          }
          case 3: // NaN sprinkled in, and the last column as the max
            for (let k = 0; k < 3; k++) row[rng.int(0, V)] = Number.NaN;
            row[V - 1] = 60;
            break;
          case 4: // all -inf but a few: -inf ordered normally
            row.fill(-Infinity);
            if (V > 2) row[rng.int(1, V)] = -5;
            break;
        }
      }
      if (R > 6) x.subarray(6 * V, 7 * V).fill(Number.NaN); // an all-NaN row
      const tx = gpu.upload(x, vector ? [V] : [R, V], 'f32', 'x');
      const out = gpu.empty([R], 'u32', 'out');
      gpu.fillWords(out, POISON_U32);
      const k = await ArgmaxKernel.create(gpu, { variant });
      const batch = gpu.batch();
      k.encode(batch, tx, out);
      await batch.submit();
      expectEqualInts(this.name, await gpu.read(out), argmaxRef(x, R, V));
      gpu.release(tx, out);
    },
  };
}

export const argmaxCases: KernelCase[] = [
  argmaxCase(1, 1, 'auto', undefined, true),
  argmaxCase(1, 1000, 'auto', undefined, true),
  argmaxCase(1, 128257, 'auto', undefined, true),
  argmaxCase(7, 33, 'auto'),
  folded(argmaxCase(10, 300, 'auto'), 4),
  folded(argmaxCase(10, 300, 'workgroup'), 4),
  ...VARIANTS.filter((v) => v.variant !== 'auto').flatMap((v) => [argmaxCase(11, 3001, v.variant, v.needs), argmaxCase(1, 65539, v.variant, v.needs, true)]),
  {
    name: 'argmax:typed errors',
    quick: true,
    async run(gpu) {
      const k = await ArgmaxKernel.create(gpu);
      const x = gpu.empty([2, 5], 'f32', 'x');
      const o1 = gpu.empty([1], 'u32', 'out');
      const of = gpu.empty([2], 'f32', 'out');
      const b = gpu.batch();
      await expectTypedError('rows', 'SHAPE', 'must be [2]', () => k.encode(b, x, o1));
      await expectTypedError('dtype', 'DTYPE', 'u32', () => k.encode(b, x, of));
      await b.submit();
      gpu.release(x, o1, of);
    },
  },
];
