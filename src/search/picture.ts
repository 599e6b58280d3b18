/**
 * What a picture of one head's attention needs (for the demo page to draw later): the dense
 * attention of the last query block, downsampled over the keys, beside the keys a pattern keeps for
 * that block, so that a reader sees what the pattern skips.
 *
 *   const pic = await attentionPicture(gpu, model, text, { layer: 3, head: 5, pattern, length: 32768 });
 *   // pic.dense[r * pic.bins + b]: softmax mass query row pic.rowStart + r puts on key bin b
 *   // pic.keptMass: the same restricted to the kept keys; pic.keptKeys: share of the bin's keys kept
 *   // pic.ranges, pic.columns: the kept key ranges and single columns of the block
 *
 * The model runs densely up to the layer (visitLayers); the block's query rows and the head's keys
 * are read back and the softmax is computed on the host in float64 (64 rows x S keys: well under a
 * second at 128K tokens). The kept set is the pattern's own: A-shape's sink and windows, or the index
 * the GPU estimator builds for this head (Vertical-Slash, Block-Sparse).
 */
import type { Gpu } from '../gpu/gpu.ts';
import { BadInputError } from '../gpu/errors.ts';
import type { Tensor } from '../tensor.ts';
import { BLOCK, type Pattern } from '../attention/types.ts';
import { validatePattern } from '../attention/attention.ts';
import { BlockSparseEstimator, VerticalSlashEstimator } from '../attention/estimate.ts';
import { readIndex, releaseIndex } from '../attention/sparse.ts';
import { visitLayers, type SearchModel } from './layers.ts';
import { calibrationIds } from './search.ts';

export interface AttentionPictureOptions {
  layer: number;
  /** Query head. */
  head: number;
  /** The pattern whose kept keys are shown (e.g. the head's searched pattern). */
  pattern: Pattern;
  /** Key bins across the picture. Default 256. */
  bins?: number;
  /** Prompt length in tokens (text input: the first `length` tokens; default 32768). */
  length?: number;
  signal?: AbortSignal;
  allowLongPrompt?: boolean;
}

export interface AttentionPicture {
  layer: number;
  head: number;
  pattern: Pattern;
  promptTokens: number;
  /** The last query block: rows rowStart .. promptTokens - 1. */
  rowStart: number;
  rows: number;
  bins: number;
  /** Keys per bin: bin b holds keys [b * binKeys, min((b + 1) * binKeys, promptTokens)). */
  binKeys: number;
  /** [rows, bins]: the dense softmax mass of each row in each key bin (a row sums to 1). */
  dense: Float32Array;
  /** [rows, bins]: the part of `dense` on keys the pattern keeps. */
  keptMass: Float32Array;
  /** [rows, bins]: the share of the bin's causal keys (j <= row) that the pattern keeps. */
  keptKeys: Float32Array;
  /**
   * The block's kept keys as [start, end) ranges and single columns. Vertical-Slash / Block-Sparse:
   * the estimated index's 64-key ranges and columns. A-shape: the sink and the union of the rows'
   * windows (each row keeps its own window: keptKeys is exact per row).
   */
  ranges: [number, number][];
  columns: number[];
  /** Share of the block's dense mass the pattern keeps (mean over its rows). */
  recall: number;
}

/** Reads `count` rows of D f32 starting at row `row` of a [heads, S, D] tensor's head `h`. */
async function readRows(gpu: Gpu, t: Tensor, h: number, row: number, count: number): Promise<Float32Array> {
  const [, S, D] = t.shape as [number, number, number];
  const bytes = await gpu.readBytes(t.buffer, t.byteOffset + (h * S + row) * D * 4, count * D * 4);
  return new Float32Array(bytes);
}

/** The block's kept set: per row, whether key j is kept, and the block-level lists. */
async function keptSet(gpu: Gpu, q: Tensor, k: Tensor, head: number, pattern: Pattern, rowStart: number): Promise<{ keeps: (i: number, j: number) => boolean; ranges: [number, number][]; columns: number[] }> {
  const [, S, D] = q.shape as [number, number, number];
  switch (pattern.type) {
    case 'dense':
      return { keeps: () => true, ranges: [[0, S]], columns: [] };
    case 'stream_llm': {
      const { nInit, nLocal } = pattern;
      const ranges: [number, number][] = [];
      if (nInit > 0) ranges.push([0, Math.min(nInit, S)]);
      ranges.push([Math.max(nInit, rowStart - nLocal + 1, 0), S]);
      return { keeps: (i, j) => j < nInit || i - j < nLocal, ranges: ranges.filter(([a, b]) => a < b), columns: [] };
    }
    default: {
      const batch = gpu.batch({ label: 'picture.estimate' });
      const index =
        pattern.type === 'vertical_and_slash'
          ? (await VerticalSlashEstimator.create(gpu, { headDim: D })).encode(batch, q, k, [head], pattern)
          : (await BlockSparseEstimator.create(gpu, { headDim: D })).encode(batch, q, k, [head], { topK: pattern.topK });
      try {
        await batch.submit();
        const host = await readIndex(gpu, index);
        const m = Math.floor(rowStart / BLOCK);
        const offsets = host.ranges[0]![m]!;
        const columns = host.columns[0]![m]!;
        const colSet = new Set(columns);
        const ranges = offsets.map((o): [number, number] => [o, Math.min(o + BLOCK, S)]);
        return { keeps: (_i, j) => colSet.has(j) || offsets.some((o) => j >= o && j < o + BLOCK), ranges, columns };
      } finally {
        releaseIndex(gpu, index);
      }
    }
  }
}

