/** SwiGLU (shaders/silu_mul.wgsl): out[t, f] = silu(gate[t, f]) * up[t, f]; gate, up, out [T, F] f32. */
import type { Encoder, Gpu, Program } from '../gpu/gpu.ts';
import { DTypeError, ShapeError } from '../gpu/errors.ts';
import type { Tensor } from '../tensor.ts';
import { ceilDiv, foldGrid } from './grid.ts';

const WG = 256;

export class SiluMulKernel {
  private constructor(
    private readonly gpu: Gpu,
    private readonly program: Program,
  ) {}

  static async create(gpu: Gpu): Promise<SiluMulKernel> {
    return new SiluMulKernel(gpu, await gpu.compile({ shader: 'silu_mul.wgsl', overrides: { WG } }));
  }

  encode(batch: Encoder, gate: Tensor, up: Tensor, out: Tensor): void {
    for (const [n, t] of [['gate', gate], ['up', up], ['out', out]] as const) {
      if (t.dtype !== 'f32') throw new DTypeError(`silu_mul: ${n} ${t.describe()} must be f32`);
    }
    const same = (a: Tensor, b: Tensor): boolean => a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
    if (!same(gate, up) || !same(gate, out)) {
      throw new ShapeError(`silu_mul: gate ${gate.describe()}, up ${up.describe()} and out ${out.describe()} must have the same shape`);
    }
    if (out.buffer === gate.buffer || out.buffer === up.buffer) throw new ShapeError('silu_mul: out must not share a buffer with gate or up');
    const [x, y] = foldGrid(ceilDiv(out.numel, WG), this.gpu.caps.limits.maxComputeWorkgroupsPerDimension);
    batch.dispatch({ program: this.program, bindings: { gate, up, out }, params: { n: out.numel }, workgroups: [x, y], label: 'silu_mul' });
  }
}
