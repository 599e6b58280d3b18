/**
 * Shared types of the attention layer: patterns (MInference's names) and the sparse index that the
 * GPU estimation kernels (src/attention/estimate_*.ts) produce and the sparse flash-attention kernel
 * (src/attention/sparse.ts) consumes.
 *
 * Shapes (batch 1): q [H, S, D]; k, v [Hkv, S, D]; H a multiple of Hkv; head h reads kv head
 * floor(h * Hkv / H); D in {64, 96, 128}; scale 1/sqrt(D); causal.
 */
import type { Tensor } from '../tensor.ts';

/** Query and key block size of the sparse index (MInference's 64x64 blocks). */
export const BLOCK = 64;

export type Pattern =
  | { type: 'dense' }
  /** A-shape: query i attends key j <= i when j < nInit or i - j < nLocal. */
  | { type: 'stream_llm'; nInit: number; nLocal: number }
  /** Vertical-Slash: top verticalSize key columns and top slashSize diagonals, estimated from the last 64 queries. */
  | { type: 'vertical_and_slash'; verticalSize: number; slashSize: number }
  /** Block-Sparse: top topK 64-key blocks per 64-query block, estimated from mean-pooled q and k. */
  | { type: 'block_sparse'; topK: number };

export type PatternType = Pattern['type'];

/**
 * A per-head sparse index on the GPU, for `heads` consecutive query heads and
 * queryBlocks = ceil(S / 64) query blocks. Query block m covers queries [64m, min(64m + 64, S)).
 *
 * For each (head, query block):
 *  - blockOffset lists the start key of each 64-key range [off, off + 64) to attend, ascending and
 *    non-overlapping (Vertical-Slash ranges may start anywhere; Block-Sparse ones at multiples of 64);
 *  - columnIndex lists single key columns to attend, ascending, none inside a listed range.
 * The attention kernel applies the causal mask per element (key j <= query i) and ignores keys >= S.
 */
export interface SparseIndex {
  heads: number;
  seqLen: number;
  queryBlocks: number;
  /** Capacity per (head, query block) of blockOffset. */
  maxBlocks: number;
  /** Capacity per (head, query block) of columnIndex (0 allowed: then columnIndex has 1 dummy element). */
  maxColumns: number;
  blockCount: Tensor; // u32 [heads, queryBlocks]
  blockOffset: Tensor; // u32 [heads, queryBlocks, maxBlocks]
  columnCount: Tensor; // u32 [heads, queryBlocks]
  columnIndex: Tensor; // u32 [heads, queryBlocks, max(maxColumns, 1)]
}
