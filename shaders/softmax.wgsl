// Row softmax, numerically stable: out[r, c] = exp(x[r, c] - m_r) / sum_c' exp(x[r, c'] - m_r),
// m_r = max_c x[r, c]. Two passes over the row:
//   1. each thread keeps an online (running max m, sum s of exp(x - m)) over its columns;
//      the workgroup reduces m = max(m_i), then S = sum(s_i * exp(m_i - m));
//   2. out = exp(x - m) / S.
// -inf entries (masks) give 0; a row that is entirely -inf gives NaN (0/0), as torch does.
//
// Bindings
//   x:   [R, C] f32, read
//   out: [R, C] f32, written (aliases no input)
// Params: R (rows), C (columns)
// Defines: WG (threads per workgroup, power of two), SUBGROUPS (0|1; lib/reduce.wgsl)
// Workgroup contract: one workgroup per row (1D grid over R, folded; lib/grid.wgsl), thread i
// handles columns i, i + WG, ... (coalesced), so any C works (C = 128K: 512 per thread).
#if SUBGROUPS
enable subgroups;
#endif

#include "lib/grid.wgsl"
#include "lib/reduce.wgsl"

struct Params {
  R: u32,
  C: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, lane_in: LaneInputs) {
  let ln = lane_of(lane_in);
  let lid = ln.lid;
  let row = linear_workgroup(wid, nwg);
  if (row >= params.R) { return; }
  let C = params.C;
  let base = row * C;

  var run = running_start();
  for (var c = lid; c < C; c += WG) {
    run = running_add(run, x[base + c]);
  }
  // Threads with no columns or only -inf have s = 0 and contribute nothing.
  let t = wg_running_total(run, ln);
  let mx = t.x;
  let inv = 1.0 / t.y;
  for (var c = lid; c < C; c += WG) {
    out[base + c] = exp(x[base + c] - mx) * inv;
  }
}
