// Causal flash attention (online softmax, K/V tiles in workgroup memory, never an S x S matrix) for
// the dense, A-shape (StreamingLLM) and sparse-index (Vertical-Slash, Block-Sparse) patterns of
// MInference. One workgroup computes BQ query rows of one query head; it walks a list of key tiles
// (BK keys each) that depends on MODE, with the causal (and A-shape) mask applied per element.
//
// Defines (compile time):
//   HEAD_DIM   64 | 96 | 128
//   MODE       0 dense | 1 stream_llm (A-shape) | 2 sparse index
//   KV_F16     0: k, v are f32 | 1: k, v are packed f16 (two per u32, element 2i in the low half)
//   SPLIT      0 | 1: dense only; the key range is cut into chunks of params.split_len keys along
//              workgroup_id.z and each workgroup writes an unnormalised partial result (flash-decoding),
//              merged by the `combine` entry point
//   BQ, BK     query rows and keys per tile; TX x TY threads (TX divides BK and HEAD_DIM / 4, TY divides BQ)
//   SGMAT      0 | 1: tensor-core tiles (chromium_experimental_subgroup_matrix, f16 16x16x16, f32
//              accumulate; subgroups of 32): BQ = 16 * NSG rows, one 16-row slab per subgroup, BK 32,
//              NT = 32 * NSG threads. q is staged as f16 (pre-scaled); S = Q K^T and O += P V run on
//              subgroup matrices, in one walk over the keys with lazy rescaling: O stays in result
//              matrices, which cannot be scaled per row in registers, so each row keeps a possibly
//              stale max m and P = 2^(S - m) is taken against it (at most 2^RESCALE_ABOVE, well
//              inside f16). Only when some row's tile max passes its m by more than RESCALE_ABOVE do
//              the rows of its subgroup move their m up, and O and l are rescaled through workgroup
//              memory; rows that hold nothing yet take their first max for free. The final O / l uses the
//              same m, so the result is exact. (Before: a second walk computing S twice.) K and V
//              tiles are staged as f16 in workgroup memory (matrix loads straight from the f16 cache
//              measured slower on H100: 6.8 against 8.9 TFLOP/s); Q's matrices stay in registers for
//              the whole walk (BQ = 2 BK: Q is staged through the K/V tiles). Not with SPLIT.
//   RESCALE_STATS 0 | 1 (SGMAT): count key tiles walked and tiles that rescaled in rescale_stats
//              (a measurement build; the atomics cost time)
//   SKIP_FILL, SKIP_S, SKIP_SOFTMAX, SKIP_PV (SGMAT, undefined normally): leave out the K/V staging,
//              S = Q Kᵀ, the softmax (max, rescale decision, P) or O += P V of every key tile. Wrong
//              results: only for timing where a tile's time goes (bench/suites/attention.ts
//              `ablate`), keeping the barriers
//
// Bindings (entry `main`)
//   q:     [H, Tq, D] f32 (as vec4), read; query row t of head h is at position q_pos0 + t
//   k, v:  [Hkv, Scap, D] f32 (as vec4) or packed f16 (as u32), read; rows >= kv_len are never read
//   heads: [n] u32, read; the query heads this dispatch serves (workgroup_id.y indexes it)
//   out:   [H, Tq, D] f32, written only for the listed heads (by `main` when SPLIT=0, else by `combine`)
//   part_o [nsplit, n, Tq, D] f32, part_ml [nsplit, n, Tq, 2] f32 (SPLIT=1: `main` writes the
//          unnormalised output, row max (log2 domain) and row sum of its key chunk)
// Entry `combine` (SPLIT=1): one workgroup of D/4 threads per (listed head, query row); merges the
//   n_split partial states: out = sum_z o_z 2^(m_z - M) / sum_z l_z 2^(m_z - M), M = max_z m_z.
//   rescale_stats [2] atomic u32 (RESCALE_STATS=1): += key tiles walked, += tiles that rescaled O
//   MODE 2 only: block_count [n, QB] u32, block_offset [n, QB, max_blocks] u32,
//                column_count [n, QB] u32, column_index [n, QB, max(max_columns, 1)] u32
//                (src/attention/types.ts SparseIndex; QB = ceil(S / 64); index slot = workgroup_id.y)
// Params: see struct Params (per-call values; one pipeline serves every shape).
// Workgroup contract: TX * TY threads; grid (ceil(Tq / BQ), n, nsplit). Query block order is reversed
// (workgroup 0 takes the last, longest block) so the causal triangle's heavy blocks start first.
//
// Key j is visible to the query at position p iff j <= p, j < kv_len, and (MODE 1) j < n_init or
// p - j < n_local; MODE 2 additionally restricts keys to the listed ranges and columns.
// Softmax is in f32 with exp2: q is pre-scaled by scale * log2(e).
#if SGMAT
enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;
// Subgroup-matrix loads/stores want subgroup-uniform offsets; WGSL's analysis is workgroup-scoped and
// cannot see that li / 32 is uniform within a subgroup (they are by construction). This is the
// diagnostic's name in Dawn (its design document calls it chromium_experimental.*, which Dawn ignores).
diagnostic(off, chromium.subgroup_matrix_uniformity);
// The same holds for the row max / sum exchange between lanes r and r + 16 (subgroupShuffleXor).
diagnostic(off, subgroup_uniformity);
#endif
#if KV_F16
#include "lib/packing.wgsl"
#endif

