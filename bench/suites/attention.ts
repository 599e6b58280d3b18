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
 *
 * FINDINGS (H100, Node + Dawn, GPU timestamps; bench/results/2026-11-24-attention-node-h100-run{1..4}.json;
 * run1 used i.i.d. random q/k, runs 2-4 the structured data below):
 *  - f32 path: dense 10.7 TFLOP/s at 8K, 10.4 at 32K (850 ms for 32 heads), 9.6 at 128K (14.7 s):
 *    well short of the 40 TFLOP/s target. Tiles bq64/bk16 beat bq32 (7.0-7.1); packed-f16 K/V +5%.
 *    The sparse kernel runs at the dense kernel's rate on the entries it computes (~11.5 TFLOP/s
 *    "actual"), so speedup ~ 1 / density.
 *  - Vertical-Slash (1000, 6096) vs our f32 dense (structured data): 2.8x at 32K, 6.9x at 128K
 *    (density 0.17), 9.8x at 256K, 13.2x at 512K (dense extrapolated): below the 15x-at-128K target,
 *    because on this synthetic data the estimator's slashes are scattered (density 0.17 where a
 *    contiguous band would give ~0.06). (30, 800): 20x at 128K, 56x at 512K. Block-Sparse (100):
 *    12x at 128K, 45x at 512K. A-shape (128, 4096): 17.7x at 128K, 70x at 512K.
 *  - On i.i.d. random q/k (run1) every Vertical-Slash index covers ~all keys (density 0.98 at 128K).
 *  - Estimation is 1-4% of the total (VS 27 ms, BS 39 ms at 128K for 32 heads, scaled from one KV
 *    group, which overstates fixed per-call costs; BS 589 ms at 512K).
 *  - Decode (Tq 1, 128K cache, 32 heads): 61 ms unsplit, 15.2 ms with the key split (16 splits).
 *  - Session 5 (H200, BENCHMARKS.md): the tensor-core kernel walks the keys once (lazy rescaling);
 *    the `ablate` rows found half its time in bank-conflicted softmax loops and a third in K/V
 *    staging that waited for memory once per load; fixed, dense at 32K runs at 65.5 TFLOP/s (81.3
 *    with --no-robustness) and Vertical-Slash (1000, 6096) at 128K in 436 ms (352). The rows below
 *    are the history.
 *  - Tensor-core path (compute 'sgmatrix'; BENCHMARKS.md runs F, G): 2.4e-4 rel. L2 vs float64;
 *    dense 13.4 TFLOP/s at 32K (1.28x the f32 kernel), 11.3 at 128K; Vertical-Slash (1000, 6096)
 *    1879 ms at 128K (6.6x its dense), A-shape 764 ms, Block-Sparse 1048 ms. Its dense and A-shape
 *    rows read f16 K/V (the prefill cache type); the sparse rows f32 (the estimators need f32 K).
 */
import type { Gpu } from '../../src/gpu/gpu.ts';
import { Tensor } from '../../src/tensor.ts';
import { attention } from '../../src/attention/attention.ts';
import { attentionDefines, baseParams, compileAttention, DenseAttentionKernel, resolveAttentionCompute, type AttentionCompute, type AttentionTiles, type KvDType } from '../../src/attention/dense.ts';
import type { Pattern } from '../../src/attention/types.ts';
import { packHalves } from '../../src/util/half.ts';
import { errorLine, median, minOf, tflops, type BenchContext, type BenchRow, type BenchSuite } from '../harness.ts';

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

/**
 * Structured q [H, S, D] and k [Hkv, S, D] (v random), so that estimated indexes look like those of
 * real "local + sink" heads instead of covering everything (on i.i.d. random q/k every diagonal
 * scores alike, Vertical-Slash keeps scattered slashes, and their 64-key ranges cover ~all keys):
 *  - q_i = a R(i) 1 + noise, k_j = b R(j) 1 + noise with R a rotation of the pairs (f, f + 64) by
 *    angles i theta_f, theta_f = (pi / 2) (f + 1) / (64 S): q_i . k_j = a b sum_f cos((i - j) theta_f)
 *    decreases monotonically in i - j over [0, S), so the top slashes are the nearest diagonals;
 *  - 4 sink keys (j < 4) with a large component along a direction every query shares (vertical lines).
 */
