/**
 * The device's measured memory-bandwidth limit: a large device-to-device copy, counting bytes read
 * + bytes written. Memory-bound rows report pct_of_limit against it.
 *
 * Two methods, the larger wins (both are "a copy"; which one is faster depends on the driver):
 *  - copyBufferToBuffer, timed by wall clock as the slope between batches of 1 and N copies, which
 *    cancels the fixed submit + sync latency (several ms per submit in Deno/wgpu);
 *  - a streaming compute-shader copy (shaders/bench_copy.wgsl, 16 bytes per thread), timed with
 *    timestamp queries where available. On the H100 under Dawn, copyBufferToBuffer reached only
 *    ~840 GB/s while the add kernel moved ~2.4 TB/s, so the buffer copy alone is not the limit.
 */
import type { Batch, Gpu } from '../src/gpu/gpu.ts';
import { ceilDiv, foldGrid } from '../src/kernels/grid.ts';
import { MIN_REPS, gbps, median, minOf, timeBatch, type Logger, type Timing } from './harness.ts';

/** 1 GiB: far larger than any cache (H100 L2 is 50 MiB), so the copy streams from DRAM. */
const FULL_BYTES = 1 << 30;
/** Quick runs (CPU adapters): 32 MiB is still larger than the host's last-level cache. */
const QUICK_BYTES = 32 << 20;
/** Smallest size worth measuring before giving up on allocation. */
const MIN_BYTES = 1 << 20;
/** The N-copy batches should last at least this long, so the slope is well above timer noise. */
const TARGET_BATCH_MS = 20;
const MIN_INNER = 4;
const MAX_INNER = 32;
/** Workgroup size of bench_copy.wgsl: 256 threads x 16 bytes = 4 KiB per workgroup. */
const WG = 256;

export type CopyMethod = 'copyBufferToBuffer' | 'shader';

export interface CopyRate {
  method: CopyMethod;
  bytes: number;
  timing: Timing;
  gbps: number;
}

export interface CopyMeasurement {
  /** The faster method's rate: the limit. */
  gbps: number;
  best: CopyRate;
  rates: CopyRate[];
}

async function tryCreate(gpu: Gpu, size: number, usage: number, label: string): Promise<GPUBuffer | undefined> {
  const device = gpu.device;
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let buf: GPUBuffer | undefined;
  try {
    buf = device.createBuffer({ size, usage, label });
  } catch {
    buf = undefined;
  }
  const [v, o] = await Promise.all([device.popErrorScope(), device.popErrorScope()]);
  if (v || o || !buf) {
    buf?.destroy();
    return undefined;
  }
  return buf;
}

/** Two buffers of up to `want` bytes (halving on failure), or throws. */
async function bufferPair(gpu: Gpu, want: number, usage: number, log?: Logger): Promise<{ src: GPUBuffer; dst: GPUBuffer; size: number }> {
  let size = want - (want % 256); // copies need multiples of 4, the shader 16; 256 keeps both aligned
  while (size >= MIN_BYTES) {
    const src = await tryCreate(gpu, size, usage, 'copy-src');
    const dst = src && (await tryCreate(gpu, size, usage, 'copy-dst'));
    if (src && dst) return { src, dst, size };
    src?.destroy();
    log?.warn(`copy: could not allocate 2 x ${size} bytes, halving`);
    size = Math.floor(size / 2 / 256) * 256;
  }
  throw new Error('copy: could not allocate even 2 x 1 MiB');
}

/**
 * Wall-clock time per unit of work as the slope between batches holding 1 and `inner` units: the
 * fixed cost of a submit and its completion wait cancels out.
 */