const D4: u32 = HEAD_DIM / 4u;
// Row stride of the q and k/v tiles in vec4: one vec4 of padding so that threads reading the same
// column of consecutive rows hit different banks.
const QS: u32 = D4 + 1u;
const NT: u32 = TX * TY;
const RS: u32 = BQ / TY; // query rows per thread (rows ty + r * TY)
const KS: u32 = BK / TX; // keys per thread in the score phase (keys tx + c * TX)
const CV: u32 = D4 / TX; // output vec4 columns per thread (columns tx + c * TX)
// Finite stand-in for -inf: masked scores; exp2 of anything this far below a real max is 0.
const NEG: f32 = -3.0e38;
// Scores above this are real (unmasked); a masked score is exactly NEG.
const NEG_HALF: f32 = -1.0e38;
const INVALID: u32 = 0xffffffffu;
// Sparse-index block size (src/attention/types.ts BLOCK).
const IBLOCK: u32 = 64u;
const LOG2E: f32 = 1.4426950408889634;

struct Params {
  tq: u32,          // query rows per head in q and out
  q_pos0: u32,      // position of query row 0
  kv_len: u32,      // valid keys
  scap: u32,        // rows per kv head in k, v
  n_heads: u32,     // H
  n_kv_heads: u32,  // Hkv
  scale: f32,       // 1 / sqrt(D)
  n_init: u32,      // MODE 1: sink keys
  n_local: u32,     // MODE 1: local window
  qblocks: u32,     // MODE 2: index query blocks
  max_blocks: u32,  // MODE 2: index capacity
  max_columns: u32, // MODE 2: index capacity (>= 1 in the layout)
  split_len: u32,   // SPLIT: keys per split (multiple of BK)
  n_list: u32,      // heads in the list
  n_split: u32,     // SPLIT: number of key splits (entry `combine`)
}

@group(0) @binding(0) var<storage, read> q: array<vec4<f32>>;
#if KV_F16
@group(0) @binding(1) var<storage, read> k: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read> v: array<vec2<u32>>;
#else
@group(0) @binding(1) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> v: array<vec4<f32>>;
#endif
@group(0) @binding(3) var<storage, read> heads: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;
#if SPLIT
@group(0) @binding(11) var<storage, read_write> part_o: array<vec4<f32>>;
@group(0) @binding(12) var<storage, read_write> part_ml: array<vec2<f32>>;
#include "lib/split_merge.wgsl"
#endif
@group(0) @binding(6) var<uniform> params: Params;
#if RESCALE_STATS
@group(0) @binding(14) var<storage, read_write> rescale_stats: array<atomic<u32>, 2>;
#endif
#if MODE == 2
@group(0) @binding(7) var<storage, read> block_count: array<u32>;
@group(0) @binding(8) var<storage, read> block_offset: array<u32>;
@group(0) @binding(9) var<storage, read> column_count: array<u32>;
@group(0) @binding(10) var<storage, read> column_index: array<u32>;
#endif

