/**
 * Benchmark harness: timing helpers and the results schema every benchmark suite uses.
 *
 * A suite (bench/suites/<name>.ts, listed in bench/suites/index.ts) receives a BenchContext and
 * returns rows. Timing:
 *  - ctx.time(fn): wall clock around fn() + gpu.sync(), after warm-up, median and min over >= 20
 *    repetitions. For work that submits its own batches (model layers, the attention API).
 *  - ctx.timeBatch(encode): records `inner` copies of the work into one batch per repetition and
 *    measures wall clock around submit; when the device has timestamp queries it also runs profiled
 *    repetitions (gpu.batch({ profile: true })) and reports the summed per-dispatch GPU time, which
 *    then becomes median_ms/min_ms (it excludes submit and readback overhead).
 *
 * pct_of_limit is filled in by finishResults() after all suites ran: gbps / limits.copy_gbps for
 * memory-bound rows, tflops / limits.best_tflops for compute-bound rows.
 */
import type { Batch, Gpu } from '../src/gpu/gpu.ts';
import type { RuntimeName } from '../src/gpu/runtime.ts';

export type BenchRuntime = 'node-dawn' | 'deno' | 'chromium';

export interface BenchRow {
  kernel: string;
  variant: string;
  shape: Record<string, number | string | boolean>;
  median_ms: number;
  min_ms?: number;
  tflops?: number;
  gbps?: number;
  pct_of_limit?: number;
  /** Which limit pct_of_limit refers to; inferred (tflops -> compute, else gbps -> memory) when absent. */
  bound?: 'memory' | 'compute';
  [extra: string]: unknown;
}

export interface BenchLimits {
  copy_gbps: number;
  best_tflops?: number;
  /** Which copy method gave copy_gbps (bench/limits.ts). */
  copy_method?: string;
}

export interface BenchResults {
  device: string;
  runtime: BenchRuntime;
  /** Bounds checks on (the browsers' setting); false with --no-robustness. Absent in older files. */
  robustness?: boolean;
  date: string;
  commit: string;
  rows: BenchRow[];
  limits: BenchLimits;
}

export interface BenchOptions {
  /** Small sizes and fewer repetitions (CPU adapters, smoke tests). */
  quick: boolean;
  /** When given, suites run only the sizes whose label (or number) is listed, e.g. --sizes 4096,8k. */
  sizes?: readonly string[];
}

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
}

export interface TimeOptions {
  /** Untimed runs first (compilation, pool warm-up, clocks). Default 3 (1 when quick). */
  warmup?: number;
  /** Timed repetitions; never fewer than MIN_REPS. Default 30 (20 when quick). */
  reps?: number;
}

export interface BatchTimeOptions extends TimeOptions {
  /** Copies of the work recorded into each batch, to amortise submit overhead; times are per copy. Default 1. */
  inner?: number;
  /** Use timestamp queries when the device has them. Default true. */
  profile?: boolean;
}

export interface Timing {
  /** Per run of the work: GPU time when measured with timestamps, else wall clock. */
  median_ms: number;
  min_ms: number;
  wall_median_ms: number;
  wall_min_ms: number;
  gpu_median_ms?: number;
  gpu_min_ms?: number;
  reps: number;
  inner: number;
  /** gpu-timestamps: summed per-dispatch GPU time; wall-clock: around submit + sync; wall-slope: bench/limits.ts timeBySlope. */
  source: 'gpu-timestamps' | 'wall-clock' | 'wall-slope';
}

export interface BenchContext {
  gpu: Gpu;
  options: BenchOptions;
  log: Logger;
  /** Wall clock around fn() + gpu.sync(). */
  time(fn: () => unknown, opts?: TimeOptions): Promise<Timing>;
  /** Batch-level timing with GPU timestamps where available. */
  timeBatch(encode: (batch: Batch, i: number) => void, opts?: BatchTimeOptions): Promise<Timing>;
  /** True if no size filter is set or `size` is in it. */
  wantSize(size: string | number): boolean;
  /** A suite that measures the device's best compute rate (the matmul suite) reports it here. */
  reportBestTflops(tflops: number): void;
}

