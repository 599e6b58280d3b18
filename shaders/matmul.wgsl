// Linear layer: y = x · Wᵀ (+ b), nn.Linear layout.
//
// Bindings
//   x:      [M, K] f32, row-major, read
//   w:      [N, K] weights, row-major, read; f32, or f16 / bf16 packed two per u32 over the flat
//           element index (element 2i in the low half), so a row may start in a high half when K is odd
//   bias:   [N] f32, read (only with HAS_BIAS)
//   y:      [M, N] f32, written (aliases neither input)
//   params: M, N, K (any values >= 1; one pipeline serves every shape)
//
// Defines (chosen by src/kernels/matmul.ts)
//   WDT      weight dtype: 0 f32, 1 f16 (packed), 2 bf16 (packed)
//   HAS_BIAS add bias[n]
//   VEC      1: vector loads; requires K % 4 == 0 (f32 weights) or K % 8 == 0 (packed weights), so
//            every vec4 row chunk lies entirely inside or entirely outside a row. 0: element loads.
//   VARIANT  0 TILED: register-blocked f32 tiles in workgroup memory (fallback everywhere)
//            1 TILED_F16: the same with f16 workgroup tiles (needs shader-f16), f32 accumulation
//            2 SGMATRIX: tensor-core tiles, subgroup_matrix f16 16x16x16, f32 accumulation
//                        (needs chromium_experimental_subgroup_matrix and 32-wide subgroups)
//            3 GEMV: matrix-vector for M <= 8 (decode), bandwidth bound on W; GEMV_WG threads,
//                    GEMV_LANES of them per row of W (32 on GPUs: a workgroup reduction sums them;
//                    1 on software adapters, whose invocations run one after another on CPU threads:
//                    each streams a whole row and no barrier is needed)
//   TILED*, SGMATRIX: BM, BN (workgroup tile), BK (k step), NT (threads per workgroup),
//            PREFETCH (vector loads only: fetch the next k-slice into registers during the current one,
//            two workgroup-memory buffers, one barrier per k-step)
//   TILED*:   TM, TN (per-thread block; multiples of 4); UNROLL (8x8 and 4x4 blocks: inner product written
//            out with constant indices); PROBE_COMPUTE_ONLY (benchmark probe only)
//   SGMATRIX: SG_M, SG_N (subgroups along M, N), SG_COUNT = SG_M*SG_N, SG_TM, SG_TN (16x16 matrices per subgroup);
//            BM = SG_M*SG_TM*16, BN = SG_N*SG_TN*16, BK a multiple of 16; UNROLL (operand loads, multiplies and
//            result stores written out with constant indices by #for, lib/sg_mma.wgsl)
//
// Workgroup contract
//   TILED*:   workgroup (WG_X, WG_Y) = (BN / TN, BM / TM) threads (overrides), grid
//             (ceil(N / BN), ceil(M / BM)); thread (tx, ty) owns rows (i*WG_Y + ty)*4 + {0..3} and
//             columns (j*WG_X + tx)*4 + {0..3} of the tile, which keeps its workgroup-memory reads vec4.
//   SGMATRIX: WG_X = SG_M*SG_N*32 threads (override), grid as above; subgroup s = lidx / 32 owns
//             SG_TM x SG_TN result matrices.
//   GEMV:     GEMV_WG threads (define) = GEMV_ROWS rows of W x GEMV_LANES (define, 32 or 1) lanes; folded 1D grid
//             over ceil(N / GEMV_ROWS) workgroups (lib/grid.wgsl).
//   Ragged edges: every load past M, N or K reads 0, every store is bounds-checked.

#if VARIANT == 2
enable f16;
enable chromium_experimental_subgroup_matrix;
// subgroupMatrixStore wants a uniform offset, but WGSL's analysis is workgroup-scoped and cannot see
// that lidx / 32 is uniform within a subgroup. Dawn's diagnostic for it is
// chromium.subgroup_matrix_uniformity (it ignores other spellings); the offsets here are
// subgroup-uniform by construction.
diagnostic(off, chromium.subgroup_matrix_uniformity);
#elif VARIANT == 1
enable f16;
#endif

#include "lib/packing.wgsl"
#include "lib/grid.wgsl"

override WG_X: u32 = 16;
override WG_Y: u32 = 16;

struct Params {
  M: u32,
  N: u32,
  K: u32,
}

