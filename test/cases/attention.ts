/**
 * Attention kernel cases: dense (prefill, chunked, decode against a longer cache, GQA 1/4/7, every
 * head dim, f32 and packed-f16 K/V), A-shape, sparse index (hand-made ranges and columns), and the
 * public attention() API. Shapes are small: SwiftShader runs at a few GFLOP/s.
 */
import type { KernelCase } from '../harness/cases.ts';
import { poisoned } from '../harness/cases.ts';
import { Rng } from '../harness/rng.ts';
import { compareArrays, expectThrows, TOL_F16, TOL_F32 } from '../harness/compare.ts';
import { denseRef, streamRef, indexRef, indexEntries, type AttnRefShape, type HostIndex } from '../reference/attention.ts';
import { DenseAttentionKernel, type KvDType } from '../../src/attention/dense.ts';
import { StreamAttentionKernel } from '../../src/attention/stream.ts';
import { DecodeAttentionKernel, decodeScratchShapes, decodeSplit } from '../../src/attention/decode.ts';
import { SparseAttentionKernel, uploadHostIndex } from '../../src/attention/sparse.ts';
import type { Gpu } from '../../src/gpu/gpu.ts';
import { Tensor } from '../../src/tensor.ts';
import { attention, readDensity, submitAttention, type EstimatorSet, type IndexEstimator, type SubmittedAttention } from '../../src/attention/attention.ts';
import { streamEntries } from '../../src/attention/stream.ts';
import type { Pattern } from '../../src/attention/types.ts';
import { BadInputError, DTypeError, ShapeError, TensorTooLargeError, UnsupportedError } from '../../src/gpu/errors.ts';
import { f16BitsToF32, f32ToF16Bits } from '../../src/util/half.ts';

interface Inputs {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  tq: Tensor;
  tk: Tensor;
  tv: Tensor;
}

/** Rounds to f16 values so the reference sees exactly what the f16 kernel reads. */
function roundF16(x: Float32Array): Float32Array {
  return x.map((a) => f16BitsToF32(f32ToF16Bits(a)));
}

/**
 * Seeded q, k, v on the host and the GPU. With validRows < Scap, rows validRows.. of every kv head
 * hold NaN on the GPU (never to be read; the host arrays stay finite).
 */
function inputs(gpu: Gpu, rng: Rng, s: AttnRefShape, kvDType: KvDType = 'f32', validRows = s.Scap): Inputs {
  const q = rng.normals(s.H * s.Tq * s.D);
  let k = rng.normals(s.Hkv * s.Scap * s.D);
  let v = rng.normals(s.Hkv * s.Scap * s.D);
  if (kvDType === 'f16') {
    k = roundF16(k);
    v = roundF16(v);
  }
  const nanTail = (a: Float32Array): Float32Array => (validRows < s.Scap ? a.map((val, i) => (i % (s.Scap * s.D) >= validRows * s.D ? NaN : val)) : a);
  return {
    q,
    k,
    v,
    tq: gpu.upload(q, [s.H, s.Tq, s.D], 'f32', 'q'),
    tk: gpu.upload(nanTail(k), [s.Hkv, s.Scap, s.D], kvDType, 'k'),
    tv: gpu.upload(nanTail(v), [s.Hkv, s.Scap, s.D], kvDType, 'v'),
  };
}

function all(H: number): number[] {
  return Array.from({ length: H }, (_, i) => i);
}

interface DenseSpec {
  H: number;
  Hkv: number;
  S: number;
  D: number;
  /** Decode/chunk: Tq query rows at qPos0, kvLen keys in a cache of Scap rows. */
  Tq?: number;
  qPos0?: number;
  kvLen?: number;
  Scap?: number;
  kvDType?: KvDType;
  heads?: number[];
  quick?: boolean;
}

function denseName(c: DenseSpec): string {
  const extra = c.Tq !== undefined ? `,Tq=${c.Tq},qPos0=${c.qPos0},kvLen=${c.kvLen},Scap=${c.Scap}` : '';
  const heads = c.heads ? `,heads=${c.heads.join('/')}` : '';
  return `attention.dense:H=${c.H},Hkv=${c.Hkv},S=${c.S},D=${c.D}${extra}${heads},kv=${c.kvDType ?? 'f32'}`;
}