#if SGMAT
// Row stride in halves: D plus 8 halves (16 bytes) so that the 16 rows a matrix load reads start in
// different banks.
const QP: u32 = HEAD_DIM + 8u;
const SGK: u32 = 16u; // the 16x16x16 f16 -> f32 configuration
// Aliases and a named size: the reflection parser (wgsl_reflect) does not know subgroup-matrix types.
alias LeftM = subgroup_matrix_left<f16, SGK, SGK>;
alias RightM = subgroup_matrix_right<f16, SGK, SGK>;
alias ResultM = subgroup_matrix_result<f32, SGK, SGK>;
const DB: u32 = HEAD_DIM / 16u; // 16-wide column blocks of D
// Q is staged once through k_h (rows 0..BK-1) and v_h (rows BK..2BK-1) into each subgroup's
// registers, so that it takes no workgroup memory of its own (more workgroups fit on a core).
const_assert BQ == 2u * BK;
var<workgroup> k_h: array<f16, BK * QP>;
var<workgroup> v_h: array<f16, BK * QP>;
var<workgroup> s_f: array<f32, BQ * BK>; // scores per subgroup slab [16][BK]; also O staging
var<workgroup> p_h: array<f16, BQ * BK>; // probabilities per slab [16][BK]
var<private> sg: u32;   // subgroup index (li / 32)
var<private> lane: u32; // li % 32; lanes r and r + 16 share row sg * 16 + r in the softmax
// Subgroup matrices may live in function scope only: main holds them and passes them down. Every
// access to them uses a constant index (the DB blocks are written out by #for): indexed by loop counters,
// NVIDIA's compiler kept such arrays in local memory (bench suite mma: 4x4 accumulators multiplied
// in loops ran at 37 TFLOP/s, written out at 587, H200).
const_assert DB <= 8u && BK == 32u;
struct Regs {
  o: array<ResultM, DB>, // O accumulators of this subgroup's 16 rows
  q: array<LeftM, DB>,   // its Q rows (pre-scaled, f16), loaded once before the walk
}
var<private> m_sg: f32; // this lane's row: the max P is taken against (possibly stale, see SGMAT)
var<private> l_sg: f32;
const NSG: u32 = BQ / 16u;
// How far (log2 domain) a row's tile max may pass its stale max before O is rescaled: P stays
// below 2^8 = 256, far from f16's 65504, and on causal rows the max seldom grows that much after
// the first tiles.
const RESCALE_ABOVE: f32 = 8.0;
var<workgroup> grow: array<u32, NSG>; // per subgroup: some row of it needs a rescale this tile
#else
var<workgroup> q_s: array<vec4<f32>, BQ * QS>;
var<workgroup> kv_s: array<vec4<f32>, BK * QS>;
var<workgroup> p_s: array<f32, BQ * BK>;
var<workgroup> pm_s: array<f32, BQ * TX>;
#endif
var<workgroup> key_s: array<u32, BK>;

#if !SGMAT
alias Regs = array<f32, 1>; // unused by the f32 path (the walkers share one signature)
var<private> o_acc: array<vec4<f32>, RS * CV>;
var<private> m_row: array<f32, RS>;
var<private> l_row: array<f32, RS>;
#endif
var<private> tx: u32;
var<private> ty: u32;
var<private> lid: u32;
var<private> kv_base: u32; // first row of this kv head in k, v
var<private> pos0: u32;    // position of the tile's query row 0
var<private> rows: u32;    // valid query rows in this tile

fn load_kv(is_v: bool, row: u32, c: u32) -> vec4<f32> {
  let i = (kv_base + row) * D4 + c;
#if KV_F16
  var w: vec2<u32>;
  if (is_v) { w = v[i]; } else { w = k[i]; }
  return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
#else
  if (is_v) { return v[i]; }
  return k[i];
#endif
}

fn visible(p: u32, j: u32) -> bool {
  var ok = j <= p && j < params.kv_len;
#if MODE == 1
  ok = ok && (j < params.n_init || p - j < params.n_local);
#endif
  return ok;
}

