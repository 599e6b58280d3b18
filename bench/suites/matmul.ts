/**
 * Matmul suite: y = x · Wᵀ (src/kernels/matmul.ts) on the shapes prefill and decode use.
 *
 * FINDINGS (NVIDIA H100 80GB HBM3; GPU-timestamp medians; JSON in bench/results/matmul-*-h100-run{1..4}.json;
 * run 4 is the final code, earlier runs are the tuning history)
 *
 * f32 tiles (the 'auto' path for M > 8): 128x128 per workgroup, 8x8 per thread, k-step 8, register
 * prefetch into a second workgroup buffer, inner product written out (unrolled).
 *   Dawn, 4096³: f32 W 30.3 TFLOP/s, f16 W 30.7, bf16 W 30.6; Llama 4096x14336x4096 bf16 31.0.
 *   Target 45 not reached. Why each knob is where it is (4096³, f32 W):
 *   - k-step 16 + prefetch: 25.5 (run 1) / 21.8 unrolled (run 2): the doubled 32 KiB tile and the
 *     extra prefetch registers cost occupancy; k-step 8 + prefetch: 30-37 (37.1 in run 1, 29.9-30.6 in
 *     runs 2-4 on later machines: run-to-run spread); without prefetch 28.7-30.0.
 *   - 128x64 / 64x128 tiles 28-33, 64x64 25-26 (kept for small M*N only), 16x8 per thread 22.
 *   - probe f32-compute-only (global loads removed from the k-loop): 36-39. The shared-memory reads +
 *     FMAs as Tint emits them cap this design near 37-39; the global loads cost the rest.
 *   - probe f32-elemloads (scalar instead of vec4 loads): 15-17, half: vec4 loads matter.
 *   - unrolling is neutral under Dawn (30.1 loops vs 30.3-30.6 unrolled) but 10x under Deno (below).
 * f16 tiles (x and W staged as f16, f32 accumulation): 25.3 TFLOP/s unrolled, 29.6 with loops: no gain
 *   over f32 (shared memory is not the bottleneck); 'auto' does not use them.
 * sgmatrix-f16 (tensor cores, subgroup_matrix f16 16x16x16 -> f32): multi-subgroup workgroups compile
 *   once `diagnostic(off, chromium.subgroup_matrix_uniformity)` waives the uniformity check (the
 *   first runs used the rule names `subgroup_uniformity` and `chromium_experimental.*`, which do not
 *   waive it, and only the one-subgroup tile compiled: 14.0 TFLOP/s). 2x2 subgroups with 4x4
 *   matrices each: 29.9 TFLOP/s (f16 W), 28.7 on 4096x14336x4096 bf16 (k-step 64, no prefetch);
 *   2x4 / 4x2: 28.5. Equal to the f32 tiles, not better, so 'auto' does not use it (every
 *   subgroup-matrix case passes on the H100: bench/device-check.ts).
 *   (wgsl_reflect cannot parse subgroup-matrix syntax: those programs are compiled by matmul.ts with
 *   bindings reflected from the tiled variant.)
 * gemv (M <= 8, decode): M=1, 4096 -> 14336: bf16 0.062 ms = 1.90 TB/s (65% of the 2.9 TB/s copy),
 *   f16 1.89 TB/s, f32 2.61 TB/s (90%); 14336 -> 4096 bf16 1.69 TB/s; M=8 bf16 0.160 ms (0.74 TB/s,
 *   x is re-read per row). Four independent 16-byte loads per lane per step: 1.82 -> 1.90 TB/s.
 *
 * Deno (wgpu) on the same H100, same bundle (a probe had seen a plain tiled matmul 7x slower):
 *   - Cause: wgpu/naga does not get its loops unrolled (it emits structured loops with a
 *     loop-bounding counter), so per-thread register arrays indexed by loop counters (acc[i*..+j])
 *     live in local memory. The same 8x8 kernel with loops: 1.84 TFLOP/s under Deno vs 30.1 under
 *     Dawn (GPU time); its compute-only probe is as slow (1.89), so neither global loads nor
 *     buffer bounds checks are the cause; the 64x64 tile with loops: 1.40.
 *   - Fix (now the default): the 8x8 / 4x4 block written out with constant indices (UNROLL), and
 *     gemv rows written out: 19.3 TFLOP/s under Deno (10x), 16.9-18.1 for f16/bf16 W and f16 tiles.
 *   - Remaining gap (7.1 vs 4.5 ms GPU): Deno's compute-only probe is as slow as the full kernel
 *     (7.14 ms), so it is the shared-memory + FMA loop as naga translates it (index clamping on every
 *     workgroup-array access, the loop counter), not memory traffic.
 *   - Wall clock: Deno adds ~10 ms to each submit-and-wait (4096³: wall 17.7 ms for 7.1 ms of GPU
 *     time; gemv: 5.8 ms wall for 0.08 ms), Dawn ~0.05 ms: time Deno with timestamps, batch work.
 *   - gemv under Deno: 0.37-1.46 TB/s, order dependent (the GPU idles ~6 ms between submits and
 *     clocks down); f16 weights are consistently slowest (possibly naga's unpack2x16float; unverified).
 *
 * sgmatrix-f16, session 4 (H200, BENCHMARKS.md): the cap above was the compiler, not the tile. The
 *   mma suite showed 4x4 accumulators multiplied in loops kept in local memory (37 TFLOP/s from
 *   registers alone, 587 written out with constant indices). With the tile written out
 *   (sgTile.unroll, lib/sg_mma.wgsl), 2x2 subgroups of 4x4, k32, no prefetch: 93.0 TFLOP/s on
 *   4096x14336x4096 bf16 (loops: 32.3 at best), now 'auto' on GPUs with subgroup matrices. Prefetch
 *   (71.8), k64 (74.0) and 8 subgroups (89-91) were slower. Fed from workgroup memory, the mma probe
 *   tops out at 130, the ceiling of this design.
 * Rows: kernel "matmul", variant f32 | f16 | sgmatrix-f16 | gemv, shape {M, N, K, wdtype}.
 * Compute-bound rows report TFLOP/s (2·M·N·K / time); gemv rows report GB/s of weights + x + y
 * (bound: memory). Probe rows (variant f32-elemloads, f32-noprefetch, f32-compute-only) exist to
 * explain runtime differences (Dawn vs Deno): same kernel with element loads instead of vec4,
 * without register prefetch, and with the global loads removed from the k-loop.
 * `--sizes tune` adds a tile sweep for the f32 and sgmatrix paths.
 */
