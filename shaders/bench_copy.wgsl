// Bandwidth probe for the benchmarks (bench/limits.ts): dst[i] = src[i] over n 16-byte words.
// A plain streaming copy through a compute shader, timed with timestamp queries, measures the
// memory bandwidth kernels can reach (copyBufferToBuffer may take a slower path in some drivers).
//
// Bindings
//   src: (n) vec4<u32>, read
//   dst: (n) vec4<u32>, written (distinct buffer from src)
// Params: n (16-byte words)
// Workgroup contract: WG threads, each copies one 16-byte word (vec4 loads/stores are the widest
// WGSL access); grid folded by grid.ts (1D over ceil(n / WG) workgroups).
#include "lib/grid.wgsl"

override WG: u32 = 256;

struct Params {
  n: u32, // 16-byte words
}

@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<u32>>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * WG + lid;
  if (i < params.n) {
    dst[i] = src[i];
  }
}
