// Attention recall of sparse patterns (the pattern search, src/search/search.ts): for sampled query
// rows i of a head, the share of the row's causal softmax mass, p_ij = exp(s_ij - m_i) / L_i with
// s_ij = scale * q_i . k_j over keys j <= i, that a pattern's kept key set covers; and the output
// error of a pattern's attention against dense attention on the same rows.
//
// Entry points (one workgroup per (sampled row r, listed head y); grid (R, n)):
//   row_stats  stats[h, r] = (m_i, L_i): the row's max score and sum of exp(s_ij - m_i) over j <= i
//   kept_mass  kept[h, r] = sum over kept keys j <= i of exp(s_ij - m_i) / L_i (stats from row_stats)
//              KEPT 0: the keys a SparseIndex lists for the row's 64-query block m = i / 64 (index slot
//                      y): 64-key ranges [off, off + 64) and single columns (src/attention/types.ts);
//                      ranges do not overlap and no column lies in a range, so no key counts twice
//              KEPT 1: A-shape: keys j < n_init (sink) and keys with i - j < n_local (window)
//   row_error  err[h, r] = (sum_d (a[h, i, d] - b[h, i, d])^2, sum_d b[h, i, d]^2): a pattern's
//              output a against the dense output b, for a relative L2 error over the rows
// Head h = heads[y] (query head of q); it reads kv head floor(h * Hkv / H).
//
// Bindings
//   q:      [H, S, D] f32 (as vec4), read          k: [Hkv, S, D] f32 (as vec4), read
//   rows:   [R] u32, read: the sampled query positions, each < S
//   heads:  [n] u32, read: the query heads of this dispatch (workgroup_id.y indexes it)
//   stats:  [H, R, 2] f32: written by row_stats, read by kept_mass (only the listed heads' rows)
//   kept:   [H, R] f32, written by kept_mass (only the listed heads' rows)
//   KEPT 0: block_count [n, QB] u32, block_offset [n, QB, max_blocks] u32, column_count [n, QB] u32,
//           column_index [n, QB, col_stride] u32 (SparseIndex; QB = ceil(S / 64); slot y serves heads[y])
//   a, b:   [H, S, D] f32 (as vec4), read (row_error)   err: [H, R, 2] f32, written (row_error)
// Params: see struct Params (per-call values; one pipeline serves every length and row count).
// Defines: HEAD_DIM (64 | 96 | 128), KEPT (0 | 1, kept_mass), WG and SUBGROUPS (lib/reduce.wgsl).
// Workgroup contract: WG threads; the row's q (pre-scaled) is staged in workgroup memory; thread t
// takes keys t, t + WG, ... of the row's key list (all j <= i, or the kept list), keeps a running
// max / sum or a plain sum, and the workgroup reduces them (fixed order: deterministic).
// Scores and exponentials are f32 (natural exp); a row's total is at least 1 (its own max term).
#if SUBGROUPS
enable subgroups;
#endif

#include "lib/reduce.wgsl"

const D4: u32 = HEAD_DIM / 4u;
// Sparse-index block size (src/attention/types.ts BLOCK).
const IBLOCK: u32 = 64u;

struct Params {
  S: u32,          // keys per kv head (= query rows per head)
  R: u32,          // sampled rows
  H: u32,          // query heads of q
  Hkv: u32,        // kv heads of k
  scale: f32,      // 1 / sqrt(D)
  n_init: u32,     // KEPT 1: sink keys
  n_local: u32,    // KEPT 1: window
  qblocks: u32,    // KEPT 0: index query blocks (ceil(S / 64))
  max_blocks: u32, // KEPT 0: ranges capacity per (slot, query block)
  col_stride: u32, // KEPT 0: columns capacity per (slot, query block) in the layout (>= 1)
}

@group(0) @binding(0) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> rows: array<u32>;
@group(0) @binding(3) var<storage, read> heads: array<u32>;
@group(0) @binding(4) var<storage, read_write> stats: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read_write> kept: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;
@group(0) @binding(7) var<storage, read> block_count: array<u32>;
@group(0) @binding(8) var<storage, read> block_offset: array<u32>;
@group(0) @binding(9) var<storage, read> column_count: array<u32>;
@group(0) @binding(10) var<storage, read> column_index: array<u32>;
@group(0) @binding(11) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(12) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(13) var<storage, read_write> err: array<vec2<f32>>;