#if VEC
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
#if WDT == 0
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;
#else
@group(0) @binding(1) var<storage, read> w: array<vec4<u32>>;
#endif
#else
@group(0) @binding(0) var<storage, read> x: array<f32>;
#if WDT == 0
@group(0) @binding(1) var<storage, read> w: array<f32>;
#else
@group(0) @binding(1) var<storage, read> w: array<u32>;
#endif
#endif
#ifdef HAS_BIAS
@group(0) @binding(2) var<storage, read> bias: array<f32>;
#endif
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

fn bias_at(n: u32) -> f32 {
#ifdef HAS_BIAS
  return bias[n];
#else
  return 0.0;
#endif
}

#if !VEC
// Weight element at flat index e = n*K + k, widened to f32 (element loads; any K).
fn w_at(e: u32) -> f32 {
#if WDT == 0
  return w[e];
#elif WDT == 1
  return f16_at(w[e >> 1u], e & 1u);
#else
  return bf16_at(w[e >> 1u], e & 1u);
#endif
}
#endif

#if VEC && WDT != 0
// Eight consecutive packed weights (one vec4<u32>) widened to f32: (elements 0..3, elements 4..7).
fn w8_at(i: u32) -> array<vec4<f32>, 2> {
  let q = w[i];
#if WDT == 1
  return array<vec4<f32>, 2>(vec4<f32>(unpack_f16x2(q.x), unpack_f16x2(q.y)), vec4<f32>(unpack_f16x2(q.z), unpack_f16x2(q.w)));
#else
  return array<vec4<f32>, 2>(vec4<f32>(unpack_bf16x2(q.x), unpack_bf16x2(q.y)), vec4<f32>(unpack_bf16x2(q.z), unpack_bf16x2(q.w)));
#endif
}
#endif

// ------------------------------------------------------------------------------------ staging
// Global -> register fetches of one k-slice, shared by the tiled and subgroup-matrix paths
// (vector loads only). A thread fetches chunks lidx, lidx + NT, ... of the slice; with PREFETCH
// the next slice is fetched while the current one is multiplied (register double buffering).
#if (VARIANT == 0 || VARIANT == 1 || VARIANT == 2) && VEC

#if WDT == 0
alias BChunk = vec4<f32>;
const B_ELEMS: u32 = 4u; // weights per chunk: one vec4<f32>
#else
alias BChunk = vec4<u32>;
const B_ELEMS: u32 = 8u; // weights per chunk: one vec4<u32> of packed halves
#endif
const A_CHUNKS: u32 = BM * BK / 4u;
const B_CHUNKS: u32 = BN * BK / B_ELEMS;
const A_PER: u32 = (A_CHUNKS + NT - 1u) / NT;
const B_PER: u32 = (B_CHUNKS + NT - 1u) / NT;

fn fetch_a(m0: u32, k0: u32, lidx: u32) -> array<vec4<f32>, A_PER> {
  var r: array<vec4<f32>, A_PER>;
  for (var p = 0u; p < A_PER; p++) {
    let i = lidx + p * NT;
    let row = i / (BK / 4u);
    let k = k0 + (i % (BK / 4u)) * 4u;
    let m = m0 + row;
    if (i < A_CHUNKS && m < params.M && k < params.K) {
      r[p] = x[(m * params.K + k) / 4u];
    } else {
      r[p] = vec4<f32>(0.0);
    }
  }
  return r;
}

fn fetch_b(n0: u32, k0: u32, lidx: u32) -> array<BChunk, B_PER> {
  var r: array<BChunk, B_PER>;
  for (var p = 0u; p < B_PER; p++) {
    let i = lidx + p * NT;
    let row = i / (BK / B_ELEMS);
    let k = k0 + (i % (BK / B_ELEMS)) * B_ELEMS;
    let n = n0 + row;
    if (i < B_CHUNKS && n < params.N && k < params.K) {
      r[p] = w[(n * params.K + k) / B_ELEMS];
    } else {
      r[p] = BChunk(0);
    }
  }
  return r;
}
#endif

// ------------------------------------------------------------------------------------ TILED
#if VARIANT == 0 || VARIANT == 1

#if VARIANT == 1
alias TileT = vec4<f16>;
#else
alias TileT = vec4<f32>;
#endif

#if VEC && PREFETCH
const NBUF: u32 = 2u;
#else
const NBUF: u32 = 1u;
#endif
const A_TILE: u32 = BK * BM / 4u; // vec4 entries of one A tile
const B_TILE: u32 = BK * BN / 4u;

