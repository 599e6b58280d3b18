// Subgroup-matrix multiply block written out with constant indices: acc[i * SG_TN + j] += a[i] * b[j]
// for every i < SG_TM, j < SG_TN (the preprocessor's #for).
//
// Why written out: with loops over i and j, NVIDIA's compiler (through Dawn and Vulkan) keeps 4x4
// result matrices per subgroup in local memory: bench/suites/mma.ts measured 37 TFLOP/s for 4x4
// accumulators multiplied in loops from registers, 587 written out (H200, BENCHMARKS.md session 4).
//
// The including shader defines SG_TM, SG_TN and the aliases LeftM, RightM, ResultM.
fn mma_block(acc: ptr<function, array<ResultM, SG_TM * SG_TN>>, a: ptr<function, array<LeftM, SG_TM>>, b: ptr<function, array<RightM, SG_TN>>) {
#for I in 0..SG_TM
#for J in 0..SG_TN
  (*acc)[I * SG_TN + J] = subgroupMatrixMultiplyAccumulate((*a)[I], (*b)[J], (*acc)[I * SG_TN + J]);
#endfor
#endfor
}
