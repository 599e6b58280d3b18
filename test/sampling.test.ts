import { describe, expect, it } from 'vitest';
import { argmax, candidates, Rng, Sampler, validateSampling } from '../src/model/sampling.ts';
import { BadInputError } from '../src/gpu/errors.ts';

describe('sampling', () => {
  it('argmax picks the largest, lowest id on ties, skips NaN', () => {
    expect(argmax([1, 3, 2])).toBe(1);
    expect(argmax([5, 5, 1])).toBe(0);
    expect(argmax([NaN, -1, NaN])).toBe(1);
    expect(argmax([-Infinity, -Infinity])).toBe(0);
    expect(() => argmax([])).toThrow(BadInputError);
  });

  it('greedy and temperature 0 are argmax', () => {
    const logits = Float32Array.from([0.1, 2.5, -1, 2.4]);
    expect(new Sampler('greedy').sample(logits)).toBe(1);
    expect(new Sampler({ temperature: 0, seed: 3 }).sample(logits)).toBe(1);
  });

  it('rng is deterministic per seed and uniform-ish', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const xs = Array.from({ length: 1000 }, () => a.next());
    expect(xs.slice(0, 5)).toEqual(Array.from({ length: 5 }, () => b.next()));
    expect(c.next()).not.toBe(xs[0]);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean).toBeGreaterThan(0.45);
    expect(mean).toBeLessThan(0.55);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
  });

  it('top-k keeps the k largest, renormalised', () => {
    const logits = [0, 1, 2, 3, 4];
    const { ids, probs } = candidates(logits, { temperature: 1, topK: 2 });
    expect([...ids]).toEqual([4, 3]);
    const e = Math.exp(-1);
    expect(probs[0]).toBeCloseTo(1 / (1 + e), 12);
    expect(probs[1]).toBeCloseTo(e / (1 + e), 12);
  });

  it('top-p keeps the smallest prefix reaching p', () => {
    // probabilities 0.5, 0.25, 0.125, 0.125 (log-space logits)
    const logits = [Math.log(0.125), Math.log(0.5), Math.log(0.25), Math.log(0.125)];
    expect([...candidates(logits, { temperature: 1, topP: 0.5 }).ids]).toEqual([1]);
    expect([...candidates(logits, { temperature: 1, topP: 0.6 }).ids]).toEqual([1, 2]);
    expect([...candidates(logits, { temperature: 1, topP: 0.75 }).ids]).toEqual([1, 2]);
    expect([...candidates(logits, { temperature: 1, topP: 0.8 }).ids]).toEqual([1, 2, 0]);
    expect(candidates(logits, { temperature: 1 }).ids.length).toBe(4);
  });

  it('temperature sharpens and flattens', () => {
    const logits = [0, 1];
    const cold = candidates(logits, { temperature: 0.5 }).probs;
    const hot = candidates(logits, { temperature: 2 }).probs;
    expect(cold[0]).toBeCloseTo(1 / (1 + Math.exp(-2)), 12);
    expect(hot[0]).toBeCloseTo(1 / (1 + Math.exp(-0.5)), 12);
  });

  it('seeded sampling is reproducible and follows the distribution', () => {
    const logits = [Math.log(0.6), Math.log(0.3), Math.log(0.1)];
    const run = (seed: number): number[] => {
      const s = new Sampler({ temperature: 1, seed });
      return Array.from({ length: 3000 }, () => s.sample(logits));
    };
    const a = run(7);
    expect(run(7)).toEqual(a);
    expect(run(8)).not.toEqual(a);
    const freq = [0, 0, 0];
    for (const t of a) freq[t]!++;
    expect(freq[0]! / a.length).toBeCloseTo(0.6, 1);
    expect(freq[1]! / a.length).toBeCloseTo(0.3, 1);
    expect(freq[2]! / a.length).toBeCloseTo(0.1, 1);
    // top-k 1 with any temperature is greedy
    const s = new Sampler({ temperature: 5, topK: 1, seed: 1 });
    for (let i = 0; i < 20; i++) expect(s.sample(logits)).toBe(0);
  });

  it('rejects bad parameters', () => {
    expect(() => validateSampling({ temperature: -1 })).toThrow(BadInputError);
    expect(() => validateSampling({ temperature: 1, topP: 0 })).toThrow(BadInputError);
    expect(() => validateSampling({ temperature: 1, topP: 1.5 })).toThrow(BadInputError);
    expect(() => validateSampling({ temperature: 1, topK: 1.5 })).toThrow(BadInputError);
    expect(() => new Sampler({ temperature: 1 }).sample([-Infinity, NaN])).toThrow(BadInputError);
  });
});
