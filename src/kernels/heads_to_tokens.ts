/**
 * Head-major -> token-major gather (shaders/heads_to_tokens.wgsl), for attention output -> o_proj:
 *   out[t, (headStart + h) * D + d] = x[h, srcOffset + t, d]   for t < tokens, h < H, d < D
 * x [H, Scap, D] f32 / f16 / bf16 (packed halves), out [Tout, Htot * D] f32 with tokens <= Tout and
 * headStart + H <= Htot (a group of heads fills its columns; the rest of out is untouched).
 * All three x dtypes are compiled in create(), so encode() picks by x.dtype.
 */
import type { Encoder, Gpu, Program } from '../gpu/gpu.ts';
import { BadInputError, DTypeError, ShapeError } from '../gpu/errors.ts';
import type { Tensor } from '../tensor.ts';
import { ceilDiv, foldGrid } from './grid.ts';

const WG = 256;
type XDType = 'f32' | 'f16' | 'bf16';
const XDT = { f32: 0, f16: 1, bf16: 2 } as const;

export interface HeadsToTokensParams {
  /** Row of x (second axis) holding token 0. */
  srcOffset: number;
  /** Tokens to copy; default out.shape[0]. */
  tokens?: number;
  /** Head column of out where x's head 0 goes; default 0. */
  headStart?: number;
}

export class HeadsToTokensKernel {
  private constructor(
    private readonly gpu: Gpu,
    private readonly programs: Record<XDType, Program>,
  ) {}

  static async create(gpu: Gpu): Promise<HeadsToTokensKernel> {
    const compile = (d: XDType): Promise<Program> => gpu.compile({ shader: 'heads_to_tokens.wgsl', defines: { XDT: XDT[d] }, overrides: { WG } });
    const [f32, f16, bf16] = await Promise.all([compile('f32'), compile('f16'), compile('bf16')]);
    return new HeadsToTokensKernel(gpu, { f32, f16, bf16 });
  }

  encode(batch: Encoder, x: Tensor, out: Tensor, p: HeadsToTokensParams): void {
    if (!(x.dtype in XDT)) throw new DTypeError(`heads_to_tokens: x ${x.describe()} must be f32, f16 or bf16`);
    if (out.dtype !== 'f32') throw new DTypeError(`heads_to_tokens: out ${out.describe()} must be f32`);
    if (x.shape.length !== 3) throw new ShapeError(`heads_to_tokens: x must be [H, Scap, D], got ${x.describe()}`);
    if (out.shape.length !== 2) throw new ShapeError(`heads_to_tokens: out must be [T, Htot * D], got ${out.describe()}`);
    if (out.buffer === x.buffer) throw new ShapeError('heads_to_tokens: out must not share a buffer with x');
    const [H, Scap, D] = x.shape as [number, number, number];
    const [Tout, width] = out.shape as [number, number];
    const tokens = p.tokens ?? Tout;
    const headStart = p.headStart ?? 0;
    for (const [k, v] of [['srcOffset', p.srcOffset], ['headStart', headStart]] as const) {
      if (!Number.isInteger(v) || v < 0) throw new BadInputError(`heads_to_tokens: ${k} must be a non-negative integer, got ${v}`);
    }
    if (!Number.isInteger(tokens) || tokens < 1) throw new BadInputError(`heads_to_tokens: tokens must be a positive integer, got ${tokens}`);
    if (tokens > Tout) throw new ShapeError(`heads_to_tokens: ${tokens} tokens do not fit out ${out.describe()}`);
    if (width % D !== 0 || (headStart + H) * D > width) {
      throw new ShapeError(`heads_to_tokens: heads ${headStart}..${headStart + H - 1} of width ${D} do not fit out ${out.describe()}`);
    }
    if (p.srcOffset + tokens > Scap) throw new ShapeError(`heads_to_tokens: rows ${p.srcOffset}..${p.srcOffset + tokens - 1} are outside x ${x.describe()}`);
    const [gx, gy] = foldGrid(ceilDiv(tokens * H * D, WG), this.gpu.caps.limits.maxComputeWorkgroupsPerDimension);
    batch.dispatch({
      program: this.programs[x.dtype as XDType],
      bindings: { x, out },
      params: { tokens, H, D, Scap, srcOffset: p.srcOffset, outStride: width, outCol: headStart * D },
      workgroups: [gx, gy],
      label: 'heads_to_tokens',
    });
  }
}
