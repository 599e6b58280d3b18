/**
 * MInference index estimation (src/attention/estimate.ts; shaders estimate_vertical_slash.wgsl,
 * estimate_block_sparse.wgsl, topk.wgsl, vs_index.wgsl): radix top-k against a host sort, the
 * Vertical-Slash and Block-Sparse indexes against the float64 reference (test/reference/sparse_index.ts)
 * at ragged S, head dims and GQA ratios, and recall of planted structure.
 *
 * Exact comparison needs inputs whose selections have no near-ties (an f32 and a float64 score
 * within rounding of each other at the top-k threshold could legitimately swap): inputs are redrawn
 * (next seed) until every threshold gap is clear.
 */
import type { KernelCase } from '../harness/cases.ts';
import { Rng } from '../harness/rng.ts';
import { MismatchError, expectEqualInts, expectThrows } from '../harness/compare.ts';
import type { Gpu } from '../../src/gpu/gpu.ts';
import { BadInputError, DTypeError, ShapeError, UnsupportedError } from '../../src/gpu/errors.ts';
import type { SparseIndex } from '../../src/attention/types.ts';
import {
  BlockSparseEstimator,
  RadixTopK,
  VerticalSlashEstimator,
  type VerticalSlashParams,
} from '../../src/attention/estimate.ts';
import { roundTo } from '../../src/util/half.ts';
import { bsIndexRef, topKRef, vsIndexRef, vsKeptRef, vsScoresRef } from '../reference/sparse_index.ts';

interface Lists {
  blocks: number[][][];
  columns: number[][][];
}

async function readIndex(gpu: Gpu, ix: SparseIndex): Promise<Lists> {
  const [bc, bo, cc, ci] = await Promise.all([gpu.read(ix.blockCount), gpu.read(ix.blockOffset), gpu.read(ix.columnCount), gpu.read(ix.columnIndex)]);
  const colCap = Math.max(ix.maxColumns, 1);
  const out: Lists = { blocks: [], columns: [] };
  for (let h = 0; h < ix.heads; h++) {
    const bl: number[][] = [];
    const cl: number[][] = [];
    for (let m = 0; m < ix.queryBlocks; m++) {
      const row = h * ix.queryBlocks + m;
      const nb = bc[row]!;
      const nc = cc[row]!;
      if (nb > ix.maxBlocks || nc > ix.maxColumns) throw new MismatchError(`head ${h} block ${m}: counts ${nb}, ${nc} exceed capacities ${ix.maxBlocks}, ${ix.maxColumns}`);
      bl.push(Array.from(bo.subarray(row * ix.maxBlocks, row * ix.maxBlocks + nb)));
      cl.push(Array.from(ci.subarray(row * colCap, row * colCap + nc)));
    }
    out.blocks.push(bl);
    out.columns.push(cl);
  }
  return out;
}

function releaseIndex(gpu: Gpu, ix: SparseIndex): void {
  gpu.release(ix.blockCount, ix.blockOffset, ix.columnCount, ix.columnIndex);
}

function expectLists(name: string, got: number[][][], ref: number[][][], what: string): void {
  for (let h = 0; h < ref.length; h++) {
    for (let m = 0; m < ref[h]!.length; m++) {
      const g = got[h]![m]!;
      const r = ref[h]![m]!;
      if (g.length !== r.length || g.some((x, i) => x !== r[i])) {
        throw new MismatchError(`${name}: ${what} of head ${h}, query block ${m}: got [${g.slice(0, 12).join(', ')}${g.length > 12 ? ', ...' : ''}] (${g.length}), ref [${r.slice(0, 12).join(', ')}${r.length > 12 ? ', ...' : ''}] (${r.length})`);
      }
    }
  }
}

