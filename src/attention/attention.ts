/**
 * The public attention API (MInference 1.0 prefill): one call computes causal attention for every
 * query head with that head's pattern.
 *
 *   const { out, density } = await attention(gpu, { q, k, v, patterns });
 *
 * q [H, S, D] f32; k, v [Hkv, Scap >= S, D] f32 or packed f16 (the first S rows are the keys);
 * H a multiple of Hkv; D in {64, 96, 128}. patterns: one Pattern for all heads or one per query head.
 *
 * Heads are grouped by pattern: dense and A-shape heads run in one batch (one dispatch per
 * pattern); Vertical-Slash and Block-Sparse heads run per pattern in chunks of heads whose sparse
 * index stays well under the binding limit: estimate the index (src/attention/estimate.ts), attend
 * with it, count its causal entries (density), release it.
 * Everything is validated before anything is dispatched (typed errors).
 */
import type { Batch, Gpu } from '../gpu/gpu.ts';
import { BadInputError, DTypeError, ShapeError, TensorTooLargeError, UnsupportedError } from '../gpu/errors.ts';
import type { Tensor } from '../tensor.ts';
import { BLOCK, type Pattern, type PatternType, type SparseIndex } from './types.ts';
import { DenseAttentionKernel, SUPPORTED_HEAD_DIMS, sgTiles, type AttentionCompute, type KvDType } from './dense.ts';
import { StreamAttentionKernel, streamEntries } from './stream.ts';
import { SparseAttentionKernel, readIndex, releaseIndex, validateIndex } from './sparse.ts';
import { BlockSparseEstimator, VerticalSlashEstimator } from './estimate.ts';

/** An index estimator as src/attention/estimate.ts provides them. */
export interface IndexEstimator<P> {
  encode(batch: Batch, q: Tensor, k: Tensor, heads: number[], params: P): SparseIndex;
}

export interface VerticalSlashParams {
  verticalSize: number;
  slashSize: number;
}
export interface BlockSparseParams {
  topK: number;
}

/** Factories of the estimators (default: src/attention/estimate.ts; tests may substitute). */
export interface EstimatorSet {
  verticalSlash(gpu: Gpu, headDim: number): Promise<IndexEstimator<VerticalSlashParams>>;
  blockSparse(gpu: Gpu, headDim: number): Promise<IndexEstimator<BlockSparseParams>>;
}

/** The GPU estimators of src/attention/estimate.ts (q and k f32, k with exactly S rows). */
const DEFAULT_ESTIMATORS: EstimatorSet = {
  verticalSlash: (gpu, headDim) => VerticalSlashEstimator.create(gpu, { headDim, dtype: 'f32' }),
  blockSparse: (gpu, headDim) => BlockSparseEstimator.create(gpu, { headDim, dtype: 'f32' }),
};

export interface AttentionRequest {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  /** [H, S, D] f32; allocated when absent. */
  out?: Tensor;
  patterns: Pattern | readonly Pattern[];
  /** Keys (= query rows S). Default: q's rows. k/v may hold more rows (a preallocated cache). */
  kvLen?: number;
  /** Read every sparse head's index back (block offsets and columns per query block). */
  returnIndexes?: boolean;
  /** Time estimation and attention separately (GPU timestamps where available, else wall clock). */
  profile?: boolean;
  estimators?: EstimatorSet;
  /** 'f32' (default, any device) or 'sgmatrix' (tensor cores, f16 operands, f32 accumulation). */
  compute?: AttentionCompute;
}

/** A head's index as plain arrays: per 64-query block, the 64-key range starts and the single columns. */
export interface HeadIndex {
  pattern: Pattern;
  blockOffsets: number[][];
  columns: number[][];
}

export interface AttentionResult {
  out: Tensor;
  /** Per head: computed causal entries / all causal entries S(S+1)/2. */
  density: number[];
  /** Per head (returnIndexes): its sparse index, or null for dense and A-shape heads. */
  indexes?: (HeadIndex | null)[];
  /** profile: total estimation and attention time in ms. */
  timings?: { estimationMs: number; attentionMs: number };
  /** profile: every dispatch (or batch, without timestamps) with its time. */
  times?: { label: string; ms: number }[];
}

/** Index bytes allowed per chunk of heads: well under the binding limit, and bounded in memory. */
const INDEX_CHUNK_BYTES = 512 * 1024 * 1024;

