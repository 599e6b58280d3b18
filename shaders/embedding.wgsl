// Embedding gather: out[t, c] = table[ids[t], c], widened to f32.
// An id >= V writes NaN to the whole row (never reads out of bounds, never clamps): the executor
// validates ids on the host, and NaN makes a missed check visible downstream.
//
// Bindings
//   ids:   [T] u32, read
//   table: [V, C] f32, or f16 / bf16 packed two per u32 over the flat element index (element 2i in
//          the low half; with odd C a row may start in a high half), read
//   out:   [T, C] f32, written
// Params: T, C, V
// Defines: TDT table dtype: 0 f32, 1 f16 (packed), 2 bf16 (packed)
// Workgroup contract: WG threads, one output element each (consecutive threads: consecutive c of
// one token); 1D grid over ceil(T*C / WG) workgroups, folded (lib/grid.wgsl).
#include "lib/grid.wgsl"
#include "lib/packing.wgsl"

override WG: u32 = 256;

struct Params {
  T: u32,
  C: u32,
  V: u32,
}

@group(0) @binding(0) var<storage, read> ids: array<u32>;
#if TDT == 0
@group(0) @binding(1) var<storage, read> table: array<f32>;
#else
@group(0) @binding(1) var<storage, read> table: array<u32>;
#endif
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

fn load(e: u32) -> f32 {
#if TDT == 0
  return table[e];
#elif TDT == 1
  return f16_at(table[e >> 1u], e & 1u);
#else
  return bf16_at(table[e >> 1u], e & 1u);
#endif
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * WG + lid;
  let t = i / params.C;
  if (t >= params.T) { return; }
  let c = i - t * params.C;
  let id = ids[t];
  if (id < params.V) {
    out[i] = load(id * params.C + c);
  } else {
    var nan_bits = 0x7fc00000u; // quiet NaN; a var so that no constant NaN is ever folded (a WGSL error)
    out[i] = bitcast<f32>(nan_bits);
  }
}
