/**
 * float64 references for causal attention (batch 1), naive loops.
 *
 * q [H, Tq, D] (query row t at position qPos0 + t), k, v [Hkv, Scap, D], out [H, Tq, D];
 * head h reads kv head floor(h * Hkv / H); scale 1 / sqrt(D).
 * A key j is attended by the query at position p iff visible(h, p, j); rows with no visible key are 0.
 */

export interface AttnRefShape {
  H: number;
  Hkv: number;
  Tq: number;
  Scap: number;
  D: number;
}

export type Visible = (h: number, p: number, j: number) => boolean;

/** Generic masked attention; `heads` limits the computed heads (others stay NaN, like a poisoned output). */
export function attentionRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  s: AttnRefShape,
  qPos0: number,
  visible: Visible,
  heads?: readonly number[],
): Float64Array {
  const { H, Hkv, Tq, Scap, D } = s;
  const out = new Float64Array(H * Tq * D).fill(heads ? NaN : 0);
  const scale = 1 / Math.sqrt(D);
  const scores = new Float64Array(Scap);
  for (const h of heads ?? Array.from({ length: H }, (_, i) => i)) {
    const hk = Math.floor((h * Hkv) / H);
    for (let t = 0; t < Tq; t++) {
      const p = qPos0 + t;
      const qo = (h * Tq + t) * D;
      let mx = -Infinity;
      const keys: number[] = [];
      for (let j = 0; j < Scap; j++) {
        if (!visible(h, p, j)) continue;
        let dot = 0;
        const ko = (hk * Scap + j) * D;
        for (let d = 0; d < D; d++) dot += q[qo + d]! * k[ko + d]!;
        scores[j] = dot * scale;
        mx = Math.max(mx, scores[j]!);
        keys.push(j);
      }
      const o = out.subarray(qo, qo + D);
      o.fill(0);
      if (!keys.length) continue;
      let l = 0;
      for (const j of keys) {
        const w = Math.exp(scores[j]! - mx);
        l += w;
        const vo = (hk * Scap + j) * D;
        for (let d = 0; d < D; d++) o[d] += w * v[vo + d]!;
      }
      for (let d = 0; d < D; d++) o[d] /= l;
    }
  }
  return out;
}

/** Dense causal attention over kvLen valid keys: j <= p and j < kvLen. */
export function denseRef(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, s: AttnRefShape, qPos0: number, kvLen: number, heads?: readonly number[]): Float64Array {
  return attentionRef(q, k, v, s, qPos0, (_h, p, j) => j <= p && j < kvLen, heads);
}

/**
 * A-shape (StreamingLLM): j <= p and (j < nInit or p - j < nLocal). Prefill (qPos0 0, kvLen = Scap)
 * unless `at` places the query rows (qPos0) over the first kvLen keys; nInit 0 is a sliding window.
 */
export function streamRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  s: AttnRefShape,
  nInit: number,
  nLocal: number,
  heads?: readonly number[],
  at: { qPos0: number; kvLen: number } = { qPos0: 0, kvLen: s.Scap },
): Float64Array {
  return attentionRef(q, k, v, s, at.qPos0, (_h, p, j) => j <= p && j < at.kvLen && (j < nInit || p - j < nLocal), heads);
}

/** A host-side sparse index: per listed head, per 64-query block, 64-key range starts and single columns. */
export interface HostIndex {
  /** ranges[slot][block] = ascending, non-overlapping range starts. */
  ranges: number[][][];
  /** columns[slot][block] = ascending columns, none inside a listed range. */
  columns: number[][][];
}

/** Attention over an explicit index (prefill): j <= p, j < S, and j in a listed range or column of p's block. */
export function indexRef(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, s: AttnRefShape, heads: readonly number[], index: HostIndex): Float64Array {
  const slotOf = new Map(heads.map((h, i) => [h, i]));
  const sets = index.ranges.map((perBlock, slot) =>
    perBlock.map((starts, b) => {
      const set = new Set<number>();
      for (const off of starts) for (let j = off; j < off + 64; j++) set.add(j);
      for (const c of index.columns[slot]![b]!) set.add(c);
      return set;
    }),
  );
  return attentionRef(q, k, v, s, 0, (h, p, j) => j <= p && j < s.Scap && sets[slotOf.get(h)!]![Math.floor(p / 64)]!.has(j), heads);
}

/** Causal entries (j <= p) an index covers, per slot (for density). */
export function indexEntries(S: number, index: HostIndex): number[] {
  return index.ranges.map((perBlock, slot) => {
    let n = 0;
    perBlock.forEach((starts, b) => {
      const keys = new Set<number>();
      for (const off of starts) for (let j = off; j < off + 64; j++) keys.add(j);
      for (const c of index.columns[slot]![b]!) keys.add(c);
      for (let p = b * 64; p < Math.min(S, b * 64 + 64); p++) for (const j of keys) if (j <= p && j < S) n++;
    });
    return n;
  });
}
