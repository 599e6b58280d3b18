/**
 * A tensor is a view of a GPU buffer with a shape and an element type. f16 and bf16 are stored two
 * per u32 (see src/util/half.ts), so half-precision checkpoints work without `shader-f16`.
 */
import { DTypeError, ShapeError } from './gpu/errors.ts';

export type DType = 'f32' | 'f16' | 'bf16' | 'i32' | 'u32';
export const DTYPES: readonly DType[] = ['f32', 'f16', 'bf16', 'i32', 'u32'];

export function bytesPerElement(dtype: DType): number {
  return dtype === 'f16' || dtype === 'bf16' ? 2 : 4;
}

export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Bytes a tensor occupies in its buffer: halves are padded to whole u32 words. */
export function byteSizeOf(shape: readonly number[], dtype: DType): number {
  const raw = numelOf(shape) * bytesPerElement(dtype);
  return Math.ceil(raw / 4) * 4;
}

export function checkShape(shape: readonly number[], what: string): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d <= 0) throw new ShapeError(`${what}: every dimension must be a positive integer, got [${shape.join(', ')}]`);
  }
}

export function checkDType(dtype: string, what: string): asserts dtype is DType {
  if (!(DTYPES as readonly string[]).includes(dtype)) throw new DTypeError(`${what}: unknown dtype "${dtype}" (expected one of ${DTYPES.join(', ')})`);
}

export class Tensor {
  readonly numel: number;
  readonly byteLength: number;
  constructor(
    readonly buffer: GPUBuffer,
    readonly shape: readonly number[],
    readonly dtype: DType,
    readonly byteOffset = 0,
    readonly label = '',
  ) {
    this.numel = numelOf(shape);
    this.byteLength = byteSizeOf(shape, dtype);
  }

  /** The same memory seen with another shape of the same element count. */
  reshape(shape: readonly number[]): Tensor {
    if (numelOf(shape) !== this.numel) throw new ShapeError(`cannot reshape [${this.shape.join(', ')}] to [${shape.join(', ')}]`);
    return new Tensor(this.buffer, shape, this.dtype, this.byteOffset, this.label);
  }

  describe(): string {
    return `${this.label || 'tensor'}[${this.shape.join(', ')}] ${this.dtype}`;
  }
}
