/**
 * Sparse-index flash attention (shaders/attention.wgsl, MODE 2), prefill, used by Vertical-Slash and
 * Block-Sparse: per (head, 64-query block) it attends exactly the listed 64-key ranges and the listed
 * single columns (gathered into tiles), with the causal mask per element and keys >= S ignored.
 * Also: uploading a host-built index, reading an index back, and counting its causal entries
 * (density) on the GPU.
 */
import type { Batch, Gpu, Program } from '../gpu/gpu.ts';
import { DTypeError, ShapeError } from '../gpu/errors.ts';
import type { Tensor } from '../tensor.ts';
import { foldGrid } from '../kernels/grid.ts';
import { BLOCK, type SparseIndex } from './types.ts';
import {
  AttentionKernelBase,
  kernelBasics,
  attentionDefines,
  compileAttention,
  baseParams,
  type AttentionKernelOptions,
  type AttentionShape,
  type KernelBasics,
} from './dense.ts';

/** Checks an index against a prefill of S rows served for `n` listed heads. */
export function validateIndex(op: string, index: SparseIndex, S: number, n: number): void {
  const qb = Math.ceil(S / BLOCK);
  if (index.seqLen !== S) throw new ShapeError(`${op}: index seqLen ${index.seqLen} differs from S=${S}`);
  if (index.queryBlocks !== qb) throw new ShapeError(`${op}: index has ${index.queryBlocks} query blocks, S=${S} needs ${qb}`);
  if (index.heads !== n) throw new ShapeError(`${op}: index covers ${index.heads} heads, the head list has ${n}`);
  if (!Number.isInteger(index.maxBlocks) || index.maxBlocks < 1) throw new ShapeError(`${op}: index maxBlocks=${index.maxBlocks} must be >= 1`);
  if (!Number.isInteger(index.maxColumns) || index.maxColumns < 0) throw new ShapeError(`${op}: index maxColumns=${index.maxColumns} must be >= 0`);
  const want: [string, Tensor, number[]][] = [
    ['blockCount', index.blockCount, [n, qb]],
    ['blockOffset', index.blockOffset, [n, qb, index.maxBlocks]],
    ['columnCount', index.columnCount, [n, qb]],
    ['columnIndex', index.columnIndex, [n, qb, Math.max(index.maxColumns, 1)]],
  ];
  for (const [name, t, shape] of want) {
    if (t.dtype !== 'u32') throw new DTypeError(`${op}: index ${name} must be u32, got ${t.describe()}`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new ShapeError(`${op}: index ${name} ${t.describe()} must have shape [${shape.join(', ')}]`);
    }
  }
}

/** Per (slot, query block): 64-key range starts and single columns. */
export interface HostSparseIndex {
  ranges: number[][][];
  columns: number[][][];
}

/** Uploads a host-built index (tests, visualisation round trips); capacities are the largest lists. */
export function uploadHostIndex(gpu: Gpu, S: number, host: HostSparseIndex, capacity: { maxBlocks?: number; maxColumns?: number } = {}): SparseIndex {
  const heads = host.ranges.length;
  const qb = Math.ceil(S / BLOCK);
  if (host.columns.length !== heads) throw new ShapeError(`uploadHostIndex: ${heads} heads of ranges, ${host.columns.length} of columns`);
  let maxBlocks = capacity.maxBlocks ?? 1;
  let maxColumns = capacity.maxColumns ?? 0;
  for (let h = 0; h < heads; h++) {
    if (host.ranges[h]!.length !== qb || host.columns[h]!.length !== qb) throw new ShapeError(`uploadHostIndex: head ${h} must list ${qb} query blocks`);
    for (let b = 0; b < qb; b++) {
      maxBlocks = Math.max(maxBlocks, host.ranges[h]![b]!.length);
      maxColumns = Math.max(maxColumns, host.columns[h]![b]!.length);
    }
  }
  const colCap = Math.max(maxColumns, 1);
  const blockCount = new Uint32Array(heads * qb);
  const blockOffset = new Uint32Array(heads * qb * maxBlocks);
  const columnCount = new Uint32Array(heads * qb);
  const columnIndex = new Uint32Array(heads * qb * colCap);
  for (let h = 0; h < heads; h++) {
    for (let b = 0; b < qb; b++) {
      const slot = h * qb + b;
      const r = host.ranges[h]![b]!;
      const c = host.columns[h]![b]!;
      blockCount[slot] = r.length;
      blockOffset.set(r, slot * maxBlocks);
      columnCount[slot] = c.length;
      columnIndex.set(c, slot * colCap);
    }
  }
  return {
    heads,
    seqLen: S,
    queryBlocks: qb,
    maxBlocks,
    maxColumns,
    blockCount: gpu.upload(blockCount, [heads, qb], 'u32', 'index.blockCount'),
    blockOffset: gpu.upload(blockOffset, [heads, qb, maxBlocks], 'u32', 'index.blockOffset'),
    columnCount: gpu.upload(columnCount, [heads, qb], 'u32', 'index.columnCount'),
    columnIndex: gpu.upload(columnIndex, [heads, qb, colCap], 'u32', 'index.columnIndex'),
  };
}