#if SGMAT
// Stages the K and V rows of the keys in key_s as f16; invalid keys give zeros. Each thread takes
// FILL_N groups of 4 elements (i = lid + n NT), written out by #for: all its loads are issued before
// the first store, so the tile waits for global memory once, not FILL_N times (as a loop over i
// with a load and its stores per step did: the staging took over half the kernel's time; bench
// attention `ablate`). An invalid key reads row 0 and selects zeros, so that no load hides in a branch.
const FILL_N: u32 = BK * D4 / NT;
const_assert BK * D4 == FILL_N * NT;
fn fill_kv_h() {
  var kg: array<vec4<f16>, FILL_N>;
  var vg: array<vec4<f16>, FILL_N>;
#for N in 0..BK * HEAD_DIM / (4 * TX * TY)
  {
    let i = lid + N * NT;
    let key = key_s[i / D4];
    let ok = key < params.kv_len;
    let row = select(0u, key, ok);
    let c = i % D4;
#if KV_F16
    let g = (kv_base + row) * D4 + c;
    let kw = k[g];
    let vw = v[g];
    kg[N] = select(vec4<f16>(0.0), vec4<f16>(bitcast<vec2<f16>>(kw.x), bitcast<vec2<f16>>(kw.y)), ok);
    vg[N] = select(vec4<f16>(0.0), vec4<f16>(bitcast<vec2<f16>>(vw.x), bitcast<vec2<f16>>(vw.y)), ok);
#else
    kg[N] = select(vec4<f16>(0.0), vec4<f16>(load_kv(false, row, c)), ok);
    vg[N] = select(vec4<f16>(0.0), vec4<f16>(load_kv(true, row, c)), ok);
#endif
  }
#endfor
#for N in 0..BK * HEAD_DIM / (4 * TX * TY)
  {
    let i = lid + N * NT;
    let o = (i / D4) * QP + (i % D4) * 4u;
    k_h[o] = kg[N].x;
    k_h[o + 1u] = kg[N].y;
    k_h[o + 2u] = kg[N].z;
    k_h[o + 3u] = kg[N].w;
    v_h[o] = vg[N].x;
    v_h[o + 1u] = vg[N].y;
    v_h[o + 2u] = vg[N].z;
    v_h[o + 3u] = vg[N].w;
  }
#endfor
}

// Writes one 16x16 O block of subgroup sgi (columns 16 cb .. 16 cb + 15 of its rows): staged in the
// subgroup's slab of s_f, then lanes 0..15 (live) write their row's 4 vec4, scaled by inv = 1 / l.
// Every thread calls it (barriers).
fn write_o(sgi: u32, m: ResultM, live: bool, orow: u32, inv: f32) {
  subgroupMatrixStore(&s_f, sgi * 16u * BK, m, false, 16u);
  workgroupBarrier();
  if (live) {
    for (var c = 0u; c < 4u; c++) {
      let o = sgi * 16u * BK + lane * 16u + c * 4u;
      out[orow + c] = vec4<f32>(s_f[o], s_f[o + 1u], s_f[o + 2u], s_f[o + 3u]) * inv;
    }
  }
  workgroupBarrier();
}