// Tiles are stored k-major (As[k][m], Bs[k][n]) so that the inner product reads vec4 along m and n.
var<workgroup> As: array<TileT, NBUF * A_TILE>;
var<workgroup> Bs: array<TileT, NBUF * B_TILE>;

fn put_a(buf: u32, k: u32, m: u32, v: f32) {
#if VARIANT == 1
  As[buf * A_TILE + k * (BM / 4u) + m / 4u][m % 4u] = f16(v);
#else
  As[buf * A_TILE + k * (BM / 4u) + m / 4u][m % 4u] = v;
#endif
}

fn put_b(buf: u32, k: u32, n: u32, v: f32) {
#if VARIANT == 1
  Bs[buf * B_TILE + k * (BN / 4u) + n / 4u][n % 4u] = f16(v);
#else
  Bs[buf * B_TILE + k * (BN / 4u) + n / 4u][n % 4u] = v;
#endif
}

#if VEC
fn store_tiles(buf: u32, ra: array<vec4<f32>, A_PER>, rb: array<BChunk, B_PER>, lidx: u32) {
  for (var p = 0u; p < A_PER; p++) {
    let i = lidx + p * NT;
    if (i < A_CHUNKS) {
      let row = i / (BK / 4u);
      let c = (i % (BK / 4u)) * 4u;
      let v = ra[p];
      put_a(buf, c, row, v.x);
      put_a(buf, c + 1u, row, v.y);
      put_a(buf, c + 2u, row, v.z);
      put_a(buf, c + 3u, row, v.w);
    }
  }
  for (var p = 0u; p < B_PER; p++) {
    let i = lidx + p * NT;
    if (i < B_CHUNKS) {
      let row = i / (BK / B_ELEMS);
      let c = (i % (BK / B_ELEMS)) * B_ELEMS;
#if WDT == 0
      let v = rb[p];
      put_b(buf, c, row, v.x);
      put_b(buf, c + 1u, row, v.y);
      put_b(buf, c + 2u, row, v.z);
      put_b(buf, c + 3u, row, v.w);
#else
      let q = rb[p];
#if WDT == 1
      let v = array<vec2<f32>, 4>(unpack_f16x2(q.x), unpack_f16x2(q.y), unpack_f16x2(q.z), unpack_f16x2(q.w));
#else
      let v = array<vec2<f32>, 4>(unpack_bf16x2(q.x), unpack_bf16x2(q.y), unpack_bf16x2(q.z), unpack_bf16x2(q.w));
#endif
      for (var e = 0u; e < 4u; e++) {
        put_b(buf, c + 2u * e, row, v[e].x);
        put_b(buf, c + 2u * e + 1u, row, v[e].y);
      }
#endif
    }
  }
}
#else
// Element loads (any K): the BM x BK slice of x and the BN x BK slice of W at k0, zeros past the edges.
fn load_tiles_elem(m0: u32, n0: u32, k0: u32, lidx: u32) {
  let M = params.M;
  let N = params.N;
  let K = params.K;
  for (var i = lidx; i < BM * BK; i += NT) {
    let r = i / BK;
    let c = i % BK;
    let m = m0 + r;
    let k = k0 + c;
    var v = 0.0;
    if (m < M && k < K) {
      v = x[m * K + k];
    }
    put_a(0u, c, r, v);
  }
  for (var i = lidx; i < BN * BK; i += NT) {
    let r = i / BK;
    let c = i % BK;
    let n = n0 + r;
    let k = k0 + c;
    var v = 0.0;
    if (n < N && k < K) {
      v = w_at(n * K + k);
    }
    put_b(0u, c, r, v);
  }
}
#endif

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) lidx: u32) {
  let M = params.M;
  let N = params.N;
  let K = params.K;
  let n0 = wid.x * BN;
  let m0 = wid.y * BM;
  let tx = lid.x;
  let ty = lid.y;
  // acc[ri * (TN/4) + j] holds row ri (0..TM) of the thread's block, columns j*4..j*4+3.
  var acc: array<vec4<f32>, TM * TN / 4>;
#if VEC && PREFETCH
  var ra = fetch_a(m0, 0u, lidx);
  var rb = fetch_b(n0, 0u, lidx);
  store_tiles(0u, ra, rb, lidx);
  workgroupBarrier();
#endif
  for (var k0 = 0u; k0 < K; k0 += BK) {
#if VEC && PREFETCH
    // One barrier per step: step s reads buffer s % 2 and fills the other, which every thread
    // finished reading before the barrier that ended step s - 1.
    let buf = (k0 / BK) % 2u;
    let more = k0 + BK < K;
    if (more) {
      ra = fetch_a(m0, k0 + BK, lidx);
      rb = fetch_b(n0, k0 + BK, lidx);
    }
#else
    let buf = 0u;
#ifdef PROBE_COMPUTE_ONLY
    // Benchmark probe (bench/suites/matmul.ts only): stage the first slice and reuse it for every
    // k-step, which removes the global loads from the loop and leaves workgroup-memory reads + FMAs.
    if (k0 == 0u) {
#endif
#if VEC
    store_tiles(0u, fetch_a(m0, k0, lidx), fetch_b(n0, k0, lidx), lidx);
#else
    load_tiles_elem(m0, n0, k0, lidx);
#endif
#ifdef PROBE_COMPUTE_ONLY
    }
#endif
    workgroupBarrier();
#endif
    let ab = buf * A_TILE;
    let bb = buf * B_TILE;
    for (var kk = 0u; kk < BK; kk++) {
#if UNROLL && TM == 8 && TN == 8
      // The 8x8 (and below 4x4) block written out: only constant indices into acc, so acc stays in registers
      // even where the compiler does not unroll loops (wgpu/naga bounds every loop with a counter).
      let a0 = vec4<f32>(As[ab + kk * (BM / 4u) + ty]);
      let a1 = vec4<f32>(As[ab + kk * (BM / 4u) + WG_Y + ty]);
      let b0 = vec4<f32>(Bs[bb + kk * (BN / 4u) + tx]);
      let b1 = vec4<f32>(Bs[bb + kk * (BN / 4u) + WG_X + tx]);
      acc[0] = fma(vec4<f32>(a0.x), b0, acc[0]);
      acc[1] = fma(vec4<f32>(a0.x), b1, acc[1]);
      acc[2] = fma(vec4<f32>(a0.y), b0, acc[2]);
      acc[3] = fma(vec4<f32>(a0.y), b1, acc[3]);
      acc[4] = fma(vec4<f32>(a0.z), b0, acc[4]);
      acc[5] = fma(vec4<f32>(a0.z), b1, acc[5]);
      acc[6] = fma(vec4<f32>(a0.w), b0, acc[6]);
      acc[7] = fma(vec4<f32>(a0.w), b1, acc[7]);
      acc[8] = fma(vec4<f32>(a1.x), b0, acc[8]);
      acc[9] = fma(vec4<f32>(a1.x), b1, acc[9]);
      acc[10] = fma(vec4<f32>(a1.y), b0, acc[10]);
      acc[11] = fma(vec4<f32>(a1.y), b1, acc[11]);
      acc[12] = fma(vec4<f32>(a1.z), b0, acc[12]);
      acc[13] = fma(vec4<f32>(a1.z), b1, acc[13]);
      acc[14] = fma(vec4<f32>(a1.w), b0, acc[14]);
      acc[15] = fma(vec4<f32>(a1.w), b1, acc[15]);
#elif UNROLL && TM == 4 && TN == 4
      let a0 = vec4<f32>(As[ab + kk * (BM / 4u) + ty]);
      let b0 = vec4<f32>(Bs[bb + kk * (BN / 4u) + tx]);
      acc[0] = fma(vec4<f32>(a0.x), b0, acc[0]);
      acc[1] = fma(vec4<f32>(a0.y), b0, acc[1]);
      acc[2] = fma(vec4<f32>(a0.z), b0, acc[2]);
      acc[3] = fma(vec4<f32>(a0.w), b0, acc[3]);
#else
      var a: array<vec4<f32>, TM / 4>;
      var b: array<vec4<f32>, TN / 4>;
      for (var i = 0u; i < TM / 4u; i++) {
        a[i] = vec4<f32>(As[ab + kk * (BM / 4u) + i * WG_Y + ty]);
      }
      for (var j = 0u; j < TN / 4u; j++) {
        b[j] = vec4<f32>(Bs[bb + kk * (BN / 4u) + j * WG_X + tx]);
      }
      for (var i = 0u; i < TM / 4u; i++) {
        for (var q = 0u; q < 4u; q++) {
          for (var j = 0u; j < TN / 4u; j++) {
            acc[(i * 4u + q) * (TN / 4u) + j] = fma(vec4<f32>(a[i][q]), b[j], acc[(i * 4u + q) * (TN / 4u) + j]);
          }
        }
      }
#endif
    }
#if VEC && PREFETCH
    if (more) {
      store_tiles(1u - buf, ra, rb, lidx);
    }
#endif
    workgroupBarrier();
  }
  // A copy for the dynamically indexed write-out, so that only the copy (not acc) may need memory.
  let res = acc;
  for (var i = 0u; i < TM / 4u; i++) {
    for (var q = 0u; q < 4u; q++) {
      let m = m0 + (i * WG_Y + ty) * 4u + q;
      if (m >= M) {
        continue;
      }
      for (var j = 0u; j < TN / 4u; j++) {
        let v = res[(i * 4u + q) * (TN / 4u) + j];
        for (var c = 0u; c < 4u; c++) {
          let n = n0 + (j * WG_X + tx) * 4u + c;
          if (n < N) {
            y[m * N + n] = v[c] + bias_at(n);
          }
        }
      }
    }
  }
}
#endif

