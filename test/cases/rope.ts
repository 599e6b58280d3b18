import type { KernelCase } from '../harness/cases.ts';
import { poisoned } from '../harness/cases.ts';
import { Rng } from '../harness/rng.ts';
import { compareArrays, MismatchError, TOL_F16, type Tolerance } from '../harness/compare.ts';
import { ropeRef } from '../reference/rope.ts';
import { RopeKernel, RopeTable, ropeInvFreq, type RopeConfig } from '../../src/kernels/rope.ts';
import { ropeInvFrequencies } from '../../src/model/config.ts';
import { expectTypedError, folded } from './ops_common.ts';

/**
 * f32 output tolerance, tighter than TOL_F32 so that it holds the accuracy claim at long positions:
 * the split table gives cos/sin within a few f32 ulps at any position (measured: max abs error
 * 4e-7 for |x| <= 3.6 at positions 131008..131071), while an f32 angle p * inv_freq would be off
 * by up to 3.9e-3 rad there, i.e. errors of ~1e-2 on outputs of this size.
 */
const TOL_ROPE: Tolerance = { relL2: 1e-6, atol: 2e-6, rtol: 2e-6 };

/** Llama 3.1 8B's rope: theta 500000 with llama3 scaling (factor 8, low 1, high 4, original 8192). */
const LLAMA31: RopeConfig = {
  headDim: 128,
  ropeTheta: 500000,
  ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
};

interface RopeShape {
  T: number;
  Htot: number;
  D: number;
  headStart: number;
  heads: number;
  Hout: number;
  Scap: number;
  posOffset: number;
  dstOffset: number;
  rotate: boolean;
  out: 'f32' | 'f16';
  theta?: number;
  config?: RopeConfig;
  maxPositions?: number;
  /** Partial rotary: rotated leading elements per head (default D). */
  rotaryDim?: number;
  /** Sequence length a longrope config picks its factors by. */
  seqLen?: number;
  quick?: boolean;
}

function ropeCase(s: RopeShape): KernelCase {
  const cfg: RopeConfig = { ...(s.config ?? { headDim: s.D, ropeTheta: s.theta ?? 10000 }), ...(s.rotaryDim ? { rotaryDim: s.rotaryDim } : {}) };
  const what = s.rotate ? 'rope' : 'rope_copy';
  return {
    name:
      `${what}:T=${s.T},Htot=${s.Htot},D=${s.D},heads=${s.headStart}+${s.heads}->[${s.Hout},${s.Scap}]@${s.dstOffset},` +
      `pos=${s.posOffset},out=${s.out}${s.config?.ropeScaling ? `,${s.config.ropeScaling.type}` : ''}${s.rotaryDim ? `,rot=${s.rotaryDim}` : ''}`,
    quick: s.quick,
    async run(gpu, seed) {
      const rng = new Rng(seed);
      const x = rng.normals(s.T * s.Htot * s.D);
      const tx = gpu.upload(x, [s.T, s.Htot * s.D], 'f32', 'x');
      const out = poisoned(gpu, [s.Hout, s.Scap, s.D], s.out);
      const table = s.rotate ? RopeTable.create(gpu, cfg, s.maxPositions ?? s.posOffset + s.T, s.seqLen) : undefined;
      const k = await RopeKernel.create(gpu, { headDim: s.D, rotaryDim: s.rotaryDim, rotate: s.rotate, outDType: s.out });
      const batch = gpu.batch();
      k.encode(batch, tx, out, { headStart: s.headStart, heads: s.heads, posOffset: s.posOffset, dstOffset: s.dstOffset, table });
      await batch.submit();
      const scale = cfg.ropeScaling?.type === 'longrope' ? cfg.ropeScaling.attentionFactor : 1;
      const ref = ropeRef(x, { ...s, invFreq: table?.invFreq ?? ropeInvFreq(cfg), scale });
      compareArrays(this.name, await gpu.read(out), ref, s.out === 'f16' ? TOL_F16 : TOL_ROPE);
      gpu.release(tx, out);
      table?.release(gpu);
    },
  };
}

