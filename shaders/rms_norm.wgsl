// RMS norm (Llama's RMSNorm, computed in f32):
//   out[t, c] = x[t, c] / sqrt(mean_c(x[t, :]^2) + eps) * weight[c]
// With ADD (fused residual add + norm, AddRmsNormKernel):
//   residual[t, c] += x[t, c];  out[t, c] = norm(residual[t, :])[c] * weight[c]
//
// Bindings
//   x:        [T, C] f32, row-major, read
//   weight:   [C] f32, or f16 / bf16 packed two per u32 (element 2i in the low half), read
//   residual: [T, C] f32, read_write (ADD only), updated in place
//   out:      [T, C] f32, written (aliases no other binding)
// Params: T (rows), C (columns), eps (added to the mean square)
// Defines
//   WG         threads per workgroup (power of two)
//   SUBGROUPS  1: subgroup reduction (lib/reduce.wgsl); 0: workgroup-memory tree
//   WDT        weight dtype: 0 f32, 1 f16 (packed), 2 bf16 (packed)
//   ADD        1: fused residual add
// Workgroup contract: one workgroup of WG threads per row (1D grid over T rows, folded by
// grid.ts / lib/grid.wgsl); thread i handles columns i, i + WG, ...: pass 1 accumulates the sum
// of squares in f32, one workgroup reduction, pass 2 scales. Workgroups past T (folding) exit
// together, so the reductions stay in uniform control flow. Any C >= 1.
#if SUBGROUPS
enable subgroups;
#endif

#include "lib/grid.wgsl"
#include "lib/packing.wgsl"
#include "lib/reduce.wgsl"

struct Params {
  T: u32,
  C: u32,
  eps: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
#if WDT == 0
@group(0) @binding(1) var<storage, read> weight: array<f32>;
#else
@group(0) @binding(1) var<storage, read> weight: array<u32>;
#endif
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;
#if ADD
@group(0) @binding(4) var<storage, read_write> residual: array<f32>;
#endif

fn load_weight(c: u32) -> f32 {
#if WDT == 0
  return weight[c];
#elif WDT == 1
  return f16_at(weight[c >> 1u], c & 1u);
#else
  return bf16_at(weight[c >> 1u], c & 1u);
#endif
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, lane_in: LaneInputs) {
  let ln = lane_of(lane_in);
  let lid = ln.lid;
  let row = linear_workgroup(wid, nwg);
  if (row >= params.T) { return; }
  let C = params.C;
  let base = row * C;

  var ss = 0.0;
  for (var c = lid; c < C; c += WG) {
#if ADD
    let v = residual[base + c] + x[base + c];
    residual[base + c] = v;
#else
    let v = x[base + c];
#endif
    ss += v * v;
  }
  let total = wg_sum(ss, ln);
  let inv = inverseSqrt(total / f32(C) + params.eps);
  for (var c = lid; c < C; c += WG) {
#if ADD
    let v = residual[base + c];
#else
    let v = x[base + c];
#endif
    out[base + c] = v * inv * load_weight(c);
  }
}