// One key tile on tensor cores (keys already in key_s, then a barrier): S = Q Kᵀ, each row's tile
// max, the rescale decision, P = 2^(S - m) and O += P V. Each row's keys are split
// between lanes r and r + 16 of its subgroup.
fn tile(sgi: u32, regs: ptr<function, Regs>) {
#ifndef SKIP_FILL
  fill_kv_h();
#endif
  workgroupBarrier();
  // S = Q Kᵀ for the tile's two 16-key halves, written out over the DB column blocks of D (see Regs).
  var s0 = ResultM(0.0);
  var s1 = ResultM(0.0);
#ifndef SKIP_S
#for B in 0..HEAD_DIM / 16
  s0 = subgroupMatrixMultiplyAccumulate((*regs).q[B], subgroupMatrixLoad<RightM>(&k_h, B * 16u, true, QP), s0);
  s1 = subgroupMatrixMultiplyAccumulate((*regs).q[B], subgroupMatrixLoad<RightM>(&k_h, 16u * QP + B * 16u, true, QP), s1);
#endfor
#endif
  subgroupMatrixStore(&s_f, sgi * 16u * BK, s0, false, BK);
  subgroupMatrixStore(&s_f, sgi * 16u * BK + 16u, s1, false, BK);
  workgroupBarrier();
#ifdef SKIP_SOFTMAX
  workgroupBarrier();
#else
  let row = sg * 16u + (lane & 15u);
  let p = pos0 + row;
  let j0 = (lane >> 4u) * (BK / 2u);
  // Lane r (and r + 16) visits its 16 keys starting at its own offset: at each step the 32 lanes read
  // 32 different banks of s_f (in key order, the 16 rows' reads of one key, BK words apart, all hit
  // one bank: this loop and the next took half the kernel's time; bench attention `ablate`).
  // The lane's 16 scores (masked to NEG) stay in registers for both loops, written out by #for so
  // that the array is indexed by constants.
  var mx = NEG;
  var sv: array<f32, BK / 2u>;
#for T in 0..BK / 2
  {
    let j = j0 + ((T + lane) & 15u);
    let key = key_s[j];
    sv[T] = select(NEG, s_f[row * BK + j], row < rows && key != INVALID && visible(p, key));
    mx = max(mx, sv[T]);
  }
#endfor
  mx = max(mx, subgroupShuffleXor(mx, 16u));
  // Each subgroup decides for its rows: when one of them passes its stale max by more than
  // RESCALE_ABOVE, all of them move their max up (O is rescaled below). Rows holding nothing yet
  // (l = 0, so O = 0) take the tile's max at once.
  let stale = l_sg > 0.0 && mx > m_sg + RESCALE_ABOVE;
  let mine = subgroupAny(stale);
  let m_old = m_sg;
  if (mine || l_sg == 0.0) { m_sg = max(m_sg, mx); }
  let alpha = exp2(m_old - m_sg);
  var lsum = 0.0;
#for T in 0..BK / 2
  {
    let pv = select(0.0, exp2(sv[T] - m_sg), sv[T] > NEG_HALF);
    lsum += pv;
    p_h[row * BK + j0 + ((T + lane) & 15u)] = f16(pv);
  }
#endfor
  l_sg = l_sg * alpha + lsum + subgroupShuffleXor(lsum, 16u);
  // The barrier after P also makes the decision the workgroup's (the rescale's barriers need uniform
  // control flow): rescale when any subgroup decided to; the others' alpha is 1 (or 0 on rows whose
  // O is still 0).
  if (lane == 0u) { grow[sgi] = select(0u, 1u, mine); }
  let grows = workgroupUniformLoad(&grow);
  var fire = false;
  for (var i = 0u; i < NSG; i++) { fire = fire || grows[i] != 0u; }
#if RESCALE_STATS
  if (lid == 0u) {
    atomicAdd(&rescale_stats[0], 1u);
    if (fire) { atomicAdd(&rescale_stats[1], 1u); }
  }
#endif
  if (fire) {
    // O *= alpha per row, through this subgroup's slab of s_f (its scores are consumed): lanes r and
    // r + 16 scale half of row r each.
    let slab = sgi * 16u * BK;
    let c0 = (lane >> 4u) * 8u;
    let r16 = (lane & 15u) * 16u;
#for B in 0..HEAD_DIM / 16
    subgroupMatrixStore(&s_f, slab, (*regs).o[B], false, 16u);
    workgroupBarrier();
    for (var c = c0; c < c0 + 8u; c++) { s_f[slab + r16 + c] *= alpha; }
    workgroupBarrier();
    (*regs).o[B] = subgroupMatrixLoad<ResultM>(&s_f, slab, false, 16u);
#endfor
  }
#endif
#ifndef SKIP_PV
  for (var kk = 0u; kk < BK; kk += 16u) {
    let a = subgroupMatrixLoad<LeftM>(&p_h, sgi * 16u * BK + kk, false, BK);
#for B in 0..HEAD_DIM / 16
    (*regs).o[B] = subgroupMatrixMultiplyAccumulate(a, subgroupMatrixLoad<RightM>(&v_h, kk * QP + B * 16u, false, QP), (*regs).o[B]);
#endfor
  }
#endif
  workgroupBarrier();
}

#else
// Fills kv_s with K (is_v false) or V rows of the keys in key_s; invalid keys give zeros.
fn fill_kv(is_v: bool) {
  for (var i = lid; i < BK * D4; i += NT) {
    let jj = i / D4;
    let c = i - jj * D4;
    let key = key_s[jj];
    var val = vec4<f32>(0.0);
    if (key < params.kv_len) { val = load_kv(is_v, key, c); }
    kv_s[jj * QS + c] = val;
  }
}

