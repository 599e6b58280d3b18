// One-row decode attention: the new token's query heads against the KV cache (flash-decoding).
//
// One workgroup per (key split, kv head) serves the GROUP query heads that share the kv head (query
// head h reads kv head h / GROUP), so each cached K/V row is read once per kv head, not once per
// query head, and no work is spent on padding query rows (the prefill kernels compute 64-row tiles).
// Keys key_start .. kv_len - 1 are attended (key_start > 0: a sliding window); the query sits at
// position kv_len - 1, so every one of them is causal.
//
// Entry `main`: grid (n_split, n_kv_heads). Split z takes keys [key_start + z * split_len, +split_len)
// in tiles of WG keys: one thread per key computes its GROUP scores (q pre-scaled by scale * log2 e),
// thread g < GROUP updates head g's running max and sum over the tile, and every thread accumulates
// the weighted V rows into its share of the GROUP x HEAD_DIM outputs (consecutive threads read
// consecutive vec4 of a V row). It writes the split's unnormalised output and (max, sum) per head.
// Entry `combine`: grid (n_heads); merges the splits' partial states and normalises (lib/split_merge.wgsl).
//
// Defines: HEAD_DIM (64, 96, 128), KV_F16 (0: k, v are f32; 1: packed f16, 4 halves per vec2<u32>),
// GROUP (query heads per kv head), WG (threads and keys per tile).
// Bindings: q [H, HEAD_DIM] f32, k and v [n_kv_heads, scap, HEAD_DIM], part_o [n_split, H, HEAD_DIM]
// f32, part_ml [n_split, H] (max, sum), out [H, HEAD_DIM] f32; H = n_kv_heads * GROUP.

const D4: u32 = HEAD_DIM / 4u;
// Output vec4 (of GROUP heads x D4 columns) per thread: outputs li + r * WG.
const OPT: u32 = (GROUP * D4 + WG - 1u) / WG;
// Finite stand-in for -inf; a split without keys keeps it with sum 0 (zero weight in `combine`).
const NEG: f32 = -3.0e38;
const LOG2E: f32 = 1.4426950408889634;

struct Params {
  kv_len: u32,     // keys 0 .. kv_len - 1 are in the cache; the query is at position kv_len - 1
  key_start: u32,  // first attended key
  scap: u32,       // rows per kv head in k, v
  n_kv_heads: u32,
  scale: f32,      // 1 / sqrt(HEAD_DIM)
  split_len: u32,  // keys per split (a multiple of WG)
  n_split: u32,
}

@group(0) @binding(0) var<storage, read> q: array<vec4<f32>>;
#if KV_F16
@group(0) @binding(1) var<storage, read> k: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read> v: array<vec2<u32>>;
#else
@group(0) @binding(1) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> v: array<vec4<f32>>;
#endif
@group(0) @binding(3) var<storage, read_write> part_o: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> part_ml: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(6) var<uniform> params: Params;
#include "lib/split_merge.wgsl"

var<workgroup> qs: array<vec4<f32>, GROUP * D4>; // the GROUP queries, pre-scaled
var<workgroup> ps: array<f32, GROUP * WG>;       // scores, then probabilities, [GROUP][WG]
var<workgroup> alpha: array<f32, GROUP>;         // rescale of the running output per head
var<workgroup> run_m: array<f32, GROUP>;         // running max per head
var<workgroup> run_l: array<f32, GROUP>;         // running sum per head

#if KV_F16
fn k_at(i: u32) -> vec4<f32> {
  let w = k[i];
  return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}
fn v_at(i: u32) -> vec4<f32> {
  let w = v[i];
  return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}
#else
fn k_at(i: u32) -> vec4<f32> { return k[i]; }
fn v_at(i: u32) -> vec4<f32> { return v[i]; }
#endif

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let z = wid.x;
  let kvh = wid.y;
  let n_heads = params.n_kv_heads * GROUP;
  let h0 = kvh * GROUP;
  let qscale = params.scale * LOG2E;
  for (var i = li; i < GROUP * D4; i += WG) { qs[i] = q[h0 * D4 + i] * qscale; }
  if (li < GROUP) {
    run_m[li] = NEG;
    run_l[li] = 0.0;
  }
  var acc: array<vec4<f32>, OPT>;
  for (var r = 0u; r < OPT; r++) { acc[r] = vec4<f32>(0.0); }
  let s0 = params.key_start + z * params.split_len;
  let s1 = min(s0 + params.split_len, params.kv_len);
  let kv_base = kvh * params.scap;
  workgroupBarrier();
  // s0 and s1 are uniform: every thread takes the same tiles and barriers.
  for (var t0 = s0; t0 < s1; t0 += WG) {
    let nk = min(WG, s1 - t0);
    if (li < nk) {
      let row = (kv_base + t0 + li) * D4;
      for (var g = 0u; g < GROUP; g++) {
        var s = 0.0;
        for (var c = 0u; c < D4; c++) { s += dot(qs[g * D4 + c], k_at(row + c)); }
        ps[g * WG + li] = s;
      }
    }
    workgroupBarrier();
    if (li < GROUP) {
      var mt = NEG;
      for (var j = 0u; j < nk; j++) { mt = max(mt, ps[li * WG + j]); }
      let m_old = run_m[li];
      let m_new = max(m_old, mt);
      var sum = 0.0;
      for (var j = 0u; j < nk; j++) {
        let p = exp2(ps[li * WG + j] - m_new);
        ps[li * WG + j] = p;
        sum += p;
      }
      let a = exp2(m_old - m_new);
      alpha[li] = a;
      run_m[li] = m_new;
      run_l[li] = run_l[li] * a + sum;
    }
    workgroupBarrier();
    for (var r = 0u; r < OPT; r++) {
      let o = li + r * WG;
      if (o < GROUP * D4) {
        let g = o / D4;
        let c = o - g * D4;
        var x = acc[r] * alpha[g];
        for (var j = 0u; j < nk; j++) { x += ps[g * WG + j] * v_at((kv_base + t0 + j) * D4 + c); }
        acc[r] = x;
      }
    }
    // ps, alpha are rewritten by the next tile.
    workgroupBarrier();
  }
  for (var r = 0u; r < OPT; r++) {
    let o = li + r * WG;
    if (o < GROUP * D4) {
      let g = o / D4;
      let c = o - g * D4;
      part_o[(z * n_heads + h0 + g) * D4 + c] = acc[r];
    }
  }
  if (li < GROUP) { part_ml[z * n_heads + h0 + li] = vec2<f32>(run_m[li], run_l[li]); }
}

@compute @workgroup_size(D4)
fn combine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let h = wid.x;
  out[h * D4 + li] = merge_splits(h, params.n_kv_heads * GROUP, params.n_split, li);
}