function patternKey(p: Pattern): string {
  switch (p.type) {
    case 'dense':
      return 'dense';
    case 'stream_llm':
      return `stream_llm:${p.nInit}:${p.nLocal}`;
    case 'vertical_and_slash':
      return `vertical_and_slash:${p.verticalSize}:${p.slashSize}`;
    case 'block_sparse':
      return `block_sparse:${p.topK}`;
  }
}

function positiveInt(x: unknown): boolean {
  return typeof x === 'number' && Number.isInteger(x) && x > 0;
}

export function validatePattern(p: Pattern, where: string): void {
  const t = (p as { type?: unknown } | null)?.type;
  switch (t) {
    case 'dense':
      return;
    case 'stream_llm': {
      const s = p as Extract<Pattern, { type: 'stream_llm' }>;
      if (!(Number.isInteger(s.nInit) && s.nInit >= 0) || !positiveInt(s.nLocal)) {
        throw new BadInputError(`${where}: stream_llm needs integer nInit >= 0 and nLocal >= 1, got nInit=${s.nInit}, nLocal=${s.nLocal}`);
      }
      return;
    }
    case 'vertical_and_slash': {
      const s = p as Extract<Pattern, { type: 'vertical_and_slash' }>;
      if (!positiveInt(s.verticalSize) || !positiveInt(s.slashSize)) {
        throw new BadInputError(`${where}: vertical_and_slash needs positive integer verticalSize and slashSize, got ${s.verticalSize}, ${s.slashSize}`);
      }
      return;
    }
    case 'block_sparse': {
      const s = p as Extract<Pattern, { type: 'block_sparse' }>;
      if (!positiveInt(s.topK)) throw new BadInputError(`${where}: block_sparse needs a positive integer topK, got ${s.topK}`);
      return;
    }
    default:
      throw new BadInputError(`${where}: unknown pattern type ${JSON.stringify(t)} (expected dense, stream_llm, vertical_and_slash or block_sparse)`);
  }
}

/** Upper bound of an estimated index's bytes per head (blockOffset + columnIndex + counts). */
export function indexBytesPerHead(p: Pattern, S: number): number {
  const qb = Math.ceil(S / BLOCK);
  const kb = Math.ceil(S / BLOCK);
  if (p.type === 'vertical_and_slash') {
    // Every slash can become a range of its own; the ranges can never exceed the key blocks + 1.
    const blocks = Math.min(p.slashSize, kb + 1);
    return qb * (blocks + Math.min(p.verticalSize, S) + 2) * 4;
  }
  if (p.type === 'block_sparse') return qb * (Math.min(p.topK, kb) + 3) * 4;
  return 0;
}

interface Validated {
  H: number;
  Hkv: number;
  S: number;
  D: number;
  kvDType: KvDType;
  patterns: Pattern[];
}

