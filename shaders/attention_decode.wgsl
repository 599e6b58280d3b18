// One-row decode attention: the new token's query heads against the KV cache (flash-decoding).
//
// One workgroup per (key split, kv head) serves the GROUP query heads that share the kv head (query
// head h reads kv head h / GROUP), so each cached K/V row is read once per kv head, not once per
// query head, and no work is spent on padding query rows (the prefill kernels compute 64-row tiles).
// Keys key_start .. kv_len - 1 are attended (key_start > 0: a sliding window); the query sits at
// position kv_len - 1, so every one of them is causal.
//
// Entry `main`: grid (n_split, n_kv_heads), WG = KL * D4 threads. Split z takes keys
// [key_start + z * split_len, +split_len) in chunks of up to CHUNK keys (one chunk unless the split
// is longer), each in four parallel steps with every thread busy:
//   1. scores: thread i takes keys i, i + WG, ...: its GROUP dot products against the pre-scaled
//      queries (scale * log2 e) go to workgroup memory; a tree over the threads finds each head's max;
//   2. probabilities exp2(s - max) in place, and a tree for their sum;
//   3. P·V: thread (kl, c) = (i / D4, i % D4) adds the weighted vec4 column c of keys kl, kl + KL, ...
//      for all GROUP heads (consecutive threads read consecutive vec4 of a V row), and the KL key
//      lanes are summed through workgroup memory;
//   4. the running max, sum and output are rescaled when a later chunk raises the max.
// It writes the split's unnormalised output and (max, sum) per head.
// Entry `combine`: grid (n_heads), CL * D4 threads: a tree over the splits' maxima, then split lane
// sl sums the weighted outputs and sums of splits sl, sl + CL, ..., and the lanes are added.
//
// Defines: HEAD_DIM (64, 96, 128), KV_F16 (0: k, v are f32; 1: packed f16, 4 halves per vec2<u32>),
// GROUP (query heads per kv head), KL (key lanes in step 3), CHUNK (keys per chunk: the score
// buffer), WG_P2 (the smallest power of two >= WG), CL (split lanes of `combine`, a power of two),
// WGC_P2 (the smallest power of two >= CL * D4).
// Bindings: q [H, HEAD_DIM] f32, k and v [n_kv_heads, scap, HEAD_DIM], part_o [n_split, H, HEAD_DIM]
// f32, part_ml [n_split, H] (max, sum), out [H, HEAD_DIM] f32; H = n_kv_heads * GROUP.

const D4: u32 = HEAD_DIM / 4u;
const WG: u32 = KL * D4;
const WGC: u32 = CL * D4;
// Finite stand-in for -inf; a split without keys keeps it with sum 0 (zero weight in `combine`).
const NEG: f32 = -3.0e38;
const LOG2E: f32 = 1.4426950408889634;