const DENSE: DenseSpec[] = [
  { H: 1, Hkv: 1, S: 1, D: 64, quick: true },
  { H: 2, Hkv: 1, S: 63, D: 64, quick: true },
  { H: 1, Hkv: 1, S: 64, D: 96 },
  { H: 4, Hkv: 1, S: 65, D: 128 },
  { H: 7, Hkv: 1, S: 65, D: 64 },
  { H: 2, Hkv: 2, S: 200, D: 64 },
  { H: 1, Hkv: 1, S: 200, D: 96 },
  { H: 1, Hkv: 1, S: 1000, D: 64 },
  // Only some heads listed: the others must stay untouched (NaN poison).
  { H: 4, Hkv: 2, S: 70, D: 64, heads: [3, 0] },
  // Packed f16 K/V.
  { H: 2, Hkv: 1, S: 130, D: 128, kvDType: 'f16' },
  // Chunked prefill: 40 queries at positions 100..139 against 140 keys in a 160-row cache.
  { H: 2, Hkv: 1, S: 140, D: 64, Tq: 40, qPos0: 100, kvLen: 140, Scap: 160 },
  // Decode: one query at position 2999 over 3000 keys (split across workgroups: flash-decoding).
  { H: 4, Hkv: 1, S: 3000, D: 64, Tq: 1, qPos0: 2999, kvLen: 3000, Scap: 3100, quick: true },
  // Decode with a query position past the cache's valid rows (kvLen limits) and D=128.
  { H: 2, Hkv: 2, S: 70, D: 64, Tq: 1, qPos0: 80, kvLen: 70, Scap: 96 },
];

export const denseCases: KernelCase[] = DENSE.map((c) => ({
  name: denseName(c),
  quick: c.quick ?? false,
  async run(gpu, seed) {
    const rng = new Rng(seed);
    const Tq = c.Tq ?? c.S;
    const Scap = c.Scap ?? c.S;
    const kvLen = c.kvLen ?? c.S;
    const qPos0 = c.qPos0 ?? 0;
    const kvDType = c.kvDType ?? 'f32';
    const s: AttnRefShape = { H: c.H, Hkv: c.Hkv, Tq, Scap, D: c.D };
    const x = inputs(gpu, rng, s, kvDType);
    const out = poisoned(gpu, [c.H, Tq, c.D]);
    const kernel = await DenseAttentionKernel.create(gpu, { headDim: c.D, kvDType, splitKeys: Tq === 1 });
    const batch = gpu.batch();
    const heads = c.heads ?? all(c.H);
    kernel.encode(batch, x.tq, x.tk, x.tv, out, heads, { qPos0, kvLen });
    await batch.submit();
    const ref = denseRef(x.q, x.k, x.v, s, qPos0, kvLen, c.heads);
    compareArrays(this.name, await gpu.read(out), ref, TOL_F32);
    gpu.release(x.tq, x.tk, x.tv, out);
    kernel.destroy();
  },
}));


interface StreamSpec {
  H: number;
  Hkv: number;
  S: number;
  D: number;
  nInit: number;
  nLocal: number;
  quick?: boolean;
}

const STREAM: StreamSpec[] = [
  { H: 2, Hkv: 1, S: 65, D: 64, nInit: 1, nLocal: 16, quick: true },
  { H: 4, Hkv: 4, S: 200, D: 64, nInit: 4, nLocal: 32 },
  // No sink; window longer than S (= dense).
  { H: 1, Hkv: 1, S: 63, D: 64, nInit: 0, nLocal: 100 },
  // Sink and window overlap in the first tiles; unaligned window ends.
  { H: 2, Hkv: 1, S: 300, D: 64, nInit: 40, nLocal: 50 },
  { H: 1, Hkv: 1, S: 1000, D: 64, nInit: 16, nLocal: 100 },
];

export const streamCases: KernelCase[] = STREAM.map((c) => ({
  name: `attention.stream_llm:H=${c.H},Hkv=${c.Hkv},S=${c.S},D=${c.D},nInit=${c.nInit},nLocal=${c.nLocal}`,
  quick: c.quick ?? false,
  async run(gpu, seed) {
    const rng = new Rng(seed);
    const s: AttnRefShape = { H: c.H, Hkv: c.Hkv, Tq: c.S, Scap: c.S, D: c.D };
    const x = inputs(gpu, rng, s);
    const out = poisoned(gpu, [c.H, c.S, c.D]);
    const kernel = await StreamAttentionKernel.create(gpu, { headDim: c.D });
    const batch = gpu.batch();
    kernel.encode(batch, x.tq, x.tk, x.tv, out, all(c.H), { nInit: c.nInit, nLocal: c.nLocal });
    await batch.submit();
    compareArrays(this.name, await gpu.read(out), streamRef(x.q, x.k, x.v, s, c.nInit, c.nLocal), TOL_F32);
    gpu.release(x.tq, x.tk, x.tv, out);
    kernel.destroy();
  },
}));

/**
 * A-shape / sliding window at decode positions: Tq query rows at qPos0.. over the first kvLen rows
 * of a longer cache whose tail holds NaN (never read).
 */
