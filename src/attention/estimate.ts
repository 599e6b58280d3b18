/**
 * MInference 1.0 online index estimation on the GPU: builds the SparseIndex (types.ts) that the
 * sparse flash-attention kernel consumes, with no host readback, so that estimation and attention
 * can share one submit.
 *
 * Vertical-Slash (shaders/estimate_vertical_slash.wgsl, topk.wgsl, vs_index.wgsl), per index head:
 *   1. the last L = min(64, S) queries are scored against all keys (scaled, causal), softmax per row
 *      in f32 (row max/sum pass, then a scores pass): vertical score of column j = column sum,
 *      slash score of diagonal delta = i - j = diagonal sum; columns j < 30 and diagonals delta < 100
 *      get a forced score above any real one;
 *   2. radix top-k (topk.wgsl) keeps v = min(S, max(V, 30)) columns and s = min(S, max(Sl, 50))
 *      diagonals, as MInference clamps them. The forced ones count towards v and s (as in MInference,
 *      where they are +inf inside the same torch.topk); ties are broken by the lower index (column j,
 *      diagonal delta), so if s < 100 the s nearest diagonals are the ones kept;
 *   3. vs_index.wgsl turns the kept lists into per-(head, query block) block and column lists with
 *      MInference's convert_vertical_slash_indexes semantics (see that shader's header).
 * Block-Sparse (shaders/estimate_block_sparse.wgsl): mean-pooled 64-token blocks of q and k, scaled
 *   pooled scores, causal at block level, top min(topK, qb + 1) key blocks per query block (ties to
 *   the lower block), listed ascending as offsets kb * 64; no columns. (MInference pads the last
 *   block with zeros before pooling and takes top min(topK, S // 64) over all blocks including
 *   masked ones; we pool the last block over its real tokens and only rank causal blocks.)
 *
 * Index head i of the returned SparseIndex is query head heads[i]. The caller releases the index
 * tensors (gpu.release(index.blockCount, ...)); scratch is released into the batch (the pool reuses
 * it only once that batch is submitted).
 */
import type { Batch, Gpu, Program, Resource } from '../gpu/gpu.ts';
import { BadInputError, DTypeError, ShapeError, UnsupportedError } from '../gpu/errors.ts';
import { Tensor } from '../tensor.ts';
import { ceilDiv, foldGrid } from '../kernels/grid.ts';
import { BLOCK, type SparseIndex } from './types.ts';

export type EstimateDType = 'f32' | 'f16' | 'bf16';
const DT_CODE = { f32: 0, f16: 1, bf16: 2 } as const;
const HEAD_DIMS = [64, 96, 128] as const;

/** MInference's estimation constants (minference_forward.py). */
export const LAST_Q = 64;
export const FORCED_COLUMNS = 30;
export const FORCED_DIAGONALS = 100;
export const MIN_VERTICAL = 30;
export const MIN_SLASH = 50;
export const DEFAULT_BLOCK_SPARSE_TOP_K = 100;

export interface EstimatorOptions {
  headDim: number;
  /** dtype of q and k (f16/bf16 packed two per u32). Default f32. */
  dtype?: EstimateDType;
}

export interface VerticalSlashEstimatorOptions extends EstimatorOptions {
  /**
   * Scratch budget in bytes (default 128 MiB): heads are estimated in groups whose scratch (scores,
   * diagonal partials, top-k state) fits it, reusing the same buffers group after group.
   */
  scratchBytes?: number;
}

export interface BlockSparseEstimatorOptions extends EstimatorOptions {
  /** Longest sequence encode() accepts; sizes the per-thread candidate registers. Default 512K. */
  maxSeqLen?: number;
}

export interface VerticalSlashParams {
  verticalSize: number;
  slashSize: number;
}

export interface BlockSparseParams {
  topK?: number;
}

/** Columns and diagonals kept for a sequence of length S, clamped as MInference does. */
export function keptCounts(S: number, p: VerticalSlashParams): { columns: number; slashes: number } {
  return { columns: Math.min(S, Math.max(p.verticalSize, MIN_VERTICAL)), slashes: Math.min(S, Math.max(p.slashSize, MIN_SLASH)) };
}

/** Only the bindings a program's entry point uses (entry points of one file use different subsets). */
function pick(p: Program, all: Readonly<Record<string, Resource>>): Record<string, Resource> {
  const out: Record<string, Resource> = {};
  for (const b of p.layout.bindings) {
    const r = all[b.name];
    if (b.kind !== 'uniform' && r) out[b.name] = r;
  }
  return out;
}