/** Relative gap between the k-th and (k+1)-th largest of the non-forced scores (Infinity if none). */
function thresholdGap(scores: ArrayLike<number>, k: number, forced: number): number {
  const vals = Array.from(scores).map((v, i) => (i < forced ? Infinity : v)).sort((a, b) => b - a);
  if (k >= vals.length || !Number.isFinite(vals[k - 1]!)) return Infinity;
  const a = vals[k - 1]!;
  const b = vals[k]!;
  return (a - b) / Math.max(Math.abs(a), 1e-30);
}

// f32 scores carry a few 1e-6 relative error (WGSL's exp is within 3 + 2|x| ulp); a gap this wide
// cannot be crossed.
const GAP = 2e-5;

// ---------------------------------------------------------------- top-k

const topkCases: KernelCase[] = [
  { n: 300_000, ks: [1, 1000, 30_000, 300_000], ties: false },
  { n: 5000, ks: [7, 2500, 4999], ties: true },
].map(({ n, ks, ties }) => ({
  name: `estimate.topk:n=${n},P=${ks.length}${ties ? ',ties' : ''}`,
  quick: n < 10_000,
  async run(gpu, seed) {
    const rng = new Rng(seed);
    const P = ks.length;
    const vals = new Float32Array(P * n);
    for (let i = 0; i < vals.length; i++) {
      // ties: few distinct values (exercises tie-breaking by lower index); otherwise distinct
      // normals, plus some negatives and exact zeros of both signs.
      vals[i] = ties ? rng.int(-3, 4) : rng.normal() * 10;
    }
    if (!ties) {
      vals[5] = -0;
      vals[6] = 0;
    }
    const cap = Math.max(...ks);
    const tv = gpu.upload(vals, [P, n], 'f32', 'values');
    const tk = gpu.upload(Uint32Array.from(ks), [P], 'u32', 'k');
    const out = gpu.empty([P, cap], 'u32', 'out');
    const topk = await RadixTopK.create(gpu);
    const batch = gpu.batch();
    topk.encode(batch, tv, ks, tk, out);
    await batch.submit();
    const got = (await gpu.read(out)) as Uint32Array;
    for (let p = 0; p < P; p++) {
      const row = vals.subarray(p * n, (p + 1) * n);
      // -0 and +0 are distinct keys on the GPU (+0 above -0): mirror that in the host order.
      const key = (i: number): number => (Object.is(row[i], -0) ? -1e-45 : row[i]!);
      const ref = topKRef(Float64Array.from({ length: n }, (_, i) => key(i)), ks[p]!);
      expectEqualInts(`${this.name} row ${p} (k=${ks[p]})`, got.subarray(p * cap, p * cap + ks[p]!), ref);
    }
    gpu.release(tv, tk, out);
  },
}));

// ---------------------------------------------------------------- Vertical-Slash

interface VsShape {
  S: number;
  D: number;
  H: number;
  Hkv: number;
  heads: number[];
  params: VerticalSlashParams | VerticalSlashParams[];
  /** Estimator scratch budget: small values force one head per group. */
  scratchBytes?: number;
  /** q and k dtype (default f32); rounded on the host first so the reference sees the same values. */
  dtype?: 'f16' | 'bf16';
}

function vsParamsOf(s: VsShape, i: number): VerticalSlashParams {
  return Array.isArray(s.params) ? s.params[i]! : s.params;
}

