/**
 * Estimation suite: MInference's online index estimation alone (src/attention/estimate.ts), at the
 * Llama-3-8B attention shape (H 32, Hkv 8, D 128), q and k in f16 (packed; 32 heads of f32 q at
 * 128K would be 2 GiB, past the binding limit), all 32 heads in one encode.
 *
 * Rows: kernel estimate.vertical_and_slash (V 1000, Sl 6096: MInference's default) and
 * estimate.block_sparse (top_k 100); shape {S, H, Hkv, D, params}; median_ms per layer (all heads:
 * scores, top-k, index); tflops for Vertical-Slash counts the two scoring passes (2 x 2 x 64 x S x D
 * per head), for Block-Sparse the pooled scores (2 x nqb^2 / 2 x D per head). If the device cannot
 * bind all heads at once, one kv group (4 query heads) is timed and scaled by 8 (`scale` in the row).
 * Sizes: 128K (default), 32K; quick: 1K with 4 heads.
 */
import type { Gpu } from '../../src/gpu/gpu.ts';
import { TensorTooLargeError } from '../../src/gpu/errors.ts';
import type { Tensor } from '../../src/tensor.ts';
import { BlockSparseEstimator, VerticalSlashEstimator } from '../../src/attention/estimate.ts';
import type { SparseIndex } from '../../src/attention/types.ts';
import { tflops, type BenchContext, type BenchRow, type BenchSuite } from '../harness.ts';

const D = 128;
const K = 1024;

/** Random f16 pairs in +-[0.5, 1) (xorshift), written in chunks. */
function fillRandomF16(gpu: Gpu, t: Tensor, seed: number): void {
  const CHUNK = 1 << 24; // bytes per write
  const words = new Uint32Array(CHUNK / 4);
  let s = seed >>> 0 || 1;
  for (let off = 0; off < t.byteLength; off += CHUNK) {
    const n = Math.min(CHUNK, t.byteLength - off) / 4;
    for (let i = 0; i < n; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      words[i] = (((s >>> 0) & 0x83ff83ff) | 0x38003800) >>> 0;
    }
    gpu.device.queue.writeBuffer(t.buffer, t.byteOffset + off, words.buffer, 0, n * 4);
  }
}

function release(gpu: Gpu, ix: SparseIndex): void {
  gpu.release(ix.blockCount, ix.blockOffset, ix.columnCount, ix.columnIndex);
}

async function rowsAt(ctx: BenchContext, S: number, H: number, Hkv: number, vs: VerticalSlashEstimator, bs: BlockSparseEstimator): Promise<BenchRow[]> {
  const { gpu } = ctx;
  let heads = H;
  let kvHeads = Hkv;
  let q: Tensor | undefined;
  let k: Tensor | undefined;
  try {
    q = gpu.empty([heads, S, D], 'f16', 'q');
    k = gpu.empty([kvHeads, S, D], 'f16', 'k');
  } catch (e) {
    if (!(e instanceof TensorTooLargeError)) throw e;
    gpu.release(q);
    heads = H / Hkv;
    kvHeads = 1;
    q = gpu.empty([heads, S, D], 'f16', 'q');
    k = gpu.empty([kvHeads, S, D], 'f16', 'k');
  }
  const scale = H / heads;
  fillRandomF16(gpu, q, 1);
  fillRandomF16(gpu, k, 2);
  const ids = Array.from({ length: heads }, (_, i) => i);
  const rows: BenchRow[] = [];
  const shape = { S, H, Hkv, D, timed_heads: heads };
  try {
    const vsParams = { verticalSize: 1000, slashSize: 6096 };
    const tv = await ctx.timeBatch((batch) => release(gpu, vs.encode(batch, q, k, ids, vsParams)));
    const vsFlop = 2 * 2 * Math.min(64, S) * S * D * H;
    rows.push({
      kernel: 'estimate.vertical_and_slash',
      variant: 'f16',
      shape: { ...shape, ...vsParams },
      median_ms: tv.median_ms * scale,
      min_ms: tv.min_ms * scale,
      tflops: tflops(vsFlop, tv.median_ms * scale),
      bound: 'compute',
      timing: tv.source,
      scale,
    });
    const tb = await ctx.timeBatch((batch) => release(gpu, bs.encode(batch, q, k, ids, { topK: 100 })));
    const nqb = Math.ceil(S / 64);
    const bsFlop = nqb * (nqb + 1) * D * H; // 2 x nqb (nqb + 1) / 2 x D per head
    rows.push({
      kernel: 'estimate.block_sparse',
      variant: 'f16',
      shape: { ...shape, topK: 100 },
      median_ms: tb.median_ms * scale,
      min_ms: tb.min_ms * scale,
      tflops: tflops(bsFlop, tb.median_ms * scale),
      bound: 'compute',
      timing: tb.source,
      scale,
    });
  } finally {
    gpu.release(q, k);
  }
  return rows;
}

export const estimateSuite: BenchSuite = {
  name: 'estimate',
  description: 'MInference index estimation alone (Vertical-Slash, Block-Sparse) at the 8B shape, 32K/128K',
  async run(ctx) {
    const vs = await VerticalSlashEstimator.create(ctx.gpu, { headDim: D, dtype: 'f16' });
    const bs = await BlockSparseEstimator.create(ctx.gpu, { headDim: D, dtype: 'f16' });
    const rows: BenchRow[] = [];
    if (ctx.options.quick) {
      if (ctx.wantSize('1k') || ctx.wantSize(K)) rows.push(...(await rowsAt(ctx, K, 4, 1, vs, bs)));
      return rows;
    }
    for (const [label, S] of [
      ['32k', 32 * K],
      ['128k', 128 * K],
    ] as const) {
      if (!ctx.wantSize(label) && !ctx.wantSize(S)) continue;
      rows.push(...(await rowsAt(ctx, S, 32, 8, vs, bs)));
    }
    return rows;
  },
};
