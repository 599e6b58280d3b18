// Fills a tensor with deterministic pseudo-random values, uniform in [-scale, scale) + offset:
// synthetic weights for benchmarks of real model shapes (an 8B model's 16 GB never crosses the bus).
// value(i) = offset + scale * (2 * u(i) - 1), u(i) = hash(i ^ seed) / 2^32, hash = lowbias32.
//
// Bindings
//   out: (n words) u32, written: f32 bits (DTYPE 0), or two packed halves per word, element 2i in the
//        low half (DTYPE 1: bf16, truncated; DTYPE 2: f16)
// Params: words (u32 words to write), n (elements), seed, scale, offset
// Workgroup contract: WG threads, one word each; grid folded by src/kernels/grid.ts.
#include "lib/grid.wgsl"

override WG: u32 = 256;

struct Params {
  words: u32, // u32 words in out
  n: u32, // elements (halves: the last word's high half is 0 when n is odd)
  seed: u32,
  scale: f32,
  offset: f32,
}

@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@group(0) @binding(1) var<uniform> params: Params;

// Chris Wellons' lowbias32: a cheap integer hash with good avalanche.
fn lowbias32(v: u32) -> u32 {
  var x = v;
  x ^= x >> 16u;
  x *= 0x7feb352du;
  x ^= x >> 15u;
  x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}

fn value(i: u32) -> f32 {
  // 24 bits: exactly representable in f32, so the host reference computes the same number.
  let u = f32(lowbias32(i ^ params.seed) >> 8u) / 16777216.0;
  return params.offset + params.scale * (2.0 * u - 1.0);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let w = linear_workgroup(wid, nwg) * WG + lid;
  if (w >= params.words) {
    return;
  }
#if DTYPE == 0
  out[w] = bitcast<u32>(value(w));
#else
  let i0 = 2u * w;
  var lo = 0u;
  var hi = 0u;
#if DTYPE == 1
  lo = bitcast<u32>(value(i0)) >> 16u;
  if (i0 + 1u < params.n) { hi = bitcast<u32>(value(i0 + 1u)) >> 16u; }
#else
  lo = pack2x16float(vec2<f32>(value(i0), 0.0)) & 0xffffu;
  if (i0 + 1u < params.n) { hi = pack2x16float(vec2<f32>(value(i0 + 1u), 0.0)) & 0xffffu; }
#endif
  out[w] = lo | (hi << 16u);
#endif
}
