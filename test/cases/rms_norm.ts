import type { KernelCase } from '../harness/cases.ts';
import { poisoned } from '../harness/cases.ts';
import { Rng } from '../harness/rng.ts';
import { compareArrays, TOL_F32 } from '../harness/compare.ts';
import { rmsNormRef, addRmsNormRef } from '../reference/rms_norm.ts';
import { RmsNormKernel, AddRmsNormKernel, type NormWeightDType } from '../../src/kernels/rms_norm.ts';
import { roundTo } from '../../src/util/half.ts';
import { expectTypedError, folded, VARIANTS } from './ops_common.ts';
import type { ReduceVariant } from '../../src/kernels/reduce.ts';

/** Rows at very different scales (1e-3 .. 1e2), so eps and the reduction both matter. */
function rowsAtScales(rng: Rng, T: number, C: number): Float32Array {
  const x = new Float32Array(T * C);
  for (let t = 0; t < T; t++) {
    const scale = 10 ** rng.uniform(-3, 2);
    for (let c = 0; c < C; c++) x[t * C + c] = rng.normal() * scale;
  }
  return x;
}

function weights(rng: Rng, C: number, dtype: NormWeightDType): { host: Float32Array; seen: Float32Array } {
  const host = new Float32Array(C);
  for (let c = 0; c < C; c++) host[c] = 1 + 0.5 * rng.normal();
  return { host, seen: dtype === 'f32' ? host : roundTo(dtype, host) };
}

const SHAPES: [number, number][] = [
  [1, 1],
  [1, 7],
  [3, 256],
  [17, 300],
  [2, 4097],
  [1, 8195],
];

function normCase(T: number, C: number, wdt: NormWeightDType, variant: ReduceVariant, needs?: KernelCase['needs']): KernelCase {
  return {
    name: `rms_norm:T=${T},C=${C},w=${wdt},${variant}`,
    quick: T * C <= 1024 && variant !== 'subgroups',
    needs,
    async run(gpu, seed) {
      const rng = new Rng(seed);
      const x = rowsAtScales(rng, T, C);
      const w = weights(rng, C, wdt);
      const eps = 1e-5;
      const tx = gpu.upload(x, [T, C], 'f32', 'x');
      const tw = gpu.upload(w.host, [C], wdt, 'weight');
      const out = poisoned(gpu, [T, C]);
      const k = await RmsNormKernel.create(gpu, { weightDType: wdt, variant });
      const batch = gpu.batch();
      k.encode(batch, tx, tw, out, eps);
      await batch.submit();
      compareArrays(this.name, await gpu.read(out), rmsNormRef(x, w.seen, T, C, eps), TOL_F32);
      gpu.release(tx, tw, out);
    },
  };
}

function addNormCase(T: number, C: number, wdt: NormWeightDType, variant: ReduceVariant, needs?: KernelCase['needs']): KernelCase {
  return {
    name: `add_rms_norm:T=${T},C=${C},w=${wdt},${variant}`,
    quick: T * C <= 1024 && variant !== 'subgroups',
    needs,
    async run(gpu, seed) {
      const rng = new Rng(seed);
      const res = rowsAtScales(rng, T, C);
      const x = rng.normals(T * C);
      const w = weights(rng, C, wdt);
      const eps = 1e-6;
      const tr = gpu.upload(res, [T, C], 'f32', 'residual');
      const tx = gpu.upload(x, [T, C], 'f32', 'x');
      const tw = gpu.upload(w.host, [C], wdt, 'weight');
      const out = poisoned(gpu, [T, C]);
      const k = await AddRmsNormKernel.create(gpu, { weightDType: wdt, variant });
      const batch = gpu.batch();
      k.encode(batch, tr, tx, tw, out, eps);
      await batch.submit();
      const ref = addRmsNormRef(res, x, w.seen, T, C, eps);
      compareArrays(`${this.name} residual`, await gpu.read(tr), ref.residual, TOL_F32);
      compareArrays(`${this.name} out`, await gpu.read(out), ref.out, TOL_F32);
      gpu.release(tr, tx, tw, out);
    },
  };
}

export const rmsNormCases: KernelCase[] = [
  ...SHAPES.map(([T, C], i) => normCase(T, C, (['f32', 'f16', 'bf16'] as const)[i % 3], 'auto')),
  ...VARIANTS.filter((v) => v.variant !== 'auto').flatMap((v) => [normCase(5, 1000, 'f32', v.variant, v.needs), normCase(2, 4097, 'bf16', v.variant, v.needs)]),
  normCase(4, 2048, 'f16', 'workgroup'),
  ...VARIANTS.map((v) => addNormCase(7, 515, (['f32', 'bf16', 'f16'] as const)[VARIANTS.indexOf(v)], v.variant, v.needs)),
  addNormCase(1, 3, 'f32', 'auto'),
  folded(normCase(10, 33, 'bf16', 'auto'), 4),
  folded(normCase(10, 33, 'f16', 'workgroup'), 4),
  folded(addNormCase(11, 20, 'f32', 'auto'), 4),
  {
    name: 'rms_norm:typed errors',
    quick: true,
    async run(gpu) {
      const k = await RmsNormKernel.create(gpu, { weightDType: 'f32' });
      const x = gpu.empty([2, 8], 'f32', 'x');
      const w = gpu.empty([8], 'f32', 'w');
      const wBad = gpu.empty([7], 'f32', 'w');
      const wHalf = gpu.empty([8], 'f16', 'w');
      const out = gpu.empty([2, 8], 'f32', 'out');
      const outBad = gpu.empty([3, 8], 'f32', 'out');
      const b = gpu.batch();
      await expectTypedError('weight length', 'SHAPE', 'weight', () => k.encode(b, x, wBad, out, 1e-5));
      await expectTypedError('weight dtype', 'DTYPE', 'must be f32', () => k.encode(b, x, wHalf, out, 1e-5));
      await expectTypedError('out shape', 'SHAPE', 'out', () => k.encode(b, x, w, outBad, 1e-5));
      await expectTypedError('alias', 'SHAPE', 'share', () => k.encode(b, x, w, x, 1e-5));
      await expectTypedError('eps', 'SHAPE', 'eps', () => k.encode(b, x, w, out, Number.NaN));
      await expectTypedError('weightDType', 'UNSUPPORTED', 'weightDType', () => RmsNormKernel.create(gpu, { weightDType: 'i32' as NormWeightDType }));
      const ka = await AddRmsNormKernel.create(gpu, { weightDType: 'f32' });
      await expectTypedError('residual alias', 'SHAPE', 'residual', () => ka.encode(b, out, x, w, out, 1e-5));
      await b.submit();
      gpu.release(x, w, wBad, wHalf, out, outBad);
    },
  },
];
