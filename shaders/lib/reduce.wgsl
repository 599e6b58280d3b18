// Workgroup-wide reductions for kernels that give one row to one workgroup (rms_norm, softmax,
// argmax, pattern_recall). Every invocation of the workgroup must call a reduction (uniform control
// flow) and every invocation gets the result.
//
// Defines the includer must set:
//   WG         workgroup size (power of two; the tree fallback halves it)
//   SUBGROUPS  1: subgroup reductions (the includer writes `enable subgroups;` and passes the
//              subgroup builtins in a Lane), then one partial per subgroup in workgroup memory,
//              summed in a fixed order by every invocation (deterministic).
//              0: the workgroup-memory tree fallback (log2(WG) barrier steps).
// Subgroup slots are lid / sg_size: this assumes a 1D workgroup is split into subgroups of
// consecutive local_invocation_index values, as Dawn's Vulkan, Metal and D3D12 backends do.
// No bindings. Workgroup memory: 2 * WG words.
//
// Barrier discipline: each reduction starts with a barrier before it writes workgroup memory,
// so consecutive reductions never overwrite a slot that another invocation still has to read.

struct Lane {
  lid: u32,     // local_invocation_index
  sg_lane: u32, // subgroup_invocation_id (0 without subgroups)
  sg_size: u32, // subgroup_size (1 without subgroups)
}

// The entry point's per-invocation builtins, as one parameter (`fn main(..., lane_in: LaneInputs)`),
// that lane_of() packs into a Lane. (The workgroup builtins stay separate parameters: a struct
// with a per-invocation member is non-uniform as a whole to WGSL's uniformity analysis.)
struct LaneInputs {
  @builtin(local_invocation_index) lid: u32,
#if SUBGROUPS
  @builtin(subgroup_invocation_id) sg_lane: u32,
  @builtin(subgroup_size) sg_size: u32,
#endif
}

fn lane_of(inp: LaneInputs) -> Lane {
#if SUBGROUPS
  return Lane(inp.lid, inp.sg_lane, inp.sg_size);
#else
  return Lane(inp.lid, 0u, 1u);
#endif
}

var<workgroup> red_f: array<f32, WG>;
var<workgroup> red_u: array<u32, WG>;

fn wg_sum(v: f32, ln: Lane) -> f32 {
#if SUBGROUPS
  let s = subgroupAdd(v);
  workgroupBarrier();
  if (ln.sg_lane == 0u) { red_f[ln.lid / ln.sg_size] = s; }
  workgroupBarrier();
  var total = 0.0;
  let n = (WG + ln.sg_size - 1u) / ln.sg_size;
  for (var i = 0u; i < n; i++) { total += red_f[i]; }
  return total;
#else
  workgroupBarrier();
  red_f[ln.lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (ln.lid < s) { red_f[ln.lid] += red_f[ln.lid + s]; }
    workgroupBarrier();
  }
  return red_f[0];
#endif
}

fn wg_max(v: f32, ln: Lane) -> f32 {
#if SUBGROUPS
  let s = subgroupMax(v);
  workgroupBarrier();
  if (ln.sg_lane == 0u) { red_f[ln.lid / ln.sg_size] = s; }
  workgroupBarrier();
  var m = red_f[0];
  let n = (WG + ln.sg_size - 1u) / ln.sg_size;
  for (var i = 1u; i < n; i++) { m = max(m, red_f[i]); }
  return m;
#else
  workgroupBarrier();
  red_f[ln.lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (ln.lid < s) { red_f[ln.lid] = max(red_f[ln.lid], red_f[ln.lid + s]); }
    workgroupBarrier();
  }
  return red_f[0];
#endif
}

fn wg_min_u32(v: u32, ln: Lane) -> u32 {
#if SUBGROUPS
  let s = subgroupMin(v);
  workgroupBarrier();
  if (ln.sg_lane == 0u) { red_u[ln.lid / ln.sg_size] = s; }
  workgroupBarrier();
  var m = red_u[0];
  let n = (WG + ln.sg_size - 1u) / ln.sg_size;
  for (var i = 1u; i < n; i++) { m = min(m, red_u[i]); }
  return m;
#else
  workgroupBarrier();
  red_u[ln.lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (ln.lid < s) { red_u[ln.lid] = min(red_u[ln.lid], red_u[ln.lid + s]); }
    workgroupBarrier();
  }
  return red_u[0];
#endif
}

// A running softmax normaliser over one invocation's values: the max m and the sum s of exp(x - m),
// rescaled when the max grows. It starts at the lowest finite f32, so no inf - inf appears for
// finite input; -inf values add 0; an invocation that saw no value keeps s = 0.
struct RunningMax {
  m: f32,
  s: f32,
}

fn running_start() -> RunningMax {
  return RunningMax(-3.4028234663852886e38, 0.0);
}

fn running_add(r: RunningMax, x: f32) -> RunningMax {
  if (x > r.m) {
    return RunningMax(x, r.s * exp(r.m - x) + 1.0);
  }
  return RunningMax(r.m, r.s + exp(x - r.m));
}

// The workgroup's max and sum of exp(x - max) over every invocation's running state (every
// invocation must call it; invocations with s = 0 add nothing).
fn wg_running_total(r: RunningMax, ln: Lane) -> vec2<f32> {
  let mx = wg_max(r.m, ln);
  return vec2<f32>(mx, wg_sum(select(0.0, r.s * exp(r.m - mx), r.s > 0.0), ln));
}
