// The demo's pure helpers (demo/estimate.ts): prefill arithmetic, estimates from a measured rate,
// the words for the attention a pass used, and the document a software adapter starts on.
import { describe, expect, it } from 'vitest';
import { calibrate, describeAttention, documentFor, estimateRun, layerDensity, patternName, prefillFlops } from '../demo/estimate.ts';
import { parseModelConfig } from '../src/model/config.ts';
import { readFileSync } from 'node:fs';
import type { Pattern } from '../src/attention/types.ts';

const config = parseModelConfig(JSON.parse(readFileSync('models/needle-reader/config.json', 'utf8')));

describe('demo estimates', () => {
  it('counts a prefill as projections + MLP per token and causal attention per pair', () => {
    // needle-reader: C 384, 6 heads (2 KV) x 64, I 1024, 6 layers, vocab 4096.
    const perToken = 2 * 6 * (384 * 6 * 64 * 2 + 2 * 384 * 2 * 64 + 3 * 384 * 1024);
    const logits = 2 * 384 * 4096;
    expect(prefillFlops(config, 1)).toBe(perToken + logits + 2 * 6 * 6 * 64 * 1 * 2);
    expect(prefillFlops(config, 100) - prefillFlops(config, 100, 0)).toBe(2 * 6 * 6 * 64 * 100 * 101);
  });

  it('scales a measured rate to the prompt, per pass, with decode steps', () => {
    const cal = calibrate(config, 64, 3000, 500);
    expect(cal.flopsPerMs).toBeCloseTo(prefillFlops(config, 64) / 3000);
    const one = estimateRun(cal, config, 512, 24, 'dense');
    expect(one.prefillMs).toBeCloseTo((prefillFlops(config, 512) / prefillFlops(config, 64)) * 3000);
    expect(one.totalMs).toBeCloseTo(one.prefillMs + 24 * 500);
    expect(estimateRun(cal, config, 512, 24, 'compare').totalMs).toBeCloseTo(2 * one.totalMs);
    // A 40K-token prompt costs far more than 80x a 512-token one (attention is quadratic).
    expect(estimateRun(cal, config, 40960, 24, 'dense').prefillMs / one.prefillMs).toBeGreaterThan(80);
  });

  it('names the attention a pass used', () => {
    const vs: Pattern = { type: 'vertical_and_slash', verticalSize: 64, slashSize: 128 };
    const all = Array.from({ length: 6 }, () => Array.from({ length: 6 }, () => vs));
    expect(describeAttention('dense', { attentionMode: 'dense', promptTokens: 512 }, Infinity)).toBe('dense');
    expect(describeAttention(all, { attentionMode: 'sparse', promptTokens: 512 }, 0)).toBe('sparse: Vertical-Slash (64, 128) on all 36 heads');
    expect(describeAttention(all, { attentionMode: 'dense', promptTokens: 512 }, 32768)).toBe('dense (512 tokens is under the 32,768-token threshold for sparse attention)');
    const mixed = all.map((l, i) => (i === 0 ? l.map((): Pattern => ({ type: 'stream_llm', nInit: 4, nLocal: 64 })) : l));
    expect(describeAttention(mixed, { attentionMode: 'sparse', promptTokens: 512 }, 0)).toBe('sparse: A-shape (4, 64) on 6 of 36 heads, Vertical-Slash (64, 128) on 30 of 36 heads');
    expect(patternName({ type: 'block_sparse', topK: 100 })).toBe('Block-Sparse (top 100)');
    expect(layerDensity({ density: [[0.5, 1], [0.25, 0.25]] })).toEqual([0.75, 0.25]);
  });

  it('starts software adapters on the short document', () => {
    expect(documentFor(true)).toBe('short');
    expect(documentFor(false)).toBe('long');
  });
});
