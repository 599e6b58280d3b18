/**
 * Token sampling on the host from one row of logits: greedy (argmax, lowest id on ties) and seeded
 * temperature / top-k / top-p (nucleus) sampling. Pure TypeScript, deterministic for a given seed.
 *
 * Order of operations (as in Hugging Face `generate`): temperature scales the logits, top-k keeps the
 * k largest, top-p keeps the smallest prefix (by descending probability) whose mass reaches p, and
 * one token is drawn from the renormalised remainder.
 */
import { BadInputError } from '../gpu/errors.ts';
import { mulberry32 } from '../util/prng.ts';

export interface SamplingParams {
  /** > 0. 0 is accepted and means greedy. */
  temperature: number;
  /** Keep the k most likely tokens; 0 or undefined keeps all. */
  topK?: number;
  /** Keep the smallest set of most likely tokens with total probability >= topP; 1 or undefined keeps all. */
  topP?: number;
  /** Seed of the random stream (any 32-bit integer). */
  seed?: number;
}

export type Sampling = 'greedy' | SamplingParams;

export function validateSampling(s: Sampling): void {
  if (s === 'greedy') return;
  if (typeof s !== 'object' || s === null) throw new BadInputError(`sampling must be 'greedy' or { temperature, topK?, topP?, seed? }`);
  if (!Number.isFinite(s.temperature) || s.temperature < 0) throw new BadInputError(`sampling.temperature must be a number >= 0, got ${s.temperature}`);
  if (s.topK !== undefined && (!Number.isInteger(s.topK) || s.topK < 0)) throw new BadInputError(`sampling.topK must be an integer >= 0, got ${s.topK}`);
  if (s.topP !== undefined && (!Number.isFinite(s.topP) || s.topP <= 0 || s.topP > 1)) throw new BadInputError(`sampling.topP must be in (0, 1], got ${s.topP}`);
  if (s.seed !== undefined && !Number.isInteger(s.seed)) throw new BadInputError(`sampling.seed must be an integer, got ${s.seed}`);
}

/** Index of the largest finite-or-infinite value; NaN never wins; ties go to the lowest index. */
export function argmax(logits: ArrayLike<number>): number {
  let best = -1;
  let bestV = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i]!;
    if (v > bestV || (best < 0 && v === -Infinity)) {
      best = i;
      bestV = v;
    }
  }
  if (best < 0) throw new BadInputError('argmax: logits are empty or all NaN');
  return best;
}

/** A small seeded PRNG (mulberry32, src/util/prng.ts): uniform floats in [0, 1). */
export class Rng {
  readonly next: () => number;
  constructor(seed = 0) {
    this.next = mulberry32(seed);
  }
}

/**
 * The candidate distribution after temperature, top-k and top-p: token ids sorted by descending
 * probability (ties by id) and their renormalised probabilities. Exposed for tests.
 */
export function candidates(logits: ArrayLike<number>, p: SamplingParams): { ids: Uint32Array; probs: Float64Array } {
  const n = logits.length;
  if (n === 0) throw new BadInputError('sampling: logits are empty');
  const t = p.temperature;
  // Collect ids of finite logits, sorted by logit descending.
  let ids: number[] = [];
  for (let i = 0; i < n; i++) if (!Number.isNaN(logits[i]!) && logits[i]! !== -Infinity) ids.push(i);
  if (ids.length === 0) throw new BadInputError('sampling: every logit is -inf or NaN');
  const topK = p.topK && p.topK > 0 ? Math.min(p.topK, ids.length) : ids.length;
  if (topK < ids.length) {
    // Partial selection would be faster; a full sort of ~150K numbers per token is a few ms, fine next to a decode step.
    ids.sort((a, b) => logits[b]! - logits[a]! || a - b);
    ids = ids.slice(0, topK);
  } else {
    ids.sort((a, b) => logits[b]! - logits[a]! || a - b);
  }
  const maxL = logits[ids[0]!]!;
  const probs = new Float64Array(ids.length);
  let sum = 0;
  for (let i = 0; i < ids.length; i++) {
    const e = Math.exp((logits[ids[i]!]! - maxL) / t);
    probs[i] = e;
    sum += e;
  }
  for (let i = 0; i < probs.length; i++) probs[i]! /= sum;
  let keep = probs.length;
  const topP = p.topP ?? 1;
  if (topP < 1) {
    let acc = 0;
    for (let i = 0; i < probs.length; i++) {
      acc += probs[i]!;
      if (acc >= topP) {
        keep = i + 1;
        break;
      }
    }
  }
  const outIds = Uint32Array.from(ids.slice(0, keep));
  const outProbs = probs.slice(0, keep);
  let s2 = 0;
  for (const v of outProbs) s2 += v;
  for (let i = 0; i < outProbs.length; i++) outProbs[i]! /= s2;
  return { ids: outIds, probs: outProbs };
}

/**
 * A sampler bound to one random stream: each call draws the next token. Greedy (or temperature 0)
 * ignores the stream.
 */
export class Sampler {
  private readonly rng: Rng;
  constructor(readonly sampling: Sampling) {
    validateSampling(sampling);
    this.rng = new Rng(sampling === 'greedy' ? 0 : (sampling.seed ?? 0));
  }

  /** Whether every draw is the argmax (greedy, or temperature 0). */
  get greedy(): boolean {
    return this.sampling === 'greedy' || this.sampling.temperature === 0;
  }

  sample(logits: ArrayLike<number>): number {
    const s = this.sampling;
    if (s === 'greedy' || s.temperature === 0) return argmax(logits);
    const { ids, probs } = candidates(logits, s);
    const u = this.rng.next();
    let acc = 0;
    for (let i = 0; i < ids.length; i++) {
      acc += probs[i]!;
      if (u < acc) return ids[i]!;
    }
    return ids[ids.length - 1]!;
  }
}