/** Random q, k whose Vertical-Slash selections have clear threshold gaps, and the reference index. */
function vsInputs(s: VsShape, seed: number): { q: Float32Array; k: Float32Array; ref: Lists } {
  for (let attempt = 0; attempt < 60; attempt++) {
    const rng = new Rng(seed + attempt * 7919);
    const round = (t: Float32Array): Float32Array => (s.dtype ? roundTo(s.dtype, t) : t);
    const q = round(rng.normals(s.H * s.S * s.D));
    const k = round(rng.normals(s.Hkv * s.S * s.D));
    const ref: Lists = { blocks: [], columns: [] };
    let clear = true;
    for (let i = 0; i < s.heads.length && clear; i++) {
      const p = vsParamsOf(s, i);
      const { vertical, slash } = vsScoresRef(q, k, s.H, s.Hkv, s.S, s.D, s.heads[i]!);
      const kept = vsKeptRef(vertical, slash, s.S, p.verticalSize, p.slashSize);
      clear = thresholdGap(vertical, kept.columns.length, 30) > GAP && thresholdGap(slash, kept.slashes.length, 100) > GAP;
      const ix = vsIndexRef(kept, s.S);
      ref.blocks.push(ix.blocks);
      ref.columns.push(ix.columns);
    }
    if (clear) return { q, k, ref };
  }
  throw new Error(`no tie-free inputs found for ${JSON.stringify(s)}`);
}

const vsShapes: VsShape[] = [
  { S: 1, D: 64, H: 1, Hkv: 1, heads: [0], params: { verticalSize: 1000, slashSize: 6096 } },
  { S: 63, D: 96, H: 4, Hkv: 1, heads: [3, 0], params: { verticalSize: 10, slashSize: 20 } },
  { S: 64, D: 128, H: 7, Hkv: 1, heads: [6], params: { verticalSize: 40, slashSize: 60 } },
  { S: 65, D: 64, H: 2, Hkv: 2, heads: [1, 0], params: { verticalSize: 30, slashSize: 50 } },
  { S: 200, D: 96, H: 7, Hkv: 1, heads: [0, 5], params: { verticalSize: 40, slashSize: 120 } },
  { S: 200, D: 128, H: 4, Hkv: 1, heads: [2], params: { verticalSize: 60, slashSize: 30 } },
  {
    S: 1000,
    D: 64,
    H: 8,
    Hkv: 2,
    heads: [7, 1, 4],
    params: [
      { verticalSize: 100, slashSize: 150 },
      { verticalSize: 30, slashSize: 400 },
      { verticalSize: 250, slashSize: 50 },
    ],
  },
  { S: 1000, D: 128, H: 1, Hkv: 1, heads: [0], params: { verticalSize: 120, slashSize: 200 } },
  {
    S: 300,
    D: 64,
    H: 6,
    Hkv: 3,
    heads: [5, 2, 3],
    params: [
      { verticalSize: 40, slashSize: 120 },
      { verticalSize: 60, slashSize: 60 },
      { verticalSize: 35, slashSize: 200 },
    ],
    scratchBytes: 1,
  },
  { S: 130, D: 128, H: 4, Hkv: 2, heads: [1, 2], params: { verticalSize: 40, slashSize: 60 }, dtype: 'f16' },
  { S: 4097, D: 64, H: 4, Hkv: 1, heads: [1, 2], params: { verticalSize: 300, slashSize: 700 } },
];

const vsCases: KernelCase[] = vsShapes.map((s) => ({
  name: `estimate.vertical_slash:S=${s.S},D=${s.D},H=${s.H},Hkv=${s.Hkv},heads=${s.heads.join('/')}${s.scratchBytes ? ',head-per-group' : ''}${s.dtype ? `,${s.dtype}` : ''}`,
  quick: s.S <= 200,
  async run(gpu, seed) {
    const { q, k, ref } = vsInputs(s, seed);
    const dtype = s.dtype ?? 'f32';
    const tq = gpu.upload(q, [s.H, s.S, s.D], dtype, 'q');
    const tk = gpu.upload(k, [s.Hkv, s.S, s.D], dtype, 'k');
    const est = await VerticalSlashEstimator.create(gpu, { headDim: s.D, scratchBytes: s.scratchBytes, dtype });
    const batch = gpu.batch();
    const ix = est.encode(batch, tq, tk, s.heads, s.params);
    await batch.submit();
    const got = await readIndex(gpu, ix);
    expectLists(this.name, got.blocks, ref.blocks, 'blocks');
    expectLists(this.name, got.columns, ref.columns, 'columns');
    releaseIndex(gpu, ix);
    gpu.release(tq, tk);
  },
}));