interface QkShape {
  H: number;
  Hkv: number;
  S: number;
  D: number;
}

function validateQk(op: string, q: Tensor, k: Tensor, heads: readonly number[], headDim: number, dtype: EstimateDType): QkShape {
  if (q.shape.length !== 3 || k.shape.length !== 3) {
    throw new ShapeError(`${op}: q must be [H, S, D] and k [Hkv, S, D], got ${q.describe()} and ${k.describe()}`);
  }
  const [H, S, D] = q.shape as [number, number, number];
  const [Hkv, Sk, Dk] = k.shape as [number, number, number];
  if (q.dtype !== dtype || k.dtype !== dtype) throw new DTypeError(`${op}: q and k must be ${dtype} (this estimator's dtype), got ${q.describe()} and ${k.describe()}`);
  if (D !== headDim || Dk !== headDim) throw new ShapeError(`${op}: head dim must be ${headDim} (this estimator's), got ${q.describe()} and ${k.describe()}`);
  if (Sk !== S) throw new ShapeError(`${op}: q and k sequence lengths differ: ${q.describe()}, ${k.describe()}`);
  if (H % Hkv !== 0) throw new ShapeError(`${op}: query heads ${H} are not a multiple of kv heads ${Hkv}`);
  if (heads.length === 0) throw new BadInputError(`${op}: no heads given`);
  for (const h of heads) {
    if (!Number.isInteger(h) || h < 0 || h >= H) throw new BadInputError(`${op}: head ${h} is not a query head of q (0..${H - 1})`);
  }
  return { H, Hkv, S, D };
}

function checkCount(op: string, name: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new BadInputError(`${op}: ${name} must be an integer >= ${min}, got ${String(v)}`);
  return v;
}

function checkGrid(gpu: Gpu, op: string, ...dims: number[]): void {
  const max = gpu.caps.limits.maxComputeWorkgroupsPerDimension;
  for (const d of dims) if (d > max) throw new UnsupportedError(`${op}: needs ${d} workgroups in one grid dimension (device max ${max}); the sequence is too long`);
}

function headDimCheck(op: string, o: EstimatorOptions): EstimateDType {
  if (!(HEAD_DIMS as readonly number[]).includes(o.headDim)) throw new UnsupportedError(`${op}: head dim ${o.headDim} is not supported (${HEAD_DIMS.join(', ')})`);
  const dt = o.dtype ?? 'f32';
  if (!(dt in DT_CODE)) throw new DTypeError(`${op}: dtype ${String(dt)} is not supported (f32, f16, bf16)`);
  return dt;
}

// ---------------------------------------------------------------- top-k

/** Values per workgroup of topk.wgsl (WG 256 x ITEMS 16). */
const TOPK_CHUNK = 4096;

/**
 * Batched radix top-k (shaders/topk.wgsl): for each row p of values [P, n] (f32), the indices of
 * the k[p] largest values, ascending, into out[p, 0 .. k[p]) (out is [P, cap], cap >= max k).
 * Ties go to the lower index.
 */
export class RadixTopK {
  private constructor(
    private readonly gpu: Gpu,
    private readonly programs: Record<'init' | 'histogram' | 'select_digit' | 'count' | 'scan' | 'compact', Program>,
  ) {}

  static async create(gpu: Gpu): Promise<RadixTopK> {
    const names = ['init', 'histogram', 'select_digit', 'count', 'scan', 'compact'] as const;
    const progs = await Promise.all(names.map((entryPoint) => gpu.compile({ shader: 'topk.wgsl', entryPoint })));
    return new RadixTopK(gpu, Object.fromEntries(names.map((n, i) => [n, progs[i]!])) as RadixTopK['programs']);
  }

