/**
 * What the demo page computes without a GPU (pure functions, unit-tested in
 * test/demo-estimate.test.ts): the arithmetic of a prefill, a run's time from a rate measured on
 * this adapter, the words for the attention a pass used, and which bundled document suits an adapter.
 */
import type { ModelConfig } from '../src/model/config.ts';
import type { Pattern } from '../src/attention/types.ts';
import type { RunReport } from '../src/model/report.ts';
import { formatCount } from '../src/util/numbers.ts';
import type { Calibration, RunEstimate, RunMode } from './protocol.ts';

/** Runs the page steers a user away from without a warning: a software adapter finishes the short document in well under this. */
export const LONG_RUN_MS = 60_000;

/**
 * FLOPs of a T-token prefill: the projections and MLP of every token in every layer, the last
 * token's logits, and causal attention (QK^T and PV over T(T+1)/2 pairs per head, times `density`,
 * the share of pairs a sparse pattern keeps).
 */
export function prefillFlops(c: ModelConfig, T: number, density = 1): number {
  const C = c.hiddenSize;
  const qkvo = C * c.numHeads * c.headDim * 2 + 2 * C * c.numKvHeads * c.headDim;
  const mlp = 3 * C * c.intermediateSize;
  const linear = 2 * T * c.numLayers * (qkvo + mlp) + 2 * C * c.vocabSize;
  const attention = 2 * c.numLayers * c.numHeads * c.headDim * T * (T + 1) * density;
  return linear + attention;
}

/** Calibration from one measured prefill of `tokens` tokens and one decode step. */
export function calibrate(c: ModelConfig, tokens: number, prefillMs: number, decodeStepMs: number): Calibration {
  return { tokens, prefillMs, flopsPerMs: prefillFlops(c, tokens) / Math.max(prefillMs, 1e-3), decodeStepMs };
}

/**
 * A request's time from the measured rate: each pass is a dense-cost prefill (sparse saves what it
 * skips, unknown before it runs, so the estimate is the upper end) and maxNewTokens decode steps.
 * The calibration prefill is short, where the GPU is least efficient, which errs long as well.
 */
export function estimateRun(cal: Calibration, c: ModelConfig, promptTokens: number, maxNewTokens: number, mode: RunMode): RunEstimate {
  const prefillMs = prefillFlops(c, promptTokens) / cal.flopsPerMs;
  const passes = mode === 'compare' ? 2 : 1;
  return { promptTokens, prefillMs, totalMs: passes * (prefillMs + maxNewTokens * cal.decodeStepMs), calibration: cal };
}

/** "Vertical-Slash (64, 128)", "A-shape (4, 64)", "Block-Sparse (top 100)", "dense". */
export function patternName(p: Pattern): string {
  switch (p.type) {
    case 'dense':
      return 'dense';
    case 'vertical_and_slash':
      return `Vertical-Slash (${formatCount(p.verticalSize)}, ${formatCount(p.slashSize)})`;
    case 'stream_llm':
      return `A-shape (${formatCount(p.nInit)}, ${formatCount(p.nLocal)})`;
    case 'block_sparse':
      return `Block-Sparse (top ${formatCount(p.topK)})`;
  }
}

/**
 * The attention a pass used, in words: "dense", "dense (512 tokens is under the 32,768-token
 * threshold)", or the sparse patterns with how many heads each: "Vertical-Slash (64, 128) on all 36
 * heads".
 */
export function describeAttention(patterns: Pattern[][] | 'dense', report: Pick<RunReport, 'attentionMode' | 'promptTokens'>, denseBelow: number): string {
  if (patterns === 'dense') return 'dense';
  if (report.attentionMode === 'dense') return `dense (${formatCount(report.promptTokens)} tokens is under the ${formatCount(denseBelow)}-token threshold for sparse attention)`;
  const counts = new Map<string, number>();
  let heads = 0;
  for (const layer of patterns) {
    for (const p of layer) {
      const name = patternName(p);
      counts.set(name, (counts.get(name) ?? 0) + 1);
      heads++;
    }
  }
  if (counts.size === 1) return `sparse: ${[...counts.keys()][0]} on all ${formatCount(heads)} heads`;
  return `sparse: ${[...counts].map(([name, n]) => `${name} on ${formatCount(n)} of ${formatCount(heads)} heads`).join(', ')}`;
}

/** Mean kept density of each layer (the report's per-head density averaged over heads). */
export function layerDensity(report: Pick<RunReport, 'density'>): number[] {
  return (report.density ?? []).map((l) => l.reduce((a, b) => a + b, 0) / Math.max(l.length, 1));
}

/** The bundled document for an adapter: software adapters get the short one (it finishes in under a minute). */
export function documentFor(software: boolean): 'short' | 'long' {
  return software ? 'short' : 'long';
}