function fillStructured(gpu: Gpu, bufs: Buffers, H: number, Hkv: number, S: number): void {
  const HALF = D / 2;
  const CHUNK = 2048; // positions per write
  const theta = Float64Array.from({ length: HALF }, (_, f) => ((Math.PI / 2) * (f + 1)) / (HALF * S));
  const cos = new Float32Array(CHUNK * HALF);
  const sin = new Float32Array(CHUNK * HALF);
  const rows = new Float32Array(CHUNK * D);
  let seed = 0x9e3779b9;
  const noise = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return ((seed >>> 0) / 2 ** 32) * 2 - 1;
  };
  // Scores (after 1/sqrt(D)): a b HALF / sqrt(D) = 12.7 on the diagonal, about 8 at distance S.
  const a = (h: number): number => 1.4 + (0.2 * ((h * 7) % 5)) / 4;
  const b = 1.5;
  const SINK = 4;
  const SINK_DIR = D - 1; // the fixed direction: the last dimension
  for (let p0 = 0; p0 < S; p0 += CHUNK) {
    const n = Math.min(CHUNK, S - p0);
    for (let i = 0; i < n; i++) {
      for (let f = 0; f < HALF; f++) {
        const ang = (p0 + i) * theta[f]!;
        cos[i * HALF + f] = Math.cos(ang);
        sin[i * HALF + f] = Math.sin(ang);
      }
    }
    const fill = (scale: number, isQ: boolean): void => {
      for (let i = 0; i < n; i++) {
        for (let f = 0; f < HALF; f++) {
          // R(i) applied to (1, 0) in pair (f, f + HALF): (cos, sin).
          rows[i * D + f] = scale * cos[i * HALF + f]! + 0.3 * noise();
          rows[i * D + f + HALF] = scale * sin[i * HALF + f]! + 0.3 * noise();
        }
        if (isQ) rows[i * D + SINK_DIR] += 2;
        else if (p0 + i < SINK) rows[i * D + SINK_DIR] += 30;
      }
    };
    for (let h = 0; h < H; h++) {
      fill(a(h), true);
      gpu.device.queue.writeBuffer(bufs.q, (h * S + p0) * D * 4, rows.buffer, 0, n * D * 4);
    }
    for (let h = 0; h < Hkv; h++) {
      fill(b, false);
      gpu.device.queue.writeBuffer(bufs.k, (h * S + p0) * D * 4, rows.buffer, 0, n * D * 4);
      if (bufs.k16) {
        const halves = packHalves('f16', rows.subarray(0, n * D));
        gpu.device.queue.writeBuffer(bufs.k16, (h * S + p0) * D * 2, halves.buffer, 0, n * D * 2);
      }
    }
  }
}

