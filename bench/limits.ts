/**
 * The device's measured memory-bandwidth limit: a large device-to-device buffer copy
 * (copyBufferToBuffer), counting bytes read + bytes written. Memory-bound rows report
 * pct_of_limit against this number.
 */
import type { Batch, Gpu } from '../src/gpu/gpu.ts';
import { gbps, timeBatch, type Logger, type Timing } from './harness.ts';

/** 1 GiB: far larger than any cache (H100 L2 is 50 MiB), so the copy streams from DRAM. */
const FULL_BYTES = 1 << 30;
/** Quick runs (CPU adapters): 32 MiB is still larger than the host's last-level cache. */
const QUICK_BYTES = 32 << 20;
/** Smallest size worth measuring before giving up on allocation. */
const MIN_BYTES = 1 << 20;
/** Each timed batch should last at least this long, so submit overhead stays small against it. */
const TARGET_BATCH_MS = 20;
const MAX_INNER = 16;

export interface CopyMeasurement {
  bytes: number;
  inner: number;
  timing: Timing;
  gbps: number;
}

function tryCreate(gpu: Gpu, size: number, label: string): Promise<GPUBuffer | undefined> {
  const device = gpu.device;
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let buf: GPUBuffer | undefined;
  try {
    buf = device.createBuffer({ size, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, label });
  } catch {
    buf = undefined;
  }
  const validation = device.popErrorScope();
  const oom = device.popErrorScope();
  return Promise.all([validation, oom]).then(([v, o]) => {
    if (v || o || !buf) {
      buf?.destroy();
      return undefined;
    }
    return buf;
  });
}

/** Measures copyBufferToBuffer bandwidth with the largest buffers (up to 1 GiB) the device gives. */
export async function measureCopy(gpu: Gpu, opts: { quick: boolean; bytes?: number; log?: Logger }): Promise<CopyMeasurement> {
  let size = Math.min(opts.bytes ?? (opts.quick ? QUICK_BYTES : FULL_BYTES), gpu.caps.limits.maxBufferSize);
  size -= size % 256; // copies need multiples of 4; 256 keeps both buffers nicely aligned
  let src: GPUBuffer | undefined;
  let dst: GPUBuffer | undefined;
  while (size >= MIN_BYTES) {
    src = await tryCreate(gpu, size, 'copy-src');
    dst = src && (await tryCreate(gpu, size, 'copy-dst'));
    if (src && dst) break;
    src?.destroy();
    src = dst = undefined;
    opts.log?.warn(`copy limit: could not allocate 2 x ${size} bytes, halving`);
    size = Math.floor(size / 2 / 256) * 256;
  }
  if (!src || !dst) throw new Error('copy limit: could not allocate even 2 x 1 MiB');
  const s = src;
  const d = dst;
  try {
    const encode = (b: Batch): void => {
      b.copy({ buffer: s }, { buffer: d }, size);
    };
    // Probe single copies (the first touches the memory) to choose how many go into each timed batch.
    let probeMs = Infinity;
    for (let i = 0; i < 3; i++) {
      const b = gpu.batch({ label: 'copy-probe' });
      encode(b);
      const t0 = performance.now();
      await b.submit();
      probeMs = Math.min(probeMs, performance.now() - t0);
    }
    const inner = Math.max(1, Math.min(MAX_INNER, Math.ceil(TARGET_BATCH_MS / Math.max(probeMs, 1e-3))));
    const timing = await timeBatch(gpu, encode, { inner, profile: false }, opts.quick);
    return { bytes: size, inner, timing, gbps: gbps(2 * size, timing.median_ms) };
  } finally {
    s.destroy();
    d.destroy();
  }
}