// ---------------------------------------------------------------- Block-Sparse

interface BsShape {
  S: number;
  D: number;
  H: number;
  Hkv: number;
  heads: number[];
  topK: number;
  /** q and k dtype (default f32); halves are rounded on the host first so the reference sees the same values. */
  dtype?: 'f16' | 'bf16';
}

function bsInputs(s: BsShape, seed: number): { q: Float32Array; k: Float32Array; ref: number[][][] } {
  for (let attempt = 0; attempt < 20; attempt++) {
    const rng = new Rng(seed + attempt * 7919);
    // Pooling averages 64 tokens: a shared per-block offset keeps pooled vectors well separated.
    const nb = Math.ceil(s.S / 64);
    const offsets: Float32Array[][] = [];
    const gen = (heads: number): Float32Array => {
      const t = rng.normals(heads * s.S * s.D);
      for (let h = 0; h < heads; h++) {
        offsets[h] = [];
        for (let b = 0; b < nb; b++) {
          const off = rng.normals(s.D);
          offsets[h]![b] = off;
          for (let u = b * 64; u < Math.min(s.S, b * 64 + 64); u++) for (let d = 0; d < s.D; d++) t[(h * s.S + u) * s.D + d] += off[d]!;
        }
      }
      return t;
    };
    const round = (t: Float32Array): Float32Array => (s.dtype ? roundTo(s.dtype, t) : t);
    const q = round(gen(s.H));
    const qOff = offsets.slice();
    const k0 = gen(s.Hkv);
    // The last (partial) key block aligned with the last query block of the heads that read it, so
    // that its pooled score is large and depends on pooling over the real token count.
    for (let h = 0; h < s.H; h++) {
      const g = Math.floor((h * s.Hkv) / s.H);
      for (let u = (nb - 1) * 64; u < s.S; u++) for (let d = 0; d < s.D; d++) k0[(g * s.S + u) * s.D + d] += 1.5 * qOff[h]![nb - 1]![d]!;
    }
    const k = round(k0);
    const ref = s.heads.map((h) => bsIndexRef(q, k, s.H, s.Hkv, s.S, s.D, h, s.topK));
    // Gap check on the pooled scores, recomputed the readable way.
    let clear = true;
    for (const h of s.heads) {
      const g = Math.floor((h * s.Hkv) / s.H);
      const pool = (t: Float32Array, head: number, b: number): number[] => {
        const n = Math.min(64, s.S - 64 * b);
        const out = new Array<number>(s.D).fill(0);
        for (let u = 0; u < n; u++) for (let d = 0; d < s.D; d++) out[d]! += t[(head * s.S + 64 * b + u) * s.D + d]!;
        return out.map((x) => x / n);
      };
      const pk = Array.from({ length: nb }, (_, b) => pool(k, g, b));
      for (let qb = 0; qb < nb && clear; qb++) {
        const pq = pool(q, h, qb);
        const sc = pk.slice(0, qb + 1).map((kv) => kv.reduce((a, x, d) => a + x * pq[d]!, 0));
        clear = thresholdGap(sc.map((x) => x + 1e3), Math.min(s.topK, qb + 1), 0) > 1e-7; // shifted: gap relative to a fixed scale
      }
    }
    if (clear) return { q, k, ref };
  }
  throw new Error(`no tie-free inputs found for ${JSON.stringify(s)}`);
}

const bsShapes: BsShape[] = [
  { S: 1, D: 64, H: 1, Hkv: 1, heads: [0], topK: 100 },
  { S: 65, D: 96, H: 4, Hkv: 1, heads: [2], topK: 1 },
  { S: 200, D: 128, H: 7, Hkv: 1, heads: [6, 0], topK: 2 },
  { S: 1000, D: 64, H: 4, Hkv: 4, heads: [3, 1], topK: 5 },
  { S: 4097, D: 64, H: 2, Hkv: 1, heads: [1], topK: 20 },
  { S: 200, D: 96, H: 4, Hkv: 2, heads: [3, 0], topK: 2, dtype: 'f16' },
  { S: 300, D: 64, H: 2, Hkv: 1, heads: [0, 1], topK: 3, dtype: 'bf16' },
];

