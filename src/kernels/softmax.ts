/**
 * Row softmax (shaders/softmax.wgsl): x [R, C] f32 -> out [R, C] f32, max-subtracted, one
 * workgroup per row looping over any C (tested to 128K+). Subgroup reductions where available.
 */
import type { Encoder, Gpu, Program } from '../gpu/gpu.ts';
import { DTypeError, ShapeError } from '../gpu/errors.ts';
import type { Tensor } from '../tensor.ts';
import { foldGrid } from './grid.ts';
import { reduceDefines, type ReduceVariant } from './reduce.ts';

export interface SoftmaxOptions {
  variant?: ReduceVariant;
}

export class SoftmaxKernel {
  private constructor(
    private readonly gpu: Gpu,
    private readonly program: Program,
  ) {}

  static async create(gpu: Gpu, options: SoftmaxOptions = {}): Promise<SoftmaxKernel> {
    return new SoftmaxKernel(gpu, await gpu.compile({ shader: 'softmax.wgsl', defines: reduceDefines(gpu, options.variant, 'softmax') }));
  }

  encode(batch: Encoder, x: Tensor, out: Tensor): void {
    if (x.dtype !== 'f32' || out.dtype !== 'f32') throw new DTypeError(`softmax: x ${x.describe()} and out ${out.describe()} must be f32`);
    if (x.shape.length !== 2) throw new ShapeError(`softmax: x must be [R, C], got ${x.describe()}`);
    const [R, C] = x.shape as [number, number];
    if (out.shape.length !== 2 || out.shape[0] !== R || out.shape[1] !== C) throw new ShapeError(`softmax: out ${out.describe()} must be [${R}, ${C}] like x`);
    if (out.buffer === x.buffer) throw new ShapeError('softmax: out must not share a buffer with x');
    const [gx, gy] = foldGrid(R, this.gpu.caps.limits.maxComputeWorkgroupsPerDimension);
    batch.dispatch({ program: this.program, bindings: { x, out }, params: { R, C }, workgroups: [gx, gy], label: 'softmax' });
  }
}