var<workgroup> q_row: array<vec4<f32>, D4>;

// Stages q[h, i, :] * scale in q_row (every invocation must call it: it has a barrier).
fn stage_q(h: u32, i: u32, lid: u32) {
  if (lid < D4) {
    q_row[lid] = q[(h * params.S + i) * D4 + lid] * params.scale;
  }
  workgroupBarrier();
}

// s_ij for the staged row and key j of kv head g.
fn score(g: u32, j: u32) -> f32 {
  let base = (g * params.S + j) * D4;
  var acc = vec4<f32>(0.0);
  for (var c = 0u; c < D4; c++) {
    acc += q_row[c] * k[base + c];
  }
  return acc.x + acc.y + acc.z + acc.w;
}

fn kv_head(h: u32) -> u32 {
  return h * params.Hkv / params.H;
}

@compute @workgroup_size(WG)
fn row_stats(@builtin(workgroup_id) wid: vec3<u32>, lane_in: LaneInputs) {
  let ln = lane_of(lane_in);
  let r = wid.x;
  let h = heads[wid.y];
  let i = rows[r];
  stage_q(h, i, ln.lid);
  let g = kv_head(h);
  var run = running_start();
  for (var j = ln.lid; j <= i; j += WG) {
    run = running_add(run, score(g, j));
  }
  // Threads that saw no key have s = 0 and add nothing.
  let total = wg_running_total(run, ln);
  if (ln.lid == 0u) {
    stats[h * params.R + r] = total;
  }
}

@compute @workgroup_size(WG)
fn kept_mass(@builtin(workgroup_id) wid: vec3<u32>, lane_in: LaneInputs) {
  let ln = lane_of(lane_in);
  let r = wid.x;
  let y = wid.y;
  let h = heads[y];
  let i = rows[r];
  stage_q(h, i, ln.lid);
  let g = kv_head(h);
  let st = stats[h * params.R + r];
  var acc = 0.0;
#if KEPT == 1
  // Sink [0, ns) and window [w0, i], w0 >= ns so that no key counts twice.
  let ns = min(params.n_init, i + 1u);
  var w0 = 0u;
  if (i + 1u > params.n_local) {
    w0 = i + 1u - params.n_local;
  }
  w0 = max(w0, ns);
  let n = ns + (i + 1u - w0);
  for (var t = ln.lid; t < n; t += WG) {
    var j = t;
    if (t >= ns) {
      j = w0 + (t - ns);
    }
    acc += exp(score(g, j) - st.x);
  }
#else
  let slot = y * params.qblocks + i / IBLOCK;
  let nb = min(block_count[slot], params.max_blocks);
  let nc = min(column_count[slot], params.col_stride);
  let range_keys = nb * IBLOCK;
  for (var t = ln.lid; t < range_keys + nc; t += WG) {
    var j: u32;
    if (t < range_keys) {
      j = block_offset[slot * params.max_blocks + t / IBLOCK] + t % IBLOCK;
    } else {
      j = column_index[slot * params.col_stride + (t - range_keys)];
    }
    // Causal mask per element; keys past the row (and past S) are not attended.
    if (j <= i) {
      acc += exp(score(g, j) - st.x);
    }
  }
#endif
  let total = wg_sum(acc, ln);
  if (ln.lid == 0u) {
    kept[h * params.R + r] = total / st.y;
  }
}

@compute @workgroup_size(WG)
fn row_error(@builtin(workgroup_id) wid: vec3<u32>, lane_in: LaneInputs) {
  let ln = lane_of(lane_in);
  let r = wid.x;
  let h = heads[wid.y];
  let base = (h * params.S + rows[r]) * D4;
  var e = 0.0;
  var n = 0.0;
  for (var c = ln.lid; c < D4; c += WG) {
    let d = a[base + c] - b[base + c];
    let y = b[base + c];
    e += dot(d, d);
    n += dot(y, y);
  }
  let se = wg_sum(e, ln);
  let sn = wg_sum(n, ln);
  if (ln.lid == 0u) {
    err[h * params.R + r] = vec2<f32>(se, sn);
  }
}
