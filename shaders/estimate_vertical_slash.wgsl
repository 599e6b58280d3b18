// Vertical-Slash estimation scores (MInference 1.0): the last L = min(64, S) queries of each head
// scored against all keys, softmax per row in f32, then per key column j the column sum
// ("vertical" score) and per diagonal offset delta = i - j the diagonal sum ("slash" score).
//
// Row r in [0, L) is query i = S - L + r; logit x[r, j] = scale * q[i] . k[j], masked (dropped)
// where j > i. p[r, j] = exp(x - m_r) / l_r with m_r the row max and l_r the row sum.
//   vertical[j]  = sum_r p[r, j]                 for j in [0, S); FORCED for j < N_SINK (always kept)
//   slash[delta] = sum_r p[r, S - L + r - delta] for delta in [0, S); FORCED for delta < N_LOCAL
//
// Passes (index hi in [0, heads) selects query head head_ids[hi] and its kv head):
//   row_partial: grid (nchunks, heads): per chunk of KT 64-key tiles, each row's running max and
//                sum of exp -> part[hi, chunk, r] = (m, l).
//   row_reduce:  grid (heads): combines the chunks -> stats[hi, r] = (m_r, 1 / l_r).
//   tile_scores: grid (ntiles, heads): one 64-key tile: p for all 64 rows in workgroup memory; column
//                sums written to scores (owned), the tile's 127 diagonal partial sums to diag.
//   diag_combine: grid (ceil(S / 256), heads): each diagonal's sum from the <= 2 tiles that hold it.
//
// Bindings
//   q:        [H, S, D] f32 (DT 0) or packed f16/bf16 pairs as u32 (DT 1/2), read
//   k:        [Hkv, S, D] same dtype as q, read
//   head_ids: (heads) u32: query head of index head hi
//   part:     (heads * nchunks * 64 * 2) f32 scratch
//   stats:    (heads * 64 * 2) f32 scratch
//   diag:     (heads * ntiles * 127) f32 scratch
//   scores:   [2, heads, S] f32 out: [0] vertical, [1] slash
// Params: D (head dim, a multiple of 16), S, L, H, Hkv, heads, nchunks, ntiles, scale, head_base (added to hi: index of the first
//   head of this dispatch in the scratch/score layout is 0; head_ids are read at head_base + hi).
// Defines: DT (0 f32, 1 f16, 2 bf16). The head dim is a uniform, so one pipeline serves 64/96/128.
// Workgroup contract: 256 threads as 16 x 16; thread (ty, tx) holds rows 4ty..4ty+3 and keys
//   tx + 16b (b < 4) of a 64 x 64 logit tile; q and k are staged 16 dims at a time.
#include "lib/packing.wgsl"

const WG: u32 = 256u;
const TILE: u32 = 64u; // rows (last queries) and keys per tile: MInference's last_q and block size
const DK: u32 = 16u; // head dims staged per step
// Key tiles per row_partial workgroup: 16 x 64 = 1024 keys, so nchunks = S / 1024 stays small.
const KT: u32 = 16u;
const N_SINK: u32 = 30u; // MInference forces the first 30 columns (vertical[..., :30] = inf)
const N_LOCAL: u32 = 100u; // ... and the 100 nearest diagonals (slash[..., -100:] = inf)
// Score of always-kept columns/diagonals: finite (WGSL const-eval rejects inf) and far above any
// real score (a sum of at most 64 probabilities).
const FORCED: f32 = 3.0e38;
const NEG_BIG: f32 = -3.0e38; // "no value yet" for a running max (finite, so no inf - inf NaN)
const DIAGS: u32 = 127u; // diagonals crossing a 64 x 64 tile: r - c in [-63, 63]

struct Params {
  D: u32, // head dim (a multiple of 16 for Vertical-Slash)
  S: u32,
  L: u32,
  H: u32,
  Hkv: u32,
  heads: u32,
  nchunks: u32,
  ntiles: u32,
  scale: f32,
  head_base: u32,
}

#include "lib/qk_input.wgsl"
@group(0) @binding(2) var<storage, read> head_ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats: array<f32>;
@group(0) @binding(5) var<storage, read_write> diag: array<f32>;
@group(0) @binding(6) var<storage, read_write> scores: array<f32>;
@group(0) @binding(7) var<uniform> params: Params;