export interface BenchSuite {
  name: string;
  /** One line for --help. */
  description?: string;
  run(ctx: BenchContext): Promise<BenchRow[]>;
}

/**
 * Dawn flags for benchmark devices: Dawn rounds timestamp queries down to multiples of 2^16 ns
 * (65.5 us, the `timestamp_quantization` toggle, a browser anti-fingerprinting measure), which made
 * short kernels read 0 ms on the H100. Benchmarks need the full resolution. Ignored outside Node.
 */
export const BENCH_DAWN_FLAGS: readonly string[] = ['disable-dawn-features=timestamp_quantization'];

/** At least this many timed repetitions (project rule: median of >= 20). */
export const MIN_REPS = 20;

const now = (): number => performance.now();

/**
 * An error as one log line: its message's first lines, leaving out compiler warnings (a
 * KernelCompileError lists Dawn's warnings first and what failed after them).
 */
export function errorLine(e: unknown, lines = 6): string {
  const message = e instanceof Error ? e.message : String(e);
  return message
    .split('\n')
    .filter((l) => !l.includes('warning'))
    .slice(0, lines)
    .join(' | ');
}

export function median(xs: readonly number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function minOf(xs: readonly number[]): number {
  return xs.reduce((a, b) => Math.min(a, b), Infinity);
}

function repsOf(opts: TimeOptions, quick: boolean): { warmup: number; reps: number } {
  const warmup = Math.max(0, Math.floor(opts.warmup ?? (quick ? 1 : 3)));
  const reps = Math.max(MIN_REPS, Math.floor(opts.reps ?? (quick ? MIN_REPS : 30)));
  return { warmup, reps };
}

/** Wall clock around fn() + gpu.sync(). */
export async function timeWall(gpu: Gpu, fn: () => unknown, opts: TimeOptions = {}, quick = false): Promise<Timing> {
  const { warmup, reps } = repsOf(opts, quick);
  for (let i = 0; i < warmup; i++) {
    await fn();
    await gpu.sync();
  }
  const wall: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = now();
    await fn();
    await gpu.sync();
    wall.push(now() - t0);
  }
  const wm = median(wall);
  const wn = minOf(wall);
  return { median_ms: wm, min_ms: wn, wall_median_ms: wm, wall_min_ms: wn, reps, inner: 1, source: 'wall-clock' };
}

/**
 * Each repetition records `inner` copies of the work into one batch. Wall clock is measured around
 * submit (which waits for completion) in unprofiled batches; when timestamps are available, a
 * second set of profiled repetitions sums the per-dispatch GPU times of each batch.
 */
export async function timeBatch(gpu: Gpu, encode: (batch: Batch, i: number) => void, opts: BatchTimeOptions = {}, quick = false): Promise<Timing> {
  const { warmup, reps } = repsOf(opts, quick);
  const inner = Math.max(1, Math.floor(opts.inner ?? 1));
  const once = async (profile: boolean): Promise<{ wall: number; gpuMs: number; dispatches: number }> => {
    const b = gpu.batch({ label: 'bench', profile });
    for (let i = 0; i < inner; i++) encode(b, i);
    const t0 = now();
    const times = await b.submit();
    const wall = now() - t0;
    let gpuMs = 0;
    for (const t of times) gpuMs += t.ms;
    return { wall, gpuMs, dispatches: times.length };
  };
  for (let i = 0; i < warmup; i++) await once(false);
  const wall: number[] = [];
  for (let i = 0; i < reps; i++) wall.push((await once(false)).wall / inner);
  const wm = median(wall);
  const wn = minOf(wall);
  const timing: Timing = { median_ms: wm, min_ms: wn, wall_median_ms: wm, wall_min_ms: wn, reps, inner, source: 'wall-clock' };
  if ((opts.profile ?? true) && gpu.caps.timestamps) {
    const g: number[] = [];
    let dispatches = 0;
    for (let i = 0; i < reps; i++) {
      const r = await once(true);
      dispatches = r.dispatches;
      g.push(r.gpuMs / inner);
    }
    // Batches without compute dispatches (pure copies) have no timestamps: keep the wall clock.
    if (dispatches > 0) {
      timing.gpu_median_ms = median(g);
      timing.gpu_min_ms = minOf(g);
      timing.median_ms = timing.gpu_median_ms;
      timing.min_ms = timing.gpu_min_ms;
      timing.source = 'gpu-timestamps';
    }
  }
  return timing;
}

