/**
 * float64 reference of MInference's index estimation (src/attention/estimate.ts), in readable loops.
 *
 * Shapes: q [H, S, D], k [Hkv, S, D] flat row-major; head h reads kv head floor(h * Hkv / H).
 * An index is given as per-(head, query block) lists: blocks[h][m] (range starts), columns[h][m].
 */

export interface IndexLists {
  blocks: number[][][];
  columns: number[][][];
}

const FORCED_COLUMNS = 30;
const FORCED_DIAGONALS = 100;

/**
 * Vertical-Slash scores of one query head: the last L = min(64, S) queries, softmax over keys j <= i.
 * vertical[j] = sum over rows of p[r, j]; slash[delta] = sum over rows of p[r, i_r - delta]
 * (forced columns/diagonals not applied here).
 */
export function vsScoresRef(q: Float32Array, k: Float32Array, H: number, Hkv: number, S: number, D: number, h: number): { vertical: Float64Array; slash: Float64Array } {
  const L = Math.min(64, S);
  const g = Math.floor((h * Hkv) / H);
  const scale = 1 / Math.sqrt(D);
  const vertical = new Float64Array(S);
  const slash = new Float64Array(S);
  const x = new Float64Array(S);
  for (let r = 0; r < L; r++) {
    const i = S - L + r;
    let m = -Infinity;
    for (let j = 0; j <= i; j++) {
      let dot = 0;
      for (let d = 0; d < D; d++) dot += q[(h * S + i) * D + d]! * k[(g * S + j) * D + d]!;
      x[j] = dot * scale;
      m = Math.max(m, x[j]!);
    }
    let l = 0;
    for (let j = 0; j <= i; j++) l += Math.exp(x[j]! - m);
    for (let j = 0; j <= i; j++) {
      const p = Math.exp(x[j]! - m) / l;
      vertical[j] += p;
      slash[i - j] += p;
    }
  }
  return { vertical, slash };
}

/**
 * Indices of the k largest scores, ascending; indices < forced count as +inf; ties go to the
 * lower index.
 */
export function topKRef(scores: ArrayLike<number>, k: number, forced = 0): number[] {
  const idx = Array.from({ length: scores.length }, (_, i) => i);
  const val = (i: number): number => (i < forced ? Infinity : scores[i]!);
  idx.sort((a, b) => val(b) - val(a) || a - b);
  return idx.slice(0, k).sort((a, b) => a - b);
}

export interface VsKept {
  columns: number[]; // ascending
  slashes: number[]; // ascending delta
}

/** Kept columns and diagonals of one head, clamped as MInference does. */
export function vsKeptRef(vertical: Float64Array, slash: Float64Array, S: number, V: number, Sl: number): VsKept {
  const v = Math.min(S, Math.max(V, 30));
  const s = Math.min(S, Math.max(Sl, 50));
  return { columns: topKRef(vertical, v, FORCED_COLUMNS), slashes: topKRef(slash, s, FORCED_DIAGONALS) };
}

/**
 * MInference's convert_vertical_slash_indexes for one head: per 64-query block m (end_m = 64 (m + 1),
 * unclamped), ranges from the diagonals delta < end_m visited by decreasing delta, columns not in a
 * range listed one by one.
 */
export function vsIndexRef(kept: VsKept, S: number): { blocks: number[][]; columns: number[][] } {
  const nqb = Math.ceil(S / 64);
  const blocks: number[][] = [];
  const columns: number[][] = [];
  const cols = kept.columns;
  const diags = [...kept.slashes].sort((a, b) => b - a); // descending delta
  for (let m = 0; m < nqb; m++) {
    const endM = 64 * (m + 1);
    const bl: number[] = [];
    const cl: number[] = [];
    // The ranges, in order of increasing end.
    const ranges: [number, number][] = [];
    for (const delta of diags) {
      if (delta >= endM) continue;
      const e = Math.max(endM - delta, 64);
      const cur = ranges[ranges.length - 1];
      if (!cur) ranges.push([e - 64, e]);
      else if (e > cur[1] + 64) ranges.push([e - 64, e]);
      else if (e > cur[1]) cur[1] += 64;
    }
    for (const [a, b] of ranges) for (let off = a; off < b; off += 64) bl.push(off);
    for (const c of cols) {
      if (c >= endM) continue;
      if (!ranges.some(([a, b]) => c >= a && c < b)) cl.push(c);
    }
    blocks.push(bl);
    columns.push(cl);
  }
  return { blocks, columns };
}

/** Block-Sparse: pooled scores and top min(topK, qb + 1) causal key blocks per query block (offsets kb * 64). */
export function bsIndexRef(q: Float32Array, k: Float32Array, H: number, Hkv: number, S: number, D: number, h: number, topK: number): number[][] {
  const nb = Math.ceil(S / 64);
  const g = Math.floor((h * Hkv) / H);
  const pool = (t: Float32Array, head: number): Float64Array[] =>
    Array.from({ length: nb }, (_, b) => {
      const out = new Float64Array(D);
      const n = Math.min(64, S - 64 * b);
      for (let u = 0; u < n; u++) for (let d = 0; d < D; d++) out[d] += t[(head * S + 64 * b + u) * D + d]!;
      for (let d = 0; d < D; d++) out[d] /= n;
      return out;
    });
  const pq = pool(q, h);
  const pk = pool(k, g);
  const scale = 1 / Math.sqrt(D);
  const blocks: number[][] = [];
  for (let qb = 0; qb < nb; qb++) {
    const sc = new Float64Array(qb + 1);
    for (let kb = 0; kb <= qb; kb++) {
      let s = 0;
      for (let d = 0; d < D; d++) s += pq[qb]![d]! * pk[kb]![d]!;
      sc[kb] = s * scale;
    }
    blocks.push(topKRef(sc, Math.min(topK, qb + 1)).map((kb) => kb * 64));
  }
  return blocks;
}