interface Buffers {
  q: GPUBuffer;
  k: GPUBuffer;
  v: GPUBuffer;
  out: GPUBuffer;
  /** f16 copies of k and v for the tensor-core rows (which read f16 K/V in place, as in prefill). */
  k16?: GPUBuffer;
  v16?: GPUBuffer;
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

/** Compute paths to run: f32 always, tensor cores where the device has them. */
/** How often the tensor-core kernel's lazy rescale fired on these inputs (an untimed counting run). */
async function rescaleFraction(gpu: Gpu, q: Tensor, k: Tensor, v: Tensor, out: Tensor): Promise<{ rescale_fraction: number; rescale_tiles: number }> {
  const kernel = await DenseAttentionKernel.create(gpu, { headDim: q.shape[2]!, kvDType: k.dtype === 'f16' ? 'f16' : 'f32', compute: 'sgmatrix', rescaleStats: true });
  try {
    const b = gpu.batch({ label: 'rescale-stats' });
    kernel.encode(b, q, k, v, out, Array.from({ length: q.shape[0]! }, (_, h) => h), { qPos0: 0, kvLen: k.shape[1]! });
    await b.submit();
    const st = await kernel.readRescaleStats();
    return { rescale_fraction: st.tiles ? st.rescaled / st.tiles : 0, rescale_tiles: st.tiles };
  } finally {
    kernel.destroy();
  }
}

function computes(gpu: Gpu): AttentionCompute[] {
  return resolveAttentionCompute(gpu, 'auto', D) === 'sgmatrix' ? ['f32', 'sgmatrix'] : ['f32'];
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
  for (const compute of computes(gpu)) {
    const bound = compute === 'f32' ? 1e-5 : 2e-3;
    const patterns: Pattern[] = [
      { type: 'dense' },
      { type: 'vertical_and_slash', verticalSize: 1000, slashSize: 6096 },
      { type: 'stream_llm', nInit: 2000, nLocal: 1 },
    ];
    for (const pattern of patterns) {
      try {
        const r = await attention(gpu, { q: tq, k: tk, v: tv, patterns: pattern, compute });
        const err = relL2(await gpu.read(r.out), ref);
        ctx.log.info(`attention check ${compute} ${pattern.type} S=${S} D=${D}: rel L2 vs float64 ${err.toExponential(2)} (bound ${bound}), density ${r.density[0]}`);
        rows.push({ kernel: 'attention.check', variant: `${compute} ${pattern.type}`, shape: { H, Hkv: 1, S, D }, median_ms: NaN, rel_l2: err, ok: err <= bound });
        gpu.release(r.out);
      } catch (e) {
        ctx.log.warn(`attention check ${compute} ${pattern.type}: ${(e as Error).name}: ${(e as Error).message}`);
      }
    }
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
    // `--sizes ablate`: only the tensor-core kernel's ablation rows (ablationRows).
    if (!quick && ctx.options.sizes?.includes('ablate')) return ablationRows(ctx);
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
    if (computes(gpu).includes('sgmatrix')) {
      bufs.k16 = gpu.device.createBuffer({ size: kvBytes / 2, usage, label: 'bench.k16' });
      bufs.v16 = gpu.device.createBuffer({ size: kvBytes / 2, usage, label: 'bench.v16' });
      fillRandom(gpu, bufs.v16, kvBytes / 2, 13, 'f16');
    }
    await gpu.sync();
    const reps = 20;
    /** Dense time scaled to 32 heads, per S, for speedups. */
    const denseMs = new Map<string, number>(); // `${compute}:${S}`
    // `--sizes ...,sgonly`: only the tensor-core rows (the f32 rows of an earlier run stand).
    const sgOnly = ctx.options.sizes?.includes('sgonly') === true;
    const patternComputes = computes(gpu).filter((c) => !sgOnly || c === 'sgmatrix');
    // `--sizes ...,f32big`: f32 rows only from 256K on (the smaller ones of an earlier run stand).
    const f32From = ctx.options.sizes?.includes('f32big') === true ? 256 * K : 0;
    // `--sizes ...,dense:f32:131072=14655.4`: a dense time (ms, 32 heads) measured by an earlier run.
    const earlier = new Set<string>();
    for (const tok of ctx.options.sizes ?? []) {
      const m = /^dense:(f32|sgmatrix):(\d+)=([\d.]+)$/.exec(tok);
      if (m) {
        denseMs.set(`${m[1]}:${m[2]}`, Number(m[3]));
        earlier.add(`${m[1]}:${m[2]}`);
      }
    }
    try {
      for (const sk of allSizes) {
        const S = sk * K;
        const shapes = sk <= 8 ? [{ H: H_FULL, Hkv: HKV_FULL }, { H: GROUP, Hkv: 1 }] : [{ H: GROUP, Hkv: 1 }];
        for (const base of shapes) {
          // Structured q/k (see fillStructured) so that the estimated indexes are as sparse as on real heads.
          fillStructured(gpu, bufs, base.H, base.Hkv, S);
          await gpu.sync();
          for (const pc of PATTERNS) for (const compute of patternComputes) {
            if (!sizesK(pc.sizes).includes(sk)) continue;
            if (compute === 'f32' && S < f32From) continue;
            // Dense from 128K on: one head (the group's head 0), scaled to 32.
            const sh = pc.pattern.type === 'dense' && sk >= 128 ? { H: 1, Hkv: 1, scale: H_FULL } : { ...base, scale: H_FULL / base.H };
            const q = view(bufs.q, [sh.H, S, D], 'f32', 'q');
            // Tensor-core dense and A-shape rows read f16 K/V (the prefill's KV cache type); the
            // sparse patterns' estimators need f32 K (attention() rejects f16 there), as do f32 rows.
            const f16ok = pc.pattern.type === 'dense' || pc.pattern.type === 'stream_llm';
            const kv16 = compute === 'sgmatrix' && f16ok && bufs.k16 && bufs.v16 ? { k: bufs.k16, v: bufs.v16 } : undefined;
            const k = kv16 ? view(kv16.k, [sh.Hkv, S, D], 'f16', 'k') : view(bufs.k, [sh.Hkv, S, D], 'f32', 'k');
            const v = kv16 ? view(kv16.v, [sh.Hkv, S, D], 'f16', 'v') : view(bufs.v, [sh.Hkv, S, D], 'f32', 'v');
            const out = view(bufs.out, [sh.H, S, D], 'f32', 'out');
            try {
              const t = await timeApi(
                ctx,
                async () => {
                  const r = await attention(gpu, { q, k, v, out, patterns: pc.pattern, profile: true, compute });
                  return { ...r.timings!, density: r.density };
                },
                reps,
              );
              const total = t.total * sh.scale;
              const denseEq = ((4 * S * S) / 2) * D * H_FULL;
              if (pc.pattern.type === 'dense') denseMs.set(`${compute}:${S}`, total);
              const denseOf = (c: AttentionCompute): { ms: number; how: string } | undefined => {
                const m = denseMs.get(`${c}:${S}`);
                const how = (key: string): string => (earlier.has(key) ? 'measured in an earlier run' : 'measured');
                if (m !== undefined) return { ms: m, how: how(`${c}:${S}`) };
                const m128 = denseMs.get(`${c}:${128 * K}`);
                return m128 === undefined ? undefined : { ms: m128 * (S / (128 * K)) ** 2, how: `extrapolated from 128K (x (S/128K)^2; 128K ${how(`${c}:${128 * K}`)})` };
              };
              const row: BenchRow = {
                kernel: pc.kernel,
                variant: compute,
                kv_dtype: kv16 ? 'f16' : 'f32',
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
                data: 'structured (rotary q/k, 4 sink keys)',
              };
              if (pc.pattern.type !== 'dense') {
                const same = denseOf(compute);
                if (same) {
                  row.speedup_vs_dense = same.ms / total;
                  row.dense_ref = `${compute} dense, ${same.how}`;
                }
              }
              const f32d = denseOf('f32');
              if (compute !== 'f32' && f32d) row.speedup_vs_f32_dense = f32d.ms / total;
              if (compute === 'sgmatrix' && pc.pattern.type === 'dense') Object.assign(row, await rescaleFraction(gpu, q, k, v, out));
              rows.push(row);
              ctx.log.info(`${pc.kernel} ${compute} ${JSON.stringify(row.shape)} heads=${sh.H}x${sh.scale}: ${total.toFixed(3)} ms (est ${row.estimation_ms} ms), ${row.tflops?.toFixed(2)} TFLOP/s eq, density ${t.density.toFixed(4)}`);
            } catch (e) {
              ctx.log.warn(`${pc.kernel} ${compute} S=${S} heads=${sh.H}: ${(e as Error).name}: ${(e as Error).message}`);
            }
          }
        }
      }
      if (!quick && !sgOnly && !f32From) rows.push(...(await denseVariants(ctx, bufs)));
    } finally {
      for (const b of Object.values(bufs)) b.destroy();
    }
    return rows;
  },
};

/**
 * Where a tensor-core key tile's time goes: dense attention at 32K (one KV group of 4 heads, f16
 * K/V, scaled to 32 heads) with parts of every tile left out through the shader's SKIP_* defines
 * (attention.wgsl; the results are wrong, the barriers stay). Rows: kernel 'attention.ablate',
 * variant the parts left out, median_ms, share_of_full (1 - ms / full: the part's cost).
 */
async function ablationRows(ctx: BenchContext): Promise<BenchRow[]> {
  const { gpu } = ctx;
  const rows: BenchRow[] = [];
  if (resolveAttentionCompute(gpu, 'auto', D) !== 'sgmatrix') {
    ctx.log.warn('attention ablate: no tensor-core path on this device');
    return rows;
  }
  const S = 32 * K;
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const qb = gpu.device.createBuffer({ size: GROUP * S * D * 4, usage, label: 'ablate.q' });
  const kb = gpu.device.createBuffer({ size: S * D * 2, usage, label: 'ablate.k16' });
  const vb = gpu.device.createBuffer({ size: S * D * 2, usage, label: 'ablate.v16' });
  const ob = gpu.device.createBuffer({ size: GROUP * S * D * 4, usage, label: 'ablate.out' });
  fillRandom(gpu, qb, GROUP * S * D * 4, 31, 'f32');
  fillRandom(gpu, kb, S * D * 2, 32, 'f16');
  fillRandom(gpu, vb, S * D * 2, 33, 'f16');
  const heads = gpu.upload(Uint32Array.from([0, 1, 2, 3]), [GROUP], 'u32', 'ablate.heads');
  const shape = { H: GROUP, Hkv: 1, Tq: S, Scap: S, D };
  const variants: { name: string; skip: string[] }[] = [
    { name: 'full', skip: [] },
    { name: 'no K/V staging', skip: ['SKIP_FILL'] },
    { name: 'no S = QK^T', skip: ['SKIP_S'] },
    { name: 'no softmax', skip: ['SKIP_SOFTMAX'] },
    { name: 'no O += PV', skip: ['SKIP_PV'] },
    { name: 'no S, no PV', skip: ['SKIP_S', 'SKIP_PV'] },
    { name: 'barriers and loop only', skip: ['SKIP_FILL', 'SKIP_S', 'SKIP_SOFTMAX', 'SKIP_PV'] },
  ];
  const denseEq = ((4 * S * S) / 2) * D * H_FULL;
  let full: number | undefined;
  try {
    for (const vt of variants) {
      try {
        const defines: Record<string, number> = { ...attentionDefines(0, D, 'f16', { bq: 64, bk: 32 }, false, 'sgmatrix') };
        for (const d of vt.skip) defines[d] = 1;
        const program = await compileAttention(gpu, defines);
        const bindings = { q: view(qb, [GROUP, S, D]), k: view(kb, [1, S, D], 'f16'), v: view(vb, [1, S, D], 'f16'), heads, out: view(ob, [GROUP, S, D]) };
        const params = baseParams(shape, 0, S, GROUP);
        const t = await ctx.timeBatch((b) => b.dispatch({ program, bindings, params, workgroups: [S / 64, GROUP, 1], label: `ablate ${vt.name}` }), { warmup: 1, reps: 10 });
        const ms = t.median_ms * HKV_FULL;
        full ??= ms;
        rows.push({ kernel: 'attention.ablate', variant: vt.name, shape: { H: H_FULL, Hkv: HKV_FULL, S, D }, median_ms: ms, min_ms: t.min_ms * HKV_FULL, tflops: tflops(denseEq, ms), share_of_full: 1 - ms / full, timing: t.source });
        ctx.log.info(`attention ablate ${vt.name}: ${ms.toFixed(1)} ms (${(100 * (1 - ms / full)).toFixed(1)}% of full saved)`);
      } catch (e) {
        ctx.log.warn(`attention ablate ${vt.name}: ${errorLine(e)}`);
      }
    }
  } finally {
    for (const b of [qb, kb, vb, ob]) b.destroy();
    gpu.release(heads);
  }
  return rows;
}

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