  /** ks: k per row (host copy, for validation); kTensor: the same values as u32 [P] on the GPU. */
  encode(batch: Batch, values: Tensor, ks: readonly number[], kTensor: Tensor, out: Tensor): void {
    const op = 'topk';
    if (values.dtype !== 'f32' || values.shape.length !== 2) throw new ShapeError(`${op}: values must be f32 [P, n], got ${values.describe()}`);
    const [P, n] = values.shape as [number, number];
    if (out.dtype !== 'u32' || out.shape.length !== 2 || out.shape[0] !== P) throw new ShapeError(`${op}: out must be u32 [${P}, cap], got ${out.describe()}`);
    const cap = out.shape[1]!;
    if (kTensor.dtype !== 'u32' || kTensor.numel !== P || ks.length !== P) throw new ShapeError(`${op}: k must have ${P} u32 values, got ${ks.length} and ${kTensor.describe()}`);
    for (const k of ks) {
      if (!Number.isInteger(k) || k < 1 || k > n || k > cap) throw new BadInputError(`${op}: k = ${k} must be in 1..min(n = ${n}, cap = ${cap})`);
    }
    const nchunks = ceilDiv(n, TOPK_CHUNK);
    checkGrid(this.gpu, op, nchunks, P);
    const hist = this.gpu.empty([P * 256], 'u32', 'topk.hist');
    const state = this.gpu.empty([P * 4], 'u32', 'topk.state');
    const chunks = this.gpu.empty([P * nchunks * 2], 'u32', 'topk.chunks');
    const all = { values, kvals: kTensor, hist, state, chunks, out };
    const base = { n, P, cap, nchunks, shift: 0, hmask: 0 };
    const run = (name: keyof RadixTopK['programs'], workgroups: [number, number?], params = base): void => {
      const program = this.programs[name];
      batch.dispatch({ program, bindings: pick(program, all), params, workgroups, label: `topk.${name}` });
    };
    run('init', [P]);
    for (let shift = 24; shift >= 0; shift -= 8) {
      // hmask: the key bits decided by earlier rounds (all bits above this byte).
      const params = { ...base, shift, hmask: shift === 24 ? 0 : (0xffffffff << (shift + 8)) >>> 0 };
      run('histogram', [nchunks, P], params);
      run('select_digit', [P], params);
    }
    run('count', [nchunks, P]);
    run('scan', [P]);
    run('compact', [nchunks, P]);
    batch.release(hist, state, chunks);
  }
}

// ---------------------------------------------------------------- Vertical-Slash

/** Default scratch budget (bytes): heads are processed in groups so that 512K tokens fit. */
const VS_GROUP_BYTES = 128 * 1024 * 1024;
const ROW_CHUNK_KEYS = 1024; // KT (16) x 64 keys per row_partial workgroup
const DIAGS_PER_TILE = 127;

/** Kept columns and diagonals of a group of heads (internal: top-k output, vs_index input). */
interface VerticalSlashSelection {
  /** u32 [2 * heads, cap]: rows 0..heads-1 kept columns ascending, rows heads.. kept diagonals ascending. */
  selected: Tensor;
  /** u32 [2 * heads]: how many each row kept. */
  counts: Tensor;
  /** Host copy of counts. */
  countsHost: number[];
}

export class VerticalSlashEstimator {
  private constructor(
    private readonly gpu: Gpu,
    private readonly headDim: number,
    private readonly dtype: EstimateDType,
    private readonly est: Record<'row_partial' | 'row_reduce' | 'tile_scores' | 'diag_combine', Program>,
    private readonly index: Program,
    private readonly topk: RadixTopK,
    private readonly scratchBytes: number,
  ) {}

  static async create(gpu: Gpu, options: VerticalSlashEstimatorOptions): Promise<VerticalSlashEstimator> {
    const dtype = headDimCheck('VerticalSlashEstimator', options);
    const scratchBytes = checkCount('VerticalSlashEstimator', 'scratchBytes', options.scratchBytes ?? VS_GROUP_BYTES, 1);
    const defines = { DT: DT_CODE[dtype] };
    const names = ['row_partial', 'row_reduce', 'tile_scores', 'diag_combine'] as const;
    const [progs, index, topk] = await Promise.all([
      Promise.all(names.map((entryPoint) => gpu.compile({ shader: 'estimate_vertical_slash.wgsl', entryPoint, defines }))),
      gpu.compile({ shader: 'vs_index.wgsl' }),
      RadixTopK.create(gpu),
    ]);
    const est = Object.fromEntries(names.map((n, i) => [n, progs[i]!])) as VerticalSlashEstimator['est'];
    return new VerticalSlashEstimator(gpu, options.headDim, dtype, est, index, topk, scratchBytes);
  }