export function validateAttentionRequest(gpu: Gpu, r: AttentionRequest): Validated {
  const op = 'attention';
  for (const [name, t] of [['q', r.q], ['k', r.k], ['v', r.v]] as const) {
    if (!t || t.shape.length !== 3) throw new ShapeError(`${op}: ${name} must be a 3-D tensor [heads, rows, D]${t ? `, got ${t.describe()}` : ''}`);
    if (t.shape.some((d) => !Number.isInteger(d) || d <= 0)) throw new ShapeError(`${op}: ${name} ${t.describe()} has a size <= 0`);
  }
  const [H, Sq, D] = r.q.shape as [number, number, number];
  const [Hkv, Scap, Dk] = r.k.shape as [number, number, number];
  if (r.q.dtype !== 'f32') throw new DTypeError(`${op}: q must be f32, got ${r.q.describe()}`);
  if (r.k.dtype !== 'f32' && r.k.dtype !== 'f16') throw new DTypeError(`${op}: k must be f32 or f16, got ${r.k.describe()}`);
  if (r.v.dtype !== r.k.dtype) throw new DTypeError(`${op}: v must have k's dtype ${r.k.dtype}, got ${r.v.describe()}`);
  if (!SUPPORTED_HEAD_DIMS.includes(D)) throw new UnsupportedError(`${op}: head dim ${D} is not supported (supported: ${SUPPORTED_HEAD_DIMS.join(', ')})`);
  if (Dk !== D) throw new ShapeError(`${op}: k ${r.k.describe()} has head dim ${Dk}, q ${r.q.describe()} has ${D}`);
  if (r.v.shape[0] !== Hkv || r.v.shape[1] !== Scap || r.v.shape[2] !== D) throw new ShapeError(`${op}: v ${r.v.describe()} must have k's shape [${Hkv}, ${Scap}, ${D}]`);
  if (H % Hkv !== 0) throw new ShapeError(`${op}: query heads H=${H} must be a multiple of kv heads Hkv=${Hkv}`);
  const S = r.kvLen ?? Sq;
  if (!Number.isInteger(S) || S <= 0) throw new ShapeError(`${op}: kvLen=${S} must be a positive integer`);
  if (S !== Sq) throw new ShapeError(`${op}: prefill needs kvLen (${S}) equal to q's rows (${Sq})`);
  if (S > Scap) throw new ShapeError(`${op}: kvLen=${S} exceeds k/v rows ${Scap}`);
  if (r.compute !== undefined && r.compute !== 'f32' && r.compute !== 'sgmatrix') throw new BadInputError(`${op}: compute must be 'f32' or 'sgmatrix', got ${String(r.compute)}`);
  if (r.compute === 'sgmatrix') sgTiles(gpu, op, D);
  if (r.out) {
    if (r.out.dtype !== 'f32') throw new DTypeError(`${op}: out must be f32, got ${r.out.describe()}`);
    if (r.out.shape.length !== 3 || r.out.shape[0] !== H || r.out.shape[1] !== Sq || r.out.shape[2] !== D) {
      throw new ShapeError(`${op}: out ${r.out.describe()} must have q's shape [${H}, ${Sq}, ${D}]`);
    }
  }
  const list = Array.isArray(r.patterns) ? (r.patterns as readonly Pattern[]) : [r.patterns as Pattern];
  if (Array.isArray(r.patterns) && list.length !== H) throw new BadInputError(`${op}: ${list.length} patterns for ${H} query heads (give one per head, or one for all)`);
  if (list.length === 0) throw new BadInputError(`${op}: no pattern given`);
  list.forEach((p, i) => validatePattern(p, `${op}: pattern ${Array.isArray(r.patterns) ? `of head ${i}` : ''}`.trimEnd()));
  const patterns = Array.isArray(r.patterns) ? [...list] : Array.from({ length: H }, () => list[0]!);
  if (!r.estimators && patterns.some((p) => p.type === 'vertical_and_slash' || p.type === 'block_sparse')) {
    // The built-in estimators read q and k as one dtype (k with more than S rows is compacted).
    if (r.k.dtype !== 'f32') throw new UnsupportedError(`${op}: sparse patterns need f32 k and v (the index estimators read q and k as f32), got ${r.k.describe()}`);
  }
  // Bindings: every tensor must fit one binding; the kernels index vec4 elements with u32.
  const limit = gpu.caps.limits.maxStorageBufferBindingSize;
  const qBytes = H * Sq * D * 4;
  if (qBytes > limit) throw new TensorTooLargeError(qBytes, limit, `${op}: q/out [${H}, ${Sq}, ${D}] f32 at S=${S}`);
  for (const p of patterns) {
    const per = indexBytesPerHead(p, S);
    if (per > Math.min(limit, INDEX_CHUNK_BYTES)) throw new TensorTooLargeError(per, Math.min(limit, INDEX_CHUNK_BYTES), `${op}: the ${patternKey(p)} index of one head at S=${S}`);
  }
  const qBlocksMax = Math.ceil(S / 32);
  if (qBlocksMax > gpu.caps.limits.maxComputeWorkgroupsPerDimension) {
    throw new ShapeError(`${op}: S=${S} needs ${qBlocksMax} query blocks, more than ${gpu.caps.limits.maxComputeWorkgroupsPerDimension} workgroups per dimension`);
  }
  return { H, Hkv, S, D, kvDType: r.k.dtype, patterns };
}

// ------------------------------------------------------------------ kernel cache

type AnyKernel = DenseAttentionKernel | StreamAttentionKernel | SparseAttentionKernel | IndexEstimator<VerticalSlashParams> | IndexEstimator<BlockSparseParams>;
const kernelCache = new WeakMap<Gpu, Map<string, Promise<AnyKernel>>>();