// ------------------------------------------------------------------------------------ SGMATRIX
#if VARIANT == 2

const SG_SIZE: u32 = 32u; // the select() guard requires subgroup size exactly 32 (NVIDIA)
// Row stride of the staged tiles: BK plus 8 halves (16 bytes) so that consecutive rows start in
// different banks when the tensor-core loads read 16 rows at once.
const SPAD: u32 = BK + 8u;
#if VEC && PREFETCH
const NBUF: u32 = 2u;
#else
const NBUF: u32 = 1u;
#endif

var<workgroup> As: array<f16, NBUF * BM * SPAD>; // [m][k] row-major
var<workgroup> Bs: array<f16, NBUF * BN * SPAD>; // [n][k]: the Wᵀ tile stored column-major
// Matrix types through aliases and a named size: the reflection parser (wgsl_reflect) does not
// know subgroup-matrix types and rejects numeric template arguments on them.
const SGK: u32 = 16u; // the 16x16x16 f16 -> f32 configuration
alias LeftM = subgroup_matrix_left<f16, SGK, SGK>;
alias RightM = subgroup_matrix_right<f16, SGK, SGK>;
alias ResultM = subgroup_matrix_result<f32, SGK, SGK>;
const SG_ACC: u32 = SG_TM * SG_TN;
const CS_LEN: u32 = SG_COUNT * 256u;
var<workgroup> Cs: array<f32, CS_LEN>; // one 16x16 f32 staging block per subgroup
#if UNROLL
#include "lib/sg_mma.wgsl"
#endif

