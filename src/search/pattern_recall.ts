/**
 * Attention recall of sparse patterns on the GPU (shaders/pattern_recall.wgsl), the measuring
 * stick of the pattern search: for sampled query rows of each head, the share of the row's dense
 * causal softmax mass that a pattern keeps, and the error of a pattern's attention output against
 * the dense one on the same rows.
 *
 *   const recall = await PatternRecallKernel.create(gpu, { headDim: 64 });
 *   const rows = uploadRows(gpu, [4096, 4200, ..., S - 1], S);          // sampled query positions
 *   recall.encodeStats(batch, q, k, rows, heads, stats);                // row max and normaliser
 *   recall.encodeKept(batch, q, k, rows, heads, stats, kept, { index }); // or { nInit, nLocal } (A-shape)
 *   recall.encodeError(batch, out, dense, rows, heads, err);
 *
 * Shapes: q [H, S, D] f32, k [Hkv, S, D] f32 (exactly S rows: the whole prompt's keys), R sampled
 * rows, heads: query heads (a list or a u32 tensor); stats [H, R, 2], kept [H, R], err [H, R, 2]
 * f32, written for the listed heads only. A SparseIndex serves the listed heads in order (slot y =
 * heads[y]), as the estimators produce it for the same list.
 */
import type { Batch, Gpu, Program } from '../gpu/gpu.ts';
import { BadInputError, DTypeError, ShapeError, UnsupportedError } from '../gpu/errors.ts';
import type { Tensor } from '../tensor.ts';
import { HeadLists, SUPPORTED_HEAD_DIMS } from '../attention/dense.ts';
import { validateIndex } from '../attention/sparse.ts';
import type { SparseIndex } from '../attention/types.ts';
import { reduceDefines, type ReduceVariant } from '../kernels/reduce.ts';

export interface PatternRecallOptions {
  headDim: number;
  variant?: ReduceVariant;
}

/** What a pattern keeps: the listed keys of a sparse index, or A-shape's sink and window. */
export type KeptSet = { index: SparseIndex } | { nInit: number; nLocal: number };

/** f32 scores and sums over up to S keys: relative error of a kept share a few 1e-6 (kernel cases). */
export const RECALL_TOLERANCE = { atol: 2e-5, rtol: 1e-4 } as const;

/** Sampled query rows: positions checked against the sequence length, uploaded once. */
export interface SampledRows {
  readonly positions: readonly number[];
  readonly seqLen: number;
  /** u32 [R]; the caller releases it (gpu.release(rows.tensor)). */
  readonly tensor: Tensor;
}

/** Uploads sampled query positions (each an integer in [0, seqLen)). */
export function uploadRows(gpu: Gpu, positions: readonly number[], seqLen: number): SampledRows {
  if (!Number.isSafeInteger(seqLen) || seqLen < 1) throw new BadInputError(`pattern_recall rows: sequence length must be a positive integer, got ${seqLen}`);
  if (positions.length === 0) throw new BadInputError('pattern_recall rows: no rows given');
  positions.forEach((p, i) => {
    if (!Number.isInteger(p) || p < 0 || p >= seqLen) throw new BadInputError(`pattern_recall rows: row ${i} is ${p}, outside 0..${seqLen - 1}`);
  });
  return { positions: [...positions], seqLen, tensor: gpu.upload(Uint32Array.from(positions), [positions.length], 'u32', 'recall.rows') };
}

interface Shape {
  H: number;
  Hkv: number;
  S: number;
  D: number;
  R: number;
}

export class PatternRecallKernel {
  private readonly lists: HeadLists;

  private constructor(
    private readonly gpu: Gpu,
    readonly headDim: number,
    private readonly programs: { stats: Program; index: Program; aShape: Program; error: Program },
  ) {
    this.lists = new HeadLists(gpu);
  }

  static async create(gpu: Gpu, options: PatternRecallOptions): Promise<PatternRecallKernel> {
    const D = options.headDim;
    if (!SUPPORTED_HEAD_DIMS.includes(D)) throw new UnsupportedError(`pattern_recall: head dim ${D} is not supported (supported: ${SUPPORTED_HEAD_DIMS.join(', ')})`);
    const base = { HEAD_DIM: D, ...reduceDefines(gpu, options.variant, 'pattern_recall') };
    const [stats, index, aShape, error] = await Promise.all([
      gpu.compile({ shader: 'pattern_recall.wgsl', entryPoint: 'row_stats', defines: { ...base, KEPT: 0 } }),
      gpu.compile({ shader: 'pattern_recall.wgsl', entryPoint: 'kept_mass', defines: { ...base, KEPT: 0 } }),
      gpu.compile({ shader: 'pattern_recall.wgsl', entryPoint: 'kept_mass', defines: { ...base, KEPT: 1 } }),
      gpu.compile({ shader: 'pattern_recall.wgsl', entryPoint: 'row_error', defines: { ...base, KEPT: 0 } }),
    ]);
    return new PatternRecallKernel(gpu, D, { stats, index, aShape, error });
  }

