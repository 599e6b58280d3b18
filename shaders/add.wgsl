// Elementwise residual add: out[i] = a[i] + b[i], all f32, flat length n.
//
// Bindings
//   a:   (n) f32, read
//   b:   (n) f32, read
//   out: (n) f32, written (may alias neither input)
// Params: n (elements)
// Workgroup contract: WG threads, each handles one element; grid folded by grid.ts (1D over
// ceil(n / WG) workgroups).
#include "lib/grid.wgsl"

override WG: u32 = 256;

struct Params {
  n: u32, // elements
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * WG + lid;
  if (i < params.n) {
    out[i] = a[i] + b[i];
  }
}