#if VEC
fn store_tiles(buf: u32, ra: array<vec4<f32>, A_PER>, rb: array<BChunk, B_PER>, lidx: u32) {
  for (var p = 0u; p < A_PER; p++) {
    let i = lidx + p * NT;
    if (i < A_CHUNKS) {
      let o = buf * BM * SPAD + (i / (BK / 4u)) * SPAD + (i % (BK / 4u)) * 4u;
      let h = vec4<f16>(ra[p]);
      As[o] = h.x;
      As[o + 1u] = h.y;
      As[o + 2u] = h.z;
      As[o + 3u] = h.w;
    }
  }
  for (var p = 0u; p < B_PER; p++) {
    let i = lidx + p * NT;
    if (i < B_CHUNKS) {
      let o = buf * BN * SPAD + (i / (BK / B_ELEMS)) * SPAD + (i % (BK / B_ELEMS)) * B_ELEMS;
#if WDT == 0
      let h = vec4<f16>(rb[p]);
      Bs[o] = h.x;
      Bs[o + 1u] = h.y;
      Bs[o + 2u] = h.z;
      Bs[o + 3u] = h.w;
#else
      let q = rb[p];
#if WDT == 1
      // f16 bits are used as they are: no conversion.
      let h = array<vec2<f16>, 4>(bitcast<vec2<f16>>(q.x), bitcast<vec2<f16>>(q.y), bitcast<vec2<f16>>(q.z), bitcast<vec2<f16>>(q.w));
#else
      let h = array<vec2<f16>, 4>(vec2<f16>(unpack_bf16x2(q.x)), vec2<f16>(unpack_bf16x2(q.y)), vec2<f16>(unpack_bf16x2(q.z)), vec2<f16>(unpack_bf16x2(q.w)));
#endif
      for (var e = 0u; e < 4u; e++) {
        Bs[o + 2u * e] = h[e].x;
        Bs[o + 2u * e + 1u] = h[e].y;
      }
#endif
    }
  }
}
#else
fn load_tiles_elem(m0: u32, n0: u32, k0: u32, lidx: u32) {
  let M = params.M;
  let N = params.N;
  let K = params.K;
  for (var i = lidx; i < BM * BK; i += NT) {
    let r = i / BK;
    let c = i % BK;
    let m = m0 + r;
    let k = k0 + c;
    var v = 0.0;
    if (m < M && k < K) {
      v = x[m * K + k];
    }
    As[r * SPAD + c] = f16(v);
  }
  for (var i = lidx; i < BN * BK; i += NT) {
    let r = i / BK;
    let c = i % BK;
    let n = n0 + r;
    let k = k0 + c;
    var v = 0.0;
    if (n < N && k < K) {
      v = w_at(n * K + k);
    }
    Bs[r * SPAD + c] = f16(v);
  }
}
#endif

