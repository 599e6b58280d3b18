// Head-major -> token-major gather (attention output -> o_proj input):
//   out[t, (headStart + h) * D + d] = x[h, srcOffset + t, d]   for t < tokens, h < H, d < D
// Other columns and rows of out are left untouched (a head group writes its slice of the row).
//
// Bindings
//   x:   [H, Scap, D] f32, or f16 / bf16 packed two per u32 over the flat element index, read
//   out: [Tout, outStride] f32 (outStride = Htot * D), written
// Params: tokens, H, D, Scap, srcOffset, outStride, outCol (= headStart * D)
// Defines: XDT x dtype: 0 f32, 1 f16 (packed), 2 bf16 (packed)
// Workgroup contract: WG threads, one output element each, in out's order (t, h, d) so stores are
// contiguous within a head; 1D grid over ceil(tokens * H * D / WG) workgroups, folded (lib/grid.wgsl).
#include "lib/grid.wgsl"
#include "lib/packing.wgsl"

override WG: u32 = 256;

struct Params {
  tokens: u32,
  H: u32,
  D: u32,
  Scap: u32,
  srcOffset: u32,
  outStride: u32,
  outCol: u32,
}

#if XDT == 0
@group(0) @binding(0) var<storage, read> x: array<f32>;
#else
@group(0) @binding(0) var<storage, read> x: array<u32>;
#endif
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

fn load(e: u32) -> f32 {
#if XDT == 0
  return x[e];
#elif XDT == 1
  return f16_at(x[e >> 1u], e & 1u);
#else
  return bf16_at(x[e >> 1u], e & 1u);
#endif
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * WG + lid;
  let row = params.H * params.D; // elements per token
  let t = i / row;
  if (t >= params.tokens) { return; }
  let hd = i - t * row; // h * D + d
  let h = hd / params.D;
  let d = hd - h * params.D;
  out[t * params.outStride + params.outCol + hd] = load((h * params.Scap + params.srcOffset + t) * params.D + d);
}
