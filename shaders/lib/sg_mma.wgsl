// Subgroup-matrix multiply block written out with constant indices: acc[i * SG_TN + j] += a[i] * b[j]
// for every i < SG_TM, j < SG_TN (each at most 4).
//
// Why written out: with loops over i and j, NVIDIA's compiler (through Dawn and Vulkan) keeps 4x4
// result matrices per subgroup in local memory: bench/suites/mma.ts measured 37 TFLOP/s for 4x4
// accumulators multiplied in loops from registers, 587 written out (H200, BENCHMARKS.md session 4).
//
// The including shader defines SG_TM, SG_TN and the aliases LeftM, RightM, ResultM.
fn mma_block(acc: ptr<function, array<ResultM, SG_TM * SG_TN>>, a: ptr<function, array<LeftM, SG_TM>>, b: ptr<function, array<RightM, SG_TN>>) {
  (*acc)[0 * SG_TN + 0] = subgroupMatrixMultiplyAccumulate((*a)[0], (*b)[0], (*acc)[0 * SG_TN + 0]);
#if SG_TN > 1
  (*acc)[0 * SG_TN + 1] = subgroupMatrixMultiplyAccumulate((*a)[0], (*b)[1], (*acc)[0 * SG_TN + 1]);
#endif
#if SG_TN > 2
  (*acc)[0 * SG_TN + 2] = subgroupMatrixMultiplyAccumulate((*a)[0], (*b)[2], (*acc)[0 * SG_TN + 2]);
#endif
#if SG_TN > 3
  (*acc)[0 * SG_TN + 3] = subgroupMatrixMultiplyAccumulate((*a)[0], (*b)[3], (*acc)[0 * SG_TN + 3]);
#endif
#if SG_TM > 1
  (*acc)[1 * SG_TN + 0] = subgroupMatrixMultiplyAccumulate((*a)[1], (*b)[0], (*acc)[1 * SG_TN + 0]);
#endif
#if SG_TM > 1 && SG_TN > 1
  (*acc)[1 * SG_TN + 1] = subgroupMatrixMultiplyAccumulate((*a)[1], (*b)[1], (*acc)[1 * SG_TN + 1]);
#endif
#if SG_TM > 1 && SG_TN > 2
  (*acc)[1 * SG_TN + 2] = subgroupMatrixMultiplyAccumulate((*a)[1], (*b)[2], (*acc)[1 * SG_TN + 2]);
#endif
#if SG_TM > 1 && SG_TN > 3
  (*acc)[1 * SG_TN + 3] = subgroupMatrixMultiplyAccumulate((*a)[1], (*b)[3], (*acc)[1 * SG_TN + 3]);
#endif
#if SG_TM > 2
  (*acc)[2 * SG_TN + 0] = subgroupMatrixMultiplyAccumulate((*a)[2], (*b)[0], (*acc)[2 * SG_TN + 0]);
#endif
#if SG_TM > 2 && SG_TN > 1
  (*acc)[2 * SG_TN + 1] = subgroupMatrixMultiplyAccumulate((*a)[2], (*b)[1], (*acc)[2 * SG_TN + 1]);
#endif
#if SG_TM > 2 && SG_TN > 2
  (*acc)[2 * SG_TN + 2] = subgroupMatrixMultiplyAccumulate((*a)[2], (*b)[2], (*acc)[2 * SG_TN + 2]);
#endif
#if SG_TM > 2 && SG_TN > 3
  (*acc)[2 * SG_TN + 3] = subgroupMatrixMultiplyAccumulate((*a)[2], (*b)[3], (*acc)[2 * SG_TN + 3]);
#endif
#if SG_TM > 3
  (*acc)[3 * SG_TN + 0] = subgroupMatrixMultiplyAccumulate((*a)[3], (*b)[0], (*acc)[3 * SG_TN + 0]);
#endif
#if SG_TM > 3 && SG_TN > 1
  (*acc)[3 * SG_TN + 1] = subgroupMatrixMultiplyAccumulate((*a)[3], (*b)[1], (*acc)[3 * SG_TN + 1]);
#endif
#if SG_TM > 3 && SG_TN > 2
  (*acc)[3 * SG_TN + 2] = subgroupMatrixMultiplyAccumulate((*a)[3], (*b)[2], (*acc)[3 * SG_TN + 2]);
#endif
#if SG_TM > 3 && SG_TN > 3
  (*acc)[3 * SG_TN + 3] = subgroupMatrixMultiplyAccumulate((*a)[3], (*b)[3], (*acc)[3 * SG_TN + 3]);
#endif
}
