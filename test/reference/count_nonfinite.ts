import { bf16BitsToF32, f16BitsToF32 } from '../../src/util/half.ts';

/**
 * Reference for count_nonfinite: decodes each of the n elements held in `words` (f32: one per
 * word; f16 / bf16: two, element 2i in the low half) to a float64 and counts those that are not
 * finite, with the index of the first. Decoding values (not masking bits, as the kernel does) keeps
 * the reference independent of the kernel's trick. first = 0xffffffff when there is none.
 */
export function countNonFiniteRef(words: Uint32Array, n: number, dtype: 'f32' | 'f16' | 'bf16'): { count: number; first: number } {
  const f32 = new Float32Array(words.buffer, words.byteOffset, words.length);
  let count = 0;
  let first = 0xffffffff;
  for (let i = 0; i < n; i++) {
    let v: number;
    if (dtype === 'f32') {
      v = f32[i]!;
    } else {
      const bits = (words[i >> 1]! >>> (16 * (i & 1))) & 0xffff;
      v = dtype === 'f16' ? f16BitsToF32(bits) : bf16BitsToF32(bits);
    }
    if (!Number.isFinite(v)) {
      count++;
      if (first === 0xffffffff) first = i;
    }
  }
  return { count, first };
}
