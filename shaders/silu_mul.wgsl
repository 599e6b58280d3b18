// SwiGLU activation: out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)), all f32.
// Shapes are [T, F] for all three; the op is elementwise, so the shader sees flat length n = T*F.
//
// Bindings
//   gate: (n) f32, read
//   up:   (n) f32, read
//   out:  (n) f32, written (may alias neither input)
// Params: n (elements)
// Workgroup contract: WG threads, one element each; 1D grid over ceil(n / WG) workgroups, folded
// (lib/grid.wgsl). For g < -88, exp(-g) overflows to +inf and silu(g) = g / inf = -0 (true value
// below 1e-36).
#include "lib/grid.wgsl"

override WG: u32 = 256;

struct Params {
  n: u32,
}

@group(0) @binding(0) var<storage, read> gate: array<f32>;
@group(0) @binding(1) var<storage, read> up: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * WG + lid;
  if (i < params.n) {
    let g = gate[i];
    out[i] = g / (1.0 + exp(-g)) * up[i];
  }
}