function cached<T extends AnyKernel>(gpu: Gpu, key: string, make: () => Promise<T>): Promise<T> {
  let m = kernelCache.get(gpu);
  if (!m) kernelCache.set(gpu, (m = new Map()));
  let p = m.get(key);
  if (!p) {
    p = make();
    m.set(key, p);
    p.catch(() => m!.delete(key));
  }
  return p as Promise<T>;
}

async function timedSubmit(gpu: Gpu, batch: Batch, profile: boolean, label: string): Promise<{ ms: number; times: { label: string; ms: number }[] }> {
  const t0 = performance.now();
  const times = await batch.submit();
  const wall = performance.now() - t0;
  if (!profile) return { ms: 0, times: [] };
  if (times.length) return { ms: times.reduce((a, t) => a + t.ms, 0), times };
  return { ms: wall, times: [{ label, ms: wall }] };
}

export interface AttentionKernelSpec {
  headDim: number;
  kvDType: KvDType;
  compute: AttentionCompute;
  /** Pattern types to compile for. */
  types: ReadonlySet<PatternType>;
}

interface AttentionKernels {
  dense?: DenseAttentionKernel;
  stream?: StreamAttentionKernel;
  sparse?: SparseAttentionKernel;
  vsEst?: IndexEstimator<VerticalSlashParams>;
  bsEst?: IndexEstimator<BlockSparseParams>;
}

/** The kernels and estimators attention() runs for these pattern types (compiled once per device). */
async function attentionKernels(gpu: Gpu, spec: AttentionKernelSpec, own?: EstimatorSet): Promise<AttentionKernels> {
  const { headDim: D, kvDType, compute, types } = spec;
  const estimators = own ?? DEFAULT_ESTIMATORS;
  const kopts = { headDim: D, kvDType, compute };
  const anySparse = types.has('vertical_and_slash') || types.has('block_sparse');
  // A caller's own estimator set is used as given (not cached: another call may pass another set).
  const [dense, stream, sparse, vsEst, bsEst] = await Promise.all([
    types.has('dense') ? cached(gpu, `dense:${D}:${kvDType}:${compute}`, () => DenseAttentionKernel.create(gpu, { ...kopts, splitKeys: false })) : undefined,
    types.has('stream_llm') ? cached(gpu, `stream:${D}:${kvDType}:${compute}`, () => StreamAttentionKernel.create(gpu, kopts)) : undefined,
    anySparse ? cached(gpu, `sparse:${D}:${kvDType}:${compute}`, () => SparseAttentionKernel.create(gpu, kopts)) : undefined,
    types.has('vertical_and_slash') ? (own ? estimators.verticalSlash(gpu, D) : cached(gpu, `est.vs:${D}`, () => estimators.verticalSlash(gpu, D))) : undefined,
    types.has('block_sparse') ? (own ? estimators.blockSparse(gpu, D) : cached(gpu, `est.bs:${D}`, () => estimators.blockSparse(gpu, D))) : undefined,
  ]);
  return { dense, stream, sparse, vsEst, bsEst };
}

/**
 * Compiles what attention() needs for these pattern types ahead of time (nothing runs), so that a
 * later attention() call compiles nothing. k and v are f32 for the built-in estimators.
 */
export async function prepareAttention(gpu: Gpu, spec: AttentionKernelSpec): Promise<void> {
  await attentionKernels(gpu, spec);
}

/** Heads grouped by pattern, in first-seen order. */
function groupByPattern(patterns: readonly Pattern[]): { pattern: Pattern; heads: number[] }[] {
  const groups = new Map<string, { pattern: Pattern; heads: number[] }>();
  patterns.forEach((p, h) => {
    const key = patternKey(p);
    const g = groups.get(key) ?? { pattern: p, heads: [] };
    g.heads.push(h);
    groups.set(key, g);
  });
  return [...groups.values()];
}

function isEstimated(p: Pattern): p is Extract<Pattern, { type: 'vertical_and_slash' | 'block_sparse' }> {
  return p.type === 'vertical_and_slash' || p.type === 'block_sparse';
}

/** What one attention request runs, compiled and validated, with the shared tensors. */
interface Prepared {
  v: Validated;
  kernels: AttentionKernels;
  groups: { pattern: Pattern; heads: number[] }[];
  q: Tensor;
  k: Tensor;
  vT: Tensor;
  out: Tensor;
  /** Causal query-key pairs of the prompt, S(S+1)/2. */
  causal: number;
}