  private resolve(q: Tensor, k: Tensor, heads: readonly number[], params: VerticalSlashParams | readonly VerticalSlashParams[]) {
    const op = 'vertical_slash estimate';
    const shape = validateQk(op, q, k, heads, this.headDim, this.dtype);
    const list = Array.isArray(params) ? (params as readonly VerticalSlashParams[]) : heads.map(() => params as VerticalSlashParams);
    if (list.length !== heads.length) throw new BadInputError(`${op}: ${list.length} parameter sets for ${heads.length} heads`);
    const kept = list.map((p) => {
      checkCount(op, 'verticalSize', p?.verticalSize, 0);
      checkCount(op, 'slashSize', p?.slashSize, 0);
      return keptCounts(shape.S, p);
    });
    const nqb = ceilDiv(shape.S, BLOCK);
    checkGrid(this.gpu, op, nqb, ceilDiv(shape.S, 256));
    return { ...shape, kept, nqb };
  }

  /**
   * Encodes the whole estimation: returns the index for query heads `heads` (index head i = heads[i]).
   * params: one set for all heads, or one per head.
   */
  encode(batch: Batch, q: Tensor, k: Tensor, heads: readonly number[], params: VerticalSlashParams | readonly VerticalSlashParams[]): SparseIndex {
    const r = this.resolve(q, k, heads, params);
    const index = this.allocIndex(heads.length, r.S, r.kept);
    this.encodeGroups(batch, q, k, heads, r, (g0, gn, sel) => this.encodeIndex(batch, index, g0, gn, sel));
    return index;
  }

  /**
   * Step 3 alone, from given kept lists (one entry per index head): columns and diagonals (delta),
   * each ascending, unique, in [0, S); the diagonals must include 0 (MInference's kernel relies on
   * it, and estimation always keeps it). For static patterns and tests.
   */
  encodeIndexFromLists(batch: Batch, S: number, lists: readonly { columns: readonly number[]; slashes: readonly number[] }[]): SparseIndex {
    const op = 'vertical_slash index';
    checkCount(op, 'S', S, 1);
    if (lists.length === 0) throw new BadInputError(`${op}: no heads given`);
    lists.forEach((l, h) => {
      for (const [name, xs] of [
        ['columns', l.columns],
        ['slashes', l.slashes],
      ] as const) {
        if (xs.length === 0) throw new BadInputError(`${op}: head ${h} has no ${name}`);
        xs.forEach((x, i) => {
          if (!Number.isInteger(x) || x < 0 || x >= S || (i > 0 && x <= xs[i - 1]!)) {
            throw new BadInputError(`${op}: head ${h} ${name} must be ascending unique integers in [0, ${S}), got ${x} at ${i}`);
          }
        });
      }
      if (l.slashes[0] !== 0) throw new BadInputError(`${op}: head ${h} slashes must include diagonal 0`);
    });
    const nh = lists.length;
    const nqb = ceilDiv(S, BLOCK);
    checkGrid(this.gpu, op, nqb);
    const kept = lists.map((l) => ({ columns: l.columns.length, slashes: l.slashes.length }));
    const cap = Math.max(...kept.map((x) => Math.max(x.columns, x.slashes)));
    const sel = new Uint32Array(2 * nh * cap);
    lists.forEach((l, h) => {
      sel.set(l.columns, h * cap);
      sel.set(l.slashes, (nh + h) * cap);
    });
    const countsHost = [...kept.map((x) => x.columns), ...kept.map((x) => x.slashes)];
    const selected = this.gpu.upload(sel, [2 * nh, cap], 'u32', 'vs.selected');
    const counts = this.gpu.upload(Uint32Array.from(countsHost), [2 * nh], 'u32', 'vs.kept');
    const index = this.allocIndex(nh, S, kept);
    this.encodeIndex(batch, index, 0, nh, { selected, counts, countsHost });
    batch.release(selected, counts);
    return index;
  }

  private allocIndex(nh: number, S: number, kept: readonly { columns: number; slashes: number }[]): SparseIndex {
    const nqb = ceilDiv(S, BLOCK);
    const maxColumns = Math.max(...kept.map((x) => x.columns));
    const maxSlashes = Math.max(...kept.map((x) => x.slashes));
    const maxBlocks = Math.min(nqb, maxSlashes + 1);
    const colCap = Math.max(maxColumns, 1);
    return {
      heads: nh,
      seqLen: S,
      queryBlocks: nqb,
      maxBlocks,
      maxColumns,
      blockCount: this.gpu.empty([nh, nqb], 'u32', 'vs.blockCount'),
      blockOffset: this.gpu.empty([nh, nqb, maxBlocks], 'u32', 'vs.blockOffset'),
      columnCount: this.gpu.empty([nh, nqb], 'u32', 'vs.columnCount'),
      columnIndex: this.gpu.empty([nh, nqb, colCap], 'u32', 'vs.columnIndex'),
    };
  }

