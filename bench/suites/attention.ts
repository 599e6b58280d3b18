/**
 * Attention suite: MInference patterns at the Llama-3-8B attention shape (H 32, Hkv 8, D 128),
 * through the public API (src/attention/attention.ts) with profile: true, so estimation and
 * attention are timed separately with GPU timestamps (wall clock where the device has none).
 *
 * Rows: kernel attention.dense | attention.stream_llm | attention.vertical_and_slash |
 * attention.block_sparse; shape {H, Hkv, S, D, pattern params}; median_ms (estimation + attention,
 * scaled to all 32 heads), attention_ms, estimation_ms, tflops (dense-equivalent FLOPs
 * 4·S²/2·D·H over the total time), actual_tflops (density × dense-equivalent over attention time),
 * density (mean over heads), speedup_vs_dense (our dense at the same S over the total time).
 *
 * Sizes: S = 8K (all 32 heads, and one KV group to check the scaling), 32K, 128K, 256K, 512K. From
 * 32K on, one KV group (4 query heads, 1 kv head: q alone for 32 heads at 128K is 2 GiB, past the
 * binding limit) is timed and the time scaled by 8 (`timed_heads`, `scale` in the row). Dense at
 * 128K times one head (scale 32); dense at 256K/512K is not run: speedup_vs_dense there uses the
 * 128K dense time × (S/128K)² (`dense_ref: "extrapolated"`).
 * Also: a correctness check on the device (S 1000, D 128: dense and a full-budget Vertical-Slash
 * against a float64 reference), a tile sweep and packed-f16 K/V for dense at 32K, and decode
 * (Tq 1) against a 128K cache (flash-decoding split).
 */
import type { Gpu } from '../../src/gpu/gpu.ts';
import { Tensor } from '../../src/tensor.ts';
import { attention } from '../../src/attention/attention.ts';
import { DenseAttentionKernel, type AttentionTiles, type KvDType } from '../../src/attention/dense.ts';
import type { Pattern } from '../../src/attention/types.ts';
import { median, minOf, tflops, type BenchContext, type BenchRow, type BenchSuite } from '../harness.ts';

const H_FULL = 32;
const HKV_FULL = 8;
const D = 128;
const GROUP = H_FULL / HKV_FULL; // query heads per kv head
const K = 1024;

interface PatternCase {
  kernel: string;
  pattern: Pattern;
  /** Sizes (in K tokens) this pattern runs at. */
  sizes: number[];
}

const PATTERNS: PatternCase[] = [
  { kernel: 'attention.dense', pattern: { type: 'dense' }, sizes: [8, 32, 128] },
  { kernel: 'attention.stream_llm', pattern: { type: 'stream_llm', nInit: 128, nLocal: 4096 }, sizes: [8, 32, 128, 256, 512] },
  { kernel: 'attention.vertical_and_slash', pattern: { type: 'vertical_and_slash', verticalSize: 1000, slashSize: 6096 }, sizes: [8, 32, 128, 256, 512] },
  { kernel: 'attention.vertical_and_slash', pattern: { type: 'vertical_and_slash', verticalSize: 30, slashSize: 800 }, sizes: [8, 32, 128, 256, 512] },
  { kernel: 'attention.block_sparse', pattern: { type: 'block_sparse', topK: 100 }, sizes: [8, 32, 128, 256, 512] },
];

/** Quick (CPU adapters): S = 256 only. */
const QUICK_SIZES = [0.25];

function paramsOf(p: Pattern): Record<string, number> {
  const { type: _t, ...rest } = p as Pattern & Record<string, number>;
  return rest as Record<string, number>;
}

/** Fills a buffer range with uniform values in [-1, 1) (xorshift), in chunks. */
function fillRandom(gpu: Gpu, buffer: GPUBuffer, bytes: number, seed: number, dtype: 'f32' | 'f16'): void {
  const CHUNK = 1 << 24; // 16 MiB per write
  const words = new Uint32Array(CHUNK / 4);
  let s = seed >>> 0 || 1;
  for (let off = 0; off < bytes; off += CHUNK) {
    const n = Math.min(CHUNK, bytes - off) / 4;
    for (let i = 0; i < n; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      const r = s >>> 0;
      // f32: sign, exponent 126 (0.5..1) and random mantissa; f16 pairs: the same in each half.
      words[i] = dtype === 'f32' ? ((r & 0x807fffff) | 0x3f000000) >>> 0 : ((r & 0x83ff83ff) | 0x38003800) >>> 0;
    }
    gpu.device.queue.writeBuffer(buffer, off, words.buffer, 0, n * 4);
  }
}

