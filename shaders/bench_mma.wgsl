// Tensor-core throughput probe for the benchmarks (bench/suites/mma.ts): how many f16 16x16x16
// subgroup-matrix multiply-accumulates per second WGSL reaches on this device, with no global
// memory traffic in the loop. It bounds what any subgroup-matrix matmul or attention kernel can do
// here, and separates the cost of the multiplies from the cost of feeding them from workgroup memory.
//
// Every subgroup owns NA x NB result matrices (as a matmul tile's subgroup does). A workgroup stages
// one tile of (NA + NB) * 16 rows x BK halves from `src` (f32 -> f16) into workgroup memory, rows
// 0 .. NA*16 - 1 are the left matrices [m][k], the rest the right ones stored [n][k] (column-major),
// as matmul.wgsl stages A and Wᵀ. Then, `iters` times:
//   SOURCE 0 (registers): the left and right matrices of k-block 0 are loaded once, before the loop;
//            each iteration is NA*NB multiply-accumulates on registers alone.
//   SOURCE 1 (workgroup memory): each iteration walks the BK / 16 k-blocks, loading NA left and NB
//            right matrices from the staged tile per k-block (matmul.wgsl's inner loop without its
//            global loads and barriers).
// Result: acc(i, j) = iters * sum over the k-blocks used of L_i(kb) * R_j(kb), stored row-major per
// subgroup to dst[((wg * SGS + sg) * NA * NB + i * NB + j) * 256 ..]: exact for small integer inputs,
// which the kernel case (test/cases/bench_mma.ts) checks.
//
// Defines: NA, NB (matrices per subgroup), BK (staged k width, a multiple of 16), SOURCE (0, 1),
// REFLECT (1: the bindings alone with a plain entry point, for wgsl_reflect, which cannot parse
// subgroup-matrix types). Override: SGS (subgroups per workgroup; workgroup size SGS * 32).
// Bindings: src (NA + NB) * 16 * BK f32, dst f32 (written), params { iters }.
// Workgroup contract: 32-wide subgroups (the caller checks), any 1D grid.
#if !REFLECT
enable f16;
enable chromium_experimental_subgroup_matrix;
// Offsets derive from lidx / 32, uniform within a subgroup by construction (see matmul.wgsl).
diagnostic(off, chromium.subgroup_matrix_uniformity);
#endif

override SGS: u32 = 4;

struct Params {
  iters: u32,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

#if REFLECT
@compute @workgroup_size(32)
fn main(@builtin(local_invocation_index) li: u32) {
  dst[li] = src[li] * f32(params.iters);
}
#else
const SGK: u32 = 16u;
alias LeftM = subgroup_matrix_left<f16, SGK, SGK>;
alias RightM = subgroup_matrix_right<f16, SGK, SGK>;
alias ResultM = subgroup_matrix_result<f32, SGK, SGK>;
// Row stride with 8 halves of padding, as matmul.wgsl's staged tiles.
const SPAD: u32 = BK + 8u;
const ROWS: u32 = (NA + NB) * 16u;
var<workgroup> tile: array<f16, ROWS * SPAD>;

@compute @workgroup_size(SGS * 32)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lidx: u32) {
  for (var e = lidx; e < ROWS * BK; e += SGS * 32u) {
    tile[(e / BK) * SPAD + e % BK] = f16(src[e]);
  }
  workgroupBarrier();
  let sg = lidx / 32u;
  var acc: array<ResultM, NA * NB>;
#if SOURCE == 0
  var a: array<LeftM, NA>;
  var b: array<RightM, NB>;
  for (var i = 0u; i < NA; i++) { a[i] = subgroupMatrixLoad<LeftM>(&tile, i * 16u * SPAD, false, SPAD); }
  for (var j = 0u; j < NB; j++) { b[j] = subgroupMatrixLoad<RightM>(&tile, (NA + j) * 16u * SPAD, true, SPAD); }
  for (var it = 0u; it < params.iters; it++) {
    for (var i = 0u; i < NA; i++) {
      for (var j = 0u; j < NB; j++) {
        acc[i * NB + j] = subgroupMatrixMultiplyAccumulate(a[i], b[j], acc[i * NB + j]);
      }
    }
  }
#else
  for (var it = 0u; it < params.iters; it++) {
    for (var kk = 0u; kk < BK; kk += 16u) {
      var a: array<LeftM, NA>;
      var b: array<RightM, NB>;
      for (var i = 0u; i < NA; i++) { a[i] = subgroupMatrixLoad<LeftM>(&tile, i * 16u * SPAD + kk, false, SPAD); }
      for (var j = 0u; j < NB; j++) { b[j] = subgroupMatrixLoad<RightM>(&tile, (NA + j) * 16u * SPAD + kk, true, SPAD); }
      for (var i = 0u; i < NA; i++) {
        for (var j = 0u; j < NB; j++) {
          acc[i * NB + j] = subgroupMatrixMultiplyAccumulate(a[i], b[j], acc[i * NB + j]);
        }
      }
    }
  }
#endif
  let base = (wid.x * SGS + sg) * NA * NB * 256u;
  for (var r = 0u; r < NA * NB; r++) {
    subgroupMatrixStore(&dst, base + r * 256u, acc[r], false, 16u);
  }
}
#endif