// One key tile: the keys are already in key_s (set by the caller, then a barrier). Must be called
// in uniform control flow. (sgi, regs: the tensor-core tile's arguments.)
fn tile(sgi: u32, regs: ptr<function, Regs>) {
#if RESCALE_STATS
  // Tiles only: this path rescales in registers at every tile. (Counting here also keeps the binding
  // in this variant's reflection, which the tensor-core variant's layout is taken from.)
  if (lid == 0u) { atomicAdd(&rescale_stats[0], 1u); }
#endif
  fill_kv(false);
  workgroupBarrier();
  // Scores s[r][c] = q_row . k_key (q pre-scaled), masked to NEG.
  var s: array<f32, RS * KS>;
  for (var r = 0u; r < RS; r++) {
    for (var c = 0u; c < KS; c++) { s[r * KS + c] = 0.0; }
  }
  // Threads whose rows are all past the valid rows (decode: Tq = 1) skip the products.
  let live = ty < rows;
  if (live) {
    for (var d = 0u; d < D4; d++) {
      var kk: array<vec4<f32>, KS>;
      for (var c = 0u; c < KS; c++) { kk[c] = kv_s[(tx + c * TX) * QS + d]; }
      for (var r = 0u; r < RS; r++) {
        let qq = q_s[(ty + r * TY) * QS + d];
        for (var c = 0u; c < KS; c++) { s[r * KS + c] += dot(qq, kk[c]); }
      }
    }
  }
  for (var r = 0u; r < RS; r++) {
    let row = ty + r * TY;
    let p = pos0 + row;
    var mx = NEG;
    for (var c = 0u; c < KS; c++) {
      let key = key_s[tx + c * TX];
      let ok = row < rows && key != INVALID && visible(p, key);
      let val = select(NEG, s[r * KS + c], ok);
      s[r * KS + c] = val;
      mx = max(mx, val);
    }
    pm_s[row * TX + tx] = mx;
  }
  workgroupBarrier();
  // Every thread is past its score phase: kv_s can take V.
  fill_kv(true);
  for (var r = 0u; r < RS; r++) {
    let row = ty + r * TY;
    var mx = m_row[r];
    for (var t = 0u; t < TX; t++) { mx = max(mx, pm_s[row * TX + t]); }
    let alpha = exp2(m_row[r] - mx);
    m_row[r] = mx;
    var lsum = l_row[r] * alpha;
    for (var c = 0u; c < CV; c++) { o_acc[r * CV + c] *= alpha; }
    for (var c = 0u; c < KS; c++) {
      let sv = s[r * KS + c];
      let pv = select(0.0, exp2(sv - mx), sv > NEG_HALF);
      lsum += pv;
      p_s[row * BK + tx + c * TX] = pv;
    }
    l_row[r] = lsum;
  }
  workgroupBarrier();
  for (var j = 0u; j < select(0u, BK, live); j++) {
    var vv: array<vec4<f32>, CV>;
    for (var c = 0u; c < CV; c++) { vv[c] = kv_s[j * QS + tx + c * TX]; }
    for (var r = 0u; r < RS; r++) {
      let pv = p_s[(ty + r * TY) * BK + j];
      for (var c = 0u; c < CV; c++) { o_acc[r * CV + c] += pv * vv[c]; }
    }
  }
  workgroupBarrier();
}

#endif

// A tile of BK consecutive keys from `start` (any alignment).
fn range_tile(start: u32, sgi: u32, regs: ptr<function, Regs>) {
  if (lid < BK) { key_s[lid] = start + lid; }
  workgroupBarrier();
  tile(sgi, regs);
}

// Tiles over keys [lo, hi) starting at lo.
fn range_tiles(lo: u32, hi: u32, sgi: u32, regs: ptr<function, Regs>) {
  for (var kt = lo; kt < hi; kt += BK) { range_tile(kt, sgi, regs); }
}