const bsCases: KernelCase[] = bsShapes.map((s) => ({
  name: `estimate.block_sparse:S=${s.S},D=${s.D},H=${s.H},Hkv=${s.Hkv},topK=${s.topK}${s.dtype ? `,${s.dtype}` : ''}`,
  quick: s.S <= 200,
  async run(gpu, seed) {
    const { q, k, ref } = bsInputs(s, seed);
    const dtype = s.dtype ?? 'f32';
    const tq = gpu.upload(q, [s.H, s.S, s.D], dtype, 'q');
    const tk = gpu.upload(k, [s.Hkv, s.S, s.D], dtype, 'k');
    const est = await BlockSparseEstimator.create(gpu, { headDim: s.D, dtype });
    const batch = gpu.batch();
    const ix = est.encode(batch, tq, tk, s.heads, { topK: s.topK });
    await batch.submit();
    const got = await readIndex(gpu, ix);
    expectLists(this.name, got.blocks, ref, 'blocks');
    expectLists(this.name, got.columns, ref.map((h) => h.map(() => [])), 'columns');
    releaseIndex(gpu, ix);
    gpu.release(tq, tk);
  },
}));

// ---------------------------------------------------------------- planted structure

/** Is key j attended by query block m of head h in this index (inside a range or a listed column)? */
function covers(ix: Lists, h: number, m: number, j: number): boolean {
  return ix.blocks[h]![m]!.some((b) => j >= b && j < b + 64) || ix.columns[h]![m]!.includes(j);
}