const STREAM_AT = [
  { H: 4, Hkv: 1, Tq: 1, Scap: 300, kvLen: 250, D: 64, nInit: 0, nLocal: 40 },
  { H: 2, Hkv: 2, Tq: 3, Scap: 210, kvLen: 203, D: 96, nInit: 4, nLocal: 70 },
  { H: 3, Hkv: 1, Tq: 1, Scap: 64, kvLen: 10, D: 128, nInit: 0, nLocal: 16 },
];
export const streamAtCases: KernelCase[] = STREAM_AT.map((c) => ({
  name: `attention.stream_llm.at:H=${c.H},Hkv=${c.Hkv},Tq=${c.Tq},kvLen=${c.kvLen}/${c.Scap},D=${c.D},nInit=${c.nInit},nLocal=${c.nLocal}`,
  async run(gpu, seed) {
    const rng = new Rng(seed);
    const s: AttnRefShape = { H: c.H, Hkv: c.Hkv, Tq: c.Tq, Scap: c.Scap, D: c.D };
    const x = inputs(gpu, rng, s, 'f32', c.kvLen);
    const out = poisoned(gpu, [c.H, c.Tq, c.D]);
    const kernel = await StreamAttentionKernel.create(gpu, { headDim: c.D });
    const at = { qPos0: c.kvLen - c.Tq, kvLen: c.kvLen };
    const batch = gpu.batch();
    kernel.encode(batch, x.tq, x.tk, x.tv, out, all(c.H), { nInit: c.nInit, nLocal: c.nLocal }, at);
    await batch.submit();
    compareArrays(this.name, await gpu.read(out), streamRef(x.q, x.k, x.v, s, c.nInit, c.nLocal, undefined, at), TOL_F32);
    gpu.release(x.tq, x.tk, x.tv, out);
    kernel.destroy();
  },
}));

/**
 * A random hand-made index: per block, ranges with unaligned starts (some crossing the diagonal or
 * past S), and single columns outside them, many near the diagonal, one past S.
 */
export function randomHostIndex(rng: Rng, S: number, slots: number): HostIndex {
  const qb = Math.ceil(S / 64);
  const ranges: number[][][] = [];
  const columns: number[][][] = [];
  for (let h = 0; h < slots; h++) {
    const r: number[][] = [];
    const c: number[][] = [];
    for (let b = 0; b < qb; b++) {
      const last = b * 64 + 63;
      const starts: number[] = [];
      let pos = rng.int(0, 40);
      while (pos <= last) {
        if (rng.next() < 0.5) {
          starts.push(pos);
          pos += 64 + rng.int(0, 50);
        } else pos += rng.int(1, 90);
      }
      const inRange = (j: number): boolean => starts.some((o) => j >= o && j < o + 64);
      const cols = new Set<number>();
      const want = rng.int(0, 24);
      for (let t = 0; t < want * 3 && cols.size < want; t++) {
        const j = rng.next() < 0.5 ? b * 64 + rng.int(0, 64) : rng.int(0, last + 1);
        if (!inRange(j)) cols.add(j);
      }
      if (b === qb - 1 && !inRange(S + 1)) cols.add(S + 1);
      r.push(starts);
      c.push([...cols].sort((x, y) => x - y));
    }
    ranges.push(r);
    columns.push(c);
  }
  return { ranges, columns };
}

/** Every aligned key block up to the diagonal: the index of dense attention. */
export function fullHostIndex(S: number, slots: number): HostIndex {
  const qb = Math.ceil(S / 64);
  const per = (): number[][] => Array.from({ length: qb }, (_, b) => Array.from({ length: b + 1 }, (_, i) => i * 64));
  return { ranges: Array.from({ length: slots }, per), columns: Array.from({ length: slots }, () => Array.from({ length: qb }, () => [])) };
}

interface SparseSpec {
  H: number;
  Hkv: number;
  S: number;
  D: number;
  heads?: number[];
  full?: boolean;
  kvDType?: KvDType;
  quick?: boolean;
}

const SPARSE: SparseSpec[] = [
  { H: 2, Hkv: 1, S: 65, D: 64, quick: true },
  { H: 4, Hkv: 2, S: 200, D: 64 },
  { H: 7, Hkv: 1, S: 130, D: 64, heads: [6, 2, 3] },
  { H: 1, Hkv: 1, S: 1000, D: 64 },
  // Budget covers everything: equals dense.
  { H: 2, Hkv: 1, S: 200, D: 64, full: true },
];

