/**
 * The tensor-core throughput probe (shaders/bench_mma.wgsl): its compilation and work size, shared
 * by the bench suite (bench/suites/mma.ts) and its kernel case (test/cases/bench_mma.ts).
 */
import type { Gpu, Program } from '../src/gpu/gpu.ts';
import { pathAvailable } from '../src/kernels/matmul.ts';

export interface MmaProbe {
  /** Left and right 16x16 matrices per subgroup: SG_TM * SG_TN accumulators (at most 4 x 4 when unrolled). */
  SG_TM: number;
  SG_TN: number;
  /** Staged k width (a multiple of 16): k-blocks per iteration in 'shared'. */
  BK: number;
  /** 'regs': operands loaded once, multiplies only; 'shared': operands reloaded from workgroup memory every k-block. */
  source: 'regs' | 'shared';
  /** Subgroups per workgroup. */
  SGS: number;
  /** Loads and multiplies written out with constant indices (lib/sg_mma.wgsl) instead of loops. */
  unroll: boolean;
}

/** Why the probe cannot run here (the matmul's subgroup-matrix preconditions), or null. */
export function mmaProbeUnavailable(gpu: Gpu): string | null {
  return pathAvailable(gpu, 'sgmatrix', {});
}

export function compileMmaProbe(gpu: Gpu, p: MmaProbe): Promise<Program> {
  const defines = { SG_TM: p.SG_TM, SG_TN: p.SG_TN, BK: p.BK, SOURCE: p.source === 'regs' ? 0 : 1, UNROLL: p.unroll ? 1 : 0 };
  return gpu.compile({ shader: 'bench_mma.wgsl', defines: { ...defines, REFLECT: 0 }, overrides: { SGS: p.SGS }, reflectDefines: { ...defines, REFLECT: 1 } });
}

/** Multiply-accumulates (16x16x16) one subgroup issues per iteration. */
export function mmasPerIteration(p: MmaProbe): number {
  return p.SG_TM * p.SG_TN * (p.source === 'regs' ? 1 : p.BK / 16);
}

/** Elements of the probe's input (the staged tile) and output (every subgroup's accumulators). */
export function mmaProbeSizes(p: MmaProbe, workgroups: number): { src: number; dst: number } {
  return { src: (p.SG_TM + p.SG_TN) * 16 * p.BK, dst: workgroups * p.SGS * p.SG_TM * p.SG_TN * 256 };
}
