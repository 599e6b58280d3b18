/**
 * float64 reference for the linear layer: y[m, n] = sum_k x[m, k] * w[n, k] (+ bias[n]).
 *   x: [M, K] row-major, w: [N, K] row-major (nn.Linear layout), bias: [N] or undefined, y: [M, N].
 * Packed weights must be passed already rounded to f16/bf16 (src/util/half.ts roundTo), i.e. as
 * the GPU sees them; the f16-compute paths also round x (see matmulInputsAsF16).
 */
import { roundTo } from '../../src/util/half.ts';

export function matmulRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  bias: ArrayLike<number> | undefined,
  M: number,
  N: number,
  K: number,
): Float64Array {
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += x[m * K + k]! * w[n * K + k]!;
      y[m * N + n] = s + (bias ? bias[n]! : 0);
    }
  }
  return y;
}

/** Values as a path that stages its inputs in f16 sees them (bf16 weights become f16 too). */
export function matmulInputsAsF16(values: ArrayLike<number>): Float32Array {
  return roundTo('f16', values);
}
