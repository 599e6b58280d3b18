/**
 * float64 reference of the pattern-recall kernel (shaders/pattern_recall.wgsl), naive loops.
 *
 * q [H, S, D], k [Hkv, S, D] flat row-major; head h reads kv head floor(h * Hkv / H); scale
 * 1 / sqrt(D). For query row i the causal softmax is p_ij = exp(s_ij - m_i) / L_i over keys j <= i.
 */

export interface RecallShape {
  H: number;
  Hkv: number;
  S: number;
  D: number;
}

/** Scores s_ij of query row i of head h over keys 0..i. */
function rowScores(q: ArrayLike<number>, k: ArrayLike<number>, s: RecallShape, h: number, i: number): Float64Array {
  const g = Math.floor((h * s.Hkv) / s.H);
  const scale = 1 / Math.sqrt(s.D);
  const out = new Float64Array(i + 1);
  for (let j = 0; j <= i; j++) {
    let dot = 0;
    for (let d = 0; d < s.D; d++) dot += q[(h * s.S + i) * s.D + d]! * k[(g * s.S + j) * s.D + d]!;
    out[j] = dot * scale;
  }
  return out;
}

/** The row's max score m_i and normaliser L_i = sum_j exp(s_ij - m_i). */
export function rowStatsRef(q: ArrayLike<number>, k: ArrayLike<number>, s: RecallShape, h: number, i: number): { max: number; sum: number } {
  const x = rowScores(q, k, s, h, i);
  let max = -Infinity;
  for (const v of x) max = Math.max(max, v);
  let sum = 0;
  for (const v of x) sum += Math.exp(v - max);
  return { max, sum };
}

/** The share of row i's causal softmax mass on the keys `keeps` accepts (only j <= i count). */
export function keptMassRef(q: ArrayLike<number>, k: ArrayLike<number>, s: RecallShape, h: number, i: number, keeps: (j: number) => boolean): number {
  const x = rowScores(q, k, s, h, i);
  let max = -Infinity;
  for (const v of x) max = Math.max(max, v);
  let all = 0;
  let kept = 0;
  for (let j = 0; j <= i; j++) {
    const w = Math.exp(x[j]! - max);
    all += w;
    if (keeps(j)) kept += w;
  }
  return kept / all;
}

/** A-shape's kept keys for any row: the sink j < nInit, and the window i - j < nLocal. */
export function aShapeKeeps(nInit: number, nLocal: number, i: number): (j: number) => boolean {
  return (j) => j < nInit || i - j < nLocal;
}

/** The keys an index lists for a row's query block: 64-key ranges from `blocks` and single `columns`. */
export function indexKeeps(blocks: readonly number[], columns: readonly number[]): (j: number) => boolean {
  return (j) => blocks.some((off) => j >= off && j < off + 64) || columns.includes(j);
}

/** Row i of head h: squared error of a against b and squared norm of b ([H, S, D] each). */
export function rowErrorRef(a: ArrayLike<number>, b: ArrayLike<number>, s: Pick<RecallShape, 'S' | 'D'>, h: number, i: number): [number, number] {
  let err = 0;
  let norm = 0;
  for (let d = 0; d < s.D; d++) {
    const at = (h * s.S + i) * s.D + d;
    err += (a[at]! - b[at]!) ** 2;
    norm += b[at]! ** 2;
  }
  return [err, norm];
}
