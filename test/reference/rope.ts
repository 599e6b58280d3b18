/**
 * float64 reference for rope (rotate-half) fused with the token-major -> head-major scatter.
 * x [T, Htot * D]; out [Hout, Scap, D] starts as `init` (the poisoned contents) and only rows
 * dstOffset..dstOffset+T-1 of heads 0..heads-1 are written. Angle: (posOffset + t) * invFreq[i] in float64.
 * Only the first R = rotaryDim elements of a head rotate (pairs i, i + R/2); the rest are copied.
 * cos and sin are multiplied by `scale` (longrope's attention factor).
 */
export interface RopeRefArgs {
  T: number;
  Htot: number;
  D: number;
  Hout: number;
  Scap: number;
  headStart: number;
  heads: number;
  posOffset: number;
  dstOffset: number;
  rotate: boolean;
  invFreq: ArrayLike<number>;
  /** Default D. */
  rotaryDim?: number;
  /** Default 1. */
  scale?: number;
}

export function ropeRef(x: ArrayLike<number>, a: RopeRefArgs, init = Number.NaN): Float64Array {
  const { T, Htot, D, Hout, Scap } = a;
  const out = new Float64Array(Hout * Scap * D).fill(init);
  const R = a.rotaryDim ?? D;
  const half = R / 2;
  const scale = a.scale ?? 1;
  for (let t = 0; t < T; t++) {
    const pos = a.posOffset + t;
    for (let h = 0; h < a.heads; h++) {
      const src = t * Htot * D + (a.headStart + h) * D;
      const dst = (h * Scap + a.dstOffset + t) * D;
      for (let i = R; i < D; i++) out[dst + i] = x[src + i]!;
      for (let i = 0; i < half; i++) {
        const x1 = x[src + i]!;
        const x2 = x[src + i + half]!;
        if (!a.rotate) {
          out[dst + i] = x1;
          out[dst + i + half] = x2;
          continue;
        }
        const ang = pos * a.invFreq[i]!;
        const c = Math.cos(ang) * scale;
        const s = Math.sin(ang) * scale;
        out[dst + i] = x1 * c - x2 * s;
        out[dst + i + half] = x2 * c + x1 * s;
      }
    }
  }
  return out;
}