export const sparseCases: KernelCase[] = SPARSE.map((c) => ({
  name: `attention.sparse:H=${c.H},Hkv=${c.Hkv},S=${c.S},D=${c.D}${c.heads ? `,heads=${c.heads.join('/')}` : ''}${c.full ? ',index=full' : ''},kv=${c.kvDType ?? 'f32'}`,
  quick: c.quick ?? false,
  async run(gpu, seed) {
    const rng = new Rng(seed);
    const kvDType = c.kvDType ?? 'f32';
    const s: AttnRefShape = { H: c.H, Hkv: c.Hkv, Tq: c.S, Scap: c.S, D: c.D };
    const x = inputs(gpu, rng, s, kvDType);
    const heads = c.heads ?? all(c.H);
    const host = c.full ? fullHostIndex(c.S, heads.length) : randomHostIndex(rng, c.S, heads.length);
    const index = uploadHostIndex(gpu, c.S, host);
    const out = poisoned(gpu, [c.H, c.S, c.D]);
    const kernel = await SparseAttentionKernel.create(gpu, { headDim: c.D, kvDType });
    const counts = gpu.empty([heads.length, index.queryBlocks], 'u32', 'counts');
    const batch = gpu.batch();
    kernel.encode(batch, x.tq, x.tk, x.tv, out, heads, index);
    kernel.encodeCount(batch, index, counts);
    await batch.submit();
    const ref = c.full ? denseRef(x.q, x.k, x.v, s, 0, c.S, heads) : indexRef(x.q, x.k, x.v, s, heads, host);
    compareArrays(this.name, await gpu.read(out), ref, TOL_F32);
    // The GPU entry count (density numerator) equals the host count.
    const got = (await gpu.read(counts)) as Uint32Array;
    const want = indexEntries(c.S, host);
    for (let h = 0; h < heads.length; h++) {
      let n = 0;
      for (let b = 0; b < index.queryBlocks; b++) n += got[h * index.queryBlocks + b]!;
      if (n !== want[h]) throw new Error(`${this.name}: slot ${h} counts ${n} causal entries, host says ${want[h]}`);
    }
    gpu.release(x.tq, x.tk, x.tv, out, counts, index.blockCount, index.blockOffset, index.columnCount, index.columnIndex);
    kernel.destroy();
  },
}));


/** Test estimators: they hand out a host-made index (per listed head) instead of estimating one. */
function hostEstimators(gpu: Gpu, S: number, byHead: Map<number, { ranges: number[][]; columns: number[][] }>): EstimatorSet {
  const make = <P>(): IndexEstimator<P> => ({
    encode(_batch, _q, _k, heads) {
      return uploadHostIndex(gpu, S, { ranges: heads.map((h) => byHead.get(h)!.ranges), columns: heads.map((h) => byHead.get(h)!.columns) });
    },
  });
  return { verticalSlash: async () => make(), blockSparse: async () => make() };
}

const API_PATTERNS: Pattern[] = [
  { type: 'vertical_and_slash', verticalSize: 30, slashSize: 100 },
  { type: 'dense' },
  { type: 'stream_llm', nInit: 4, nLocal: 40 },
  { type: 'block_sparse', topK: 2 },
  { type: 'vertical_and_slash', verticalSize: 30, slashSize: 100 },
  { type: 'stream_llm', nInit: 4, nLocal: 40 },
];

/** The mixed-pattern request of the API cases: inputs, a host index for the sparse heads, and its float64 check. */
function mixedCase(gpu: Gpu, rng: Rng) {
  const H = 6;
  const S = 150;
  const D = 64;
  const s: AttnRefShape = { H, Hkv: 2, Tq: S, Scap: S, D };
  const x = inputs(gpu, rng, s);
  const sparseHeads = [0, 3, 4];
  const host = randomHostIndex(rng, S, sparseHeads.length);
  const byHead = new Map(sparseHeads.map((h, i) => [h, { ranges: host.ranges[i]!, columns: host.columns[i]! }]));
  const check = (name: string, got: ArrayLike<number>, density: readonly number[]): void => {
    const ref = new Float64Array(H * S * D);
    ref.set(denseRef(x.q, x.k, x.v, s, 0, S, [1]).subarray(S * D, 2 * S * D), S * D);
    for (const h of [2, 5]) ref.set(streamRef(x.q, x.k, x.v, s, 4, 40, [h]).subarray(h * S * D, (h + 1) * S * D), h * S * D);
    const sref = indexRef(x.q, x.k, x.v, s, sparseHeads, host);
    for (const h of sparseHeads) ref.set(sref.subarray(h * S * D, (h + 1) * S * D), h * S * D);
    compareArrays(name, got, ref, TOL_F32);
    const causal = (S * (S + 1)) / 2;
    const entries = indexEntries(S, host);
    const want = [entries[0]! / causal, 1, streamEntries(S, 4, 40) / causal, entries[1]! / causal, entries[2]! / causal, streamEntries(S, 4, 40) / causal];
    want.forEach((d, h) => {
      if (Math.abs(density[h]! - d) > 1e-12) throw new Error(`${name}: density of head ${h} is ${density[h]}, want ${d}`);
    });
  };
  return { x, host, sparseHeads, check, estimators: hostEstimators(gpu, S, byHead) };
}

