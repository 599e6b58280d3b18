/**
 * NaN / Inf count of weight tensors on the GPU (shaders/count_nonfinite.wgsl), the check loadWeights
 * runs after the upload: one read of every weight, far cheaper than the upload itself, and one small
 * readback of a counts buffer with a slot per tensor.
 *
 *   const k = await CountNonFiniteKernel.create(gpu, 'bf16');
 *   const counts = createNonFiniteCounts(gpu, tensors.length);
 *   tensors.forEach((t, slot) => k.encode(batch, t, counts, slot));
 *   await batch.submit();
 *   readNonFiniteCounts(await gpu.read(counts));   // [{ count, first }] per slot
 */
import type { Encoder, Gpu, Program } from '../gpu/gpu.ts';
import { DTypeError, ShapeError } from '../gpu/errors.ts';
import type { Tensor } from '../tensor.ts';
import { ceilDiv } from './grid.ts';

export type CheckedDType = 'f32' | 'f16' | 'bf16';

/** Exponent bits of one element: all set means NaN or +-Inf. */
const EXP_MASK: Record<CheckedDType, string> = { f32: '0x7f800000u', bf16: '0x7f80u', f16: '0x7c00u' };
const WG = 256;
/**
 * Grid cap: 2^18 threads, 4 words each per step, stream any tensor (each thread strides over it),
 * far under the 65535-per-dimension limit. On SwiftShader 1024 workgroups took 130 ms for 16M bf16
 * elements and 4096 took 165 ms; a real GPU needs no more than this to reach its memory bandwidth.
 */
export const MAX_WORKGROUPS = 1024;
/** `first` of a slot in which nothing was found. */
export const NONFINITE_NONE = 0xffffffff;

export interface NonFiniteCount {
  /** Elements that are NaN or +-Inf. */
  count: number;
  /** Index of the first one (row-major), NONFINITE_NONE when count is 0. */
  first: number;
}

/** A counts buffer for `slots` tensors: [slots, 2] u32, each slot (0, NONFINITE_NONE). */
export function createNonFiniteCounts(gpu: Gpu, slots: number): Tensor {
  if (!Number.isSafeInteger(slots) || slots < 1) throw new ShapeError(`count_nonfinite: slots must be a positive integer, got ${slots}`);
  const init = new Uint32Array(2 * slots);
  for (let s = 0; s < slots; s++) init[2 * s + 1] = NONFINITE_NONE;
  return gpu.upload(init, [slots, 2], 'u32', 'nonfinite counts');
}

/** The counts buffer read back, one entry per slot. */
export function readNonFiniteCounts(words: ArrayLike<number>): NonFiniteCount[] {
  const out: NonFiniteCount[] = [];
  for (let s = 0; 2 * s + 1 < words.length; s++) out.push({ count: words[2 * s]!, first: words[2 * s + 1]! });
  return out;
}

export class CountNonFiniteKernel {
  private constructor(
    private readonly program: Program,
    readonly dtype: CheckedDType,
  ) {}

  static async create(gpu: Gpu, dtype: CheckedDType): Promise<CountNonFiniteKernel> {
    if (!(dtype in EXP_MASK)) throw new DTypeError(`count_nonfinite: dtype must be f32, f16 or bf16, got "${String(dtype)}"`);
    const program = await gpu.compile({ shader: 'count_nonfinite.wgsl', defines: { HALF: dtype === 'f32' ? 0 : 1, EXP_MASK: EXP_MASK[dtype] }, overrides: { WG } });
    return new CountNonFiniteKernel(program, dtype);
  }

  /** Adds x's NaN / Inf count to `slot` of `counts` (from createNonFiniteCounts). */
  encode(batch: Encoder, x: Tensor, counts: Tensor, slot: number): void {
    if (x.dtype !== this.dtype) throw new DTypeError(`count_nonfinite: x ${x.describe()} must be ${this.dtype} (the kernel was created for it)`);
    if (counts.dtype !== 'u32' || counts.shape.length !== 2 || counts.shape[1] !== 2) throw new ShapeError(`count_nonfinite: counts ${counts.describe()} must be [slots, 2] u32`);
    const slots = counts.shape[0]!;
    if (!Number.isInteger(slot) || slot < 0 || slot >= slots) throw new ShapeError(`count_nonfinite: slot ${slot} is outside 0..${slots - 1} of counts ${counts.describe()}`);
    if (counts.buffer === x.buffer) throw new ShapeError('count_nonfinite: counts must not share a buffer with x');
    const n = x.numel;
    if (n > 2 ** 32 - 2) throw new ShapeError(`count_nonfinite: x ${x.describe()} has more elements than a u32 index reaches`);
    const words = this.dtype === 'f32' ? n : ceilDiv(n, 2);
    const workgroups = Math.min(ceilDiv(words, 4 * WG), MAX_WORKGROUPS);
    batch.dispatch({ program: this.program, bindings: { x, counts }, params: { n, words, slot }, workgroups: [workgroups], label: 'count_nonfinite' });
  }
}