interface Buffers {
  q: GPUBuffer;
  k: GPUBuffer;
  v: GPUBuffer;
  out: GPUBuffer;
}

function view(buf: GPUBuffer, shape: number[], dtype: 'f32' | 'f16' = 'f32', label = ''): Tensor {
  return new Tensor(buf, shape, dtype, 0, label);
}

/** float64 causal attention for the device check (one head group, naive). */
function refDense(q: Float32Array, k: Float32Array, v: Float32Array, H: number, S: number): Float64Array {
  const out = new Float64Array(H * S * D);
  const sc = new Float64Array(S);
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < S; i++) {
      let mx = -Infinity;
      for (let j = 0; j <= i; j++) {
        let d = 0;
        for (let x = 0; x < D; x++) d += q[(h * S + i) * D + x]! * k[j * D + x]!;
        sc[j] = d / Math.sqrt(D);
        mx = Math.max(mx, sc[j]!);
      }
      let l = 0;
      const o = out.subarray((h * S + i) * D, (h * S + i + 1) * D);
      for (let j = 0; j <= i; j++) {
        const w = Math.exp(sc[j]! - mx);
        l += w;
        for (let x = 0; x < D; x++) o[x] += w * v[j * D + x]!;
      }
      for (let x = 0; x < D; x++) o[x] /= l;
    }
  }
  return out;
}

function relL2(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  let n = 0;
  let d = 0;
  for (let i = 0; i < ref.length; i++) {
    n += (got[i]! - ref[i]!) ** 2;
    d += ref[i]! ** 2;
  }
  return Math.sqrt(n / d);
}

async function deviceCheck(ctx: BenchContext): Promise<BenchRow[]> {
  const { gpu } = ctx;
  const S = 1000;
  const H = 4;
  const rnd = (n: number, seed: number): Float32Array => {
    let s = seed;
    return Float32Array.from({ length: n }, () => {
      s = (s * 1103515245 + 12345) >>> 0;
      return (s / 2 ** 32) * 2 - 1;
    });
  };
  const q = rnd(H * S * D, 1);
  const k = rnd(S * D, 2);
  const v = rnd(S * D, 3);
  const tq = gpu.upload(q, [H, S, D], 'f32', 'q');
  const tk = gpu.upload(k, [1, S, D], 'f32', 'k');
  const tv = gpu.upload(v, [1, S, D], 'f32', 'v');
  const ref = refDense(q, k, v, H, S);
  const rows: BenchRow[] = [];
  for (const pattern of [{ type: 'dense' }, { type: 'vertical_and_slash', verticalSize: 1000, slashSize: 6096 }] as Pattern[]) {
    const r = await attention(gpu, { q: tq, k: tk, v: tv, patterns: pattern });
    const err = relL2(await gpu.read(r.out), ref);
    ctx.log.info(`attention check ${pattern.type} S=${S} D=${D}: rel L2 vs float64 ${err.toExponential(2)} (bound 1e-5), density ${r.density[0]}`);
    rows.push({ kernel: 'attention.check', variant: pattern.type, shape: { H, Hkv: 1, S, D }, median_ms: NaN, rel_l2: err, ok: err <= 1e-5 });
    gpu.release(r.out);
  }
  gpu.release(tq, tk, tv);
  return rows;
}

/** Profiled API calls: median of total, estimation and attention ms (GPU timestamps). */
async function timeApi(ctx: BenchContext, call: () => Promise<{ estimationMs: number; attentionMs: number; density: number[] }>, reps: number) {
  const first = await call(); // warm-up (compiles, pool)
  const est: number[] = [];
  const att: number[] = [];
  const tot: number[] = [];
  for (let i = 0; i < reps; i++) {
    const r = await call();
    est.push(r.estimationMs);
    att.push(r.attentionMs);
    tot.push(r.estimationMs + r.attentionMs);
  }
  return { total: median(tot), totalMin: minOf(tot), estimation: median(est), attention: median(att), density: first.density.reduce((a, b) => a + b, 0) / first.density.length };
}

