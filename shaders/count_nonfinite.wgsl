// NaN / Inf count of a tensor, from its raw bits (the load-time weight check, loadWeights):
//   counts[2 * slot]     += elements that are NaN, +Inf or -Inf
//   counts[2 * slot + 1]  = min(itself, index of the first such element)
// An element is non-finite exactly when all its exponent bits are set, so the test is a mask on
// u32 words: no float arithmetic, nothing that depends on how a device treats NaN, infinities or
// subnormals, and f16 / bf16 need no shader-f16.
//
// Bindings
//   x:      (words) u32, read: the tensor's bytes. f32: one element per word. f16 / bf16: two
//           (element 2i in the low half, 2i + 1 in the high half); a tensor of odd length ends in
//           a padding half, which is not counted.
//   counts: (2 * slots) atomic u32, read_write: the caller zeroes the counts and sets the first
//           indices to 0xffffffff; one slot per tensor, so one buffer serves a whole model.
// Params: n (elements), words (u32 words holding them), slot
// Defines
//   HALF      0: f32 words; 1: two 16-bit elements per word
//   EXP_MASK  the exponent bits of one element: 0x7f800000 (f32), 0x7f80 (bf16), 0x7c00 (f16)
// Workgroup contract: WG threads per workgroup, a 1D grid of any size (src/kernels/count_nonfinite.ts
// caps it at MAX_WORKGROUPS); thread g of T in all reads the 4 words from 4g, then from 4(g + T), ...
// and tests the 4 at once; only a group with a hit is gone through element by element (to skip
// the padding half and count the index), and a thread touches the atomics only when it found
// something, which loaded weights almost never hold. (One word per step and a branch per word
// took 2.3x as long on SwiftShader: 300 ms against 130 ms for 16M bf16 elements.)
override WG: u32 = 256;

struct Params {
  n: u32,     // elements
  words: u32, // u32 words holding them
  slot: u32,  // which pair of counts
}

@group(0) @binding(0) var<storage, read> x: array<u32>;
@group(0) @binding(1) var<storage, read_write> counts: array<atomic<u32>>;
@group(0) @binding(2) var<uniform> params: Params;

const NONE: u32 = 0xffffffffu;

fn nonfinite(bits: vec4<u32>) -> vec4<bool> {
  return (bits & vec4<u32>(EXP_MASK)) == vec4<u32>(EXP_MASK);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let step = 4u * nwg.x * WG;
  let last = params.words - 1u;
  var found = 0u;
  var first = NONE;
  for (var w = 4u * gid.x; w < params.words; w += step) {
    // Past the end the loads repeat the last word; the element loop below skips those.
    let bits = vec4<u32>(x[w], x[min(w + 1u, last)], x[min(w + 2u, last)], x[min(w + 3u, last)]);
    let lo = nonfinite(bits);
#if HALF
    let hi = nonfinite(bits >> vec4<u32>(16u));
    if (!any(lo) && !any(hi)) { continue; }
#else
    if (!any(lo)) { continue; }
#endif
    for (var k = 0u; k < 4u && w + k < params.words; k++) {
#if HALF
      let e = 2u * (w + k); // elements e (low half) and e + 1 (high half)
      if (lo[k]) {
        found += 1u;
        first = min(first, e);
      }
      if (hi[k] && e + 1u < params.n) {
        found += 1u;
        first = min(first, e + 1u);
      }
#else
      if (lo[k]) {
        found += 1u;
        first = min(first, w + k);
      }
#endif
    }
  }
  if (found > 0u) {
    atomicAdd(&counts[2u * params.slot], found);
    atomicMin(&counts[2u * params.slot + 1u], first);
  }
}