export const apiCases: KernelCase[] = [
  {
    name: 'attention.api:mixed patterns H=6,Hkv=2,S=150,D=64',
    quick: true,
    async run(gpu, seed) {
      const m = mixedCase(gpu, new Rng(seed));
      const { x, host, sparseHeads } = m;
      const r = await attention(gpu, { q: x.tq, k: x.tk, v: x.tv, patterns: API_PATTERNS, returnIndexes: true, profile: true, estimators: m.estimators });
      m.check(this.name, await gpu.read(r.out), r.density);
      sparseHeads.forEach((h, i) => {
        const idx = r.indexes?.[h];
        if (!idx || JSON.stringify(idx.blockOffsets) !== JSON.stringify(host.ranges[i]) || JSON.stringify(idx.columns) !== JSON.stringify(host.columns[i])) {
          throw new Error(`${this.name}: returned index of head ${h} differs from the estimated one`);
        }
      });
      if (r.indexes?.[1] !== null || !r.timings || !(r.timings.attentionMs >= 0)) throw new Error(`${this.name}: missing null index for a dense head or timings`);
      gpu.release(x.tq, x.tk, x.tv, r.out);
    },
  },
  {
    // The runner's path: two requests submitted with nothing read back, then one readback for both.
    name: 'attention.api:submitted without readback, density read once for two calls',
    quick: true,
    async run(gpu, seed) {
      const rng = new Rng(seed);
      const cases = [mixedCase(gpu, rng), mixedCase(gpu, rng)];
      const submitted: SubmittedAttention[] = [];
      for (const m of cases) {
        const out = poisoned(gpu, m.x.tq.shape);
        submitted.push(await submitAttention(gpu, { q: m.x.tq, k: m.x.tk, v: m.x.tv, out, patterns: API_PATTERNS, estimators: m.estimators }));
      }
      submitted.forEach((sub, i) => {
        const unread = sub.density.flatMap((d, h) => (Number.isNaN(d) ? [h] : []));
        if (JSON.stringify(unread) !== JSON.stringify(cases[i]!.sparseHeads)) throw new Error(`${this.name}: heads waiting for counts are ${unread}, want ${cases[i]!.sparseHeads}`);
      });
      const densities = await readDensity(gpu, submitted);
      for (let i = 0; i < cases.length; i++) cases[i]!.check(`${this.name} (call ${i})`, await gpu.read(submitted[i]!.out), densities[i]!);
      for (const [i, m] of cases.entries()) gpu.release(m.x.tq, m.x.tk, m.x.tv, submitted[i]!.out);
    },
  },
  {
    // The GPU estimators with budgets that cover every key: equals dense, density 1.
    // k/v in a cache with 7 spare rows (the API compacts k for the estimators).
    name: 'attention.api:estimated budget covers everything H=2,Hkv=1,S=130,Scap=137,D=64',
    async run(gpu, seed) {
      const rng = new Rng(seed);
      const S = 130;
      const s: AttnRefShape = { H: 2, Hkv: 1, Tq: S, Scap: S + 7, D: 64 };
      const x = inputs(gpu, rng, s);
      const patterns: Pattern[] = [
        { type: 'vertical_and_slash', verticalSize: 1000, slashSize: 6096 },
        { type: 'block_sparse', topK: 100 },
      ];
      const r = await attention(gpu, { q: x.tq, k: x.tk, v: x.tv, patterns });
      compareArrays(this.name, await gpu.read(r.out), denseRef(x.q, x.k, x.v, s, 0, S), TOL_F32);
      r.density.forEach((d, h) => {
        if (Math.abs(d - 1) > 1e-12) throw new Error(`${this.name}: density of head ${h} is ${d}, want 1`);
      });
      gpu.release(x.tq, x.tk, x.tv, r.out);
    },
  },
  {
    name: 'attention.api:validation (typed errors before dispatch)',
    quick: true,
    async run(gpu) {
      const t = (shape: number[], dtype: 'f32' | 'f16' = 'f32'): Tensor => gpu.empty(shape, dtype, 'x');
      const q = t([4, 10, 64]);
      const k = t([2, 10, 64]);
      const v = t([2, 10, 64]);
      const dense: Pattern = { type: 'dense' };
      const expect = (what: string, cls: new (...a: never[]) => Error, req: Parameters<typeof attention>[1]): Promise<void> => expectThrows(what, cls, () => attention(gpu, req));
      await expect('k/v shapes differ', ShapeError, { q, k, v: t([2, 11, 64]), patterns: dense });
      await expect('H not a multiple of Hkv', ShapeError, { q: t([3, 10, 64]), k, v, patterns: dense });
      await expect('unsupported D', UnsupportedError, { q: t([4, 10, 80]), k: t([2, 10, 80]), v: t([2, 10, 80]), patterns: dense });
      await expect('unknown pattern', BadInputError, { q, k, v, patterns: { type: 'diagonal' } as unknown as Pattern });
      await expect('pattern count', BadInputError, { q, k, v, patterns: [dense, dense] });
      await expect('bad pattern params', BadInputError, { q, k, v, patterns: { type: 'stream_llm', nInit: 4, nLocal: 0 } });
      await expect('kvLen beyond k', ShapeError, { q, k, v, patterns: dense, kvLen: 11 });
      await expect('kvLen <= 0', ShapeError, { q, k, v, patterns: dense, kvLen: 0 });
      await expect('out shape', ShapeError, { q, k, v, out: t([4, 9, 64]), patterns: dense });
      // S beyond what a binding holds (a view with a huge shape on a small buffer: nothing runs).
      const S = 1 << 23;
      const big = (h: number): Tensor => new Tensor(q.buffer, [h, S, 128], 'f32');
      await expect('S beyond bindings', TensorTooLargeError, { q: big(32), k: big(8), v: big(8), patterns: dense });
      gpu.release(q, k, v);
    },
  },
];