  /** vs_index.wgsl for index heads [g0, g0 + gn) from their selection. */
  private encodeIndex(batch: Batch, index: SparseIndex, g0: number, gn: number, sel: VerticalSlashSelection): void {
    const program = this.index;
    const nqb = index.queryBlocks;
    const [x, y] = foldGrid(ceilDiv(gn * nqb, 64), this.gpu.caps.limits.maxComputeWorkgroupsPerDimension);
    const all = {
      sel: sel.selected,
      kvals: sel.counts,
      block_count: index.blockCount,
      block_offset: index.blockOffset,
      column_count: index.columnCount,
      column_index: index.columnIndex,
    };
    batch.dispatch({
      program,
      bindings: pick(program, all),
      params: { nqb, heads: gn, head_base: g0, cap: sel.selected.shape[1]!, maxBlocks: index.maxBlocks, colCap: Math.max(index.maxColumns, 1) },
      workgroups: [x, y],
      label: 'estimate.vs_index',
    });
  }

  /**
   * Runs steps 1-2 per group of heads and hands each group's selection to `then` (which encodes its
   * consumer before the scratch is reused by the next group).
   */
  private encodeGroups(
    batch: Batch,
    q: Tensor,
    k: Tensor,
    heads: readonly number[],
    r: QkShape & { kept: { columns: number; slashes: number }[]; nqb: number },
    then: (g0: number, gn: number, sel: VerticalSlashSelection) => void,
  ): void {
    const gpu = this.gpu;
    const { S, H, Hkv } = r;
    const L = Math.min(LAST_Q, S);
    const nh = heads.length;
    const nchunks = ceilDiv(S, ROW_CHUNK_KEYS);
    const ntiles = r.nqb;
    const cap = Math.max(...r.kept.map((x) => Math.max(x.columns, x.slashes)));
    const perHead = 4 * (nchunks * LAST_Q * 2 + LAST_Q * 2 + ntiles * DIAGS_PER_TILE + 2 * S + 2 * cap + 2 + 2 * 256 + 4 + 2 * 2 * ceilDiv(S, TOPK_CHUNK));
    const G = Math.max(1, Math.min(nh, Math.floor(this.scratchBytes / perHead)));
    const headIds = gpu.upload(Uint32Array.from(heads), [nh], 'u32', 'vs.heads');
    const part = gpu.empty([G * nchunks * LAST_Q * 2], 'f32', 'vs.part');
    const stats = gpu.empty([G * LAST_Q * 2], 'f32', 'vs.stats');
    const diag = gpu.empty([G * ntiles * DIAGS_PER_TILE], 'f32', 'vs.diag');
    const scores = gpu.empty([2 * G, S], 'f32', 'vs.scores');
    const scratch: Tensor[] = [headIds, part, stats, diag, scores];
    for (let g0 = 0; g0 < nh; g0 += G) {
      const gn = Math.min(G, nh - g0);
      const params = { D: r.D, S, L, H, Hkv, heads: gn, nchunks, ntiles, scale: 1 / Math.sqrt(r.D), head_base: g0 };
      const all = { q, k, head_ids: headIds, part, stats, diag, scores };
      const run = (name: keyof VerticalSlashEstimator['est'], workgroups: [number, number?]): void => {
        const program = this.est[name];
        batch.dispatch({ program, bindings: pick(program, all), params, workgroups, label: `estimate.vs.${name}` });
      };
      run('row_partial', [nchunks, gn]);
      run('row_reduce', [gn]);
      run('tile_scores', [ntiles, gn]);
      run('diag_combine', [ceilDiv(S, 256), gn]);
      // Top-k over the 2 * gn score rows (scores rows beyond 2 * gn of a last, smaller group are not read).
      const kept = r.kept.slice(g0, g0 + gn);
      const ks = [...kept.map((x) => x.columns), ...kept.map((x) => x.slashes)];
      const counts = gpu.upload(Uint32Array.from(ks), [2 * gn], 'u32', 'vs.kept');
      const selected = gpu.empty([2 * gn, cap], 'u32', 'vs.selected');
      // The shaders write vertical rows at hi and slash rows at gn + hi: [2, gn, S] at the front.
      const values = new Tensor(scores.buffer, [2 * gn, S], 'f32', scores.byteOffset, 'vs.scores');
      this.topk.encode(batch, values, ks, counts, selected);
      then(g0, gn, { selected, counts, countsHost: ks });
      batch.release(counts, selected);
    }
    batch.release(...scratch);
  }
}

