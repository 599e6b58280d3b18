/** float64 reference: row softmax of x [R, C] (max-subtracted; all -inf rows give NaN). */
export function softmaxRef(x: ArrayLike<number>, R: number, C: number): Float64Array {
  const out = new Float64Array(R * C);
  for (let r = 0; r < R; r++) {
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, x[r * C + c]!);
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp(x[r * C + c]! - m);
    for (let c = 0; c < C; c++) out[r * C + c] = Math.exp(x[r * C + c]! - m) / s;
  }
  return out;
}