/** Whether a request has dense or A-shape heads (encodeSimpleHeads has work). */
function hasSimpleHeads(r: Prepared): boolean {
  return r.groups.some((g) => !isEstimated(g.pattern));
}

/**
 * Dense and A-shape heads into one batch (one dispatch per pattern); their density (1, or A-shape's
 * exact share) goes into `density`.
 */
function encodeSimpleHeads(batch: Batch, r: Prepared, density: number[]): void {
  const { dense, stream } = r.kernels;
  const S = r.v.S;
  for (const g of r.groups) {
    const p = g.pattern;
    if (p.type === 'dense') dense!.encode(batch, r.q, r.k, r.vT, r.out, g.heads, { qPos0: 0, kvLen: S });
    else if (p.type === 'stream_llm') {
      stream!.encode(batch, r.q, r.k, r.vT, r.out, g.heads, { nInit: p.nInit, nLocal: p.nLocal });
      const d = streamEntries(S, p.nInit, p.nLocal) / r.causal;
      for (const h of g.heads) density[h] = d;
    }
  }
}

/** Whether the estimators need a compact copy of k: they read exactly S rows, and the cache has spare ones. */
function keysNeedCompaction(r: Prepared): boolean {
  return r.k.shape[1]! !== r.v.S && r.groups.some((g) => isEstimated(g.pattern));
}

/**
 * The estimators' k: a compact copy with exactly S rows, which the caller releases, where
 * keysNeedCompaction, else k itself.
 */
function compactKeys(gpu: Gpu, batch: Batch, r: Prepared): Tensor {
  const { Hkv, S, D } = r.v;
  const Scap = r.k.shape[1]!;
  if (!keysNeedCompaction(r)) return r.k;
  const kEst = gpu.empty([Hkv, S, D], r.k.dtype, 'attention.k_compact');
  const rowBytes = D * (r.k.dtype === 'f32' ? 4 : 2);
  for (let h = 0; h < Hkv; h++) batch.copy({ buffer: r.k.buffer, offset: r.k.byteOffset + h * Scap * rowBytes }, { buffer: kEst.buffer, offset: kEst.byteOffset + h * S * rowBytes }, S * rowBytes);
  return kEst;
}

/** A pattern's heads in chunks whose index stays under the binding limit and INDEX_CHUNK_BYTES. */
function headChunks(gpu: Gpu, p: Pattern, S: number, heads: readonly number[]): number[][] {
  const perHead = Math.max(indexBytesPerHead(p, S), 1);
  const n = Math.max(1, Math.min(heads.length, Math.floor(Math.min(gpu.caps.limits.maxStorageBufferBindingSize, INDEX_CHUNK_BYTES) / perHead)));
  const chunks: number[][] = [];
  for (let c0 = 0; c0 < heads.length; c0 += n) chunks.push(heads.slice(c0, c0 + n));
  return chunks;
}

/** Estimates the index of a chunk of heads on the GPU (validated; released on a bad shape). */
function estimateIndex(gpu: Gpu, batch: Batch, r: Prepared, p: Extract<Pattern, { type: 'vertical_and_slash' | 'block_sparse' }>, kEst: Tensor, heads: number[]): SparseIndex {
  const { vsEst, bsEst } = r.kernels;
  const index = p.type === 'vertical_and_slash' ? vsEst!.encode(batch, r.q, kEst, heads, { verticalSize: p.verticalSize, slashSize: p.slashSize }) : bsEst!.encode(batch, r.q, kEst, heads, { topK: p.topK });
  try {
    validateIndex(`attention: ${p.type} estimator`, index, r.v.S, heads.length);
  } catch (e) {
    releaseIndex(gpu, index);
    throw e;
  }
  return index;
}

/** Attends a chunk of heads with its index and counts the index's causal entries per query block (u32 [heads, queryBlocks], the caller's). */
function attendCounting(gpu: Gpu, batch: Batch, r: Prepared, index: SparseIndex, heads: number[]): Tensor {
  const counts = gpu.empty([heads.length, index.queryBlocks], 'u32', 'attention.counts');
  r.kernels.sparse!.encode(batch, r.q, r.k, r.vT, r.out, heads, index);
  r.kernels.sparse!.encodeCount(batch, index, counts);
  return counts;
}