export const attentionSuite: BenchSuite = {
  name: 'attention',
  description: 'MInference attention patterns (dense, A-shape, Vertical-Slash, Block-Sparse) at the Llama-3-8B shape, 8K-512K',
  async run(ctx) {
    const { gpu } = ctx;
    const quick = ctx.options.quick;
    const rows: BenchRow[] = [];
    if (!quick) rows.push(...(await deviceCheck(ctx)));
    const sizesK = (list: number[]): number[] => (quick ? QUICK_SIZES : list).filter((s) => ctx.wantSize(`${s}k`) || ctx.wantSize(s * K));
    const allSizes = [...new Set(PATTERNS.flatMap((p) => sizesK(p.sizes)))].sort((a, b) => a - b);
    if (!allSizes.length) return rows;
    const maxS = Math.max(...allSizes) * K;
    // One allocation at the largest size; smaller shapes are views of its start.
    const qBytes = Math.max(GROUP * maxS, H_FULL * Math.min(maxS, 8 * K)) * D * 4;
    // k/v also hold the 32-head decode cache (8 kv heads x 128K) when S reaches 128K.
    const kvBytes = Math.max(maxS, HKV_FULL * Math.min(maxS, 8 * K), maxS >= 128 * K ? HKV_FULL * 128 * K : 0) * D * 4;
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
    const bufs: Buffers = {
      q: gpu.device.createBuffer({ size: qBytes, usage, label: 'bench.q' }),
      k: gpu.device.createBuffer({ size: kvBytes, usage, label: 'bench.k' }),
      v: gpu.device.createBuffer({ size: kvBytes, usage, label: 'bench.v' }),
      out: gpu.device.createBuffer({ size: qBytes, usage, label: 'bench.out' }),
    };
    fillRandom(gpu, bufs.q, qBytes, 11, 'f32');
    fillRandom(gpu, bufs.k, kvBytes, 12, 'f32');
    fillRandom(gpu, bufs.v, kvBytes, 13, 'f32');
    await gpu.sync();
    const reps = quick ? 20 : 20;
    /** Dense time scaled to 32 heads, per S, for speedups. */
    const denseMs = new Map<number, number>();
    try {
      for (const pc of PATTERNS) {
        for (const sk of sizesK(pc.sizes)) {
          const S = sk * K;
          const shapes: { H: number; Hkv: number; scale: number }[] = [];
          if (pc.pattern.type === 'dense' && sk >= 128) shapes.push({ H: 1, Hkv: 1, scale: H_FULL });
          else {
            if (sk <= 8) shapes.push({ H: H_FULL, Hkv: HKV_FULL, scale: 1 });
            shapes.push({ H: GROUP, Hkv: 1, scale: HKV_FULL });
          }
          for (const sh of shapes) {
            const q = view(bufs.q, [sh.H, S, D], 'f32', 'q');
            const k = view(bufs.k, [sh.Hkv, S, D], 'f32', 'k');
            const v = view(bufs.v, [sh.Hkv, S, D], 'f32', 'v');
            const out = view(bufs.out, [sh.H, S, D], 'f32', 'out');
            try {
              const t = await timeApi(
                ctx,
                async () => {
                  const r = await attention(gpu, { q, k, v, out, patterns: pc.pattern, profile: true });
                  return { ...r.timings!, density: r.density };
                },
                reps,
              );
              const total = t.total * sh.scale;
              const denseEq = ((4 * S * S) / 2) * D * H_FULL;
              if (pc.pattern.type === 'dense' && sh.Hkv === 1) denseMs.set(S, total);
              let dref = denseMs.get(S);
              let denseRef = 'measured';
              if (dref === undefined && denseMs.has(128 * K)) {
                dref = denseMs.get(128 * K)! * (S / (128 * K)) ** 2;
                denseRef = 'extrapolated';
              }
              const row: BenchRow = {
                kernel: pc.kernel,
                variant: 'f32',
                shape: { H: H_FULL, Hkv: HKV_FULL, S, D, ...paramsOf(pc.pattern) },
                median_ms: total,
                min_ms: t.totalMin * sh.scale,
                tflops: tflops(denseEq, total),
                actual_tflops: tflops(denseEq * t.density, t.attention * sh.scale),
                attention_ms: t.attention * sh.scale,
                estimation_ms: t.estimation * sh.scale,
                density: t.density,
                timed_heads: sh.H,
                scale: sh.scale,
                bound: 'compute',
                timing: gpu.caps.timestamps ? 'gpu-timestamps' : 'wall-clock',
              };
              if (dref !== undefined && pc.pattern.type !== 'dense') {
                row.speedup_vs_dense = dref / total;
                row.dense_ref = denseRef;
              }
              rows.push(row);
              ctx.log.info(`${pc.kernel} ${JSON.stringify(row.shape)} heads=${sh.H}x${sh.scale}: ${total.toFixed(3)} ms (est ${row.estimation_ms} ms), ${row.tflops?.toFixed(2)} TFLOP/s eq, density ${t.density.toFixed(4)}`);
            } catch (e) {
              ctx.log.warn(`${pc.kernel} S=${S} heads=${sh.H}: ${(e as Error).name}: ${(e as Error).message}`);
            }
          }
        }
      }
      if (!quick) rows.push(...(await denseVariants(ctx, bufs)));
    } finally {
      for (const b of Object.values(bufs)) b.destroy();
    }
    return rows;
  },
};