// ---------------------------------------------------------------- Block-Sparse

const SELECT_THREADS = 256; // workgroup size of select_blocks

export class BlockSparseEstimator {
  private constructor(
    private readonly gpu: Gpu,
    private readonly headDim: number,
    private readonly dtype: EstimateDType,
    private readonly maxSeqLen: number,
    private readonly programs: Record<'pool_q' | 'pool_k' | 'select_blocks', Program>,
  ) {}

  static async create(gpu: Gpu, options: BlockSparseEstimatorOptions): Promise<BlockSparseEstimator> {
    const dtype = headDimCheck('BlockSparseEstimator', options);
    const maxSeqLen = options.maxSeqLen ?? 512 * 1024;
    checkCount('BlockSparseEstimator', 'maxSeqLen', maxSeqLen, 1);
    // Each of the 256 select threads holds ceil(nqb / 256) candidate keys in registers.
    const maxItems = Math.max(1, ceilDiv(ceilDiv(maxSeqLen, BLOCK), SELECT_THREADS));
    const defines = { DT: DT_CODE[dtype], MAX_ITEMS: maxItems };
    const names = ['pool_q', 'pool_k', 'select_blocks'] as const;
    const progs = await Promise.all(names.map((entryPoint) => gpu.compile({ shader: 'estimate_block_sparse.wgsl', entryPoint, defines })));
    return new BlockSparseEstimator(gpu, options.headDim, dtype, maxSeqLen, Object.fromEntries(names.map((n, i) => [n, progs[i]!])) as BlockSparseEstimator['programs']);
  }

  encode(batch: Batch, q: Tensor, k: Tensor, heads: readonly number[], params: BlockSparseParams = {}): SparseIndex {
    const op = 'block_sparse estimate';
    const { H, Hkv, S, D } = validateQk(op, q, k, heads, this.headDim, this.dtype);
    const topK = checkCount(op, 'topK', params.topK ?? DEFAULT_BLOCK_SPARSE_TOP_K, 1);
    if (S > this.maxSeqLen) throw new UnsupportedError(`${op}: sequence length ${S} exceeds this estimator's maxSeqLen ${this.maxSeqLen} (BlockSparseEstimator.create option)`);
    const gpu = this.gpu;
    const nh = heads.length;
    const nqb = ceilDiv(S, BLOCK);
    checkGrid(gpu, op, nqb, nh, Hkv);
    const maxBlocks = Math.min(topK, nqb);
    const index: SparseIndex = {
      heads: nh,
      seqLen: S,
      queryBlocks: nqb,
      maxBlocks,
      maxColumns: 0,
      blockCount: gpu.empty([nh, nqb], 'u32', 'bs.blockCount'),
      blockOffset: gpu.empty([nh, nqb, maxBlocks], 'u32', 'bs.blockOffset'),
      columnCount: gpu.empty([nh, nqb], 'u32', 'bs.columnCount'),
      columnIndex: gpu.empty([nh, nqb, 1], 'u32', 'bs.columnIndex'),
    };
    const headIds = gpu.upload(Uint32Array.from(heads), [nh], 'u32', 'bs.heads');
    const pq = gpu.empty([nh, nqb, D], 'f32', 'bs.pq');
    const pk = gpu.empty([Hkv, nqb, D], 'f32', 'bs.pk');
    const all = {
      q,
      k,
      head_ids: headIds,
      pq,
      pk,
      block_count: index.blockCount,
      block_offset: index.blockOffset,
      column_count: index.columnCount,
      column_index: index.columnIndex,
    };
    const params2 = { D, S, H, Hkv, nqb, topK, maxBlocks, head_base: 0, scale: 1 / Math.sqrt(D) };
    const run = (name: keyof BlockSparseEstimator['programs'], workgroups: [number, number]): void => {
      const program = this.programs[name];
      batch.dispatch({ program, bindings: pick(program, all), params: params2, workgroups, label: `estimate.bs.${name}` });
    };
    run('pool_q', [nqb, nh]);
    run('pool_k', [nqb, Hkv]);
    run('select_blocks', [nqb, nh]);
    batch.release(headIds, pq, pk);
    return index;
  }
}