/**
 * Tensor-core path (compute 'sgmatrix'): f16 operands, f32 accumulation; f16 tolerance. With f16
 * K/V, tiles of valid keys are read in place and the rest staged: `tail` extra cache rows past
 * kv_len hold NaN, which must never reach the output.
 */
export const sgmatrixCases: KernelCase[] = [
  { kind: 'dense', S: 200, D: 128, kv: 'f32', tail: 0 },
  { kind: 'dense', S: 65, D: 64, kv: 'f32', tail: 0 },
  { kind: 'dense', S: 200, D: 128, kv: 'f16', tail: 40 },
  { kind: 'dense', S: 1000, D: 64, kv: 'f16', tail: 0 },
  { kind: 'stream', S: 200, D: 96, kv: 'f32', tail: 0 },
  { kind: 'stream', S: 300, D: 128, kv: 'f16', tail: 0 },
  { kind: 'sparse', S: 200, D: 128, kv: 'f32', tail: 0 },
  { kind: 'sparse', S: 333, D: 64, kv: 'f16', tail: 0 },
].map((c) => ({
  name: `attention.sgmatrix.${c.kind}:H=4,Hkv=1,S=${c.S},D=${c.D},kv=${c.kv}${c.tail ? `,tail=${c.tail}` : ''}`,
  needs: 'subgroupMatrix' as const,
  async run(gpu: Gpu, seed: number) {
    const rng = new Rng(seed);
    const kvDType = c.kv as KvDType;
    const s: AttnRefShape = { H: 4, Hkv: 1, Tq: c.S, Scap: c.S + c.tail, D: c.D };
    const x = inputs(gpu, rng, s, kvDType, c.S);
    const out = poisoned(gpu, [4, c.S, c.D]);
    const heads = all(4);
    const opts = { headDim: c.D, compute: 'sgmatrix' as const, kvDType };
    const batch = gpu.batch();
    let ref: Float64Array;
    let release: Tensor[] = [];
    const prefix: AttnRefShape = { ...s, Scap: c.S };
    const kv = (a: Float32Array): Float32Array => a.subarray(0, c.S * c.D);
    if (c.kind === 'dense') {
      const kernel = await DenseAttentionKernel.create(gpu, opts);
      kernel.encode(batch, x.tq, x.tk, x.tv, out, heads, { qPos0: 0, kvLen: c.S });
      ref = denseRef(x.q, kv(x.k), kv(x.v), prefix, 0, c.S);
    } else if (c.kind === 'stream') {
      const kernel = await StreamAttentionKernel.create(gpu, opts);
      kernel.encode(batch, x.tq, x.tk, x.tv, out, heads, { nInit: 4, nLocal: 40 });
      ref = streamRef(x.q, x.k, x.v, s, 4, 40);
    } else {
      const host = randomHostIndex(rng, c.S, 4);
      const index = uploadHostIndex(gpu, c.S, host);
      const kernel = await SparseAttentionKernel.create(gpu, opts);
      kernel.encode(batch, x.tq, x.tk, x.tv, out, heads, index);
      ref = indexRef(x.q, x.k, x.v, s, heads, host);
      release = [index.blockCount, index.blockOffset, index.columnCount, index.columnIndex];
    }
    await batch.submit();
    compareArrays(`attention.sgmatrix.${c.kind}`, await gpu.read(out), ref, TOL_F16);
    gpu.release(x.tq, x.tk, x.tv, out, ...release);
  },
}));

/**
 * The tensor-core kernel's lazy rescale (attention.wgsl SGMAT) on scores that keep growing along the
 * keys, so that rows pass their stale max by more than the threshold and O is rescaled mid-walk. The
 * inputs are exact for the kernel: q is chosen so that q * scale * log2(e) is a multiple of 1/4
 * (exact in f16 once the kernel scales it), k is a multiple of 1/4 times 1 + floor(j / 32) (scores
 * in the log2 domain reach ~20), v is f16-rounded. Both the measurement build (rescaleStats) and the
 * plain kernel must match float64; the stats must show rescales.
 */
