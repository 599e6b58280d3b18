import type { Gpu } from '../../src/gpu/gpu.ts';
import type { KernelCase } from '../harness/cases.ts';
import { poisoned } from '../harness/cases.ts';
import { Rng } from '../harness/rng.ts';
import { compareArrays, MismatchError, type Tolerance } from '../harness/compare.ts';
import { aShapeKeeps, indexKeeps, keptMassRef, rowErrorRef, rowStatsRef, type RecallShape } from '../reference/pattern_recall.ts';
import { PatternRecallKernel, uploadRows, RECALL_TOLERANCE, type KeptSet } from '../../src/search/pattern_recall.ts';
import { readIndex, releaseIndex, uploadHostIndex, type HostSparseIndex } from '../../src/attention/sparse.ts';
import { VerticalSlashEstimator } from '../../src/attention/estimate.ts';
import type { Tensor } from '../../src/tensor.ts';
import { expectTypedError } from './ops_common.ts';
import { randomHostIndex } from './attention.ts';

/**
 * Kept shares are in [0, 1]: f32 scores over up to a few thousand keys give a few 1e-6 absolute
 * (RECALL_TOLERANCE, recorded with the kernel). The row max is a score (f32 dot of D terms), the sum
 * a count-like total up to S: relative 1e-5.
 */
const TOL_KEPT: Tolerance = { relL2: 1e-5, ...RECALL_TOLERANCE };
const TOL_STATS: Tolerance = { relL2: 1e-5, atol: 1e-4, rtol: 1e-5 };
const TOL_ERR: Tolerance = { relL2: 1e-5, atol: 1e-6, rtol: 1e-5 };

interface Inputs {
  s: RecallShape;
  q: Float32Array;
  k: Float32Array;
  tq: Tensor;
  tk: Tensor;
}

/** q, k ~ N(0, sharp^2): larger `sharp` gives peaked rows (a few keys hold most of the mass). */
function inputs(gpu: Gpu, rng: Rng, s: RecallShape, sharp: number): Inputs {
  const q = rng.normals(s.H * s.S * s.D, sharp);
  const k = rng.normals(s.Hkv * s.S * s.D, 1);
  return { s, q, k, tq: gpu.upload(q, [s.H, s.S, s.D], 'f32', 'q'), tk: gpu.upload(k, [s.Hkv, s.S, s.D], 'f32', 'k') };
}

/** Rows that cover the edges: the first row, block edges 63 / 64, a ragged tail, and random ones. */
function sampleRows(rng: Rng, S: number, n: number): number[] {
  const set = new Set([0, Math.min(63, S - 1), Math.min(64, S - 1), S - 1, S - 2 >= 0 ? S - 2 : 0]);
  while (set.size < Math.min(n, S)) set.add(rng.int(0, S));
  return [...set];
}

interface RecallCaseSpec {
  H: number;
  Hkv: number;
  S: number;
  D: number;
  rows: number;
  /** Query heads of the call (index slot y serves heads[y]); default all. */
  heads?: number[];
  /** 'index' (the attention cases' random host index: unaligned ranges, columns outside them, some past S), 'estimated' (Vertical-Slash estimator's index) or A-shape sizes. */
  kept: 'index' | 'estimated' | { nInit: number; nLocal: number };
  sharp?: number;
  quick?: boolean;
}

function keptName(k: RecallCaseSpec['kept']): string {
  return typeof k === 'string' ? k : `a_shape(${k.nInit},${k.nLocal})`;
}

/**
 * Stats, kept shares and the output error of the listed heads against float64; the other heads'
 * rows stay NaN (the outputs are poisoned: WebGPU clamps stray writes silently).
 */