const base = { rotate: true, out: 'f32' as const };

/** A longrope config over 48 frequency pairs: short factors 1 + 0.01 i, long ones 1 + longStep i. */
function longrope48(headDim: number, longStep: number): RopeConfig {
  const factors = (step: number): number[] => Array.from({ length: 48 }, (_, i) => 1 + step * i);
  return {
    headDim,
    ropeTheta: 10000,
    ropeScaling: { type: 'longrope', shortFactor: factors(0.01), longFactor: factors(longStep), originalMaxPositionEmbeddings: 4096, attentionFactor: 1.19 },
  };
}

/** Phi-4-mini-like rope: partial rotary (96 of 128; the cases pass rotaryDim), longrope over the 48 rotated pairs. */
const PHI4 = longrope48(128, 0.4);

export const ropeCases: KernelCase[] = [
  // Partial rotary with longrope (long factors, attention factor) and a plain partial case.
  ropeCase({ ...base, T: 5, Htot: 3, D: 128, headStart: 1, heads: 2, Hout: 2, Scap: 9, posOffset: 5000, dstOffset: 3, config: PHI4, rotaryDim: 96, seqLen: 5005 }),
  ropeCase({ ...base, out: 'f16', T: 6, Htot: 2, D: 64, headStart: 0, heads: 2, Hout: 2, Scap: 6, posOffset: 17, dstOffset: 0, rotaryDim: 32, quick: true }),
  ropeCase({ ...base, T: 1, Htot: 1, D: 8, headStart: 0, heads: 1, Hout: 1, Scap: 1, posOffset: 0, dstOffset: 0, quick: true }),
  ropeCase({ ...base, T: 7, Htot: 6, D: 64, headStart: 2, heads: 3, Hout: 4, Scap: 20, posOffset: 13, dstOffset: 5, quick: true }),
  ropeCase({ ...base, T: 33, Htot: 3, D: 12, headStart: 0, heads: 3, Hout: 3, Scap: 40, posOffset: 1000, dstOffset: 7, theta: 1e6 }),
  // Long positions: the last positions of a 128K context with Llama 3.1's scaled frequencies.
  ropeCase({ ...base, T: 5, Htot: 2, D: 128, headStart: 1, heads: 1, Hout: 1, Scap: 5, posOffset: 131067, dstOffset: 0, config: LLAMA31, maxPositions: 131072 }),
  // Around 1M positions, plain theta (the highest frequency turns ~1e6 radians).
  ropeCase({ ...base, T: 9, Htot: 2, D: 64, headStart: 0, heads: 2, Hout: 2, Scap: 12, posOffset: 1048570, dstOffset: 2, maxPositions: 1 << 21 }),
  ropeCase({ ...base, out: 'f16', T: 9, Htot: 4, D: 32, headStart: 1, heads: 2, Hout: 2, Scap: 16, posOffset: 4095, dstOffset: 3, quick: true }),
  ropeCase({ ...base, out: 'f16', T: 3, Htot: 8, D: 128, headStart: 6, heads: 2, Hout: 3, Scap: 4, posOffset: 65535, dstOffset: 1, config: LLAMA31, maxPositions: 131072 }),
  ropeCase({ rotate: false, out: 'f32', T: 11, Htot: 5, D: 16, headStart: 3, heads: 2, Hout: 2, Scap: 13, posOffset: 0, dstOffset: 2, quick: true }),
  ropeCase({ rotate: false, out: 'f16', T: 6, Htot: 2, D: 64, headStart: 0, heads: 2, Hout: 3, Scap: 6, posOffset: 0, dstOffset: 0 }),
  folded(ropeCase({ ...base, out: 'f16', T: 40, Htot: 4, D: 64, headStart: 1, heads: 3, Hout: 3, Scap: 50, posOffset: 300, dstOffset: 9 }), 3),
  {
    name: 'rope:inv_freq (plain, llama3, longrope short and long) vs an independent float64 derivation',
    quick: true,
    async run() {
      const longrope = longrope48(96, 0.3);
      const cases: [RopeConfig, number][] = [[{ headDim: 64, ropeTheta: 10000 }, 0], [{ headDim: 128, ropeTheta: 1e6 }, 0], [LLAMA31, 0], [{ ...LLAMA31, headDim: 64 }, 0], [longrope, 4096], [longrope, 4097]];
      for (const [cfg, seqLen] of cases) {
        const got = ropeInvFreq(cfg, seqLen);
        const ref = ropeInvFrequencies(cfg, seqLen);
        // f32 step-by-step (as transformers computes) vs float64: a few f32 ulps apart at most.
        compareArrays(`inv_freq ${JSON.stringify(cfg)} seqLen ${seqLen}`, got, ref, { relL2: 1e-6, atol: 0, rtol: 5e-7 });
      }
      // 4097 > original_max: the long factors (the last frequency divided by 1 + 0.3 * 47).
      const longInv = ropeInvFreq(longrope, 4097)[47]!;
      const want = 10000 ** (-94 / 96) / (1 + 0.3 * 47);
      if (Math.abs(longInv - want) > want * 1e-6) throw new MismatchError(`longrope inv_freq[47] = ${longInv}, expected ${want}`);
      const inv = ropeInvFreq(LLAMA31);
      // Llama 3.1: i = 0 keeps 1 (wavelength 2π < 8192/4); the last is theta^(-126/128) / 8 (wavelength > 8192).
      if (inv[0] !== 1) throw new MismatchError(`llama3 inv_freq[0] = ${inv[0]}, expected 1`);
      const last = 500000 ** (-126 / 128) / 8;
      if (Math.abs(inv[63]! - last) > last * 1e-6) throw new MismatchError(`llama3 inv_freq[63] = ${inv[63]}, expected ${last}`);
    },
  },
  {
    name: 'rope:typed errors',
    quick: true,
    async run(gpu) {
      const k = await RopeKernel.create(gpu, { headDim: 8, rotate: true, outDType: 'f32' });
      const table = RopeTable.create(gpu, { headDim: 8, ropeTheta: 10000 }, 16);
      const x = gpu.empty([4, 16], 'f32', 'x');
      const out = gpu.empty([2, 6, 8], 'f32', 'out');
      const outHalf = gpu.empty([2, 6, 8], 'f16', 'out');
      const b = gpu.batch();
      const p = { headStart: 0, heads: 2, posOffset: 0, dstOffset: 0, table };
      await expectTypedError('heads', 'SHAPE', 'outside x', () => k.encode(b, x, out, { ...p, headStart: 1 }));
      await expectTypedError('capacity', 'SHAPE', 'capacity', () => k.encode(b, x, out, { ...p, dstOffset: 3 }));
      await expectTypedError('positions', 'BAD_INPUT', 'exceed', () => k.encode(b, x, out, { ...p, posOffset: 13 }));
      await expectTypedError('alias', 'SHAPE', 'share', () => k.encode(b, x, x.reshape([2, 4, 8]), { ...p, heads: 1 }));
      await expectTypedError('no table', 'BAD_INPUT', 'RopeTable', () => k.encode(b, x, out, { ...p, table: undefined }));
      await expectTypedError('out dtype', 'DTYPE', 'f32', () => k.encode(b, x, outHalf, p));
      await expectTypedError('headDim', 'UNSUPPORTED', 'multiple of 4', () => RopeKernel.create(gpu, { headDim: 6, rotate: true, outDType: 'f32' }));
      await b.submit();
      gpu.release(x, out, outHalf);
      table.release(gpu);
    },
  },
];
