/** float64 reference: out[t, c] = table[ids[t], c] (table values as the GPU sees them), NaN rows for ids >= V. table [V, C], out [T, C]. */
export function embeddingRef(ids: ArrayLike<number>, table: ArrayLike<number>, V: number, C: number): Float64Array {
  const out = new Float64Array(ids.length * C);
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t]!;
    for (let c = 0; c < C; c++) out[t * C + c] = id < V ? table[id * C + c]! : Number.NaN;
  }
  return out;
}
