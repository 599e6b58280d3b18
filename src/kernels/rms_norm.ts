/**
 * RMS norm (shaders/rms_norm.wgsl): out = x / sqrt(mean(x²) + eps) * weight, per row, in f32.
 * x [T, C] f32, weight [C] f32 / f16 / bf16 (halves packed two per u32), out [T, C] f32.
 * AddRmsNormKernel fuses the residual add in front: residual += x; out = norm(residual) * weight.
 * One workgroup per row; subgroup reduction where the device has subgroups (variant 'auto').
 */
import type { Encoder, Gpu, Program } from '../gpu/gpu.ts';
import { DTypeError, ShapeError, UnsupportedError } from '../gpu/errors.ts';
import type { Tensor } from '../tensor.ts';
import { foldGrid } from './grid.ts';
import { reduceDefines, type ReduceVariant } from './reduce.ts';

export type NormWeightDType = 'f32' | 'f16' | 'bf16';
const WDT = { f32: 0, f16: 1, bf16: 2 } as const;

export interface RmsNormOptions {
  weightDType: NormWeightDType;
  /** 'auto' (default): subgroups if available; 'workgroup' forces the workgroup-memory fallback. */
  variant?: ReduceVariant;
}

function checkWeightDType(op: string, d: string): asserts d is NormWeightDType {
  if (!(d in WDT)) throw new UnsupportedError(`${op}: weightDType must be f32, f16 or bf16, got "${d}"`);
}

function validateRows(op: string, x: Tensor, weight: Tensor, out: Tensor, weightDType: NormWeightDType, eps: number): [number, number] {
  if (x.dtype !== 'f32') throw new DTypeError(`${op}: x ${x.describe()} must be f32`);
  if (out.dtype !== 'f32') throw new DTypeError(`${op}: out ${out.describe()} must be f32`);
  if (weight.dtype !== weightDType) throw new DTypeError(`${op}: weight ${weight.describe()} must be ${weightDType} (the kernel was created for it)`);
  if (x.shape.length !== 2) throw new ShapeError(`${op}: x must be [T, C], got ${x.describe()}`);
  const [T, C] = x.shape as [number, number];
  if (weight.shape.length !== 1 || weight.shape[0] !== C) throw new ShapeError(`${op}: weight ${weight.describe()} must be [${C}] for x ${x.describe()}`);
  if (out.shape.length !== 2 || out.shape[0] !== T || out.shape[1] !== C) throw new ShapeError(`${op}: out ${out.describe()} must be [${T}, ${C}] like x`);
  if (out.buffer === x.buffer || out.buffer === weight.buffer) throw new ShapeError(`${op}: out must not share a buffer with x or weight (WebGPU forbids a written binding aliasing another)`);
  if (!Number.isFinite(eps) || eps < 0) throw new ShapeError(`${op}: eps must be a finite number >= 0, got ${eps}`);
  return [T, C];
}

export class RmsNormKernel {
  private constructor(
    private readonly gpu: Gpu,
    private readonly program: Program,
    readonly weightDType: NormWeightDType,
  ) {}

  static async create(gpu: Gpu, options: RmsNormOptions): Promise<RmsNormKernel> {
    checkWeightDType('rms_norm', options.weightDType);
    const defines = { ...reduceDefines(gpu, options.variant, 'rms_norm'), WDT: WDT[options.weightDType], ADD: 0 };
    return new RmsNormKernel(gpu, await gpu.compile({ shader: 'rms_norm.wgsl', defines }), options.weightDType);
  }

  /** out[t, :] = x[t, :] / sqrt(mean(x[t, :]²) + eps) * weight. */
  encode(batch: Encoder, x: Tensor, weight: Tensor, out: Tensor, eps: number): void {
    const [T, C] = validateRows('rms_norm', x, weight, out, this.weightDType, eps);
    const [gx, gy] = foldGrid(T, this.gpu.caps.limits.maxComputeWorkgroupsPerDimension);
    batch.dispatch({ program: this.program, bindings: { x, weight, out }, params: { T, C, eps }, workgroups: [gx, gy], label: 'rms_norm' });
  }
}

export class AddRmsNormKernel {
  private constructor(
    private readonly gpu: Gpu,
    private readonly program: Program,
    readonly weightDType: NormWeightDType,
  ) {}

  static async create(gpu: Gpu, options: RmsNormOptions): Promise<AddRmsNormKernel> {
    checkWeightDType('add_rms_norm', options.weightDType);
    const defines = { ...reduceDefines(gpu, options.variant, 'add_rms_norm'), WDT: WDT[options.weightDType], ADD: 1 };
    return new AddRmsNormKernel(gpu, await gpu.compile({ shader: 'rms_norm.wgsl', defines }), options.weightDType);
  }

  /** residual += x (in place); out = norm(residual) * weight. residual [T, C] f32. */
  encode(batch: Encoder, residual: Tensor, x: Tensor, weight: Tensor, out: Tensor, eps: number): void {
    const [T, C] = validateRows('add_rms_norm', x, weight, out, this.weightDType, eps);
    if (residual.dtype !== 'f32') throw new DTypeError(`add_rms_norm: residual ${residual.describe()} must be f32`);
    if (residual.shape.length !== 2 || residual.shape[0] !== T || residual.shape[1] !== C) {
      throw new ShapeError(`add_rms_norm: residual ${residual.describe()} must be [${T}, ${C}] like x`);
    }
    if (residual.buffer === out.buffer || residual.buffer === x.buffer) {
      throw new ShapeError('add_rms_norm: residual must not share a buffer with x or out');
    }
    const [gx, gy] = foldGrid(T, this.gpu.caps.limits.maxComputeWorkgroupsPerDimension);
    batch.dispatch({ program: this.program, bindings: { x, weight, out, residual }, params: { T, C, eps }, workgroups: [gx, gy], label: 'add_rms_norm' });
  }
}