// One 16x16 result block at rows mb.., columns nb.. through the subgroup's own staging area, so
// that ragged edges and the bias are handled by plain bounds-checked stores. Every subgroup calls
// it the same number of times (the barriers).
fn store_result(m: ResultM, mb: u32, nb: u32, sg: u32, lane: u32) {
  subgroupMatrixStore(&Cs, sg * 256u, m, false, 16u);
  workgroupBarrier();
  for (var e = lane; e < 256u; e += SG_SIZE) {
    let r = mb + e / 16u;
    let n = nb + e % 16u;
    if (r < params.M && n < params.N) {
      y[r * params.N + n] = Cs[sg * 256u + e] + bias_at(n);
    }
  }
  workgroupBarrier();
}

@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lidx: u32) {
  let M = params.M;
  let N = params.N;
  let K = params.K;
  let n0 = wid.x * BN;
  let m0 = wid.y * BM;
#if SG_COUNT == 1
  let sg = 0u; // one subgroup: every offset is workgroup-uniform
#else
  let sg = lidx / SG_SIZE;
#endif
  let lane = lidx % SG_SIZE;
  let sm = sg / SG_N; // subgroup row in the workgroup tile
  let sn = sg % SG_N; // subgroup column
  var acc: array<ResultM, SG_ACC>;
#if VEC && PREFETCH
  var ra = fetch_a(m0, 0u, lidx);
  var rb = fetch_b(n0, 0u, lidx);
  store_tiles(0u, ra, rb, lidx);
  workgroupBarrier();
#endif
  for (var k0 = 0u; k0 < K; k0 += BK) {
#if VEC && PREFETCH
    let buf = (k0 / BK) % 2u;
    let more = k0 + BK < K;
    if (more) {
      ra = fetch_a(m0, k0 + BK, lidx);
      rb = fetch_b(n0, k0 + BK, lidx);
    }
#else
    let buf = 0u;
#if VEC
    store_tiles(0u, fetch_a(m0, k0, lidx), fetch_b(n0, k0, lidx), lidx);
#else
    load_tiles_elem(m0, n0, k0, lidx);
#endif
    workgroupBarrier();
#endif
    let ab = buf * BM * SPAD;
    let bb = buf * BN * SPAD;
    for (var kk = 0u; kk < BK; kk += 16u) {
      var a: array<LeftM, SG_TM>;
      var b: array<RightM, SG_TN>;
#if UNROLL
#for I in 0..SG_TM
      a[I] = subgroupMatrixLoad<LeftM>(&As, ab + ((sm * SG_TM + I) * 16u) * SPAD + kk, false, SPAD);
#endfor
#for J in 0..SG_TN
      b[J] = subgroupMatrixLoad<RightM>(&Bs, bb + ((sn * SG_TN + J) * 16u) * SPAD + kk, true, SPAD);
#endfor
      mma_block(&acc, &a, &b);
#else
      for (var i = 0u; i < SG_TM; i++) {
        a[i] = subgroupMatrixLoad<LeftM>(&As, ab + ((sm * SG_TM + i) * 16u) * SPAD + kk, false, SPAD);
      }
      for (var j = 0u; j < SG_TN; j++) {
        b[j] = subgroupMatrixLoad<RightM>(&Bs, bb + ((sn * SG_TN + j) * 16u) * SPAD + kk, true, SPAD);
      }
      for (var i = 0u; i < SG_TM; i++) {
        for (var j = 0u; j < SG_TN; j++) {
          acc[i * SG_TN + j] = subgroupMatrixMultiplyAccumulate(a[i], b[j], acc[i * SG_TN + j]);
        }
      }
#endif
    }
#if VEC && PREFETCH
    if (more) {
      store_tiles(1u - buf, ra, rb, lidx);
    }
#endif
    workgroupBarrier();
  }
#if UNROLL
#for I in 0..SG_TM
#for J in 0..SG_TN
  store_result(acc[I * SG_TN + J], m0 + (sm * SG_TM + I) * 16u, n0 + (sn * SG_TN + J) * 16u, sg, lane);
#endfor
#endfor
#else
  for (var i = 0u; i < SG_TM; i++) {
    for (var j = 0u; j < SG_TN; j++) {
      store_result(acc[i * SG_TN + j], m0 + (sm * SG_TM + i) * 16u, n0 + (sn * SG_TN + j) * 16u, sg, lane);
    }
  }
#endif
}
#endif

