import type { KernelCase } from '../harness/cases.ts';
import { Rng } from '../harness/rng.ts';
import { compareArrays, TOL_F32 } from '../harness/compare.ts';
import { embeddingRef } from '../reference/embedding.ts';
import { EmbeddingKernel, validateIds, type EmbeddingTableDType } from '../../src/kernels/embedding.ts';
import { roundTo } from '../../src/util/half.ts';
import { expectTypedError, fillSentinel, folded } from './ops_common.ts';

function embedCase(T: number, V: number, C: number, dtype: EmbeddingTableDType, invalid: number[] = []): KernelCase {
  return {
    name: `embedding:T=${T},V=${V},C=${C},table=${dtype}${invalid.length ? `,invalid ids at ${invalid.join('/')}` : ''}`,
    quick: T * C <= 2000,
    async run(gpu, seed) {
      const rng = new Rng(seed);
      const table = rng.normals(V * C);
      const ids = new Uint32Array(T);
      for (let t = 0; t < T; t++) ids[t] = rng.int(0, V);
      ids[T - 1] = V - 1; // the last row of the table
      const bad = [V, V + 1, 0xffffffff];
      invalid.forEach((t, i) => (ids[t] = bad[i % bad.length]!));
      const tt = gpu.upload(table, [V, C], dtype, 'table');
      const ti = gpu.upload(ids, [T], 'u32', 'ids');
      // A finite poison: NaN is what invalid ids must produce, so it cannot mark "unwritten" here.
      const out = fillSentinel(gpu, [T, C]);
      const k = await EmbeddingKernel.create(gpu, { tableDType: dtype });
      const batch = gpu.batch();
      k.encode(batch, ti, tt, out);
      await batch.submit();
      const seen = dtype === 'f32' ? table : roundTo(dtype, table);
      // Exact gather: zero tolerance.
      compareArrays(this.name, await gpu.read(out), embeddingRef(ids, seen, V, C), { ...TOL_F32, relL2: 0, atol: 0, rtol: 0 });
      gpu.release(tt, ti, out);
    },
  };
}

export const embeddingCases: KernelCase[] = [
  embedCase(1, 1, 1, 'f32'),
  embedCase(5, 11, 7, 'bf16'),
  embedCase(9, 50, 33, 'f16', [2, 4, 8]),
  embedCase(64, 300, 129, 'bf16', [0]),
  embedCase(130, 1000, 64, 'f32', [129]),
  embedCase(17, 33, 255, 'f16'),
  folded(embedCase(130, 1000, 64, 'bf16', [77]), 6),
  {
    name: 'embedding:typed errors',
    quick: true,
    async run(gpu) {
      const k = await EmbeddingKernel.create(gpu, { weightDType: 'bf16' });
      const ids = gpu.empty([3], 'u32', 'ids');
      const idsI = gpu.empty([3], 'i32', 'ids');
      const table = gpu.empty([10, 4], 'bf16', 'table');
      const tableF = gpu.empty([10, 4], 'f32', 'table');
      const out = gpu.empty([3, 4], 'f32', 'out');
      const outBad = gpu.empty([3, 5], 'f32', 'out');
      const b = gpu.batch();
      await expectTypedError('ids dtype', 'DTYPE', 'u32', () => k.encode(b, idsI, table, out));
      await expectTypedError('table dtype', 'DTYPE', 'bf16', () => k.encode(b, ids, tableF, out));
      await expectTypedError('out shape', 'SHAPE', 'out', () => k.encode(b, ids, table, outBad));
      await expectTypedError('host ids', 'BAD_INPUT', 'outside the vocabulary', () => validateIds([1, 2, 10], 10));
      validateIds([0, 9], 10);
      await b.submit();
      gpu.release(ids, idsI, table, tableF, out, outBad);
    },
  },
];