export async function timeBySlope(gpu: Gpu, encode: (b: Batch) => void, opts: { quick: boolean; targetMs?: number }): Promise<Timing> {
  const once = async (k: number): Promise<number> => {
    const b = gpu.batch({ label: 'bench-slope' });
    for (let i = 0; i < k; i++) encode(b);
    const t0 = performance.now();
    await b.submit();
    return performance.now() - t0;
  };
  // Probe (the first run touches the memory) to choose the batch size.
  let probe = Infinity;
  for (let i = 0; i < 3; i++) probe = Math.min(probe, await once(1));
  const inner = Math.max(MIN_INNER, Math.min(MAX_INNER, Math.ceil((opts.targetMs ?? TARGET_BATCH_MS) / Math.max(probe, 1e-3))));
  const reps = MIN_REPS;
  const one: number[] = [];
  const many: number[] = [];
  // Interleaved, so that clock or thermal drift affects both sides alike.
  for (let i = 0; i < reps; i++) {
    one.push(await once(1));
    many.push(await once(inner));
  }
  let med = (median(many) - median(one)) / (inner - 1);
  let mn = (minOf(many) - minOf(one)) / (inner - 1);
  // Noise can swamp a tiny slope; then fall back to the plain average, an upper bound.
  if (!(med > 0)) med = median(many) / inner;
  if (!(mn > 0)) mn = minOf(many) / inner;
  return { median_ms: med, min_ms: mn, wall_median_ms: median(many) / inner, wall_min_ms: minOf(many) / inner, reps, inner, source: 'wall-slope' };
}

/** copyBufferToBuffer bandwidth with buffers of up to `bytes`. */
export async function measureBufferCopy(gpu: Gpu, bytes: number, opts: { quick: boolean; log?: Logger }): Promise<CopyRate> {
  const want = Math.min(bytes, gpu.caps.limits.maxBufferSize);
  const { src, dst, size } = await bufferPair(gpu, want, GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, opts.log);
  try {
    const timing = await timeBySlope(gpu, (b) => b.copy({ buffer: src }, { buffer: dst }, size), opts);
    return { method: 'copyBufferToBuffer', bytes: size, timing, gbps: gbps(2 * size, timing.median_ms) };
  } finally {
    src.destroy();
    dst.destroy();
  }
}

/** Compute-shader copy bandwidth (shaders/bench_copy.wgsl) with buffers of up to `bytes`. */
export async function measureShaderCopy(gpu: Gpu, bytes: number, opts: { quick: boolean; log?: Logger }): Promise<CopyRate> {
  const limits = gpu.caps.limits;
  // One binding covers the whole buffer, and the word count must fit the u32 param.
  const want = Math.min(bytes, limits.maxBufferSize, limits.maxStorageBufferBindingSize, 16 * 0xffffffff);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const program = await gpu.compile({ shader: 'bench_copy.wgsl', overrides: { WG } });
  const { src, dst, size } = await bufferPair(gpu, want, usage, opts.log);
  try {
    const n = size / 16;
    const workgroups = foldGrid(ceilDiv(n, WG), limits.maxComputeWorkgroupsPerDimension);
    const encode = (b: Batch): void => {
      b.dispatch({ program, bindings: { src: { buffer: src, size }, dst: { buffer: dst, size } }, params: { n }, workgroups, label: 'bench_copy' });
    };
    let timing: Timing;
    if (gpu.caps.timestamps) {
      // Several copies per batch: the first one after a submit can include ramp-up.
      timing = await timeBatch(gpu, encode, { inner: 4, warmup: 2 }, opts.quick);
      if (timing.source !== 'gpu-timestamps') timing = await timeBySlope(gpu, encode, opts);
    } else {
      timing = await timeBySlope(gpu, encode, opts);
    }
    return { method: 'shader', bytes: size, timing, gbps: gbps(2 * size, timing.median_ms) };
  } finally {
    src.destroy();
    dst.destroy();
  }
}

/** Measures both copy methods with the largest buffers (up to 1 GiB) the device gives; the faster is the limit. */
export async function measureCopy(gpu: Gpu, opts: { quick: boolean; bytes?: number; log?: Logger }): Promise<CopyMeasurement> {
  const bytes = opts.bytes ?? (opts.quick ? QUICK_BYTES : FULL_BYTES);
  const rates = [await measureBufferCopy(gpu, bytes, opts), await measureShaderCopy(gpu, bytes, opts)];
  const best = rates.reduce((a, b) => (b.gbps > a.gbps ? b : a));
  return { gbps: best.gbps, best, rates };
}