/**
 * The picture of query head `head` from one layer's whole-prompt tensors: q [H, S, D], k [Hkv, S, D]
 * f32 (head h reads kv head floor(h * Hkv / H)).
 */
export async function pictureFromTensors(gpu: Gpu, q: Tensor, k: Tensor, head: number, pattern: Pattern, bins = 256): Promise<Omit<AttentionPicture, 'layer'>> {
  const [H, S, D] = q.shape as [number, number, number];
  const Hkv = k.shape[0]!;
  if (!Number.isInteger(head) || head < 0 || head >= H) throw new BadInputError(`picture: head ${head} is outside 0..${H - 1}`);
  if (!Number.isInteger(bins) || bins < 1) throw new BadInputError(`picture: bins must be a positive integer, got ${bins}`);
  validatePattern(pattern, 'picture');
  const g = Math.floor((head * Hkv) / H);
  const rowStart = Math.floor((S - 1) / BLOCK) * BLOCK;
  const rows = S - rowStart;
  const binKeys = Math.ceil(S / Math.min(bins, S));
  const nb = Math.ceil(S / binKeys);
  const [qRows, keys, kept] = await Promise.all([readRows(gpu, q, head, rowStart, rows), readRows(gpu, k, g, 0, S), keptSet(gpu, q, k, head, pattern, rowStart)]);
  const dense = new Float32Array(rows * nb);
  const keptMass = new Float32Array(rows * nb);
  const keptKeys = new Float32Array(rows * nb);
  const scale = 1 / Math.sqrt(D);
  const x = new Float64Array(S);
  let recall = 0;
  for (let r = 0; r < rows; r++) {
    const i = rowStart + r;
    let max = -Infinity;
    for (let j = 0; j <= i; j++) {
      let dot = 0;
      for (let d = 0; d < D; d++) dot += qRows[r * D + d]! * keys[j * D + d]!;
      x[j] = dot * scale;
      if (x[j]! > max) max = x[j]!;
    }
    let sum = 0;
    for (let j = 0; j <= i; j++) sum += Math.exp(x[j]! - max);
    const at = r * nb;
    const seen = new Float64Array(nb);
    for (let j = 0; j <= i; j++) {
      const p = Math.exp(x[j]! - max) / sum;
      const b = Math.floor(j / binKeys);
      dense[at + b] += p;
      seen[b] += 1;
      if (kept.keeps(i, j)) {
        keptMass[at + b] += p;
        keptKeys[at + b] += 1;
        recall += p;
      }
    }
    for (let b = 0; b < nb; b++) keptKeys[at + b] = seen[b]! > 0 ? keptKeys[at + b]! / seen[b]! : 0;
  }
  return { head, pattern, promptTokens: S, rowStart, rows, bins: nb, binKeys, dense, keptMass, keptKeys, ranges: kept.ranges, columns: kept.columns, recall: recall / rows };
}

/** Runs the model densely up to `layer` on the prompt and returns the head's picture (see the module comment). */
export async function attentionPicture(gpu: Gpu, model: SearchModel, input: string | Uint32Array, options: AttentionPictureOptions): Promise<AttentionPicture> {
  const c = model.config;
  const { layer, head } = options;
  if (!Number.isInteger(layer) || layer < 0 || layer >= c.numLayers) throw new BadInputError(`picture: layer ${layer} is outside 0..${c.numLayers - 1}`);
  if (!Number.isInteger(head) || head < 0 || head >= c.numHeads) throw new BadInputError(`picture: head ${head} is outside 0..${c.numHeads - 1}`);
  validatePattern(options.pattern, 'picture');
  const ids = calibrationIds(model, input, options.length);
  let picture: AttentionPicture | undefined;
  await visitLayers(
    model,
    ids,
    layer,
    layer,
    async (lt) => {
      const gi = lt.groups.findIndex((g) => head >= g.headStart && head < g.headStart + g.heads);
      const g = lt.groups[gi]!;
      const p = await pictureFromTensors(gpu, lt.q[gi]!, lt.k[gi]!, head - g.headStart, options.pattern, options.bins);
      picture = { ...p, layer, head };
    },
    { signal: options.signal, allowLongPrompt: options.allowLongPrompt },
  );
  return picture!;
}
