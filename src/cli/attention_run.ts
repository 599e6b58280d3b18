/**
 * The CLI's one connection to the attention layer: uploads q, k, v, runs the pattern through the
 * attention API (src/attention/attention.ts), and reads o (and the sparse index) back.
 */
import type { Gpu } from '../gpu/gpu.ts';
import { UnsupportedError } from '../gpu/errors.ts';
import type { Pattern } from '../attention/types.ts';
import type { Progress } from './progress.ts';

export interface AttentionInputs {
  H: number;
  Hkv: number;
  S: number;
  D: number;
  q: Float32Array; // [H, S, D]
  k: Float32Array; // [Hkv, S, D]
  v: Float32Array; // [Hkv, S, D]
}

/** A sparse index read back to the host (layout: src/attention/types.ts SparseIndex). */
export interface HostSparseIndex {
  heads: number;
  queryBlocks: number;
  maxBlocks: number;
  maxColumns: number;
  blockCount: Uint32Array; // [heads, queryBlocks]
  blockOffset: Uint32Array; // [heads, queryBlocks, maxBlocks]
  columnCount: Uint32Array; // [heads, queryBlocks]
  columnIndex: Uint32Array; // [heads, queryBlocks, max(maxColumns, 1)]
}

export interface AttentionOutputs {
  o: Float32Array; // [H, S, D]
  /** Present when asked for and the pattern builds one. */
  index?: HostSparseIndex;
}

export async function runAttention(gpu: Gpu, x: AttentionInputs, pattern: Pattern, opts: { indexes: boolean; progress: Progress }): Promise<AttentionOutputs> {
  void gpu;
  void x;
  void opts;
  throw new UnsupportedError(`attention: this build has no attention API yet (src/attention/attention.ts), so pattern ${pattern.type} cannot run`);
}