// Staging (q: [DK][64] at 0, k: [DK][64] at DK * 64), then reused for the 64 x 64 p tile.
var<workgroup> sh: array<f32, 4096>;

// Element offsets of the first of the last L query rows and of key row 0, for index head hi.
fn q_base(hi: u32) -> u32 {
  let h = head_ids[params.head_base + hi];
  return (h * params.S + (params.S - params.L)) * params.D;
}
fn k_base(hi: u32) -> u32 {
  let h = head_ids[params.head_base + hi];
  let kvh = (h * params.Hkv) / params.H;
  return kvh * params.S * params.D;
}

// acc[b][a] = scale * q[row 4ty + a] . k[key j0 + tx + 16b] (unmasked).
fn tile_logits(lid: u32, qb: u32, kb: u32, j0: u32) -> array<vec4<f32>, 4> {
  let tx = lid % 16u;
  let ty = lid / 16u;
  var acc: array<vec4<f32>, 4>;
  for (var d0 = 0u; d0 < params.D; d0 += DK) {
    workgroupBarrier();
    for (var u = 0u; u < 4u; u++) {
      let e = lid + u * WG; // 0..1023 -> (row or key, dim)
      let row = e / DK;
      let dd = e % DK;
      var qv = 0.0;
      if (row < params.L) {
        qv = load_q(qb + row * params.D + d0 + dd);
      }
      sh[dd * TILE + row] = qv;
      var kv = 0.0;
      if (j0 + row < params.S) {
        kv = load_k(kb + (j0 + row) * params.D + d0 + dd);
      }
      sh[DK * TILE + dd * TILE + row] = kv;
    }
    workgroupBarrier();
    for (var dd = 0u; dd < DK; dd++) {
      let o = dd * TILE + ty * 4u;
      let qa = vec4<f32>(sh[o], sh[o + 1u], sh[o + 2u], sh[o + 3u]);
      let ko = DK * TILE + dd * TILE + tx;
      acc[0] += qa * sh[ko];
      acc[1] += qa * sh[ko + 16u];
      acc[2] += qa * sh[ko + 32u];
      acc[3] += qa * sh[ko + 48u];
    }
  }
  for (var b = 0u; b < 4u; b++) {
    acc[b] *= params.scale;
  }
  return acc;
}

// Key j is seen by row r iff r < L, j < S and j <= S - L + r.
fn visible(r: u32, j: u32) -> bool {
  return r < params.L && j < params.S && j <= params.S - params.L + r;
}

@compute @workgroup_size(WG)
fn row_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let hi = wid.y;
  let chunk = wid.x;
  let tx = lid % 16u;
  let ty = lid / 16u;
  let qb = q_base(hi);
  let kb = k_base(hi);
  var m: array<f32, 4>;
  var l: array<f32, 4>;
  for (var a = 0u; a < 4u; a++) {
    m[a] = NEG_BIG;
    l[a] = 0.0;
  }
  for (var t = 0u; t < KT; t++) {
    let j0 = (chunk * KT + t) * TILE;
    if (j0 >= params.S) {
      break; // uniform: j0 depends on the workgroup only
    }
    let acc = tile_logits(lid, qb, kb, j0);
    for (var a = 0u; a < 4u; a++) {
      let r = ty * 4u + a;
      for (var b = 0u; b < 4u; b++) {
        let j = j0 + tx + 16u * b;
        if (visible(r, j)) {
          let x = acc[b][a];
          let mn = max(m[a], x);
          l[a] = l[a] * exp(m[a] - mn) + exp(x - mn);
          m[a] = mn;
        }
      }
    }
  }
  // Combine the 16 threads (tx) that share each row.
  workgroupBarrier();
  for (var a = 0u; a < 4u; a++) {
    let r = ty * 4u + a;
    sh[(r * 16u + tx) * 2u] = m[a];
    sh[(r * 16u + tx) * 2u + 1u] = l[a];
  }
  workgroupBarrier();
  if (lid < TILE) {
    var mm = NEG_BIG;
    for (var x = 0u; x < 16u; x++) {
      mm = max(mm, sh[(lid * 16u + x) * 2u]);
    }
    var ll = 0.0;
    for (var x = 0u; x < 16u; x++) {
      let lx = sh[(lid * 16u + x) * 2u + 1u];
      if (lx > 0.0) {
        ll += lx * exp(sh[(lid * 16u + x) * 2u] - mm);
      }
    }
    let o = ((hi * params.nchunks + chunk) * TILE + lid) * 2u;
    part[o] = mm;
    part[o + 1u] = ll;
  }
}