struct Params {
  kv_len: u32,     // keys 0 .. kv_len - 1 are in the cache; the query is at position kv_len - 1
  key_start: u32,  // first attended key
  scap: u32,       // rows per kv head in k, v
  n_kv_heads: u32,
  scale: f32,      // 1 / sqrt(HEAD_DIM)
  split_len: u32,  // keys per split (src/attention/decode.ts decodeSplit)
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

var<workgroup> qs: array<vec4<f32>, GROUP * D4>; // the GROUP queries, pre-scaled
var<workgroup> sc: array<f32, GROUP * CHUNK>;     // scores, then probabilities, [GROUP][CHUNK]
var<workgroup> red: array<f32, GROUP * WG>;       // tree reductions, [GROUP][WG]
var<workgroup> po: array<vec4<f32>, GROUP * D4>;  // the chunk's P·V, summed over key lanes

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

// Tree over the WG threads' values in red (GROUP rows): afterwards red[g * WG] is row g's max
// (take_max) or sum. Every thread calls it (barriers inside).
fn reduce_rows(li: u32, take_max: bool) {
  workgroupBarrier();
  for (var st = WG_P2 / 2u; st > 0u; st >>= 1u) {
    if (li < st && li + st < WG) {
      for (var g = 0u; g < GROUP; g++) {
        let a = red[g * WG + li];
        let b = red[g * WG + li + st];
        red[g * WG + li] = select(a + b, max(a, b), take_max);
      }
    }
    workgroupBarrier();
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let z = wid.x;
  let kvh = wid.y;
  let n_heads = params.n_kv_heads * GROUP;
  let h0 = kvh * GROUP;
  let qscale = params.scale * LOG2E;
  for (var i = li; i < GROUP * D4; i += WG) { qs[i] = q[h0 * D4 + i] * qscale; }
  let kl = li / D4;
  let c = li % D4;
  var run_m: array<f32, GROUP>;
  var run_l: array<f32, GROUP>;
  var acc: array<vec4<f32>, GROUP>;
  for (var g = 0u; g < GROUP; g++) {
    run_m[g] = NEG;
    run_l[g] = 0.0;
    acc[g] = vec4<f32>(0.0);
  }
  let s0 = params.key_start + z * params.split_len;
  let s1 = min(s0 + params.split_len, params.kv_len);
  let kv_base = kvh * params.scap;
  // s0 and s1 are uniform: every thread takes the same chunks and barriers.
  for (var t0 = s0; t0 < s1; t0 += CHUNK) {
    let n = min(CHUNK, s1 - t0);
    workgroupBarrier(); // qs written; sc, red, po free from the previous chunk
    // 1. Scores and each thread's max.
    var tm: array<f32, GROUP>;
    for (var g = 0u; g < GROUP; g++) { tm[g] = NEG; }
    for (var j = li; j < n; j += WG) {
      let row = (kv_base + t0 + j) * D4;
      // Loop-scoped arrays are zeroed with an explicit constructor: with the bare declaration
      // (which WGSL zero-initialises on every execution), SwiftShader kept the previous key's
      // scores for D=64 and D=96 (test/cases/attention.ts: a thread taking two keys).
      var s = array<f32, GROUP>();
      for (var cc = 0u; cc < D4; cc++) {
        let kv = k_at(row + cc);
        for (var g = 0u; g < GROUP; g++) { s[g] += dot(qs[g * D4 + cc], kv); }
      }
      for (var g = 0u; g < GROUP; g++) {
        sc[g * CHUNK + j] = s[g];
        tm[g] = max(tm[g], s[g]);
      }
    }
    for (var g = 0u; g < GROUP; g++) { red[g * WG + li] = tm[g]; }
    reduce_rows(li, true);
    var m_new: array<f32, GROUP>;
    for (var g = 0u; g < GROUP; g++) { m_new[g] = max(run_m[g], red[g * WG]); }
    workgroupBarrier(); // everyone read the maxima before red is reused
    // 2. Probabilities and their sum.
    var ts = array<f32, GROUP>();
    for (var j = li; j < n; j += WG) {
      for (var g = 0u; g < GROUP; g++) {
        let p = exp2(sc[g * CHUNK + j] - m_new[g]);
        sc[g * CHUNK + j] = p;
        ts[g] += p;
      }
    }
    for (var g = 0u; g < GROUP; g++) { red[g * WG + li] = ts[g]; }
    if (li < GROUP * D4) { po[li] = vec4<f32>(0.0); }
    reduce_rows(li, false);
    // 3. P·V over key lanes, and 4. the running state.
    var pv = array<vec4<f32>, GROUP>();
    for (var j = kl; j < n; j += KL) {
      let vv = v_at((kv_base + t0 + j) * D4 + c);
      for (var g = 0u; g < GROUP; g++) { pv[g] += sc[g * CHUNK + j] * vv; }
    }
    for (var g = 0u; g < GROUP; g++) {
      let a = exp2(run_m[g] - m_new[g]);
      run_l[g] = run_l[g] * a + red[g * WG];
      run_m[g] = m_new[g];
      acc[g] *= a;
    }
    for (var r = 0u; r < KL; r++) {
      if (kl == r) {
        for (var g = 0u; g < GROUP; g++) { po[g * D4 + c] += pv[g]; }
      }
      workgroupBarrier();
    }
    if (kl == 0u) {
      for (var g = 0u; g < GROUP; g++) { acc[g] += po[g * D4 + c]; }
    }
  }
  if (kl == 0u) {
    for (var g = 0u; g < GROUP; g++) { part_o[(z * n_heads + h0 + g) * D4 + c] = acc[g]; }
  }
  if (li < GROUP) { part_ml[z * n_heads + h0 + li] = vec2<f32>(run_m[li], run_l[li]); }
}

var<workgroup> cm: array<f32, WGC>;        // combine: maxima, then sums, per thread
var<workgroup> co: array<vec4<f32>, WGC>;  // combine: weighted outputs per split lane

@compute @workgroup_size(WGC)
fn combine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let h = wid.x;
  let stride = params.n_kv_heads * GROUP;
  let sl = li / D4;
  let c = li % D4;
  var mx = NEG;
  for (var zz = li; zz < params.n_split; zz += WGC) { mx = max(mx, part_ml[zz * stride + h].x); }
  cm[li] = mx;
  workgroupBarrier();
  for (var st = WGC_P2 / 2u; st > 0u; st >>= 1u) {
    if (li < st && li + st < WGC) { cm[li] = max(cm[li], cm[li + st]); }
    workgroupBarrier();
  }
  let m = cm[0];
  workgroupBarrier();
  var l = 0.0;
  var o = vec4<f32>(0.0);
  for (var zz = sl; zz < params.n_split; zz += CL) {
    let ml = part_ml[zz * stride + h];
    let w = exp2(ml.x - m);
    l += ml.y * w;
    o += part_o[(zz * stride + h) * D4 + c] * w;
  }
  cm[li] = l;
  co[li] = o;
  workgroupBarrier();
  // Sum the split lanes: column c's values sit at c, c + D4, ...
  for (var st = CL / 2u; st > 0u; st >>= 1u) {
    if (sl < st && sl + st < CL) {
      cm[li] += cm[li + st * D4];
      co[li] += co[li + st * D4];
    }
    workgroupBarrier();
  }
  if (sl == 0u) {
    let lt = cm[c];
    out[h * D4 + c] = co[c] * select(0.0, 1.0 / lt, lt > 0.0);
  }
}