/** Dense kernel variants at 32K (one KV group, scaled ×8): tile sweep, packed-f16 K/V; decode at 128K. */
async function denseVariants(ctx: BenchContext, bufs: Buffers): Promise<BenchRow[]> {
  const { gpu } = ctx;
  const rows: BenchRow[] = [];
  const S = 32 * K;
  const variants: { tiles: Partial<AttentionTiles>; kv: KvDType }[] = [
    { tiles: { bq: 64, bk: 16 }, kv: 'f32' },
    { tiles: { bq: 32, bk: 16 }, kv: 'f32' },
    { tiles: { bq: 32, bk: 32 }, kv: 'f32' },
    { tiles: {}, kv: 'f16' },
  ];
  const kh = gpu.device.createBuffer({ size: S * D * 2, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, label: 'bench.k16' });
  const vh = gpu.device.createBuffer({ size: S * D * 2, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, label: 'bench.v16' });
  fillRandom(gpu, kh, S * D * 2, 21, 'f16');
  fillRandom(gpu, vh, S * D * 2, 22, 'f16');
  const denseEq = ((4 * S * S) / 2) * D * H_FULL;
  try {
    for (const vt of variants) {
      try {
        const kernel = await DenseAttentionKernel.create(gpu, { headDim: D, kvDType: vt.kv, tiles: vt.tiles, splitKeys: false });
        const q = view(bufs.q, [GROUP, S, D]);
        const k = vt.kv === 'f16' ? view(kh, [1, S, D], 'f16') : view(bufs.k, [1, S, D]);
        const v = vt.kv === 'f16' ? view(vh, [1, S, D], 'f16') : view(bufs.v, [1, S, D]);
        const out = view(bufs.out, [GROUP, S, D]);
        const heads = [0, 1, 2, 3];
        const t = await ctx.timeBatch((b) => kernel.encode(b, q, k, v, out, heads, { qPos0: 0, kvLen: S }), { warmup: 1, reps: 20 });
        const ms = t.median_ms * HKV_FULL;
        rows.push({
          kernel: 'attention.dense',
          variant: `kernel bq${kernel.tiles.bq} bk${kernel.tiles.bk} kv-${vt.kv}`,
          shape: { H: H_FULL, Hkv: HKV_FULL, S, D },
          median_ms: ms,
          min_ms: t.min_ms * HKV_FULL,
          tflops: tflops(denseEq, ms),
          timed_heads: GROUP,
          scale: HKV_FULL,
          bound: 'compute',
          timing: t.source,
        });
        kernel.destroy();
      } catch (e) {
        ctx.log.warn(`dense variant ${JSON.stringify(vt)}: ${(e as Error).message}`);
      }
    }
    // Decode: one query at position 128K - 1 against a 128K cache, all 32 heads (8 kv heads).
    const Sd = 128 * K;
    if (bufs.k.size >= HKV_FULL * Sd * D * 4) {
      for (const split of [false, true]) {
        const kernel = await DenseAttentionKernel.create(gpu, { headDim: D, splitKeys: split });
        const q = view(bufs.q, [H_FULL, 1, D]);
        const k = view(bufs.k, [HKV_FULL, Sd, D]);
        const v = view(bufs.v, [HKV_FULL, Sd, D]);
        const out = view(bufs.out, [H_FULL, 1, D]);
        const heads = Array.from({ length: H_FULL }, (_, i) => i);
        const t = await ctx.timeBatch((b) => kernel.encode(b, q, k, v, out, heads, { qPos0: Sd - 1, kvLen: Sd }), { warmup: 1, reps: 20 });
        const bytes = 2 * HKV_FULL * Sd * D * 4;
        rows.push({
          kernel: 'attention.dense',
          variant: split ? 'decode flash-decoding split' : 'decode no split',
          shape: { H: H_FULL, Hkv: HKV_FULL, Tq: 1, kvLen: Sd, D },
          median_ms: t.median_ms,
          min_ms: t.min_ms,
          gbps: bytes / (t.median_ms * 1e-3) / 1e9,
          bound: 'memory',
          timing: t.source,
          splits: kernel.splitsFor(1, H_FULL, Sd),
        });
        kernel.destroy();
      }
    }
  } finally {
    kh.destroy();
    vh.destroy();
  }
  return rows;
}