const plantedCases: KernelCase[] = [
  {
    name: 'estimate.vertical_slash.planted:S=2048,D=64,H=2,Hkv=2',
    async run(gpu, seed) {
      const S = 2048;
      const D = 64;
      const H = 2;
      const rng = new Rng(seed);
      const qn = rng.normals(H * S * D);
      const k = rng.normals(H * S * D, 0.3);
      // Head 0 (kv head 0), heavy columns: keys aligned with a direction all its queries share.
      // Head 1 (kv head 1), heavy diagonals: key j carries q[j + delta], so q_i . k_(i - delta) is
      // large for every i. (Kept on separate kv heads: planted diagonals add random components to
      // every key, which would blur the planted columns.)
      const dir = rng.normals(D);
      const q = Float32Array.from(qn, (x, e) => (e < S * D ? x + 0.5 * dir[e % D]! : x));
      const columns = [0, 1, 2, 3, 31, 400, 777, 1234, 1500, 2000];
      for (const j of columns) for (let d = 0; d < D; d++) k[j * D + d] += 1.5 * dir[d]!;
      const diagonals = [0, 1, 150, 333, 900];
      for (const delta of diagonals) {
        if (delta < 1) continue; // 0 and 1 are among the forced nearest diagonals anyway
        for (let j = 0; j + delta < S; j++) for (let d = 0; d < D; d++) k[(S + j) * D + d] += 0.8 * qn[(S + j + delta) * D + d]!;
      }
      const tq = gpu.upload(q, [H, S, D], 'f32', 'q');
      const tk = gpu.upload(k, [H, S, D], 'f32', 'k');
      const est = await VerticalSlashEstimator.create(gpu, { headDim: D });
      const batch = gpu.batch();
      const ix = est.encode(batch, tq, tk, [0, 1], { verticalSize: 40, slashSize: 120 });
      await batch.submit();
      const got = await readIndex(gpu, ix);
      let hit = 0;
      let total = 0;
      for (let m = 0; m * 64 < S; m++) {
        for (let i = m * 64; i < Math.min(S, m * 64 + 64); i++) {
          for (const j of columns) if (j <= i) (total++, (hit += covers(got, 0, m, j) ? 1 : 0));
          for (const delta of diagonals) if (i - delta >= 0) (total++, (hit += covers(got, 1, m, i - delta) ? 1 : 0));
        }
      }
      const recall = hit / total;
      if (recall < 0.99) throw new MismatchError(`${this.name}: recall ${recall.toFixed(4)} of planted columns/diagonals (${hit}/${total})`);
      releaseIndex(gpu, ix);
      gpu.release(tq, tk);
    },
  },
  {
    name: 'estimate.block_sparse.planted:S=1920,D=64,H=4,Hkv=2',
    async run(gpu, seed) {
      const S = 1920;
      const D = 64;
      const H = 4;
      const Hkv = 2;
      const rng = new Rng(seed);
      const q = rng.normals(H * S * D);
      const k = rng.normals(Hkv * S * D);
      const dir = rng.normals(D);
      for (let i = 0; i < H * S; i++) for (let d = 0; d < D; d++) q[i * D + d] += 0.5 * dir[d]!;
      const heavy = [0, 3, 11, 17, 25];
      for (let g = 0; g < Hkv; g++) for (const b of heavy) for (let u = b * 64; u < b * 64 + 64; u++) for (let d = 0; d < D; d++) k[(g * S + u) * D + d] += dir[d]!;
      const tq = gpu.upload(q, [H, S, D], 'f32', 'q');
      const tk = gpu.upload(k, [Hkv, S, D], 'f32', 'k');
      const est = await BlockSparseEstimator.create(gpu, { headDim: D });
      const batch = gpu.batch();
      const ix = est.encode(batch, tq, tk, [0, 1, 2, 3], { topK: 6 });
      await batch.submit();
      const got = await readIndex(gpu, ix);
      let hit = 0;
      let total = 0;
      for (let h = 0; h < H; h++) {
        for (let m = 0; m * 64 < S; m++) {
          for (const b of heavy) if (b <= m) (total++, (hit += got.blocks[h]![m]!.includes(b * 64) ? 1 : 0));
        }
      }
      const recall = hit / total;
      if (recall < 0.99) throw new MismatchError(`${this.name}: recall ${recall.toFixed(4)} of planted blocks (${hit}/${total})`);
      releaseIndex(gpu, ix);
      gpu.release(tq, tk);
    },
  },
];

// Worked by hand from MInference's convert_vertical_slash_indexes (S = 256, one head):
// diagonals {0, 1, 70, 200}, columns {5, 100, 130, 250}.
//  m=0 (end 64):  delta 1 -> e = max(63, 64) = 64: [0, 64); delta 0 -> e = 64, inside.      blocks 0; 5 in range.
//  m=1 (end 128): delta 70 -> [0, 64); delta 1 -> e = 127 <= 64 + 64: extend to [0, 128);
//                 delta 0 -> 128, inside.                                                  blocks 0, 64.
//  m=2 (end 192): delta 70 -> [58, 122); delta 1 -> 191 > 186: new [127, 191); delta 0 -> 192:
//                 extend to [127, 255) (past end_m, as MInference does).                  blocks 58, 127, 191; column 5.
//  m=3 (end 256): delta 200 -> [0, 64); 70 -> [122, 186); 1 -> [191, 255); 0 -> [191, 319).  blocks 0, 122, 191, 255; column 100.
const WORKED = {
  S: 256,
  columns: [5, 100, 130, 250],
  slashes: [0, 1, 70, 200],
  blocks: [[0], [0, 64], [58, 127, 191], [0, 122, 191, 255]],
  columnLists: [[], [], [5], [100]],
};