  /**
   * Checks the two [heads, S, D] f32 inputs (q and k, or a pattern's output and the dense one), the
   * rows and the per-row outputs; returns the shape.
   */
  private validate(op: string, [nameA, x]: [string, Tensor], [nameB, y]: [string, Tensor], rows: SampledRows, outs: [string, Tensor, number][]): Shape {
    for (const [name, t] of [[nameA, x], [nameB, y]] as const) {
      if (t.dtype !== 'f32') throw new DTypeError(`${op}: ${name} must be f32, got ${t.describe()}`);
      if (t.shape.length !== 3) throw new ShapeError(`${op}: ${name} must be [heads, S, D], got ${t.describe()}`);
    }
    const [H, S, D] = x.shape as [number, number, number];
    const [Hkv, Sk, Dk] = y.shape as [number, number, number];
    if (D !== this.headDim || Dk !== D) throw new ShapeError(`${op}: ${nameA} ${x.describe()} and ${nameB} ${y.describe()} must have head dim ${this.headDim} (the kernel's)`);
    if (Sk !== S) throw new ShapeError(`${op}: ${nameB} ${y.describe()} must hold exactly the ${S} rows of ${nameA} ${x.describe()}`);
    if (H % Hkv !== 0) throw new ShapeError(`${op}: ${nameA} heads H=${H} must be a multiple of ${nameB} heads ${Hkv}`);
    if (rows.seqLen !== S) throw new ShapeError(`${op}: the rows were sampled for S=${rows.seqLen}, the tensors have S=${S}`);
    if (rows.tensor.dtype !== 'u32' || rows.tensor.numel !== rows.positions.length) throw new ShapeError(`${op}: rows tensor ${rows.tensor.describe()} must hold the ${rows.positions.length} positions`);
    const R = rows.positions.length;
    for (const [name, t, width] of outs) {
      const want = width === 1 ? [H, R] : [H, R, width];
      if (t.dtype !== 'f32' || t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
        throw new ShapeError(`${op}: ${name} ${t.describe()} must be f32 [${want.join(', ')}]`);
      }
    }
    const max = this.gpu.caps.limits.maxComputeWorkgroupsPerDimension;
    if (R > max || H > max) throw new ShapeError(`${op}: ${R} rows x ${H} heads exceed ${max} workgroups per dimension`);
    return { H, Hkv, S, D, R };
  }

  private params(s: Shape, extra: Partial<Record<'n_init' | 'n_local' | 'qblocks' | 'max_blocks' | 'col_stride', number>> = {}): Record<string, number> {
    return { S: s.S, R: s.R, H: s.H, Hkv: s.Hkv, scale: 1 / Math.sqrt(s.D), n_init: 0, n_local: 0, qblocks: 0, max_blocks: 0, col_stride: 1, ...extra };
  }

  /** Row max and softmax normaliser of every (listed head, sampled row) over its causal keys. */
  encodeStats(batch: Batch, q: Tensor, k: Tensor, rows: SampledRows, heads: Tensor | readonly number[], stats: Tensor): void {
    const op = 'pattern_recall.stats';
    const s = this.validate(op, ['q', q], ['k', k], rows, [['stats', stats, 2]]);
    const list = this.lists.get(op, heads, s.H);
    batch.dispatch({ program: this.programs.stats, bindings: { q, k, rows: rows.tensor, heads: list.tensor, stats }, params: this.params(s), workgroups: [s.R, list.n], label: op });
  }

  /** The share of each row's softmax mass a pattern keeps (stats from encodeStats of the same rows). */
  encodeKept(batch: Batch, q: Tensor, k: Tensor, rows: SampledRows, heads: Tensor | readonly number[], stats: Tensor, kept: Tensor, set: KeptSet): void {
    const op = 'pattern_recall.kept';
    const s = this.validate(op, ['q', q], ['k', k], rows, [['stats', stats, 2], ['kept', kept, 1]]);
    const list = this.lists.get(op, heads, s.H);
    const common = { q, k, rows: rows.tensor, heads: list.tensor, stats, kept };
    if ('index' in set) {
      const index = set.index;
      validateIndex(op, index, s.S, list.n);
      const params = this.params(s, { qblocks: index.queryBlocks, max_blocks: index.maxBlocks, col_stride: Math.max(index.maxColumns, 1) });
      const bindings = { ...common, block_count: index.blockCount, block_offset: index.blockOffset, column_count: index.columnCount, column_index: index.columnIndex };
      batch.dispatch({ program: this.programs.index, bindings, params, workgroups: [s.R, list.n], label: op });
      return;
    }
    const { nInit, nLocal } = set;
    if (!Number.isInteger(nInit) || nInit < 0 || !Number.isInteger(nLocal) || nLocal < 0 || nInit + nLocal < 1 || nInit > 2 ** 32 - 1 || nLocal > 2 ** 32 - 1) {
      throw new BadInputError(`${op}: A-shape needs integers nInit >= 0 and nLocal >= 0 keeping at least one key, got ${nInit}, ${nLocal}`);
    }
    batch.dispatch({ program: this.programs.aShape, bindings: common, params: this.params(s, { n_init: nInit, n_local: nLocal }), workgroups: [s.R, list.n], label: op });
  }

  /** Per (listed head, row): squared error of `out` against `dense`, and the squared norm of `dense`. */
  encodeError(batch: Batch, out: Tensor, dense: Tensor, rows: SampledRows, heads: Tensor | readonly number[], err: Tensor): void {
    const op = 'pattern_recall.error';
    if (out.shape.length !== dense.shape.length || out.shape.some((d, i) => d !== dense.shape[i])) throw new ShapeError(`${op}: out ${out.describe()} and dense ${dense.describe()} differ in shape`);
    const s = this.validate(op, ['out', out], ['dense', dense], rows, [['err', err, 2]]);
    const list = this.lists.get(op, heads, s.H);
    batch.dispatch({ program: this.programs.error, bindings: { rows: rows.tensor, heads: list.tensor, a: out, b: dense, err }, params: this.params(s), workgroups: [s.R, list.n], label: op });
  }

  destroy(): void {
    this.lists.destroy();
  }
}
