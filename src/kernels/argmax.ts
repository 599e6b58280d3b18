/**
 * Row argmax on the GPU (shaders/argmax.wgsl), for greedy decoding without reading logits back:
 * x [V] or [R, V] f32 -> out [1] or [R] u32, the lowest index on ties; NaN is never chosen
 * (an all-NaN row gives ARGMAX_NONE).
 */
import type { Encoder, Gpu, Program } from '../gpu/gpu.ts';
import { DTypeError, ShapeError } from '../gpu/errors.ts';
import type { Tensor } from '../tensor.ts';
import { foldGrid } from './grid.ts';
import { reduceDefines, type ReduceVariant } from './reduce.ts';

/** What an all-NaN row yields. */
export const ARGMAX_NONE = 0xffffffff;

export interface ArgmaxOptions {
  variant?: ReduceVariant;
}

export class ArgmaxKernel {
  private constructor(
    private readonly gpu: Gpu,
    private readonly program: Program,
  ) {}

  static async create(gpu: Gpu, options: ArgmaxOptions = {}): Promise<ArgmaxKernel> {
    return new ArgmaxKernel(gpu, await gpu.compile({ shader: 'argmax.wgsl', defines: reduceDefines(gpu, options.variant, 'argmax') }));
  }

  encode(batch: Encoder, x: Tensor, out: Tensor): void {
    if (x.dtype !== 'f32') throw new DTypeError(`argmax: x ${x.describe()} must be f32`);
    if (out.dtype !== 'u32') throw new DTypeError(`argmax: out ${out.describe()} must be u32`);
    if (x.shape.length !== 1 && x.shape.length !== 2) throw new ShapeError(`argmax: x must be [V] or [R, V], got ${x.describe()}`);
    const [R, V] = x.shape.length === 1 ? [1, x.shape[0]!] : (x.shape as [number, number]);
    if (out.numel !== R || out.shape.length !== 1) throw new ShapeError(`argmax: out ${out.describe()} must be [${R}] for x ${x.describe()}`);
    if (out.buffer === x.buffer) throw new ShapeError('argmax: out must not share a buffer with x');
    const [gx, gy] = foldGrid(R, this.gpu.caps.limits.maxComputeWorkgroupsPerDimension);
    batch.dispatch({ program: this.program, bindings: { x, out }, params: { R, V }, workgroups: [gx, gy], label: 'argmax' });
  }
}
