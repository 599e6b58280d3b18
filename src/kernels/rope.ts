/**
 * Rotary position embedding (shaders/rope.wgsl), Hugging Face rotate-half layout, fused with the
 * scatter from token-major activations [T, Htot*D] into a head-major buffer [Hout, Scap, D]
 * (Q, or the K/V cache; f32 or packed f16). rotate=false is the plain scatter (V).
 *
 * Frequencies: `ropeInvFreq(config)` gives the f32 inv_freq[D/2] exactly as transformers computes
 * it in float32 (plain rope_theta, or Llama 3 `rope_scaling`), step by step with f32 rounding.
 * `RopeTable` turns them into a split cos/sin table on the GPU (see rope.wgsl): the rotation of
 * position p uses the float64 angle p * inv_freq[i] (rounded only in the table), so accuracy does
 * not decay with position. A plain f32 angle at p = 131072 is off by up to ~4e-3 rad.
 */
import type { Encoder, Gpu, Program } from '../gpu/gpu.ts';
import { BadInputError, DTypeError, ShapeError, UnsupportedError } from '../gpu/errors.ts';
import type { Tensor } from '../tensor.ts';
import { longRopeFactors, ropeAttentionFactor, usesLongRopeFactors, type RopeScaling } from '../model/config.ts';
import { ceilDiv, foldGrid } from './grid.ts';

const WG = 256;
/** Positions a RopeTable covers unless told otherwise: 1M tokens, far beyond any WebGPU prefill. */
export const ROPE_DEFAULT_MAX_POSITIONS = 1 << 20;
const f = Math.fround;

export interface RopeConfig {
  headDim: number;
  /** Rotated elements per head (partial_rotary_factor < 1); default headDim. */
  rotaryDim?: number;
  ropeTheta: number;
  ropeScaling?: RopeScaling;
}

/**
 * inv_freq[i] for i < R/2 (R = rotaryDim, default headDim), in float32 as transformers computes it
 * (on the CPU, at model init):
 *   inv_freq = 1 / theta^(arange(0, R, 2) / R)                               (every step in f32)
 *   llama3:  wavelen = 2π / inv_freq; kept where wavelen < orig/high_freq_factor, divided by
 *            `factor` where wavelen > orig/low_freq_factor, and in between blended with
 *            s = (orig / wavelen - low) / (high - low): (1 - s) * inv_freq / factor + s * inv_freq.
 *   longrope: 1 / (ext * theta^(arange(0, D, 2) / D)), ext = long_factor for sequences longer than
 *            original_max_position_embeddings (seqLen), else short_factor.
 * Each step is rounded to f32 like the torch op it mirrors; note that `scalar / tensor` in torch is
 * `tensor.reciprocal() * scalar` (two roundings), and Python scalars are cast to f32 first.
 * theta^x is float64 pow rounded to f32 (correctly rounded); torch's vectorised powf is within
 * 1 ulp of that, so individual values may differ from transformers' by 1 f32 ulp.
 */
export function ropeInvFreq(config: RopeConfig, seqLen = 0): Float32Array {
  const D = config.rotaryDim ?? config.headDim;
  if (!Number.isInteger(D) || D < 2 || D % 2 !== 0) throw new BadInputError(`rope: the rotary dimension must be an even integer >= 2, got ${D}`);
  if (!(config.ropeTheta > 0) || !Number.isFinite(config.ropeTheta)) throw new BadInputError(`rope: ropeTheta must be a positive number, got ${config.ropeTheta}`);
  const half = D / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const exponent = f(f(2 * i) / f(D));
    inv[i] = f(f(1 / f(Math.pow(f(config.ropeTheta), exponent))) * 1); // 1.0 / tensor: reciprocal, times 1
  }
  const s = config.ropeScaling;
  if (!s) return inv;
  if (s.type === 'longrope') {
    const ext = longRopeFactors(s, seqLen);
    for (let i = 0; i < half; i++) {
      const exponent = f(f(2 * i) / f(D));
      inv[i] = f(f(1 / f(f(ext[i]!) * f(Math.pow(f(config.ropeTheta), exponent)))) * 1);
    }
    return inv;
  }
  if (!(s.factor > 0) || !(s.highFreqFactor > s.lowFreqFactor) || !(s.lowFreqFactor > 0) || !(s.originalMaxPositionEmbeddings > 0)) {
    throw new BadInputError(`rope: invalid llama3 rope_scaling ${JSON.stringify(s)}`);
  }
  // Python-float thresholds; torch compares the f32 tensor with them after casting the scalar to f32.
  const lowWavelen = f(s.originalMaxPositionEmbeddings / s.lowFreqFactor);
  const highWavelen = f(s.originalMaxPositionEmbeddings / s.highFreqFactor);
  const orig = f(s.originalMaxPositionEmbeddings);
  const factor = f(s.factor);
  const low = f(s.lowFreqFactor);
  const span = f(s.highFreqFactor - s.lowFreqFactor);
  const twoPi = f(2 * Math.PI);
  for (let i = 0; i < half; i++) {
    const fi = inv[i]!;
    const wavelen = f(f(1 / fi) * twoPi); // 2π / inv_freq: reciprocal, then times f32(2π)
    const scaled = wavelen > lowWavelen ? f(fi / factor) : fi;
    const medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
    if (medium) {
      const smooth = f(f(f(f(1 / wavelen) * orig) - low) / span); // orig / wavelen: reciprocal, then times orig
      inv[i] = f(f(f(f(1 - smooth) * scaled) / factor) + f(smooth * scaled));
    } else {
      inv[i] = scaled;
    }
  }
  return inv;
}

