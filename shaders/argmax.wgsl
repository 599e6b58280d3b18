// Row argmax for greedy decoding: out[r] = the first c with x[r, c] == max_c x[r, c].
// NaN entries are never chosen; a row of only NaN gives 0xffffffff. -inf entries are ordinary
// values (a row of only -inf gives 0).
//
// Bindings
//   x:   [R, V] f32 logits, read
//   out: [R] u32, written
// Params: R (rows), V (columns)
// Defines: WG (threads per workgroup, power of two), SUBGROUPS (0|1; lib/reduce.wgsl)
// Workgroup contract: one workgroup per row (1D grid over R, folded; lib/grid.wgsl); thread i
// scans columns i, i + WG, ... keeping its first maximum (strict >, so the lowest index on ties);
// the workgroup reduces the max value, then the minimum index among threads holding it.
#if SUBGROUPS
enable subgroups;
#endif

#include "lib/grid.wgsl"
#include "lib/reduce.wgsl"

struct Params {
  R: u32,
  V: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;

const NONE: u32 = 0xffffffffu;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, lane_in: LaneInputs) {
  let ln = lane_of(lane_in);
  let lid = ln.lid;
  let row = linear_workgroup(wid, nwg);
  if (row >= params.R) { return; }
  let V = params.V;
  let base = row * V;

  var neg_inf_bits = 0xff800000u; // -inf, from a var: WGSL rejects constant infinities
  var best = bitcast<f32>(neg_inf_bits);
  var best_i = NONE;
  for (var c = lid; c < V; c += WG) {
    let v = x[base + c];
    // NaN fails both comparisons; the first -inf is taken while nothing is held.
    if (v > best || (best_i == NONE && v == best)) {
      best = v;
      best_i = c;
    }
  }
  let m = wg_max(best, ln);
  let i = wg_min_u32(select(NONE, best_i, best_i != NONE && best == m), ln);
  if (lid == 0u) { out[row] = i; }
}
