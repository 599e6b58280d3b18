import type { KernelCase } from '../harness/cases.ts';
import { poisoned } from '../harness/cases.ts';
import { Rng } from '../harness/rng.ts';
import { compareArrays } from '../harness/compare.ts';
import { headsToTokensRef } from '../reference/heads_to_tokens.ts';
import { HeadsToTokensKernel } from '../../src/kernels/heads_to_tokens.ts';
import { roundTo } from '../../src/util/half.ts';
import { expectTypedError, folded } from './ops_common.ts';

const EXACT = { relL2: 0, atol: 0, rtol: 0 };

interface Shape {
  H: number;
  Scap: number;
  D: number;
  dtype: 'f32' | 'f16' | 'bf16';
  Tout: number;
  Htot: number;
  srcOffset: number;
  tokens?: number;
  headStart?: number;
}

function h2tCase(s: Shape): KernelCase {
  const tokens = s.tokens ?? s.Tout;
  const headStart = s.headStart ?? 0;
  return {
    name: `heads_to_tokens:x=[${s.H},${s.Scap},${s.D}] ${s.dtype},out=[${s.Tout},${s.Htot}*${s.D}],src=${s.srcOffset},tokens=${tokens},headStart=${headStart}`,
    quick: s.H * s.Scap * s.D <= 4096,
    async run(gpu, seed) {
      const rng = new Rng(seed);
      const x = rng.normals(s.H * s.Scap * s.D);
      const tx = gpu.upload(x, [s.H, s.Scap, s.D], s.dtype, 'x');
      const width = s.Htot * s.D;
      const out = poisoned(gpu, [s.Tout, width]);
      const k = await HeadsToTokensKernel.create(gpu);
      const batch = gpu.batch();
      k.encode(batch, tx, out, { srcOffset: s.srcOffset, tokens: s.tokens, headStart: s.headStart });
      await batch.submit();
      const seen = s.dtype === 'f32' ? x : roundTo(s.dtype, x);
      const ref = headsToTokensRef(seen, { ...s, width, tokens, headStart });
      compareArrays(this.name, await gpu.read(out), ref, EXACT);
      gpu.release(tx, out);
    },
  };
}

export const headsToTokensCases: KernelCase[] = [
  h2tCase({ H: 1, Scap: 1, D: 4, dtype: 'f32', Tout: 1, Htot: 1, srcOffset: 0 }),
  h2tCase({ H: 3, Scap: 20, D: 8, dtype: 'f32', Tout: 7, Htot: 3, srcOffset: 5 }),
  h2tCase({ H: 2, Scap: 9, D: 6, dtype: 'f16', Tout: 5, Htot: 5, srcOffset: 4, tokens: 4, headStart: 2 }),
  h2tCase({ H: 4, Scap: 33, D: 64, dtype: 'f16', Tout: 33, Htot: 4, srcOffset: 0 }),
  h2tCase({ H: 2, Scap: 300, D: 128, dtype: 'bf16', Tout: 130, Htot: 6, srcOffset: 170, headStart: 3 }),
  h2tCase({ H: 3, Scap: 11, D: 5, dtype: 'bf16', Tout: 1, Htot: 3, srcOffset: 10 }),
  folded(h2tCase({ H: 2, Scap: 300, D: 128, dtype: 'f16', Tout: 130, Htot: 3, srcOffset: 100, headStart: 1 }), 12),
  {
    name: 'heads_to_tokens:typed errors',
    quick: true,
    async run(gpu) {
      const k = await HeadsToTokensKernel.create(gpu);
      const x = gpu.empty([2, 8, 4], 'f16', 'x');
      const out = gpu.empty([4, 8], 'f32', 'out');
      const b = gpu.batch();
      await expectTypedError('rows', 'SHAPE', 'outside x', () => k.encode(b, x, out, { srcOffset: 5 }));
      await expectTypedError('heads', 'SHAPE', 'do not fit', () => k.encode(b, x, out, { srcOffset: 0, headStart: 1 }));
      await expectTypedError('tokens', 'SHAPE', 'do not fit', () => k.encode(b, x, out, { srcOffset: 0, tokens: 5 }));
      await b.submit();
      gpu.release(x, out);
    },
  },
];
