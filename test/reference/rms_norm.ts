/**
 * float64 references for rms_norm and the fused add + rms_norm.
 * x [T, C], weight [C] (values as the GPU sees them, i.e. already rounded to f16/bf16), out [T, C].
 */
export function rmsNormRef(x: ArrayLike<number>, weight: ArrayLike<number>, T: number, C: number, eps: number): Float64Array {
  const out = new Float64Array(T * C);
  for (let t = 0; t < T; t++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[t * C + c]! * x[t * C + c]!;
    const inv = 1 / Math.sqrt(ss / C + eps);
    for (let c = 0; c < C; c++) out[t * C + c] = x[t * C + c]! * inv * weight[c]!;
  }
  return out;
}

/** residual' = residual + x (rounded to f32, as stored); out = rmsNorm(residual') * weight. */
export function addRmsNormRef(
  residual: ArrayLike<number>,
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  T: number,
  C: number,
  eps: number,
): { residual: Float64Array; out: Float64Array } {
  const r = new Float64Array(T * C);
  for (let i = 0; i < T * C; i++) r[i] = Math.fround(residual[i]! + x[i]!);
  return { residual: r, out: rmsNormRef(r, weight, T, C, eps) };
}
