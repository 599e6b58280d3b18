// float64 reference of the tensor-core throughput probe (shaders/bench_mma.wgsl).
import type { MmaProbe } from '../../bench/mma-probe.ts';

/** dst for `workgroups` workgroups of the probe over the staged tile `src` (row-major, BK wide). */
export function mmaProbeReference(p: MmaProbe, src: Float32Array, workgroups: number, iters: number): Float64Array {
  const kBlocks = p.source === 'regs' ? 1 : p.BK / 16;
  const one = new Float64Array(p.SG_TM * p.SG_TN * 256);
  for (let i = 0; i < p.SG_TM; i++) {
    for (let j = 0; j < p.SG_TN; j++) {
      for (let m = 0; m < 16; m++) {
        for (let n = 0; n < 16; n++) {
          let s = 0;
          for (let k = 0; k < kBlocks * 16; k++) s += src[(i * 16 + m) * p.BK + k]! * src[((p.SG_TM + j) * 16 + n) * p.BK + k]!;
          one[(i * p.SG_TN + j) * 256 + m * 16 + n] = iters * s;
        }
      }
    }
  }
  const out = new Float64Array(one.length * workgroups * p.SGS);
  for (let s = 0; s < workgroups * p.SGS; s++) out.set(one, s * one.length);
  return out;
}