function recallCase(c: RecallCaseSpec): KernelCase {
  const heads = c.heads ?? Array.from({ length: c.H }, (_, h) => h);
  return {
    name: `pattern_recall:${keptName(c.kept)},H=${c.H},Hkv=${c.Hkv},S=${c.S},D=${c.D},R=${c.rows}${c.heads ? `,heads=${heads.join('|')}` : ''}${c.sharp ? `,sharp=${c.sharp}` : ''}`,
    quick: c.quick ?? true,
    async run(gpu, seed) {
      const rng = new Rng(seed);
      const s: RecallShape = { H: c.H, Hkv: c.Hkv, S: c.S, D: c.D };
      const x = inputs(gpu, rng, s, c.sharp ?? 1);
      const positions = sampleRows(rng, c.S, c.rows);
      const R = positions.length;
      const rows = uploadRows(gpu, positions, c.S);
      const recall = await PatternRecallKernel.create(gpu, { headDim: c.D });
      const stats = poisoned(gpu, [c.H, R, 2], 'f32', 'stats');
      const kept = poisoned(gpu, [c.H, R], 'f32', 'kept');
      const err = poisoned(gpu, [c.H, R, 2], 'f32', 'err');
      // Two [H, S, D] "outputs" for the error entry.
      const outA = rng.normals(c.H * c.S * c.D);
      const outB = rng.normals(c.H * c.S * c.D);
      const ta = gpu.upload(outA, [c.H, c.S, c.D], 'f32', 'a');
      const tb = gpu.upload(outB, [c.H, c.S, c.D], 'f32', 'b');

      // The kept sets, per listed slot: host lists (index) or the A-shape rule.
      let set: KeptSet;
      let host: HostSparseIndex | undefined;
      let estimator: VerticalSlashEstimator | undefined;
      if (c.kept === 'index') {
        host = randomHostIndex(rng, c.S, heads.length);
        set = { index: uploadHostIndex(gpu, c.S, host) };
      } else if (c.kept === 'estimated') {
        estimator = await VerticalSlashEstimator.create(gpu, { headDim: c.D });
        const b0 = gpu.batch();
        const index = estimator.encode(b0, x.tq, x.tk, heads, heads.map((_, i) => ({ verticalSize: 30 + 7 * i, slashSize: 50 + 5 * i })));
        await b0.submit();
        host = await readIndex(gpu, index);
        set = { index };
      } else {
        set = c.kept;
      }
      const batch = gpu.batch();
      recall.encodeStats(batch, x.tq, x.tk, rows, heads, stats);
      recall.encodeKept(batch, x.tq, x.tk, rows, heads, stats, kept, set);
      recall.encodeError(batch, ta, tb, rows, heads, err);
      await batch.submit();
      const [gStats, gKept, gErr] = (await Promise.all([gpu.read(stats), gpu.read(kept), gpu.read(err)])) as Float32Array[];

      const wantStats = new Float64Array(c.H * R * 2).fill(NaN);
      const wantKept = new Float64Array(c.H * R).fill(NaN);
      const wantErr = new Float64Array(c.H * R * 2).fill(NaN);
      heads.forEach((h, y) => {
        positions.forEach((i, r) => {
          const st = rowStatsRef(x.q, x.k, s, h, i);
          wantStats[2 * (h * R + r)] = st.max;
          wantStats[2 * (h * R + r) + 1] = st.sum;
          const keeps = host ? indexKeeps(host.ranges[y]![Math.floor(i / 64)]!, host.columns[y]![Math.floor(i / 64)]!) : aShapeKeeps((set as { nInit: number }).nInit, (set as { nLocal: number }).nLocal, i);
          wantKept[h * R + r] = keptMassRef(x.q, x.k, s, h, i, keeps);
          const [e, n] = rowErrorRef(outA, outB, s, h, i);
          wantErr[2 * (h * R + r)] = e;
          wantErr[2 * (h * R + r) + 1] = n;
        });
      });
      // The row max and the normaliser both depend on the summation order only at f32 rounding.
      compareArrays(`${this.name} stats`, gStats!, wantStats, TOL_STATS);
      compareArrays(`${this.name} kept`, gKept!, wantKept, TOL_KEPT);
      compareArrays(`${this.name} err`, gErr!, wantErr, TOL_ERR);
      if ('index' in set) releaseIndex(gpu, set.index);
      recall.destroy();
      gpu.release(x.tq, x.tk, rows.tensor, stats, kept, err, ta, tb);
    },
  };
}