// The key tiles of this workgroup's query rows (all arguments workgroup-uniform).
// sgi: subgroup index (li / 32, subgroup-uniform; passed down from the builtin as the matrix
// offsets need, not read from a private variable, which the compiler rejects).
fn walk(y: u32, q0: u32, pos0_u: u32, kend: u32, zsplit: u32, sgi: u32, regs: ptr<function, Regs>) {
#if MODE == 0
#if SPLIT
  let klo = zsplit * params.split_len;
  let khi = min(kend, klo + params.split_len);
  range_tiles(klo, khi, sgi, regs);
#else
  range_tiles(0u, kend, sgi, regs);
#endif
#elif MODE == 1
  // Sink [0, n_init) and local window [pos0 + 1 - n_local, kend); tiles of the window that the sink
  // tiles already covered are skipped.
  let sink_end = min(params.n_init, kend);
  let sink_tiles_end = ((sink_end + BK - 1u) / BK) * BK;
  range_tiles(0u, sink_end, sgi, regs);
  var win_lo = 0u;
  if (pos0_u + 1u > params.n_local) { win_lo = pos0_u + 1u - params.n_local; }
  range_tiles(max(win_lo, sink_tiles_end), kend, sgi, regs);
#else
  // The index is read by every invocation at the same (workgroup-uniform) address: read-only
  // storage, so the values are uniform to WGSL and to the driver alike. (Broadcasting them through
  // workgroup memory instead made the tensor-core tiles inside these loops wrong on H100.)
  let slot = y * params.qblocks + q0 / IBLOCK;
  let nb = block_count[slot];
  for (var b = 0u; b < nb; b++) {
    let off = block_offset[slot * params.max_blocks + b];
    // A range tile whose first key is past the last visible key is skipped (uniform: off is).
    for (var t = 0u; t < IBLOCK; t += BK) {
      if (off + t < kend) { range_tile(off + t, sgi, regs); }
    }
  }
  let ncol = column_count[slot];
  let cbase = slot * params.max_columns;
  for (var t = 0u; t < ncol; t += BK) {
    if (lid < BK) {
      var key = INVALID;
      if (t + lid < ncol) { key = column_index[cbase + t + lid]; }
      key_s[lid] = key;
    }
    workgroupBarrier();
    tile(sgi, regs);
  }
#endif
}

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  lid = li;
  tx = li % TX;
  ty = li / TX;
  let y = wid.y;
  let h = heads[y];
  let hk = h * params.n_kv_heads / params.n_heads;
  kv_base = hk * params.scap;
  let qb = nwg.x - 1u - wid.x;
  let q0 = qb * BQ;
  // Locals (not the private copies) feed the loop bounds: they must stay workgroup-uniform.
  let rows_u = min(BQ, params.tq - q0);
  let pos0_u = params.q_pos0 + q0;
  rows = rows_u;
  pos0 = pos0_u;
  let qscale = params.scale * LOG2E;
  // Keys beyond the last query row's position, or beyond kv_len, are never visible.
  let kend = min(pos0_u + rows_u, params.kv_len);
#if SGMAT
  sg = li / 32u;
  lane = li % 32u;
  for (var i = li; i < BQ * D4; i += NT) {
    let r = i / D4;
    let c = i - r * D4;
    var val = vec4<f32>(0.0);
    if (r < rows_u) { val = q[(h * params.tq + q0 + r) * D4 + c] * qscale; }
    let hv = vec4<f16>(val);
    for (var e = 0u; e < 4u; e++) {
      if (r < BK) { k_h[r * QP + c * 4u + e] = hv[e]; } else { v_h[(r - BK) * QP + c * 4u + e] = hv[e]; }
    }
  }
  m_sg = NEG;
  l_sg = 0.0;
  var regs: Regs;
#for B in 0..HEAD_DIM / 16
  regs.o[B] = ResultM(0.0);
#endfor
  let sgi = li / 32u;
  workgroupBarrier();
  // (A branch per subgroup: uniform within each, as the matrix loads need.)
  if (sgi * 16u < BK) {
    let qb = sgi * 16u * QP;
#for B in 0..HEAD_DIM / 16
    regs.q[B] = subgroupMatrixLoad<LeftM>(&k_h, qb + B * 16u, false, QP);
#endfor
  } else {
    let qb = (sgi * 16u - BK) * QP;
#for B in 0..HEAD_DIM / 16
    regs.q[B] = subgroupMatrixLoad<LeftM>(&v_h, qb + B * 16u, false, QP);
#endfor
  }
  walk(y, q0, pos0_u, kend, wid.z, sgi, &regs);
  // O: stage each 16x16 result block of this subgroup's slab; lanes 0..15 write their row / l.
  let inv = select(0.0, 1.0 / l_sg, l_sg > 0.0);
  let row = sg * 16u + lane;
  let orow = (h * params.tq + q0 + row) * D4;
  let live = lane < 16u && row < rows_u;