const rescaleCases: KernelCase[] = [
  { S: 300, D: 64, kv: 'f16' },
  { S: 257, D: 128, kv: 'f32' },
].map((c) => ({
  name: `attention.sgmatrix.rescale:H=4,Hkv=1,S=${c.S},D=${c.D},kv=${c.kv},rising scores`,
  needs: 'subgroupMatrix' as const,
  async run(gpu: Gpu, seed: number) {
    const rng = new Rng(seed);
    const s: AttnRefShape = { H: 4, Hkv: 1, Tq: c.S, Scap: c.S, D: c.D };
    const quarter = (): number => rng.int(-4, 5) / 4;
    const toLog2 = (1 / Math.sqrt(c.D)) * Math.LOG2E;
    const q = Float32Array.from({ length: s.H * c.S * c.D }, () => quarter() / toLog2);
    const k = Float32Array.from({ length: c.S * c.D }, (_, i) => quarter() * (1 + Math.floor(i / c.D / 32)));
    const v = roundF16(rng.normals(c.S * c.D));
    const kvDType = c.kv as KvDType;
    const tq = gpu.upload(q, [s.H, c.S, c.D], 'f32', 'q');
    const tk = gpu.upload(k, [1, c.S, c.D], kvDType, 'k');
    const tv = gpu.upload(v, [1, c.S, c.D], kvDType, 'v');
    const ref = denseRef(q, k, v, s, 0, c.S);
    for (const rescaleStats of [true, false]) {
      const kernel = await DenseAttentionKernel.create(gpu, { headDim: c.D, compute: 'sgmatrix', kvDType, rescaleStats });
      const out = poisoned(gpu, [4, c.S, c.D]);
      const batch = gpu.batch();
      kernel.encode(batch, tq, tk, tv, out, all(4), { qPos0: 0, kvLen: c.S });
      await batch.submit();
      compareArrays(`attention.sgmatrix.rescale stats=${rescaleStats}`, await gpu.read(out), ref, TOL_F16);
      if (rescaleStats) {
        const st = await kernel.readRescaleStats();
        // Causal tiles: per head, query block b of 64 rows walks ceil(min(64 (b + 1), S) / 32) tiles.
        let tiles = 0;
        for (let b = 0; b * 64 < c.S; b++) tiles += Math.ceil(Math.min(64 * (b + 1), c.S) / 32);
        if (st.tiles !== 4 * tiles) throw new Error(`rescale stats: ${st.tiles} tiles walked, expected ${4 * tiles}`);
        if (st.rescaled === 0) throw new Error('rescale stats: no tile rescaled on rising scores; the case does not exercise the rescale');
        const again = await kernel.readRescaleStats();
        if (again.tiles !== 0) throw new Error(`rescale stats: not zeroed after reading (${again.tiles})`);
      }
      kernel.destroy();
      gpu.release(out);
    }
    await expectThrows('rescaleStats on the f32 path', BadInputError, () => DenseAttentionKernel.create(gpu, { headDim: c.D, compute: 'f32', rescaleStats: true }));
    gpu.release(tq, tk, tv);
  },
}));

/**
 * One-row decode attention (shaders/attention_decode.wgsl via src/attention/decode.ts) against the
 * float64 reference: the query at position kvLen - 1 over the cache's first kvLen rows (rows past
 * them hold NaN), GQA groups 1 / 4 / 7, f32 and packed f16 caches, sliding windows.
 */
interface DecodeSpec {
  H: number;
  Hkv: number;
  D: number;
  /** Keys in the cache (the query sits at kvLen - 1); rows past it hold NaN. */
  kvLen: number;
  Scap: number;
  kvDType?: KvDType;
  window?: number;
  /** Keys per chunk of a split (default: what the device's workgroup memory holds). */
  chunk?: number;
  quick?: boolean;
}

const DECODE: DecodeSpec[] = [
  // Three splits of 100 keys, each one chunk.
  { H: 4, Hkv: 1, D: 64, kvLen: 300, Scap: 300, quick: true },
  // One key past the workgroup (96 threads): thread 0 scores two keys.
  { H: 1, Hkv: 1, D: 96, kvLen: 97, Scap: 100 },
  // Eight splits of 125 keys in chunks of 48 (the last ragged): the running max and sum carried
  // across chunks; GQA 4.
  { H: 8, Hkv: 2, D: 64, kvLen: 1000, Scap: 1003, chunk: 48, kvDType: 'f16' },
  // Packed f16 cache with spare rows; GQA 4; D=128.
  { H: 8, Hkv: 2, D: 128, kvLen: 777, Scap: 1000, kvDType: 'f16' },
  // Group of 7 query heads (Qwen2-style), D=96, one key.
  { H: 7, Hkv: 1, D: 96, kvLen: 1, Scap: 16 },
  // Many splits (40 of 125 keys), no GQA.
  { H: 2, Hkv: 2, D: 64, kvLen: 5000, Scap: 5003 },
  // Sliding window: the last 100 of 555 keys (the window starts mid-tile).
  { H: 4, Hkv: 2, D: 64, kvLen: 555, Scap: 600, window: 100, quick: true },
  // A window longer than the cache's keys attends them all.
  { H: 4, Hkv: 2, D: 64, kvLen: 70, Scap: 80, window: 4096, kvDType: 'f16' },
];

