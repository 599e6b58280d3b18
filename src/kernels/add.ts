/** Residual add: out = a + b (f32). The simplest kernel; also the pattern every kernel spec follows. */
import type { Encoder, Gpu, Program } from '../gpu/gpu.ts';
import { ShapeError, DTypeError } from '../gpu/errors.ts';
import type { Tensor } from '../tensor.ts';
import { ceilDiv, foldGrid } from './grid.ts';

const WG = 256;

export function validateAdd(a: Tensor, b: Tensor, out: Tensor): void {
  for (const t of [a, b, out]) if (t.dtype !== 'f32') throw new DTypeError(`add: ${t.describe()} must be f32`);
  if (a.numel !== b.numel || a.numel !== out.numel) {
    throw new ShapeError(`add: element counts differ: ${a.describe()}, ${b.describe()}, ${out.describe()}`);
  }
}

export class AddKernel {
  private constructor(
    private readonly gpu: Gpu,
    private readonly program: Program,
  ) {}

  static async create(gpu: Gpu): Promise<AddKernel> {
    return new AddKernel(gpu, await gpu.compile({ shader: 'add.wgsl', overrides: { WG } }));
  }

  encode(batch: Encoder, a: Tensor, b: Tensor, out: Tensor): void {
    validateAdd(a, b, out);
    const [x, y] = foldGrid(ceilDiv(a.numel, WG), this.gpu.caps.limits.maxComputeWorkgroupsPerDimension);
    batch.dispatch({ program: this.program, bindings: { a, b, out }, params: { n: a.numel }, workgroups: [x, y] });
  }
}