// ------------------------------------------------------------------------------------ GEMV
#if VARIANT == 3

// GEMV_LANES lanes per row: with 32, 32 consecutive vec4 loads = 512 contiguous bytes.
const GEMV_MAX_M: u32 = 8u; // rows of x; the accumulation sites below are written out for 8 rows
const GEMV_ROWS: u32 = GEMV_WG / GEMV_LANES;

#if GEMV_LANES > 1
var<workgroup> red: array<f32, GEMV_MAX_M * GEMV_WG>;
#endif

#if VEC && WDT == 0
// Four vec4 chunks of an x row (x vec4 index xb, then + 32, + 64, + 96) times four weight chunks.
fn xdot4x4(xb: u32, w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32>) -> f32 {
  return dot(x[xb], w0) + dot(x[xb + GEMV_LANES], w1) + dot(x[xb + 2u * GEMV_LANES], w2) + dot(x[xb + 3u * GEMV_LANES], w3);
}
#elif VEC
// x row (starting at vec4 index row) times eight weights at chunk c (x elements 8c .. 8c+7).
fn xdot8(row: u32, c: u32, wv: array<vec4<f32>, 2>) -> f32 {
  return dot(x[row + 2u * c], wv[0]) + dot(x[row + 2u * c + 1u], wv[1]);
}

fn xdot8x4(row: u32, c: u32, w0: array<vec4<f32>, 2>, w1: array<vec4<f32>, 2>, w2: array<vec4<f32>, 2>, w3: array<vec4<f32>, 2>) -> f32 {
  return xdot8(row, c, w0) + xdot8(row, c + GEMV_LANES, w1) + xdot8(row, c + 2u * GEMV_LANES, w2) + xdot8(row, c + 3u * GEMV_LANES, w3);
}
#endif