import type { Batch, Gpu } from '../../src/gpu/gpu.ts';
import type { Tensor } from '../../src/tensor.ts';
import {
  LARGE_TILE,
  MatmulKernel,
  SG_TILE,
  SMALL_TILE,
  pathAvailable,
  tiledProgramDesc,
  type MatmulVariant,
  type MatmulWeightDType,
  type SgTileConfig,
  type TileConfig,
} from '../../src/kernels/matmul.ts';
import { errorLine, gbps, tflops, type BenchContext, type BenchRow, type BenchSuite, type Timing } from '../harness.ts';

interface Shape {
  M: number;
  N: number;
  K: number;
  wdtype: MatmulWeightDType;
}

/** Random words: values in ±[0.5, 1) so that the data is neither zero nor constant (both flatter clocks). */
function randomWords(n: number, dtype: MatmulWeightDType | 'x', seed: number): Uint32Array {
  const out = new Uint32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const r = s >>> 0;
    if (dtype === 'f16') out[i] = ((r & 0x83ff83ff) | 0x38003800) >>> 0;
    else if (dtype === 'bf16') out[i] = ((r & 0x807f807f) | 0x3f003f00) >>> 0;
    else out[i] = ((r & 0x807fffff) | 0x3f000000) >>> 0;
  }
  return out;
}

class Operands {
  private cache = new Map<string, Tensor>();
  constructor(private readonly gpu: Gpu) {}
  get(kind: 'x' | 'w' | 'y', rows: number, cols: number, dtype: MatmulWeightDType): Tensor {
    const key = `${kind}:${rows}x${cols}:${dtype}`;
    let t = this.cache.get(key);
    if (!t) {
      const n = rows * cols;
      const words = dtype === 'f32' ? n : Math.ceil(n / 2);
      if (kind === 'y') t = this.gpu.empty([rows, cols], 'f32', 'y');
      else {
        const w = randomWords(words, kind === 'x' ? 'x' : dtype, kind === 'x' ? 7 : 11);
        t = this.gpu.upload(dtype === 'f32' ? new Float32Array(w.buffer) : w, [rows, cols], dtype, kind);
      }
      this.cache.set(key, t);
    }
    return t;
  }
  releaseAll(): void {
    for (const t of this.cache.values()) this.gpu.release(t);
    this.cache.clear();
  }
}