export const patternRecallCases: KernelCase[] = [
  recallCase({ H: 1, Hkv: 1, S: 1, D: 64, rows: 1, kept: { nInit: 1, nLocal: 1 } }),
  recallCase({ H: 4, Hkv: 2, S: 200, D: 64, rows: 24, kept: 'index' }),
  recallCase({ H: 4, Hkv: 2, S: 130, D: 96, rows: 16, kept: 'index', heads: [3, 1] }),
  recallCase({ H: 2, Hkv: 1, S: 257, D: 128, rows: 20, kept: 'index', sharp: 3 }),
  recallCase({ H: 4, Hkv: 2, S: 300, D: 64, rows: 20, kept: { nInit: 4, nLocal: 32 } }),
  recallCase({ H: 3, Hkv: 3, S: 64, D: 96, rows: 10, kept: { nInit: 2, nLocal: 9 } }),
  recallCase({ H: 2, Hkv: 1, S: 190, D: 64, rows: 20, kept: { nInit: 0, nLocal: 70 } }),
  recallCase({ H: 2, Hkv: 1, S: 190, D: 64, rows: 20, kept: { nInit: 150, nLocal: 0 } }),
  recallCase({ H: 2, Hkv: 2, S: 100, D: 64, rows: 20, kept: { nInit: 50, nLocal: 500 } }),
  recallCase({ H: 4, Hkv: 1, S: 333, D: 64, rows: 24, kept: 'estimated', heads: [2, 0, 3] }),
  recallCase({ H: 1, Hkv: 1, S: 3000, D: 64, rows: 40, kept: 'index', sharp: 4, quick: false }),
  {
    name: 'pattern_recall:typed errors',
    quick: true,
    async run(gpu) {
      const recall = await PatternRecallKernel.create(gpu, { headDim: 64 });
      const q = gpu.empty([2, 100, 64], 'f32', 'q');
      const k = gpu.empty([1, 100, 64], 'f32', 'k');
      const kShort = gpu.empty([1, 90, 64], 'f32', 'k');
      const stats = gpu.empty([2, 3, 2], 'f32', 'stats');
      const kept = gpu.empty([2, 3], 'f32', 'kept');
      const rows = uploadRows(gpu, [5, 50, 99], 100);
      const b = gpu.batch();
      await expectTypedError('row past S', 'BAD_INPUT', 'outside 0..99', () => uploadRows(gpu, [5, 100], 100));
      await expectTypedError('k rows', 'SHAPE', 'exactly the 100 rows', () => recall.encodeStats(b, q, kShort, rows, [0, 1], stats));
      await expectTypedError('stats shape', 'SHAPE', 'stats', () => recall.encodeStats(b, q, k, rows, [0, 1], kept));
      await expectTypedError('head out of range', 'SHAPE', 'head 2', () => recall.encodeStats(b, q, k, rows, [2], stats));
      await expectTypedError('rows of another S', 'SHAPE', 'sampled for S=200', () => recall.encodeStats(b, q, k, uploadRows(gpu, [1], 200), [0], stats));
      await expectTypedError('A-shape keeping nothing', 'BAD_INPUT', 'at least one key', () => recall.encodeKept(b, q, k, rows, [0], stats, kept, { nInit: 0, nLocal: 0 }));
      const index = uploadHostIndex(gpu, 100, { ranges: [[[0], [0]]], columns: [[[], []]] });
      await expectTypedError('index slots', 'SHAPE', 'index covers 1 heads', () => recall.encodeKept(b, q, k, rows, [0, 1], stats, kept, { index }));
      await expectTypedError('head dim', 'UNSUPPORTED', 'head dim 80', () => PatternRecallKernel.create(gpu, { headDim: 80 }));
      await b.submit();
      releaseIndex(gpu, index);
      recall.destroy();
      gpu.release(q, k, kShort, stats, kept, rows.tensor);
      if (gpu.lost) throw new MismatchError('device lost');
    },
  },
];