@compute @workgroup_size(GEMV_WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lidx: u32) {
  let M = params.M;
  let N = params.N;
  let K = params.K;
  let r = lidx / GEMV_LANES;
  let lane = lidx % GEMV_LANES;
  let n = linear_workgroup(wid, nwg) * GEMV_ROWS + r;
  // Rows are accumulated with constant indices (8 lines per site, generated): acc stays in
  // registers also where loops are not unrolled (wgpu/naga; see bench/suites/matmul.ts).
  var acc: array<f32, GEMV_MAX_M>;
  if (n < N) {
#if VEC && WDT == 0
    // Four independent 16-byte weight loads per lane per step keep more bytes in flight.
    let kq = K / 4u;
    var c = lane;
    for (; c + 3u * GEMV_LANES < kq; c += 4u * GEMV_LANES) {
      let w0 = w[n * kq + c];
      let w1 = w[n * kq + c + GEMV_LANES];
      let w2 = w[n * kq + c + 2u * GEMV_LANES];
      let w3 = w[n * kq + c + 3u * GEMV_LANES];
      acc[0] += xdot4x4(0u * kq + c, w0, w1, w2, w3);
      if (M > 1u) { acc[1] += xdot4x4(1u * kq + c, w0, w1, w2, w3); }
      if (M > 2u) { acc[2] += xdot4x4(2u * kq + c, w0, w1, w2, w3); }
      if (M > 3u) { acc[3] += xdot4x4(3u * kq + c, w0, w1, w2, w3); }
      if (M > 4u) { acc[4] += xdot4x4(4u * kq + c, w0, w1, w2, w3); }
      if (M > 5u) { acc[5] += xdot4x4(5u * kq + c, w0, w1, w2, w3); }
      if (M > 6u) { acc[6] += xdot4x4(6u * kq + c, w0, w1, w2, w3); }
      if (M > 7u) { acc[7] += xdot4x4(7u * kq + c, w0, w1, w2, w3); }
    }
    for (; c < kq; c += GEMV_LANES) {
      let wv = w[n * kq + c];
      acc[0] += dot(x[0u * kq + c], wv);
      if (M > 1u) { acc[1] += dot(x[1u * kq + c], wv); }
      if (M > 2u) { acc[2] += dot(x[2u * kq + c], wv); }
      if (M > 3u) { acc[3] += dot(x[3u * kq + c], wv); }
      if (M > 4u) { acc[4] += dot(x[4u * kq + c], wv); }
      if (M > 5u) { acc[5] += dot(x[5u * kq + c], wv); }
      if (M > 6u) { acc[6] += dot(x[6u * kq + c], wv); }
      if (M > 7u) { acc[7] += dot(x[7u * kq + c], wv); }
    }
#elif VEC
    let ko = K / 8u;
    let kq = K / 4u;
    var c = lane;
    for (; c + 3u * GEMV_LANES < ko; c += 4u * GEMV_LANES) {
      let w0 = w8_at(n * ko + c);
      let w1 = w8_at(n * ko + c + GEMV_LANES);
      let w2 = w8_at(n * ko + c + 2u * GEMV_LANES);
      let w3 = w8_at(n * ko + c + 3u * GEMV_LANES);
      acc[0] += xdot8x4(0u * kq, c, w0, w1, w2, w3);
      if (M > 1u) { acc[1] += xdot8x4(1u * kq, c, w0, w1, w2, w3); }
      if (M > 2u) { acc[2] += xdot8x4(2u * kq, c, w0, w1, w2, w3); }
      if (M > 3u) { acc[3] += xdot8x4(3u * kq, c, w0, w1, w2, w3); }
      if (M > 4u) { acc[4] += xdot8x4(4u * kq, c, w0, w1, w2, w3); }
      if (M > 5u) { acc[5] += xdot8x4(5u * kq, c, w0, w1, w2, w3); }
      if (M > 6u) { acc[6] += xdot8x4(6u * kq, c, w0, w1, w2, w3); }
      if (M > 7u) { acc[7] += xdot8x4(7u * kq, c, w0, w1, w2, w3); }
    }
    for (; c < ko; c += GEMV_LANES) {
      let wv = w8_at(n * ko + c);
      acc[0] += xdot8(0u * kq, c, wv);
      if (M > 1u) { acc[1] += xdot8(1u * kq, c, wv); }
      if (M > 2u) { acc[2] += xdot8(2u * kq, c, wv); }
      if (M > 3u) { acc[3] += xdot8(3u * kq, c, wv); }
      if (M > 4u) { acc[4] += xdot8(4u * kq, c, wv); }
      if (M > 5u) { acc[5] += xdot8(5u * kq, c, wv); }
      if (M > 6u) { acc[6] += xdot8(6u * kq, c, wv); }
      if (M > 7u) { acc[7] += xdot8(7u * kq, c, wv); }
    }
#else
    for (var k = lane; k < K; k += GEMV_LANES) {
      let wv = w_at(n * K + k);
      acc[0] += x[0u * K + k] * wv;
      if (M > 1u) { acc[1] += x[1u * K + k] * wv; }
      if (M > 2u) { acc[2] += x[2u * K + k] * wv; }
      if (M > 3u) { acc[3] += x[3u * K + k] * wv; }
      if (M > 4u) { acc[4] += x[4u * K + k] * wv; }
      if (M > 5u) { acc[5] += x[5u * K + k] * wv; }
      if (M > 6u) { acc[6] += x[6u * K + k] * wv; }
      if (M > 7u) { acc[7] += x[7u * K + k] * wv; }
    }
#endif
  }
  let accv = acc;
#if GEMV_LANES == 1
  if (n < N) {
    for (var m = 0u; m < GEMV_MAX_M; m++) {
      if (m < M) {
        y[m * N + n] = accv[m] + bias_at(n);
      }
    }
  }
#else
  for (var m = 0u; m < GEMV_MAX_M; m++) {
    red[m * GEMV_WG + lidx] = accv[m];
  }
  workgroupBarrier();
  // Tree reduction over the 32 lanes of each row.
  for (var s = GEMV_LANES / 2u; s > 0u; s >>= 1u) {
    if (lane < s) {
      for (var m = 0u; m < GEMV_MAX_M; m++) {
        red[m * GEMV_WG + lidx] += red[m * GEMV_WG + lidx + s];
      }
    }
    workgroupBarrier();
  }
  if (lane == 0u && n < N) {
    for (var m = 0u; m < GEMV_MAX_M; m++) {
      if (m < M) {
        y[m * N + n] = red[m * GEMV_WG + lidx] + bias_at(n);
      }
    }
  }
#endif
}
#endif