/** Reads an index back: per slot, per query block, the range starts and the columns. */
export async function readIndex(gpu: Gpu, index: SparseIndex): Promise<HostSparseIndex> {
  const [bc, bo, cc, ci] = (await Promise.all([gpu.read(index.blockCount), gpu.read(index.blockOffset), gpu.read(index.columnCount), gpu.read(index.columnIndex)])) as Uint32Array[];
  const qb = index.queryBlocks;
  const colCap = Math.max(index.maxColumns, 1);
  const ranges: number[][][] = [];
  const columns: number[][][] = [];
  for (let h = 0; h < index.heads; h++) {
    const r: number[][] = [];
    const c: number[][] = [];
    for (let b = 0; b < qb; b++) {
      const slot = h * qb + b;
      r.push(Array.from(bo!.subarray(slot * index.maxBlocks, slot * index.maxBlocks + Math.min(bc![slot]!, index.maxBlocks))));
      c.push(Array.from(ci!.subarray(slot * colCap, slot * colCap + Math.min(cc![slot]!, index.maxColumns))));
    }
    ranges.push(r);
    columns.push(c);
  }
  return { ranges, columns };
}

export function releaseIndex(gpu: Gpu, index: SparseIndex): void {
  gpu.release(index.blockCount, index.blockOffset, index.columnCount, index.columnIndex);
}

export class SparseAttentionKernel extends AttentionKernelBase {
  private constructor(
    gpu: Gpu,
    basics: KernelBasics,
    private readonly program: Program,
    private readonly countProgram: Program,
  ) {
    super(gpu, basics);
  }

  static async create(gpu: Gpu, options: AttentionKernelOptions): Promise<SparseAttentionKernel> {
    const b = kernelBasics(gpu, 'attention.sparse', options);
    const defines = attentionDefines(2, b.headDim, b.kvDType, b.tiles, false, b.compute);
    // The count entry reads only the index: one program serves every head dim and K/V type.
    const countDefines = attentionDefines(2, 64, 'f32', { bq: 32, bk: 16 });
    const [program, countProgram] = await Promise.all([
      compileAttention(gpu, defines),
      gpu.compile({ shader: 'attention.wgsl', defines: countDefines, entryPoint: 'count_entries' }),
    ]);
    return new SparseAttentionKernel(gpu, b, program, countProgram);
  }

  private params(s: AttentionShape, index: SparseIndex, n: number): Record<string, number> {
    return { ...baseParams(s, 0, s.Tq, n), qblocks: index.queryBlocks, max_blocks: index.maxBlocks, max_columns: Math.max(index.maxColumns, 1) };
  }

  /** Prefill: q [H, S, D], k/v [Hkv, Scap >= S, D] (the first S rows are the keys); index slot i serves heads[i]. */
  encode(batch: Batch, q: Tensor, k: Tensor, v: Tensor, out: Tensor, heads: Tensor | readonly number[], index: SparseIndex): void {
    const op = 'attention.sparse';
    const { s, list, qBlocks } = this.prefillGrid(op, q, k, v, out, heads);
    validateIndex(op, index, s.Tq, list.n);
    batch.dispatch({
      program: this.program,
      bindings: {
        q,
        k,
        v,
        heads: list.tensor,
        out,
        block_count: index.blockCount,
        block_offset: index.blockOffset,
        column_count: index.columnCount,
        column_index: index.columnIndex,
      },
      params: this.params(s, index, list.n),
      workgroups: [qBlocks, list.n, 1],
      label: op,
    });
  }

  /**
   * Records the count of causal entries the index covers per (slot, query block) into counts
   * (u32 [index.heads, queryBlocks]); sum on the host for density.
   */
  encodeCount(batch: Batch, index: SparseIndex, counts: Tensor): void {
    const op = 'attention.sparse.count';
    const n = index.heads;
    validateIndex(op, index, index.seqLen, n);
    if (counts.dtype !== 'u32' || counts.numel !== n * index.queryBlocks) throw new ShapeError(`${op}: counts ${counts.describe()} must be u32 [${n}, ${index.queryBlocks}]`);
    const s: AttentionShape = { H: 1, Hkv: 1, Tq: index.seqLen, Scap: index.seqLen, D: 64 };
    const [x, y] = foldGrid(Math.ceil((n * index.queryBlocks) / 64), this.gpu.caps.limits.maxComputeWorkgroupsPerDimension);
    batch.dispatch({
      program: this.countProgram,
      bindings: { block_count: index.blockCount, block_offset: index.blockOffset, column_count: index.columnCount, column_index: index.columnIndex, counts },
      params: this.params(s, index, n),
      workgroups: [x, y, 1],
      label: op,
    });
  }
}
