/** float64 reference: out[i] = silu(gate[i]) * up[i] with silu(g) = g / (1 + e^-g); shapes [T, F] (flat). */
export function siluMulRef(gate: ArrayLike<number>, up: ArrayLike<number>): Float64Array {
  const out = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) out[i] = (gate[i]! / (1 + Math.exp(-gate[i]!))) * up[i]!;
  return out;
}