const BIG: Shape[] = [
  { M: 4096, N: 4096, K: 4096, wdtype: 'f32' },
  { M: 4096, N: 4096, K: 4096, wdtype: 'f16' },
  { M: 4096, N: 4096, K: 4096, wdtype: 'bf16' },
  // Llama-3-8B prefill chunk of 4096 tokens: q/o projections (N=4096) and gate/up (N=14336), bf16 weights.
  { M: 4096, N: 14336, K: 4096, wdtype: 'bf16' },
];
const QUICK: Shape[] = [{ M: 256, N: 256, K: 256, wdtype: 'f32' }, { M: 256, N: 256, K: 256, wdtype: 'bf16' }];
const GEMV: Shape[] = [
  { M: 1, N: 14336, K: 4096, wdtype: 'bf16' },
  { M: 1, N: 14336, K: 4096, wdtype: 'f16' },
  { M: 1, N: 14336, K: 4096, wdtype: 'f32' },
  { M: 1, N: 4096, K: 14336, wdtype: 'bf16' },
  { M: 8, N: 14336, K: 4096, wdtype: 'bf16' },
];
const GEMV_QUICK: Shape[] = [{ M: 1, N: 1024, K: 512, wdtype: 'bf16' }];

const F32_SWEEP: { name: string; variant: 'f32' | 'f16'; tile: TileConfig }[] = [
  { name: '128x128x8/8x8-unroll', variant: 'f32', tile: LARGE_TILE },
  { name: '128x128x8/8x8-loops', variant: 'f32', tile: { ...LARGE_TILE, unroll: false } },
  { name: '128x128x8/8x8-unroll-noprefetch', variant: 'f32', tile: { ...LARGE_TILE, prefetch: false } },
  { name: '128x128x16/8x8-unroll-noprefetch', variant: 'f32', tile: { ...LARGE_TILE, BK: 16, prefetch: false } },
  { name: '128x64x8/8x4', variant: 'f32', tile: { BM: 128, BN: 64, BK: 8, TM: 8, TN: 4, prefetch: true } },
  { name: '64x64x8/4x4-unroll', variant: 'f32', tile: { BM: 64, BN: 64, BK: 8, TM: 4, TN: 4, prefetch: true, unroll: true } },
  { name: '128x128x8/8x8-loops', variant: 'f16', tile: { ...LARGE_TILE, unroll: false } },
];
// Workgroup memory (H100: 48 KiB): (BM + BN) * (SBK + 8) * 2 B * (2 with prefetch) + subgroups * 1 KiB.
const LOOPS = { ...SG_TILE, prefetch: true, unroll: false };
const SG_SWEEP: { name: string; sg: SgTileConfig }[] = [
  { name: '2x2sg/4x4m/k32', sg: LOOPS },
  { name: '2x2sg/4x4m/k32-noprefetch', sg: { ...LOOPS, prefetch: false } },
  { name: '2x4sg/4x2m/k32', sg: { ...LOOPS, SG_N: 4, SG_TN: 2 } },
  { name: '4x2sg/2x4m/k32', sg: { ...LOOPS, SG_M: 4, SG_TM: 2 } },
  { name: '1x1sg/4x4m/k32', sg: { ...LOOPS, SG_M: 1, SG_N: 1 } },
  // Written out with constant indices (lib/sg_mma.wgsl): the mma suite saw 4x4 accumulators in loops
  // run at 37 TFLOP/s from registers alone, 587 written out (H200).
  { name: '2x2sg/4x4m/k32-noprefetch-unrolled', sg: SG_TILE },
  { name: '2x2sg/4x4m/k32-unrolled', sg: { ...SG_TILE, prefetch: true } },
  { name: '2x2sg/4x4m/k64-noprefetch-unrolled', sg: { ...SG_TILE, SBK: 64 } },
  { name: '2x4sg/4x2m/k32-unrolled', sg: { ...SG_TILE, SG_N: 4, SG_TN: 2, prefetch: true } },
  { name: '2x4sg/4x4m/k32-noprefetch-unrolled', sg: { ...SG_TILE, SG_N: 4 } },
  { name: '4x2sg/4x4m/k32-noprefetch-unrolled', sg: { ...SG_TILE, SG_M: 4 } },
  { name: '2x2sg/4x4m/k16-noprefetch-unrolled', sg: { ...SG_TILE, SBK: 16 } },
  { name: '2x2sg/4x4m/k32-unrolled-1sg', sg: { ...SG_TILE, SG_M: 1, SG_N: 1 } },
];

function shapeOf(s: Shape): BenchRow['shape'] {
  return { M: s.M, N: s.N, K: s.K, wdtype: s.wdtype };
}

