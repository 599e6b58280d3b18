/**
 * Deterministic pseudo-random fill on the GPU (shaders/fill_random.wgsl): synthetic weights of real
 * model shapes for benchmarks, without generating or uploading gigabytes from the host.
 */
import type { Encoder, Gpu, Program } from '../gpu/gpu.ts';
import { DTypeError } from '../gpu/errors.ts';
import type { Tensor } from '../tensor.ts';
import { ceilDiv, foldGrid } from './grid.ts';

const WG = 256;
const DTYPE_CODE = { f32: 0, bf16: 1, f16: 2 } as const;
type FillDType = keyof typeof DTYPE_CODE;

export interface FillParams {
  seed: number;
  /** Values are uniform in [offset - scale, offset + scale). */
  scale: number;
  offset?: number;
}

export class FillRandomKernel {
  private constructor(
    private readonly gpu: Gpu,
    private readonly programs: Record<FillDType, Program>,
  ) {}

  static async create(gpu: Gpu): Promise<FillRandomKernel> {
    const compile = (d: FillDType): Promise<Program> => gpu.compile({ shader: 'fill_random.wgsl', defines: { DTYPE: DTYPE_CODE[d] }, overrides: { WG } });
    const [f32, bf16, f16] = await Promise.all([compile('f32'), compile('bf16'), compile('f16')]);
    return new FillRandomKernel(gpu, { f32, bf16, f16 });
  }

  encode(batch: Encoder, out: Tensor, p: FillParams): void {
    if (out.dtype !== 'f32' && out.dtype !== 'bf16' && out.dtype !== 'f16') throw new DTypeError(`fill_random: ${out.describe()} must be f32, bf16 or f16`);
    const words = out.byteLength / 4;
    const [x, y] = foldGrid(ceilDiv(words, WG), this.gpu.caps.limits.maxComputeWorkgroupsPerDimension);
    batch.dispatch({
      program: this.programs[out.dtype],
      bindings: { out },
      params: { words, n: out.numel, seed: p.seed >>> 0, scale: p.scale, offset: p.offset ?? 0 },
      workgroups: [x, y],
    });
  }
}
