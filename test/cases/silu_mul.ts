import type { KernelCase } from '../harness/cases.ts';
import { poisoned } from '../harness/cases.ts';
import { Rng } from '../harness/rng.ts';
import { compareArrays, TOL_F32 } from '../harness/compare.ts';
import { siluMulRef } from '../reference/silu_mul.ts';
import { SiluMulKernel } from '../../src/kernels/silu_mul.ts';
import { expectTypedError, folded } from './ops_common.ts';

const SHAPES: [number, number][] = [
  [1, 1],
  [1, 300],
  [3, 257],
  [37, 1000],
  [300, 1025],
];

function siluMulCase(T: number, F: number): KernelCase {
  return {
    name: `silu_mul:T=${T},F=${F}`,
    quick: T * F <= 1000,
    async run(gpu, seed) {
      const rng = new Rng(seed);
      // gate spans the saturating ends (|g| up to ~100: exp overflow) as well as the middle.
      const gate = rng.normals(T * F, 4);
      for (let i = 0; i < gate.length; i += 97) gate[i] = rng.uniform(-100, 100);
      const up = rng.normals(T * F);
      const tg = gpu.upload(gate, [T, F], 'f32', 'gate');
      const tu = gpu.upload(up, [T, F], 'f32', 'up');
      const out = poisoned(gpu, [T, F]);
      const k = await SiluMulKernel.create(gpu);
      const batch = gpu.batch();
      k.encode(batch, tg, tu, out);
      await batch.submit();
      compareArrays(this.name, await gpu.read(out), siluMulRef(gate, up), TOL_F32);
      gpu.release(tg, tu, out);
    },
  };
}

export const siluMulCases: KernelCase[] = [
  ...SHAPES.map(([T, F]) => siluMulCase(T, F)),
  folded(siluMulCase(37, 1000), 13),
  {
    name: 'silu_mul:typed errors',
    quick: true,
    async run(gpu) {
      const k = await SiluMulKernel.create(gpu);
      const a = gpu.empty([2, 4], 'f32', 'gate');
      const b = gpu.empty([2, 5], 'f32', 'up');
      const h = gpu.empty([2, 4], 'f16', 'up');
      const batch = gpu.batch();
      await expectTypedError('shape', 'SHAPE', 'same shape', () => k.encode(batch, a, b, a.reshape([2, 4])));
      await expectTypedError('dtype', 'DTYPE', 'must be f32', () => k.encode(batch, a, h, a));
      await batch.submit();
      gpu.release(a, b, h);
    },
  },
];