function computeRow(variant: string, s: Shape, t: Timing, extra: Record<string, unknown> = {}): BenchRow {
  return {
    kernel: 'matmul',
    variant,
    shape: shapeOf(s),
    median_ms: t.median_ms,
    min_ms: t.min_ms,
    tflops: tflops(2 * s.M * s.N * s.K, t.median_ms),
    bound: 'compute',
    timing: t.source,
    wall_median_ms: t.wall_median_ms,
    wall_tflops: tflops(2 * s.M * s.N * s.K, t.wall_median_ms),
    ...extra,
  };
}

/** Each timed batch should last about this long, so that submit overhead stays small against it. */
const TARGET_BATCH_MS = 20;

export const matmulSuite: BenchSuite = {
  name: 'matmul',
  description: 'y = x·Wᵀ: f32 tiles, f16 tiles, subgroup-matrix f16, gemv (decode); 4096³ and Llama-3-8B shapes',
  async run(ctx: BenchContext): Promise<BenchRow[]> {
    const { gpu, log } = ctx;
    const quick = ctx.options.quick;
    // 'tune-sg': the subgroup-matrix sweep alone.
    const sgOnly = ctx.options.sizes?.includes('tune-sg') === true;
    const tune = ctx.options.sizes?.includes('tune') === true || sgOnly;
    const ops = new Operands(gpu);
    const rows: BenchRow[] = [];
    const kernels = new Map<string, MatmulKernel>();
    const kernel = async (wdtype: MatmulWeightDType, variant: MatmulVariant, tile?: TileConfig, sgTile?: SgTileConfig): Promise<MatmulKernel> => {
      const key = `${wdtype}/${variant}/${JSON.stringify(tile)}/${JSON.stringify(sgTile)}`;
      let k = kernels.get(key);
      if (!k) {
        k = await MatmulKernel.create(gpu, { weightDType: wdtype, variant, tile, sgTile });
        kernels.set(key, k);
      }
      return k;
    };
    const measure = async (k: MatmulKernel, s: Shape): Promise<Timing> => {
      const x = ops.get('x', s.M, s.K, 'f32');
      const w = ops.get('w', s.N, s.K, s.wdtype);
      const y = ops.get('y', s.M, s.N, 'f32');
      return timed(s, (b) => k.encode(b, x, w, y));
    };
    // One untimed run (compilation, first-touch) sizes the batch: copies of the work per batch so that
    // a batch lasts ~TARGET_BATCH_MS.
    const timed = async (s: Shape, encode: (b: Batch) => void): Promise<Timing> => {
      const b0 = gpu.batch();
      encode(b0);
      await b0.submit();
      const t0 = performance.now();
      const b1 = gpu.batch();
      encode(b1);
      await b1.submit();
      const once = performance.now() - t0;
      const inner = Math.max(1, Math.min(16, Math.round(TARGET_BATCH_MS / Math.max(once, 0.01))));
      return ctx.timeBatch(encode, { inner, warmup: 2, reps: s.M * s.N * s.K > 1e11 ? 20 : 30 });
    };
    const tryRow = async (label: string, fn: () => Promise<BenchRow | undefined>): Promise<void> => {
      try {
        const r = await fn();
        if (r) {
          rows.push(r);
          log.info(`matmul ${r.variant} ${JSON.stringify(r.shape)}: ${r.median_ms.toFixed(3)} ms ${r.tflops !== undefined ? `${r.tflops.toFixed(2)} TFLOP/s` : `${(r.gbps ?? 0).toFixed(0)} GB/s`} (wall ${(r.wall_median_ms as number).toFixed(3)} ms)`);
        }
      } catch (e) {
        log.warn(`matmul ${label}: ${errorLine(e)}`);
        if (gpu.lost) throw e;
      }
    };

    const big = (quick ? QUICK : BIG).filter((s) => ctx.wantSize(`${s.M}x${s.N}x${s.K}`) || tune);
    const paths: { variant: string; v: MatmulVariant; why: string | null; dtypes: MatmulWeightDType[] }[] = [
      { variant: 'f32', v: 'f32', why: null, dtypes: ['f32', 'f16', 'bf16'] },
      { variant: 'f16', v: 'f16', why: pathAvailable(gpu, 'f16'), dtypes: ['f32', 'f16'] },
      { variant: 'sgmatrix-f16', v: 'sgmatrix', why: pathAvailable(gpu, 'sgmatrix'), dtypes: ['f32', 'f16', 'bf16'] },
    ];
    for (const p of paths) {
      if (p.why) {
        log.info(`matmul ${p.variant}: skipped (${p.why})`);
        continue;
      }
      for (const s of big) {
        if (!p.dtypes.includes(s.wdtype)) continue;
        if (p.variant === 'f16' && s.N !== 4096) continue;
        await tryRow(`${p.variant} ${JSON.stringify(s)}`, async () => {
          const k = await kernel(s.wdtype, p.v);
          const t = await measure(k, s);
          return computeRow(p.variant, s, t, { path: k.lastPath, ...(k.lastPath === 'sgmatrix' ? { sgTile: k.sgmatrixTile } : {}) });
        });
      }
    }

    // Probes on the f32 path at the first big shape (f32 weights): what costs what.
    const ps = big[0]!;
    const probes: { variant: string; vec: boolean; tile: TileConfig; extra?: Record<string, number> }[] = [
      { variant: 'f32-elemloads', vec: false, tile: LARGE_TILE },
      { variant: 'f32-noprefetch', vec: true, tile: { ...LARGE_TILE, prefetch: false } },
      { variant: 'f32-compute-only', vec: true, tile: { ...LARGE_TILE, prefetch: false }, extra: { PROBE_COMPUTE_ONLY: 1 } },
      { variant: 'f32-small-tile', vec: true, tile: SMALL_TILE },
      { variant: 'f32-loops', vec: true, tile: { ...LARGE_TILE, unroll: false } },
      { variant: 'f32-loops-compute-only', vec: true, tile: { ...LARGE_TILE, prefetch: false, unroll: false }, extra: { PROBE_COMPUTE_ONLY: 1 } },
      { variant: 'f32-small-tile-loops', vec: true, tile: { ...SMALL_TILE, unroll: false } },
    ];
    for (const pr of probes) {
      await tryRow(pr.variant, async () => {
        const program = await gpu.compile(tiledProgramDesc(ps.wdtype, false, pr.tile, false, pr.vec, pr.extra));
        const x = ops.get('x', ps.M, ps.K, 'f32');
        const w = ops.get('w', ps.N, ps.K, ps.wdtype);
        const y = ops.get('y', ps.M, ps.N, 'f32');
        const t = await timed(ps, (b) => {
          b.dispatch({ program, bindings: { x, w, y }, params: { M: ps.M, N: ps.N, K: ps.K }, workgroups: [Math.ceil(ps.N / pr.tile.BN), Math.ceil(ps.M / pr.tile.BM)] });
        });
        return computeRow(pr.variant, ps, t, { probe: true });
      });
    }

    if (tune) {
      const s = BIG[0]!;
      for (const c of sgOnly ? [] : F32_SWEEP) {
        if (c.variant === 'f16' && pathAvailable(gpu, 'f16')) continue;
        await tryRow(`tune ${c.variant} ${c.name}`, async () => {
          const k = await kernel(s.wdtype, c.variant, c.tile);
          return computeRow(`${c.variant}[${c.name}]`, s, await measure(k, s), { tune: true });
        });
      }
      if (!pathAvailable(gpu, 'sgmatrix')) {
        for (const sh of [BIG[1]!, BIG[3]!]) {
          for (const c of SG_SWEEP) {
            await tryRow(`tune sgmatrix ${c.name}`, async () => {
              const k = await kernel(sh.wdtype, 'sgmatrix', undefined, c.sg);
              return computeRow(`sgmatrix-f16[${c.name}]`, sh, await measure(k, sh), { tune: true });
            });
          }
        }
      }
    }

    for (const s of quick ? GEMV_QUICK : GEMV) {
      if (!ctx.wantSize(`gemv`) && !tune && ctx.options.sizes?.length) continue;
      await tryRow(`gemv ${JSON.stringify(s)}`, async () => {
        const k = await kernel(s.wdtype, 'gemv');
        const t = await measure(k, s);
        const bytes = s.N * s.K * (s.wdtype === 'f32' ? 4 : 2) + s.M * s.K * 4 + s.M * s.N * 4;
        return {
          kernel: 'matmul',
          variant: 'gemv',
          shape: shapeOf(s),
          median_ms: t.median_ms,
          min_ms: t.min_ms,
          gbps: gbps(bytes, t.median_ms),
          tflops_eff: tflops(2 * s.M * s.N * s.K, t.median_ms),
          bound: 'memory',
          timing: t.source,
          wall_median_ms: t.wall_median_ms,
        };
      });
    }

    let best = 0;
    for (const r of rows) if (typeof r.tflops === 'number' && !r.probe) best = Math.max(best, r.tflops);
    ctx.reportBestTflops(best);
    ops.releaseAll();
    return rows;
  },
};
