/**
 * Host-side half-precision conversions. f16 and bf16 tensors are stored two values per u32
 * (element 2i in the low 16 bits), which is what WGSL's unpack2x16float and the bf16 helpers in
 * shaders/lib/packing.wgsl read.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float -> IEEE binary16 bits, round to nearest even, overflow to Inf, NaN kept. */
export function f32ToF16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let m = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && (m & 1))) m++;
    return sign | m;
  }
  let m = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (m & 1))) {
    m++;
    if (m === 0x400) {
      m = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** float -> bfloat16 bits, round to nearest even (NaN stays NaN). */
export function f32ToBf16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return (x >>> 16) | 0x40;
  const rounded = x + 0x7fff + ((x >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

export function bf16BitsToF32(b: number): number {
  u32[0] = (b & 0xffff) << 16;
  return f32[0]!;
}

/** Rounds every value to the nearest f16 (or bf16), as the GPU will see it. */
export function roundTo(dtype: 'f16' | 'bf16', values: ArrayLike<number>): Float32Array {
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    out[i] = dtype === 'f16' ? f16BitsToF32(f32ToF16Bits(values[i]!)) : bf16BitsToF32(f32ToBf16Bits(values[i]!));
  }
  return out;
}

/** Packs values as 16-bit halves, two per u32 (odd lengths padded with a zero half). */
export function packHalves(dtype: 'f16' | 'bf16', values: ArrayLike<number>): Uint32Array {
  const out = new Uint32Array(Math.ceil(values.length / 2));
  const conv = dtype === 'f16' ? f32ToF16Bits : f32ToBf16Bits;
  for (let i = 0; i < values.length; i++) {
    const bits = conv(values[i]!);
    out[i >> 1]! |= i & 1 ? bits << 16 : bits;
  }
  return out;
}

export function unpackHalves(dtype: 'f16' | 'bf16', words: Uint32Array, count: number): Float32Array {
  const out = new Float32Array(count);
  const conv = dtype === 'f16' ? f16BitsToF32 : bf16BitsToF32;
  for (let i = 0; i < count; i++) out[i] = conv((words[i >> 1]! >>> ((i & 1) * 16)) & 0xffff);
  return out;
}