/**
 * The GPU cos/sin table for positions [0, maxPositions): cs[lo] = (cos, sin)(lo * f) for lo < B and
 * cs[B + hi] = (cos, sin)(hi * B * f), computed in float64 from the f32 inv_freq, B = 2^shift ≈ √maxPositions.
 * Size: (B + maxPositions / B) * D * 4 bytes (384 KiB for D = 128 at 128K positions: B = 512, 768 rows).
 */
export class RopeTable {
  private constructor(
    /** Rotated elements per head (the table holds rotaryDim / 2 frequencies). */
    readonly rotaryDim: number,
    readonly invFreq: Float32Array,
    readonly maxPositions: number,
    readonly shift: number,
    readonly cs: Tensor,
    /** longrope: built with the long factors (for sequences past original_max_position_embeddings). */
    readonly long: boolean,
  ) {}

  get split(): number {
    return 2 ** this.shift;
  }

  /**
   * Uploads the table for `config` (or explicit f32 inv_freq values) covering positions < maxPositions
   * (default 2^20: 2048 rows, 1 MiB for D = 128). seqLen: the sequence length longrope picks its
   * factors by. longrope's attention factor scales the `hi` rows only: every position combines one
   * `lo` and one `hi` row, so cos and sin come out scaled once.
   */
  static create(gpu: Gpu, config: RopeConfig | { rotaryDim: number; invFreq: Float32Array }, maxPositions = ROPE_DEFAULT_MAX_POSITIONS, seqLen = 0): RopeTable {
    const explicit = 'invFreq' in config;
    const invFreq = explicit ? config.invFreq : ropeInvFreq(config, seqLen);
    const scale = explicit ? 1 : ropeAttentionFactor(config);
    const long = !explicit && usesLongRopeFactors(config, seqLen);
    const D = explicit ? config.rotaryDim : (config.rotaryDim ?? config.headDim);
    if (invFreq.length !== D / 2) throw new ShapeError(`RopeTable: ${invFreq.length} inverse frequencies for rotary dimension ${D} (need ${D / 2})`);
    if (!Number.isInteger(maxPositions) || maxPositions < 1 || maxPositions > 2 ** 31) {
      throw new BadInputError(`RopeTable: maxPositions must be an integer in 1..2^31, got ${maxPositions}`);
    }
    const shift = Math.ceil(Math.log2(maxPositions) / 2); // B = 2^shift >= sqrt(maxPositions): B + maxPositions / B rows is near its minimum
    const B = 2 ** shift;
    const rows = B + ceilDiv(maxPositions, B);
    const half = D / 2;
    const host = new Float32Array(rows * half * 2);
    for (let r = 0; r < rows; r++) {
      const p = r < B ? r : (r - B) * B;
      const m = r < B ? 1 : scale;
      for (let i = 0; i < half; i++) {
        const a = p * invFreq[i]!; // exact in float64 while p < 2^29 (inv_freq has 24 significant bits)
        host[(r * half + i) * 2] = Math.cos(a) * m;
        host[(r * half + i) * 2 + 1] = Math.sin(a) * m;
      }
    }
    return new RopeTable(D, invFreq, maxPositions, shift, gpu.upload(host, [rows, half, 2], 'f32', 'rope_cs'), long);
  }

  release(gpu: Gpu): void {
    gpu.release(this.cs);
  }
}

export interface RopeOptions {
  headDim: number;
  /** Rotated leading elements per head (a multiple of 4, <= headDim; default headDim); the rest are copied. */
  rotaryDim?: number;
  /** false: plain scatter (V). */
  rotate: boolean;
  outDType: 'f32' | 'f16';
}

export interface RopeParams {
  /** First head of x to read (x holds Htot = x.shape[1] / headDim heads per token). */
  headStart: number;
  /** Heads to process: x heads headStart.. go to out heads 0..heads-1. */
  heads: number;
  /** Position of token 0 (rotation only). */
  posOffset: number;
  /** Row of out (second axis) that token 0 is written to. */
  dstOffset: number;
  /** Required when rotate is true. */
  table?: RopeTable;
}