#for B in 0..HEAD_DIM / 16
  write_o(sgi, regs.o[B], live, orow + B * 4u, inv);
#endfor
#else
  for (var i = li; i < BQ * D4; i += NT) {
    let r = i / D4;
    let c = i - r * D4;
    var val = vec4<f32>(0.0);
    if (r < rows_u) { val = q[(h * params.tq + q0 + r) * D4 + c] * qscale; }
    q_s[r * QS + c] = val;
  }
  for (var r = 0u; r < RS; r++) {
    m_row[r] = NEG;
    l_row[r] = 0.0;
    for (var c = 0u; c < CV; c++) { o_acc[r * CV + c] = vec4<f32>(0.0); }
  }
  var unused: Regs;
  walk(y, q0, pos0_u, kend, wid.z, 0u, &unused);

  // Row sums: each thread holds the part of l over its own keys; add the TX parts.
  for (var r = 0u; r < RS; r++) { pm_s[(ty + r * TY) * TX + tx] = l_row[r]; }
  workgroupBarrier();
  for (var r = 0u; r < RS; r++) {
    let row = ty + r * TY;
    if (row >= rows) { continue; }
    var l = 0.0;
    for (var t = 0u; t < TX; t++) { l += pm_s[row * TX + t]; }
#if SPLIT
    let prow = (wid.z * params.n_list + y) * params.tq + q0 + row;
    for (var c = 0u; c < CV; c++) { part_o[prow * D4 + tx + c * TX] = o_acc[r * CV + c]; }
    if (tx == 0u) { part_ml[prow] = vec2<f32>(m_row[r], l); }
#else
    let inv = select(0.0, 1.0 / l, l > 0.0);
    let orow = (h * params.tq + q0 + row) * D4;
    for (var c = 0u; c < CV; c++) { out[orow + tx + c * TX] = o_acc[r * CV + c] * inv; }
#endif
  }
#endif
}

#if SPLIT
@compute @workgroup_size(D4)
fn combine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let rowid = wid.x; // y * tq + t
  let y = rowid / params.tq;
  let t = rowid - y * params.tq;
  let h = heads[y];
  out[(h * params.tq + t) * D4 + li] = merge_splits(rowid, params.n_list * params.tq, params.n_split, li);
}
#endif

#if MODE == 2
// Entry `count_entries`: causal entries (j <= i, j < S) the index covers, per (slot, query block),
// for the density report. One thread per (slot, block); grid folded in (x, y) of 64-thread groups.
// Binding counts: [n, QB] u32, written. S is params.kv_len.
@group(0) @binding(13) var<storage, read_write> counts: array<u32>;

// Rows of [r0, r1) at or after key j: the causal entries of column j inside the block.
fn rows_from(j: u32, r0: u32, r1: u32) -> u32 {
  let lo = max(r0, j);
  return select(0u, r1 - lo, lo < r1);
}

@compute @workgroup_size(64)
fn count_entries(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = (wid.x + wid.y * nwg.x) * 64u + li;
  if (i >= params.n_list * params.qblocks) { return; }
  let b = i % params.qblocks;
  let r0 = b * IBLOCK;
  let r1 = min(params.kv_len, r0 + IBLOCK);
  var n = 0u;
  let nb = block_count[i];
  for (var x = 0u; x < nb; x++) {
    let off = block_offset[i * params.max_blocks + x];
    let hi = min(off + IBLOCK, params.kv_len);
    for (var j = off; j < hi; j++) { n += rows_from(j, r0, r1); }
  }
  let nc = column_count[i];
  for (var x = 0u; x < nc; x++) {
    let j = column_index[i * params.max_columns + x];
    if (j < params.kv_len) { n += rows_from(j, r0, r1); }
  }
  counts[i] = n;
}
#endif
