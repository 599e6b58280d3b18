// Tensor-core throughput probe for the benchmarks (bench/suites/mma.ts): how many f16 16x16x16
// subgroup-matrix multiply-accumulates per second WGSL reaches on this device, with no global
// memory traffic in the loop. It bounds what any subgroup-matrix matmul or attention kernel can do
// here, and separates the cost of the multiplies from the cost of feeding them from workgroup memory.
//
// Every subgroup owns SG_TM x SG_TN result matrices (as a matmul tile's subgroup does). A workgroup stages
// one tile of (SG_TM + SG_TN) * 16 rows x BK halves from `src` (f32 -> f16) into workgroup memory, rows
// 0 .. SG_TM*16 - 1 are the left matrices [m][k], the rest the right ones stored [n][k] (column-major),
// as matmul.wgsl stages A and Wᵀ. Then, `iters` times:
//   SOURCE 0 (registers): the left and right matrices of k-block 0 are loaded once, before the loop;
//            each iteration is SG_TM*SG_TN multiply-accumulates on registers alone.
//   SOURCE 1 (workgroup memory): each iteration walks the BK / 16 k-blocks, loading SG_TM left and SG_TN
//            right matrices from the staged tile per k-block (matmul.wgsl's inner loop without its
//            global loads and barriers).
// Result: acc(i, j) = iters * sum over the k-blocks used of L_i(kb) * R_j(kb), stored row-major per
// subgroup to dst[((wg * SGS + sg) * SG_TM * SG_TN + i * SG_TN + j) * 256 ..]: exact for small integer inputs,
// which the kernel case (test/cases/bench_mma.ts) checks.
//
// Defines: SG_TM, SG_TN (matrices per subgroup), BK (staged k width, a multiple of 16), SOURCE (0, 1),
// UNROLL (1: loads and multiplies written out with constant
// indices by #for, lib/sg_mma.wgsl; 0: loops over the matrices), REFLECT (1: the bindings alone with a plain entry point, for wgsl_reflect, which cannot parse
// subgroup-matrix types). Override: SGS (subgroups per workgroup; workgroup size SGS * 32).
// Bindings: src (SG_TM + SG_TN) * 16 * BK f32, dst f32 (written), params { iters }.
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
const ROWS: u32 = (SG_TM + SG_TN) * 16u;
var<workgroup> tile: array<f16, ROWS * SPAD>;
#if UNROLL
#include "lib/sg_mma.wgsl"
#endif

// The operands of k-block kk: left i from tile row i * 16, right j from row (SG_TM + j) * 16.
fn load_ops(a: ptr<function, array<LeftM, SG_TM>>, b: ptr<function, array<RightM, SG_TN>>, kk: u32) {
#if UNROLL
#for I in 0..SG_TM
  (*a)[I] = subgroupMatrixLoad<LeftM>(&tile, I * 16u * SPAD + kk, false, SPAD);
#endfor
#for J in 0..SG_TN
  (*b)[J] = subgroupMatrixLoad<RightM>(&tile, (SG_TM + J) * 16u * SPAD + kk, true, SPAD);
#endfor
#else
  for (var i = 0u; i < SG_TM; i++) { (*a)[i] = subgroupMatrixLoad<LeftM>(&tile, i * 16u * SPAD + kk, false, SPAD); }
  for (var j = 0u; j < SG_TN; j++) { (*b)[j] = subgroupMatrixLoad<RightM>(&tile, (SG_TM + j) * 16u * SPAD + kk, true, SPAD); }
#endif
}

fn multiply(acc: ptr<function, array<ResultM, SG_TM * SG_TN>>, a: ptr<function, array<LeftM, SG_TM>>, b: ptr<function, array<RightM, SG_TN>>) {
#if UNROLL
  mma_block(acc, a, b);
#else
  for (var i = 0u; i < SG_TM; i++) {
    for (var j = 0u; j < SG_TN; j++) {
      (*acc)[i * SG_TN + j] = subgroupMatrixMultiplyAccumulate((*a)[i], (*b)[j], (*acc)[i * SG_TN + j]);
    }
  }
#endif
}

@compute @workgroup_size(SGS * 32)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lidx: u32) {
  for (var e = lidx; e < ROWS * BK; e += SGS * 32u) {
    tile[(e / BK) * SPAD + e % BK] = f16(src[e]);
  }
  workgroupBarrier();
  let sg = lidx / 32u;
  var acc: array<ResultM, SG_TM * SG_TN>;
  var a: array<LeftM, SG_TM>;
  var b: array<RightM, SG_TN>;
#if SOURCE == 0
  load_ops(&a, &b, 0u);
  for (var it = 0u; it < params.iters; it++) {
    multiply(&acc, &a, &b);
  }
#else
  for (var it = 0u; it < params.iters; it++) {
    for (var kk = 0u; kk < BK; kk += 16u) {
      load_ops(&a, &b, kk);
      multiply(&acc, &a, &b);
    }
  }
#endif
  let base = (wid.x * SGS + sg) * SG_TM * SG_TN * 256u;
#if UNROLL
#for R in 0..SG_TM * SG_TN
  subgroupMatrixStore(&dst, base + R * 256u, acc[R], false, 16u);
#endfor
#else
  for (var r = 0u; r < SG_TM * SG_TN; r++) {
    subgroupMatrixStore(&dst, base + r * 256u, acc[r], false, 16u);
  }
#endif
}
#endif
