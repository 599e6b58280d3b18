/**
 * Reference head-major -> token-major gather. x [H, Scap, D]; out [Tout, width] starts as `init`;
 * out[t, (headStart + h) * D + d] = x[h, srcOffset + t, d] for t < tokens.
 */
export function headsToTokensRef(
  x: ArrayLike<number>,
  a: { H: number; Scap: number; D: number; Tout: number; width: number; srcOffset: number; tokens: number; headStart: number },
  init = Number.NaN,
): Float64Array {
  const out = new Float64Array(a.Tout * a.width).fill(init);
  for (let t = 0; t < a.tokens; t++)
    for (let h = 0; h < a.H; h++)
      for (let d = 0; d < a.D; d++) out[t * a.width + (a.headStart + h) * a.D + d] = x[(h * a.Scap + a.srcOffset + t) * a.D + d]!;
  return out;
}
