/**
 * Choice of the workgroup-reduction flavour used by the row kernels (rms_norm, softmax, argmax;
 * shaders/lib/reduce.wgsl): subgroup operations where the device has them, else the
 * workgroup-memory tree. 'workgroup' forces the fallback (tests, devices with broken subgroups).
 */
import type { Gpu } from '../gpu/gpu.ts';
import { UnsupportedError } from '../gpu/errors.ts';

export type ReduceVariant = 'auto' | 'subgroups' | 'workgroup';

/** Threads per row workgroup: 256 is WebGPU's guaranteed maxComputeInvocationsPerWorkgroup. */
export const ROW_WG = 256;

/** Defines for lib/reduce.wgsl: WG and SUBGROUPS. Throws UnsupportedError for 'subgroups' without the feature. */
export function reduceDefines(gpu: Gpu, variant: ReduceVariant | undefined, op: string): { WG: number; SUBGROUPS: number } {
  const v = variant ?? 'auto';
  if (v !== 'auto' && v !== 'subgroups' && v !== 'workgroup') throw new UnsupportedError(`${op}: unknown variant "${String(v)}"`);
  if (v === 'subgroups' && !gpu.caps.subgroups) throw new UnsupportedError(`${op}: variant "subgroups" needs the WebGPU "subgroups" feature, which this device lacks`);
  const sub = v === 'subgroups' || (v === 'auto' && gpu.caps.subgroups);
  return { WG: ROW_WG, SUBGROUPS: sub ? 1 : 0 };
}
