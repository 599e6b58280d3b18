// Unpacking of 16-bit floats stored two per u32 (element 2i in the low half, element 2i+1 in the
// high half; see src/util/half.ts). Works without `shader-f16`: values come out as f32.
//
//   bf16: the upper 16 bits of an f32, so widening is a shift (exact).
//   f16:  IEEE binary16, widened by the builtin unpack2x16float (exact for normal numbers).
//
// Include with `#include "lib/packing.wgsl"`. No bindings, no workgroup contract.

// Both bf16 halves of a word as f32: (low, high).
fn unpack_bf16x2(word: u32) -> vec2<f32> {
  return vec2<f32>(bitcast<f32>(word << 16u), bitcast<f32>(word & 0xffff0000u));
}

// Both f16 halves of a word as f32: (low, high).
fn unpack_f16x2(word: u32) -> vec2<f32> {
  return unpack2x16float(word);
}

// One bf16 half of a word: hi = 0 picks the low half (even element), 1 the high half.
fn bf16_at(word: u32, hi: u32) -> f32 {
  return bitcast<f32>(select(word << 16u, word & 0xffff0000u, hi != 0u));
}

// One f16 half of a word: hi = 0 picks the low half (even element), 1 the high half.
fn f16_at(word: u32, hi: u32) -> f32 {
  return unpack2x16float(word >> (hi * 16u)).x;
}
