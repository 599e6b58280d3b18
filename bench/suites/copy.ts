/**
 * Bandwidth suite: device-to-device copies (copyBufferToBuffer and a compute-shader copy,
 * bench/limits.ts) at several sizes and the
 * elementwise add kernel (src/kernels/add.ts: reads a and b, writes out; 12 bytes per element).
 * Both are memory-bound: pct_of_limit = GB/s against limits.copy_gbps.
 */
import { AddKernel } from '../../src/kernels/add.ts';
import { gbps, type BenchContext, type BenchRow, type BenchSuite } from '../harness.ts';
import { measureBufferCopy, measureShaderCopy } from '../limits.ts';

const MiB = 1 << 20;
/** Copy sizes: one that fits the H100's 50 MiB L2 (16 MiB: src + dst = 32 MiB), and two that stream from DRAM. */
const COPY_SIZES = [16 * MiB, 256 * MiB, 1024 * MiB];
const COPY_SIZES_QUICK = [1 * MiB, 8 * MiB];
/** Add sizes in elements: 1M (12 MiB moved), 16M (192 MiB), 64M (768 MiB). */
const ADD_SIZES = [1 << 20, 1 << 24, 1 << 26];
const ADD_SIZES_QUICK = [1 << 16, 1 << 20];

function sizeLabel(n: number): string {
  if (n % MiB === 0) return `${n / MiB}M`;
  if (n % 1024 === 0) return `${n / 1024}K`;
  return String(n);
}

async function copyRows(ctx: BenchContext): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const bytes of ctx.options.quick ? COPY_SIZES_QUICK : COPY_SIZES) {
    if (!ctx.wantSize(bytes) && !ctx.wantSize(sizeLabel(bytes))) continue;
    const opts = { quick: ctx.options.quick, log: ctx.log };
    for (const m of [await measureBufferCopy(ctx.gpu, bytes, opts), await measureShaderCopy(ctx.gpu, bytes, opts)]) {
      rows.push({
        kernel: 'copy',
        variant: m.method,
        shape: { bytes: m.bytes },
        median_ms: m.timing.median_ms,
        min_ms: m.timing.min_ms,
        gbps: m.gbps,
        bound: 'memory',
        timing: m.timing.source,
        inner: m.timing.inner,
      });
    }
  }
  return rows;
}

async function addRows(ctx: BenchContext): Promise<BenchRow[]> {
  const { gpu } = ctx;
  const kernel = await AddKernel.create(gpu);
  const rows: BenchRow[] = [];
  for (const n of ctx.options.quick ? ADD_SIZES_QUICK : ADD_SIZES) {
    if (!ctx.wantSize(n) && !ctx.wantSize(sizeLabel(n))) continue;
    if (n * 4 > gpu.caps.limits.maxStorageBufferBindingSize) {
      ctx.log.warn(`add: n=${n} exceeds the binding limit, skipped`);
      continue;
    }
    const a = gpu.empty([n], 'f32', 'a');
    const b = gpu.empty([n], 'f32', 'b');
    const out = gpu.empty([n], 'f32', 'out');
    try {
      // Several adds per batch keep the tiny sizes from measuring only submit overhead.
      const inner = n <= 1 << 20 ? 8 : 2;
      const t = await ctx.timeBatch((batch) => kernel.encode(batch, a, b, out), { inner });
      rows.push({
        kernel: 'add',
        variant: 'f32',
        shape: { n },
        median_ms: t.median_ms,
        min_ms: t.min_ms,
        gbps: gbps(12 * n, t.median_ms),
        bound: 'memory',
        timing: t.source,
        wall_median_ms: t.wall_median_ms,
      });
    } finally {
      gpu.release(a, b, out);
    }
  }
  return rows;
}

export const copySuite: BenchSuite = {
  name: 'copy',
  description: 'memory bandwidth: copyBufferToBuffer and the elementwise add kernel',
  async run(ctx) {
    return [...(await copyRows(ctx)), ...(await addRows(ctx))];
  },
};
