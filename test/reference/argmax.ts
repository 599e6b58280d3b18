/** Reference argmax per row of x [R, V]: first index of the maximum, NaN skipped, 0xffffffff for an all-NaN row. */
export function argmaxRef(x: ArrayLike<number>, R: number, V: number): Uint32Array {
  const out = new Uint32Array(R);
  for (let r = 0; r < R; r++) {
    let best = -Infinity;
    let bi = 0xffffffff;
    for (let c = 0; c < V; c++) {
      const v = x[r * V + c]!;
      if (Number.isNaN(v)) continue;
      if (bi === 0xffffffff || v > best) {
        best = v;
        bi = c;
      }
    }
    out[r] = bi;
  }
  return out;
}