function nonNegInt(op: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) throw new BadInputError(`${op}: ${name} must be a non-negative integer, got ${v}`);
}

export class RopeKernel {
  private constructor(
    private readonly gpu: Gpu,
    private readonly program: Program,
    readonly options: RopeOptions,
  ) {}

  static async create(gpu: Gpu, options: RopeOptions): Promise<RopeKernel> {
    const D = options.headDim;
    if (!Number.isInteger(D) || D < 4 || D % 4 !== 0) throw new UnsupportedError(`rope: headDim must be a multiple of 4, got ${D}`);
    if (options.outDType !== 'f32' && options.outDType !== 'f16') throw new UnsupportedError(`rope: outDType must be f32 or f16, got "${String(options.outDType)}"`);
    const R = options.rotaryDim ?? D;
    if (!Number.isInteger(R) || R < 4 || R % 4 !== 0 || R > D) throw new UnsupportedError(`rope: rotaryDim must be a multiple of 4 in 4..${D}, got ${R}`);
    const defines = { HEAD_DIM: D, ROT_DIM: R, ROTATE: options.rotate ? 1 : 0, OUT_F16: options.outDType === 'f16' ? 1 : 0, WG };
    return new RopeKernel(gpu, await gpu.compile({ shader: 'rope.wgsl', defines }), { ...options });
  }

  /** for t < T, h < heads: out[h, dstOffset + t, :] = rope(x[t, headStart + h, :], posOffset + t). */
  encode(batch: Encoder, x: Tensor, out: Tensor, p: RopeParams): void {
    const op = this.options.rotate ? 'rope' : 'rope(copy)';
    const D = this.options.headDim;
    if (x.dtype !== 'f32') throw new DTypeError(`${op}: x ${x.describe()} must be f32`);
    if (out.dtype !== this.options.outDType) throw new DTypeError(`${op}: out ${out.describe()} must be ${this.options.outDType} (the kernel was created for it)`);
    if (x.shape.length !== 2 || x.shape[1]! % D !== 0) throw new ShapeError(`${op}: x must be [T, Htot * ${D}], got ${x.describe()}`);
    if (out.shape.length !== 3 || out.shape[2] !== D) throw new ShapeError(`${op}: out must be [Hout, Scap, ${D}], got ${out.describe()}`);
    if (out.buffer === x.buffer) throw new ShapeError(`${op}: out must not share a buffer with x`);
    const [T, width] = x.shape as [number, number];
    const Htot = width / D;
    const [Hout, Scap] = out.shape as [number, number, number];
    for (const k of ['headStart', 'posOffset', 'dstOffset'] as const) nonNegInt(op, k, p[k]);
    if (!Number.isInteger(p.heads) || p.heads < 1) throw new BadInputError(`${op}: heads must be a positive integer, got ${p.heads}`);
    if (p.headStart + p.heads > Htot) throw new ShapeError(`${op}: heads ${p.headStart}..${p.headStart + p.heads - 1} are outside x's ${Htot} heads (${x.describe()})`);
    if (p.heads > Hout) throw new ShapeError(`${op}: ${p.heads} heads do not fit out ${out.describe()}`);
    if (p.dstOffset + T > Scap) throw new ShapeError(`${op}: rows ${p.dstOffset}..${p.dstOffset + T - 1} are outside out ${out.describe()} (capacity ${Scap})`);
    const params = {
      T,
      heads: p.heads,
      headStart: p.headStart,
      xStride: width,
      posOffset: p.posOffset,
      dstOffset: p.dstOffset,
      Scap,
      split: 1,
      shift: 0,
    };
    const bindings: Record<string, Tensor> = { x, out };
    if (this.options.rotate) {
      const table = p.table;
      if (!table) throw new BadInputError(`${op}: a RopeTable is required to rotate`);
      const R = this.options.rotaryDim ?? D;
      if (table.rotaryDim !== R) throw new ShapeError(`${op}: the RopeTable rotates ${table.rotaryDim} elements per head, the kernel ${R}`);
      if (p.posOffset + T > table.maxPositions) {
        throw new BadInputError(`${op}: positions ${p.posOffset}..${p.posOffset + T - 1} exceed the RopeTable's ${table.maxPositions} positions`);
      }
      params.split = table.split;
      params.shift = table.shift;
      bindings.cs = table.cs;
    }
    const threads = T * p.heads * (D / 4);
    const [gx, gy] = foldGrid(ceilDiv(threads, WG), this.gpu.caps.limits.maxComputeWorkgroupsPerDimension);
    batch.dispatch({ program: this.program, bindings, params, workgroups: [gx, gy], label: op });
  }
}
