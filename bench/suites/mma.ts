/**
 * Tensor-core ceiling: f16 16x16x16 subgroup-matrix multiply-accumulates per second as WGSL reaches
 * them on this device (shaders/bench_mma.wgsl, bench/mma-probe.ts), with no global memory in the
 * loop. Variants:
 *   regs    operands loaded once, multiplies only: the most any subgroup-matrix kernel can do here
 *   shared  operands reloaded from workgroup memory every k-block, as matmul.wgsl's inner loop does
 *           (without its global loads and barriers): what feeding the tensor cores costs
 *   *-unrolled  the same with loads and multiplies written out with constant indices (lib/sg_mma.wgsl)
 * Shapes: SG_TM x SG_TN accumulators per subgroup (matmul's default subgroup tile is 4x4), SGS subgroups
 * per workgroup. Rows: kernel 'mma', tflops (2 * 16^3 per multiply-accumulate), bound 'compute'.
 */
import { tflops, type BenchContext, type BenchRow, type BenchSuite } from '../harness.ts';
import { compileMmaProbe, mmaProbeSizes, mmaProbeUnavailable, mmasPerIteration, type MmaProbe } from '../mma-probe.ts';

const PROBES: MmaProbe[] = [];
for (const unroll of [false, true]) {
  for (const source of ['regs', 'shared'] as const) {
    for (const [SG_TM, SG_TN, SGS] of [[2, 2, 4], [4, 4, 4], [2, 4, 8], [4, 4, 8]] as const) PROBES.push({ SG_TM, SG_TN, BK: 32, source, SGS, unroll });
  }
}

export const mmaSuite: BenchSuite = {
  name: 'mma',
  description: 'tensor-core ceiling: subgroup-matrix multiply-accumulates from registers and from workgroup memory',
  async run(ctx: BenchContext): Promise<BenchRow[]> {
    const { gpu } = ctx;
    const why = mmaProbeUnavailable(gpu);
    if (why) {
      ctx.log.warn(`mma: skipped (${why})`);
      return [];
    }
    const rows: BenchRow[] = [];
    const workgroups = ctx.options.quick ? 64 : 4096;
    const iters = ctx.options.quick ? 4 : 256;
    for (const p of PROBES) {
      const program = await compileMmaProbe(gpu, p);
      const sizes = mmaProbeSizes(p, workgroups);
      const src = gpu.upload(new Float32Array(sizes.src).fill(0.5), [sizes.src], 'f32', 'src');
      const dst = gpu.empty([sizes.dst], 'f32', 'dst');
      try {
        const t = await ctx.timeBatch((b) => b.dispatch({ program, bindings: { src, dst }, params: { iters }, workgroups: [workgroups, 1], label: 'mma' }));
        const flops = workgroups * p.SGS * iters * mmasPerIteration(p) * 2 * 16 ** 3;
        rows.push({ kernel: 'mma', variant: `${p.source}${p.unroll ? '-unrolled' : ''}`, shape: { SG_TM: p.SG_TM, SG_TN: p.SG_TN, SGS: p.SGS, BK: p.BK }, median_ms: t.median_ms, min_ms: t.min_ms, tflops: tflops(flops, t.median_ms), bound: 'compute', timing: t.source });
      } finally {
        gpu.release(src, dst);
      }
    }
    return rows;
  },
};