const indexCases: KernelCase[] = [
  {
    name: 'estimate.vs_index:worked example S=256',
    quick: true,
    async run(gpu) {
      const ref = vsIndexRef({ columns: WORKED.columns, slashes: WORKED.slashes }, WORKED.S);
      expectLists(`${this.name} (reference)`, [ref.blocks], [WORKED.blocks], 'blocks');
      expectLists(`${this.name} (reference)`, [ref.columns], [WORKED.columnLists], 'columns');
      const est = await VerticalSlashEstimator.create(gpu, { headDim: 64 });
      const batch = gpu.batch();
      // Head 1 repeats head 0 with every column kept, to check per-head lists and capacities.
      const all = Array.from({ length: WORKED.S }, (_, j) => j);
      const ix = est.encodeIndexFromLists(batch, WORKED.S, [
        { columns: WORKED.columns, slashes: WORKED.slashes },
        { columns: all, slashes: WORKED.slashes },
      ]);
      await batch.submit();
      const got = await readIndex(gpu, ix);
      const ref1 = vsIndexRef({ columns: all, slashes: WORKED.slashes }, WORKED.S);
      expectLists(this.name, got.blocks, [WORKED.blocks, ref1.blocks], 'blocks');
      expectLists(this.name, got.columns, [WORKED.columnLists, ref1.columns], 'columns');
      releaseIndex(gpu, ix);
    },
  },
];

const errorCases: KernelCase[] = [
  {
    name: 'estimate.errors:typed errors before dispatch',
    quick: true,
    async run(gpu) {
      const vs = await VerticalSlashEstimator.create(gpu, { headDim: 64 });
      const bs = await BlockSparseEstimator.create(gpu, { headDim: 64 });
      const q = gpu.empty([4, 70, 64], 'f32', 'q');
      const k = gpu.empty([2, 70, 64], 'f32', 'k');
      const k3 = gpu.empty([3, 70, 64], 'f32', 'k3');
      const kShort = gpu.empty([2, 69, 64], 'f32', 'kShort');
      const q96 = gpu.empty([4, 70, 96], 'f32', 'q96');
      const qHalf = gpu.empty([4, 70, 64], 'f16', 'qHalf');
      const q2d = gpu.empty([4, 70 * 64], 'f32', 'q2d');
      const batch = gpu.batch();
      const p = { verticalSize: 100, slashSize: 100 };
      await expectThrows('q rank', ShapeError, () => vs.encode(batch, q2d, k, [0], p));
      await expectThrows('head dim', ShapeError, () => vs.encode(batch, q96, k, [0], p));
      await expectThrows('dtype', DTypeError, () => bs.encode(batch, qHalf, k, [0]));
      await expectThrows('seq lengths', ShapeError, () => vs.encode(batch, q, kShort, [0], p));
      await expectThrows('GQA ratio', ShapeError, () => bs.encode(batch, q, k3, [0]));
      await expectThrows('head range', BadInputError, () => vs.encode(batch, q, k, [0, 4], p));
      await expectThrows('no heads', BadInputError, () => bs.encode(batch, q, k, []));
      await expectThrows('negative size', BadInputError, () => vs.encode(batch, q, k, [0], { verticalSize: -1, slashSize: 10 }));
      await expectThrows('params per head', BadInputError, () => vs.encode(batch, q, k, [0, 1], [p]));
      await expectThrows('topK 0', BadInputError, () => bs.encode(batch, q, k, [0], { topK: 0 }));
      try {
        await VerticalSlashEstimator.create(gpu, { headDim: 80 });
        throw new MismatchError('head dim 80: expected UnsupportedError');
      } catch (e) {
        if (!(e instanceof UnsupportedError)) throw e;
      }
      await batch.submit(); // nothing was recorded
      gpu.release(q, k, k3, kShort, q96, qHalf, q2d);
    },
  },
];

export const estimateCases: KernelCase[] = [...topkCases, ...vsCases, ...bsCases, ...plantedCases, ...indexCases, ...errorCases];