export const decodeCases: KernelCase[] = DECODE.map((c) => ({
  name: `attention.decode:H=${c.H},Hkv=${c.Hkv},D=${c.D},kvLen=${c.kvLen},Scap=${c.Scap}${c.kvDType === 'f16' ? ',f16' : ''}${c.window ? `,window=${c.window}` : ''}${c.chunk ? `,chunk=${c.chunk}` : ''}`,
  quick: c.quick ?? false,
  async run(gpu, seed) {
    const rng = new Rng(seed);
    const s: AttnRefShape = { H: c.H, Hkv: c.Hkv, Tq: 1, Scap: c.Scap, D: c.D };
    const kvDType = c.kvDType ?? 'f32';
    const x = inputs(gpu, rng, s, kvDType, c.kvLen);
    const out = poisoned(gpu, [c.H, 1, c.D]);
    const shapes = decodeScratchShapes(c.H, c.D);
    // Poisoned scratch: the merge must read only the splits this call wrote.
    const scratch = { partO: poisoned(gpu, shapes.partO), partMl: poisoned(gpu, shapes.partMl) };
    const kernel = await DecodeAttentionKernel.create(gpu, { headDim: c.D, kvDType, group: c.H / c.Hkv, chunk: c.chunk });
    const batch = gpu.batch();
    kernel.encode(batch, x.tq, x.tk, x.tv, out, { kvLen: c.kvLen, window: c.window, scratch });
    await batch.submit();
    const at = { qPos0: c.kvLen - 1, kvLen: c.kvLen };
    const ref = c.window === undefined ? denseRef(x.q, x.k, x.v, s, at.qPos0, at.kvLen) : streamRef(x.q, x.k, x.v, s, 0, c.window, undefined, at);
    compareArrays(this.name, await gpu.read(out), ref, TOL_F32);
    gpu.release(x.tq, x.tk, x.tv, out, scratch.partO, scratch.partMl);
  },
}));

export const decodeSplitCases: KernelCase[] = [
  {
    name: 'attention.decode:split arithmetic and typed errors',
    quick: true,
    async run(gpu) {
      const want = (keys: number, Hkv: number, splitLen: number, splits: number): void => {
        const got = decodeSplit(keys, Hkv);
        if (got.splitLen !== splitLen || got.splits !== splits) throw new Error(`decodeSplit(${keys}, ${Hkv}) = ${JSON.stringify(got)}, want ${splitLen} x ${splits}`);
      };
      want(1, 8, 1, 1);
      want(4096, 8, 128, 32);
      want(131072, 8, 1024, 128);
      want(524288, 8, 4096, 128);
      want(300, 1, 100, 3);
      want(5000, 2, 125, 40);
      want(1_000_000, 1, 3907, 256);
      const kernel = await DecodeAttentionKernel.create(gpu, { headDim: 64, group: 2 });
      const t = (shape: number[], dtype: 'f32' | 'f16' = 'f32'): Tensor => gpu.empty(shape, dtype, 'x');
      const shapes = decodeScratchShapes(4, 64);
      const scratch = { partO: t(shapes.partO), partMl: t(shapes.partMl) };
      const q = t([4, 1, 64]);
      const k = t([2, 10, 64]);
      const b = gpu.batch();
      await expectThrows('kvLen past the cache', ShapeError, () => kernel.encode(b, q, k, k, q, { kvLen: 11, scratch }));
      await expectThrows('kvLen 0', ShapeError, () => kernel.encode(b, q, k, k, q, { kvLen: 0, scratch }));
      await expectThrows('heads not a multiple', ShapeError, () => kernel.encode(b, t([6, 1, 64]), k, k, t([6, 1, 64]), { kvLen: 5, scratch }));
      await expectThrows('f16 cache for an f32 kernel', DTypeError, () => kernel.encode(b, q, t([2, 10, 64], 'f16'), t([2, 10, 64], 'f16'), q, { kvLen: 5, scratch }));
      await expectThrows('window 0', ShapeError, () => kernel.encode(b, q, k, k, q, { kvLen: 5, window: 0, scratch }));
      await expectThrows('scratch too small', ShapeError, () => kernel.encode(b, q, k, k, q, { kvLen: 10, scratch: { partO: t([1, 2, 64]), partMl: scratch.partMl } }));
      await expectThrows('group 0', BadInputError, () => DecodeAttentionKernel.create(gpu, { headDim: 64, group: 0 }));
      await expectThrows('chunk past workgroup memory', BadInputError, () => DecodeAttentionKernel.create(gpu, { headDim: 64, group: 2, chunk: 1 << 20 }));
      await b.submit();
    },
  },
];

export const attentionCases: KernelCase[] = [...denseCases, ...decodeCases, ...decodeSplitCases, ...streamCases, ...streamAtCases, ...sparseCases, ...apiCases, ...sgmatrixCases, ...rescaleCases];