/** The runtime name used in results files. */
export function benchRuntime(r: RuntimeName): BenchRuntime {
  return r === 'browser' ? 'chromium' : r;
}

/** A one-line device name from the adapter info. */
export function deviceName(gpu: Gpu): string {
  const a = gpu.caps.adapter;
  const parts = [a.description || a.device, a.vendor && `vendor ${a.vendor}`, a.architecture && `arch ${a.architecture}`].filter(Boolean);
  return parts.join(', ') || 'unknown adapter';
}

export function makeContext(gpu: Gpu, options: BenchOptions, log: Logger, onBestTflops: (t: number) => void): BenchContext {
  const sizes = options.sizes?.map((s) => s.trim().toLowerCase()).filter(Boolean);
  return {
    gpu,
    options,
    log,
    time: (fn, opts) => timeWall(gpu, fn, opts, options.quick),
    timeBatch: (encode, opts) => timeBatch(gpu, encode, opts, options.quick),
    wantSize: (size) => !sizes?.length || sizes.includes(String(size).toLowerCase()),
    reportBestTflops: (t) => {
      if (Number.isFinite(t) && t > 0) onBestTflops(t);
    },
  };
}

/** Bytes per second -> GB/s (1e9), for `bytes` moved in `ms`. */
export function gbps(bytes: number, ms: number): number {
  return bytes / (ms * 1e-3) / 1e9;
}

/** FLOP in `ms` -> TFLOP/s (1e12). */
export function tflops(flop: number, ms: number): number {
  return flop / (ms * 1e-3) / 1e12;
}

/**
 * Fills limits.best_tflops (reported by a suite, else the best matmul row) and each row's
 * pct_of_limit (percent) where a suite did not set it.
 */
export function finishResults(results: BenchResults, reportedBestTflops?: number): BenchResults {
  let best = reportedBestTflops;
  if (best === undefined) {
    for (const r of results.rows) if (r.kernel.startsWith('matmul') && typeof r.tflops === 'number' && Number.isFinite(r.tflops)) best = Math.max(best ?? 0, r.tflops);
  }
  if (best !== undefined && best > 0) results.limits.best_tflops = best;
  for (const r of results.rows) {
    if (r.pct_of_limit !== undefined) continue;
    const bound = r.bound ?? (typeof r.tflops === 'number' && results.limits.best_tflops ? 'compute' : typeof r.gbps === 'number' ? 'memory' : undefined);
    if (bound === 'compute' && typeof r.tflops === 'number' && results.limits.best_tflops) r.pct_of_limit = (100 * r.tflops) / results.limits.best_tflops;
    else if (bound === 'memory' && typeof r.gbps === 'number' && results.limits.copy_gbps > 0) r.pct_of_limit = (100 * r.gbps) / results.limits.copy_gbps;
  }
  return results;
}

function fmt(x: unknown, digits: number): string {
  if (typeof x !== 'number' || !Number.isFinite(x)) return '-';
  if (x !== 0 && Math.abs(x) < 10 ** -digits) return x.toExponential(1);
  return x.toFixed(digits);
}

export function shapeText(shape: BenchRow['shape']): string {
  return Object.entries(shape)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

/** A fixed-width text table: kernel, variant, shape, median ms, TFLOP/s, GB/s, % of limit. */
export function formatTable(rows: readonly BenchRow[]): string {
  const head = ['kernel', 'variant', 'shape', 'median ms', 'min ms', 'TFLOP/s', 'GB/s', '% limit'];
  const body = rows.map((r) => [r.kernel, r.variant, shapeText(r.shape), fmt(r.median_ms, 4), fmt(r.min_ms, 4), fmt(r.tflops, 2), fmt(r.gbps, 1), fmt(r.pct_of_limit, 1)]);
  const all = [head, ...body];
  const widths = head.map((_, c) => Math.max(...all.map((row) => row[c]!.length)));
  const numeric = (c: number): boolean => c >= 3;
  const line = (row: string[]): string => row.map((cell, c) => (numeric(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}
