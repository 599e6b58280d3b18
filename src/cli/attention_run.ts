/**
 * The CLI's one connection to the attention layer: uploads q, k, v, runs the pattern through the
 * attention API (src/attention/attention.ts `attention()`), and reads o (and the sparse index,
 * packed into the SparseIndex u32 layout of src/attention/types.ts) back.
 */
import type { Gpu } from '../gpu/gpu.ts';
import type { Tensor } from '../tensor.ts';
import { attention, type HeadIndex } from '../attention/attention.ts';
import { BLOCK, type Pattern } from '../attention/types.ts';
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
  /** Per head: computed causal entries / all causal entries. */
  density: number[];
  /** Present when asked for and the pattern builds one. */
  index?: HostSparseIndex;
}

/** Packs per-head index lists (attention()'s HeadIndex) into the SparseIndex u32 layout; unused slots are 0. */
export function packIndexes(indexes: readonly (HeadIndex | null)[], S: number): HostSparseIndex | undefined {
  if (!indexes.some((x) => x)) return undefined;
  const heads = indexes.length;
  const queryBlocks = Math.ceil(S / BLOCK);
  let maxBlocks = 0;
  let maxColumns = 0;
  for (const x of indexes) {
    if (!x) continue;
    for (const b of x.blockOffsets) maxBlocks = Math.max(maxBlocks, b.length);
    for (const c of x.columns) maxColumns = Math.max(maxColumns, c.length);
  }
  maxBlocks = Math.max(maxBlocks, 1); // safetensors allows empty tensors, but a 1-wide axis keeps readers simple
  const colW = Math.max(maxColumns, 1);
  const blockCount = new Uint32Array(heads * queryBlocks);
  const blockOffset = new Uint32Array(heads * queryBlocks * maxBlocks);
  const columnCount = new Uint32Array(heads * queryBlocks);
  const columnIndex = new Uint32Array(heads * queryBlocks * colW);
  indexes.forEach((x, h) => {
    if (!x) return; // dense / A-shape heads: counts stay 0
    for (let m = 0; m < queryBlocks; m++) {
      const b = x.blockOffsets[m] ?? [];
      const c = x.columns[m] ?? [];
      blockCount[h * queryBlocks + m] = b.length;
      columnCount[h * queryBlocks + m] = c.length;
      blockOffset.set(b, (h * queryBlocks + m) * maxBlocks);
      columnIndex.set(c, (h * queryBlocks + m) * colW);
    }
  });
  return { heads, queryBlocks, maxBlocks, maxColumns, blockCount, blockOffset, columnCount, columnIndex };
}

export async function runAttention(gpu: Gpu, x: AttentionInputs, pattern: Pattern, opts: { indexes: boolean; progress: Progress }): Promise<AttentionOutputs> {
  const q = gpu.upload(x.q, [x.H, x.S, x.D], 'f32', 'q');
  const k = gpu.upload(x.k, [x.Hkv, x.S, x.D], 'f32', 'k');
  const v = gpu.upload(x.v, [x.Hkv, x.S, x.D], 'f32', 'v');
  let out: Tensor | undefined;
  try {
    const r = await attention(gpu, { q, k, v, patterns: pattern, returnIndexes: opts.indexes });
    out = r.out;
    const mean = r.density.reduce((a, b) => a + b, 0) / Math.max(r.density.length, 1);
    opts.progress.step(`density (computed / causal entries): mean ${mean.toFixed(4)}, per head [${r.density.map((d) => d.toFixed(3)).join(', ')}]`);
    const o = await gpu.readF32(out);
    const index = opts.indexes && r.indexes ? packIndexes(r.indexes, x.S) : undefined;
    return { o, density: r.density, ...(index ? { index } : {}) };
  } finally {
    gpu.release(q, k, v, out);
  }
}
