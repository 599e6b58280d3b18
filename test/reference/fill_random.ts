/** Host reference of shaders/fill_random.wgsl: the same lowbias32 hash, values before rounding. */
export function lowbias32(v: number): number {
  let x = v >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

/** value(i) = offset + scale * (2u - 1), u = (hash(i ^ seed) >> 8) / 2^24, for i < n. */
export function fillRandomRef(n: number, seed: number, scale: number, offset = 0): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const u = (lowbias32((i ^ seed) >>> 0) >>> 8) / 16777216;
    out[i] = offset + scale * (2 * u - 1);
  }
  return out;
}