@compute @workgroup_size(TILE)
fn row_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let hi = wid.x;
  var mm = NEG_BIG;
  for (var c = 0u; c < params.nchunks; c++) {
    mm = max(mm, part[((hi * params.nchunks + c) * TILE + lid) * 2u]);
  }
  var ll = 0.0;
  for (var c = 0u; c < params.nchunks; c++) {
    let o = ((hi * params.nchunks + c) * TILE + lid) * 2u;
    if (part[o + 1u] > 0.0) {
      ll += part[o + 1u] * exp(part[o] - mm);
    }
  }
  stats[(hi * TILE + lid) * 2u] = mm;
  stats[(hi * TILE + lid) * 2u + 1u] = select(0.0, 1.0 / ll, ll > 0.0);
}

@compute @workgroup_size(WG)
fn tile_scores(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let hi = wid.y;
  let tile = wid.x;
  let tx = lid % 16u;
  let ty = lid / 16u;
  let j0 = tile * TILE;
  let acc = tile_logits(lid, q_base(hi), k_base(hi), j0);
  workgroupBarrier(); // staging reads done before the p tile overwrites sh
  for (var a = 0u; a < 4u; a++) {
    let r = ty * 4u + a;
    let m = stats[(hi * TILE + r) * 2u];
    let inv_l = stats[(hi * TILE + r) * 2u + 1u];
    for (var b = 0u; b < 4u; b++) {
      let c = tx + 16u * b;
      var p = 0.0;
      if (visible(r, j0 + c)) {
        p = exp(acc[b][a] - m) * inv_l;
      }
      sh[r * TILE + c] = p;
    }
  }
  workgroupBarrier();
  if (lid < TILE) {
    // Column sum of key j0 + lid.
    let j = j0 + lid;
    if (j < params.S) {
      var s = 0.0;
      for (var r = 0u; r < TILE; r++) {
        s += sh[r * TILE + lid];
      }
      scores[hi * params.S + j] = select(s, FORCED, j < N_SINK);
    }
  } else if (lid < TILE + DIAGS) {
    // Diagonal r - c = t - 63 of this tile.
    let t = lid - TILE;
    let r0 = select(0u, t - 63u, t >= 63u);
    let c0 = select(63u - t, 0u, t >= 63u);
    var s = 0.0;
    for (var x = 0u; r0 + x < TILE && c0 + x < TILE; x++) {
      s += sh[(r0 + x) * TILE + c0 + x];
    }
    diag[(hi * params.ntiles + tile) * DIAGS + t] = s;
  }
}

@compute @workgroup_size(WG)
fn diag_combine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let hi = wid.y;
  let delta = wid.x * WG + lid;
  if (delta >= params.S) {
    return;
  }
  // Tile tl holds delta at t = delta - (S - L - 64 tl) + 63, t in [0, 126]:
  // 64 tl in [S - L - delta - 63, S - L - delta + 63], at most two tiles.
  let lo = i32(params.S) - i32(params.L) - i32(delta) - 63;
  var tl = select(0, (lo + 63) / 64, lo > 0); // ceil(lo / 64) for lo > 0
  var s = 0.0;
  for (var x = 0; x < 2; x++) {
    let tile = tl + x;
    let t = i32(delta) - (i32(params.S) - i32(params.L) - 64 * tile) + 63;
    if (tile < i32(params.ntiles) && t >= 0 && t < i32(DIAGS)) {
      s += diag[(hi * params.ntiles + u32(tile)) * DIAGS + u32(t)];
    }
  }
  scores[(params.heads + hi) * params.S + delta] = select(s, FORCED, delta < N_LOCAL);
}