async function prepare(gpu: Gpu, request: AttentionRequest): Promise<Prepared> {
  const v = validateAttentionRequest(gpu, request);
  const groups = groupByPattern(v.patterns);
  // Compile (or fetch) every kernel needed before allocating anything.
  const types = new Set(groups.map((g) => g.pattern.type));
  const kernels = await attentionKernels(gpu, { headDim: v.D, kvDType: v.kvDType, compute: request.compute ?? 'f32', types }, request.estimators);
  const out = request.out ?? gpu.empty([v.H, v.S, v.D], 'f32', 'attention.out');
  return { v, kernels, groups, q: request.q, k: request.k, vT: request.v, out, causal: (v.S * (v.S + 1)) / 2 };
}

/** Causal entry counts of sparse heads, left on the GPU until readDensity. */
export interface PendingDensity {
  /** The request's query heads that the rows of `counts` belong to. */
  heads: number[];
  /** u32 [heads.length, queryBlocks]: the causal entries each head's index computes per query block. */
  counts: Tensor;
  /** The prompt's causal query-key pairs, S(S+1)/2. */
  causal: number;
}

export interface SubmittedAttention {
  out: Tensor;
  /** Per head: 1 (dense), A-shape's exact share, or NaN for the heads `pending` holds. */
  density: number[];
  pending: PendingDensity[];
}

/**
 * Attention with nothing read back (the runner's path): every head is encoded into one batch and
 * submitted (a new batch only when the sparse indexes in flight would pass INDEX_CHUNK_BYTES); the
 * sparse heads' density stays on the GPU as counts until readDensity, which reads any number of
 * calls' counts at once. The indexes go back to the pool with the batch that used them.
 */
export async function submitAttention(gpu: Gpu, request: AttentionRequest): Promise<SubmittedAttention> {
  const r = await prepare(gpu, request);
  const density = new Array<number>(r.v.H).fill(1);
  const pending: PendingDensity[] = [];
  let batch = gpu.batch({ label: 'attention' });
  let kEst: Tensor | undefined;
  try {
    encodeSimpleHeads(batch, r, density);
    kEst = compactKeys(gpu, batch, r);
    let inFlight = 0;
    for (const g of r.groups) {
      const p = g.pattern;
      if (!isEstimated(p)) continue;
      const perHead = Math.max(indexBytesPerHead(p, r.v.S), 1);
      for (const heads of headChunks(gpu, p, r.v.S, g.heads)) {
        if (inFlight > 0 && inFlight + perHead * heads.length > INDEX_CHUNK_BYTES) {
          await batch.submit();
          batch = gpu.batch({ label: 'attention' });
          inFlight = 0;
        }
        const index = estimateIndex(gpu, batch, r, p, kEst, heads);
        inFlight += perHead * heads.length;
        heads.forEach((h) => (density[h] = Number.NaN));
        pending.push({ heads, counts: attendCounting(gpu, batch, r, index, heads), causal: r.causal });
        batch.release(index.blockCount, index.blockOffset, index.columnCount, index.columnIndex);
      }
    }
    if (kEst !== r.k) batch.release(kEst);
    kEst = undefined;
    await batch.submit();
    return { out: r.out, density, pending };
  } catch (e) {
    for (const x of pending) gpu.release(x.counts);
    if (kEst !== undefined && kEst !== r.k) gpu.release(kEst);
    if (r.out !== request.out) gpu.release(r.out);
    throw e;
  }
}

/**
 * Reads the pending counts of any number of submitted attentions with one readback and returns each
 * one's density per head (its NaNs filled). The counts are released.
 */
export async function readDensity(gpu: Gpu, items: readonly Pick<SubmittedAttention, 'density' | 'pending'>[]): Promise<number[][]> {
  const all = items.flatMap((x) => x.pending);
  const result = items.map((x) => [...x.density]);
  if (all.length === 0) return result;
  try {
    const total = all.reduce((a, x) => a + x.counts.numel, 0);
    const joined = gpu.empty([total], 'u32', 'attention.counts_joined');
    let got: Uint32Array;
    try {
      const b = gpu.batch({ label: 'attention.density' });
      let at = 0;
      for (const x of all) {
        b.copy(x.counts, { buffer: joined.buffer, offset: joined.byteOffset + at * 4 }, x.counts.numel * 4);
        at += x.counts.numel;
      }
      await b.submit();
      got = (await gpu.read(joined)) as Uint32Array;
    } finally {
      gpu.release(joined);
    }
    let at = 0;
    items.forEach((item, i) => {
      for (const x of item.pending) {
        const qb = x.counts.numel / x.heads.length;
        x.heads.forEach((h, j) => {
          let n = 0;
          for (let b = 0; b < qb; b++) n += got[at + j * qb + b]!;
          result[i]![h] = n / x.causal;
        });
        at += x.counts.numel;
      }
    });
    return result;
  } finally {
    for (const x of all) gpu.release(x.counts);
  }
}

/** Runs attention for every head with its pattern. */
export async function attention(gpu: Gpu, request: AttentionRequest): Promise<AttentionResult> {
  const profile = request.profile === true;
  if (!profile && !request.returnIndexes) {
    const s = await submitAttention(gpu, request);
    const [density] = await readDensity(gpu, [s]);
    return { out: s.out, density: density! };
  }
  const r = await prepare(gpu, request);
  let kEst: Tensor | undefined;
  try {
    return await run();
  } catch (e) {
    // The caller never sees an output allocated here when the call fails: free it.
    if (r.out !== request.out) gpu.release(r.out);
    throw e;
  } finally {
    if (kEst !== undefined && kEst !== r.k) gpu.release(kEst);
  }

  // Each phase in its own batch, so that estimation and attention are timed apart; indexes read back on request.
  async function run(): Promise<AttentionResult> {
    const H = r.v.H;
    const density = new Array<number>(H).fill(1);
    const indexes: (HeadIndex | null)[] | undefined = request.returnIndexes ? new Array<HeadIndex | null>(H).fill(null) : undefined;
    const times: { label: string; ms: number }[] = [];
    let estimationMs = 0;
    let attentionMs = 0;
    const submit = async (b: Batch, label: string, into: 'estimation' | 'attention'): Promise<void> => {
      const t = await timedSubmit(gpu, b, profile, label);
      if (into === 'estimation') estimationMs += t.ms;
      else attentionMs += t.ms;
      times.push(...t.times);
    };

    // A batch is made only for work it will carry (a profiled one holds a query set until submitted).
    if (hasSimpleHeads(r)) {
      const simple = gpu.batch({ label: 'attention', profile });
      encodeSimpleHeads(simple, r, density);
      await submit(simple, 'attention', 'attention');
    }
    if (keysNeedCompaction(r)) {
      const compact = gpu.batch({ label: 'attention.k_compact' });
      kEst = compactKeys(gpu, compact, r);
      await compact.submit();
    } else kEst = r.k;

    for (const g of r.groups) {
      const p = g.pattern;
      if (!isEstimated(p)) continue;
      for (const heads of headChunks(gpu, p, r.v.S, g.heads)) {
        const estBatch = gpu.batch({ label: `attention.estimate.${p.type}`, profile });
        const index = estimateIndex(gpu, estBatch, r, p, kEst, heads);
        let counts: Tensor | undefined;
        try {
          let attBatch = estBatch;
          if (profile) {
            await submit(estBatch, `estimate.${p.type}`, 'estimation');
            attBatch = gpu.batch({ label: `attention.${p.type}`, profile });
          }
          counts = attendCounting(gpu, attBatch, r, index, heads);
          await submit(attBatch, `attention.${p.type}`, 'attention');
          const pending = [{ heads, counts, causal: r.causal }];
          counts = undefined; // readDensity releases it
          const [d] = await readDensity(gpu, [{ density, pending }]);
          heads.forEach((h) => (density[h] = d![h]!));
          if (indexes) {
            const host = await readIndex(gpu, index);
            heads.forEach((h, i) => {
              indexes[h] = { pattern: p, blockOffsets: host.ranges[i]!, columns: host.columns[i]! };
            });
          }
        } finally {
          releaseIndex(gpu, index);
          gpu.release(counts);
        }
      }
    }

    const result: AttentionResult = { out: r.out, density };
    if (indexes) result.indexes = indexes;
    if (profile) {
      result.timings = { estimationMs, attentionMs };
      result.times = times;
    }
    return result;
  }
}
