/**
 * MInference's kernel-aware pattern search, inside the runtime: on a calibration prompt, for every
 * layer and head, score the candidate patterns of the search space at equal cost with our own
 * kernels on this device (score.ts, space.ts) and pick one per head; the result holds every score
 * and the choice as MInference's per-layer, per-head JSON config, which MInference loads and
 * loadPatternConfig loads back unchanged.
 *
 *   const result = await searchPatterns(gpu, model, calibrationText, { length: 32768, onLayer, onProgress });
 *   await writeFile('config.json', result.json);
 *   model.setAttention(result.patterns);
 *
 * One prefill of the calibration prompt with dense attention runs the model; the runner hands every
 * layer's whole-prompt q, k and v to the search before that layer's attention (PrefillOptions.onLayer),
 * so only one layer's tensors are alive at a time. Layers of a partial result (options.resume, e.g. a
 * file written after each layer by onLayer) are not searched again; the prefill stops after the last
 * layer searched.
 *
 * Choice per head (candidates in the space's order: A-shape, the Vertical-Slash sizes, Block-Sparse,
 * MInference's own search order):
 *   1. candidates over budget (density > budget * (1 + costTolerance)) are left out (unless all are);
 *   2. the highest recall wins; candidates within recallTie of it are tied;
 *   3. among tied ones, the lowest output error wins; those within errorTie of it are tied;
 *   4. the first in the space's order wins (A-shape's kernel needs no estimation and is the cheapest).
 */
import type { Gpu } from '../gpu/gpu.ts';
import { AbortedError, BadInputError } from '../gpu/errors.ts';
import type { ModelConfig } from '../model/config.ts';
import type { Pattern, PatternType } from '../attention/types.ts';
import { validatePattern } from '../attention/attention.ts';
import { formatPatternConfig, patternConfigFromTable, type PatternConfigJson } from '../attention/config.ts';
import { GroupScorer, type CandidateScore, type PatternScore, type ScoringPlan } from './score.ts';
import { aShapeDensity, blockSparseTopKFor, nominalCandidates, PAPER_SPACE, validateSpace, type SearchSpace } from './space.ts';

import { visitLayers, type SearchModel } from './layers.ts';

export type { CandidateScore, PatternScore } from './score.ts';
export type { SearchModel } from './layers.ts';

export interface SearchOptions {
  /** Calibration prompt length in tokens: the input's first `length` tokens. Default 32768 (token-id input: all of it). */
  length?: number;
  /** Candidates (default PAPER_SPACE, meant for 32K+ prompts; scaleSpace() for shorter ones). */
  space?: SearchSpace;
  /** Query rows sampled past scoreFrom, besides the last 64 rows. Default 256. */
  rows?: number;
  /** First query row scored. Default a quarter of the prompt (rows past the first few thousand at 32K). */
  scoreFrom?: number;
  /** Density allowed above the budget, as a fraction. Default 0.1. */
  costTolerance?: number;
  /** Re-estimations when equalising a Vertical-Slash candidate to the budget. Default 6. */
  equalizeSteps?: number;
  /** Recall within this of the best counts as a tie. Default 0.005. */
  recallTie?: number;
  /** Among recall ties, output error within this of the lowest counts as a tie. Default 0.005. */
  errorTie?: number;
  /** Results of layers 0..n-1 from an earlier, interrupted search: they are kept, not searched again. */
  resume?: readonly LayerSearch[];
  /** Accept a prompt longer than max_position_embeddings. */
  allowLongPrompt?: boolean;
  /** Cancels the search at the next prefill step or candidate, with an AbortedError. */
  signal?: AbortSignal;
  onProgress?: (p: SearchProgress) => void;
  /** After each layer searched (e.g. to save a partial result). */
  onLayer?: (layer: LayerSearch) => void | Promise<void>;
}

export interface SearchProgress {
  layer: number;
  numLayers: number;
  /** 'prefill': the model runs up to the layer; 'score': a candidate (or 'dense', the reference) is measured. */
  phase: 'prefill' | 'score';
  /** The candidate being measured ('dense' for the reference). */
  stage?: string;
  /** Share of the layers to search that is done, 0..1. */
  fraction: number;
  elapsedMs: number;
}

export interface HeadSearch {
  head: number;
  /** The chosen candidate's position in `candidates`. */
  chosen: number;
  /** What the config runs on this head (the chosen candidate's `runs`). */
  pattern: Pattern;
  recall: number;
  outputError: number;
  density: number;
  candidates: CandidateScore[];
}

export interface LayerSearch {
  layer: number;
  heads: HeadSearch[];
  /** Chosen heads per pattern type. */
  mix: Partial<Record<PatternType, number>>;
  /** Mean over heads of the chosen candidates' recall and density. */
  meanRecall: number;
  meanDensity: number;
  /** Time spent scoring the layer. */
  ms: number;
}

export interface SearchResult {
  promptTokens: number;
  /** The cost budget: the A-shape candidate's density at this prompt length. */
  budget: number;
  space: SearchSpace;
  /** Block-Sparse's top-k as scored (the budget's); the config runs space.blockSparseTopK. */
  scoredBlockSparseTopK: number;
  layers: LayerSearch[];
  /** Pattern[layer][head]: what the config runs. */
  patterns: Pattern[][];
  /** MInference's JSON value (the 4th number of each entry: the head's recall) and its text. */
  config: PatternConfigJson;
  json: string;
  /** Mean recall of the chosen patterns over every head. */
  meanRecall: number;
  ms: number;
}

/** Rows past scoreFrom get the spread; the last rows are always scored (where Vertical-Slash estimates). */
const LAST_ROWS = 64;

export interface ResolvedSearchOptions {
  space: SearchSpace;
  rows: number;
  scoreFrom: number | undefined;
  costTolerance: number;
  equalizeSteps: number;
  recallTie: number;
  errorTie: number;
}

function nonNegative(v: number | undefined, name: string, fallback: number, integer = false): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (integer && !Number.isInteger(v))) throw new BadInputError(`search: ${name} must be a non-negative ${integer ? 'integer' : 'number'}, got ${String(v)}`);
  return v;
}

/** Checks and fills in the numeric options. */
export function resolveSearchOptions(o: SearchOptions): ResolvedSearchOptions {
  const space = o.space ?? PAPER_SPACE;
  validateSpace(space);
  const rows = nonNegative(o.rows, 'rows', 256, true);
  if (rows < 1) throw new BadInputError('search: rows must be at least 1');
  return {
    space,
    rows,
    scoreFrom: o.scoreFrom === undefined ? undefined : nonNegative(o.scoreFrom, 'scoreFrom', 0, true),
    costTolerance: nonNegative(o.costTolerance, 'costTolerance', 0.1),
    equalizeSteps: nonNegative(o.equalizeSteps, 'equalizeSteps', 6, true),
    recallTie: nonNegative(o.recallTie, 'recallTie', 0.005),
    errorTie: nonNegative(o.errorTie, 'errorTie', 0.005),
  };
}

/**
 * The scored rows of a prompt of T tokens: `count` rows spread evenly over [scoreFrom, T - 64)
 * (when that is not empty) and the last min(64, T) rows, ascending and distinct.
 */
export function sampleRows(T: number, count: number, scoreFrom: number): number[] {
  const tail = Math.max(0, T - LAST_ROWS);
  const set = new Set<number>();
  if (scoreFrom < tail) {
    const span = tail - scoreFrom;
    for (let i = 0; i < count; i++) set.add(scoreFrom + Math.floor(((i + 0.5) * span) / count));
  }
  for (let i = tail; i < T; i++) set.add(i);
  return [...set].sort((a, b) => a - b);
}

/** The rows, budget and Block-Sparse top-k of a search at T tokens. */
export function scoringPlan(T: number, o: ResolvedSearchOptions): ScoringPlan {
  const a = o.space.aShape;
  if (T <= a.nInit + a.nLocal) {
    throw new BadInputError(`search: the prompt's ${T} tokens fit the A-shape candidate's ${a.nInit} sink + ${a.nLocal} window keys, so every candidate would be dense; use a longer prompt or a smaller space (scaleSpace)`);
  }
  const budget = aShapeDensity(T, a.nInit, a.nLocal);
  const scoreFrom = Math.min(o.scoreFrom ?? Math.floor(T / 4), T - 1);
  return {
    promptLen: T,
    rows: sampleRows(T, o.rows, scoreFrom),
    space: o.space,
    budget,
    blockSparseTopK: blockSparseTopKFor(T, budget, o.space.blockSparseTopK),
    costTolerance: o.costTolerance,
    equalizeSteps: o.equalizeSteps,
  };
}

/** The candidate a head gets (see the module comment for the rule). */
export function chooseCandidate(candidates: readonly CandidateScore[], recallTie: number, errorTie: number): number {
  const all = candidates.map((c, i) => ({ c, i }));
  const within = all.filter((x) => x.c.withinBudget);
  const pool = within.length ? within : all;
  const best = Math.max(...pool.map((x) => x.c.recall));
  const tied = pool.filter((x) => x.c.recall >= best - recallTie);
  const lowest = Math.min(...tied.map((x) => x.c.outputError));
  return tied.find((x) => x.c.outputError <= lowest + errorTie)!.i;
}

/** One layer's result from its heads' candidate scores. */
export function layerResult(layer: number, scores: readonly CandidateScore[][], o: Pick<ResolvedSearchOptions, 'recallTie' | 'errorTie'>, ms: number): LayerSearch {
  const heads = scores.map((candidates, head): HeadSearch => {
    const chosen = chooseCandidate(candidates, o.recallTie, o.errorTie);
    const c = candidates[chosen]!;
    return { head, chosen, pattern: c.runs, recall: c.recall, outputError: c.outputError, density: c.density, candidates: [...candidates] };
  });
  const mix: Partial<Record<PatternType, number>> = {};
  for (const h of heads) mix[h.pattern.type] = (mix[h.pattern.type] ?? 0) + 1;
  const mean = (f: (h: HeadSearch) => number): number => heads.reduce((a, h) => a + f(h), 0) / heads.length;
  return { layer, heads, mix, meanRecall: mean((h) => h.recall), meanDensity: mean((h) => h.density), ms };
}

/** A one-line summary of a layer: the pattern mix and the mean recall and density. */
export function formatLayerSummary(l: LayerSearch, numLayers: number): string {
  const mix = Object.entries(l.mix)
    .sort((a, b) => b[1] - a[1])
    .map(([t, n]) => `${n} ${t}`)
    .join(', ');
  return `layer ${l.layer + 1}/${numLayers}: ${mix}; mean recall ${l.meanRecall.toFixed(3)}, density ${(l.meanDensity * 100).toFixed(1)}% (${(l.ms / 1000).toFixed(1)} s)`;
}

/** Checks that resumed layers fit the model: layers 0..n-1, one head result per query head, valid patterns. */
function checkResume(resume: readonly LayerSearch[], c: ModelConfig): LayerSearch[] {
  if (!Array.isArray(resume)) throw new BadInputError('search: resume must be a list of layer results');
  if (resume.length > c.numLayers) throw new BadInputError(`search: resume holds ${resume.length} layers, the model has ${c.numLayers}`);
  resume.forEach((l, i) => {
    if (!l || l.layer !== i) throw new BadInputError(`search: resume entry ${i} is layer ${String(l?.layer)}; a partial result lists layers 0, 1, ... in order`);
    if (!Array.isArray(l.heads) || l.heads.length !== c.numHeads) throw new BadInputError(`search: resumed layer ${i} has ${l.heads?.length} heads, the model has ${c.numHeads}`);
    l.heads.forEach((h: HeadSearch, j: number) => {
      if (h?.head !== j) throw new BadInputError(`search: resumed layer ${i} lists head ${String(h?.head)} at position ${j}`);
      validatePattern(h.pattern, `search: resumed layer ${i} head ${j}`);
    });
  });
  return [...resume];
}

/**
 * A model with a sliding window (Mistral v0.1, Phi-3, some Qwen2) runs the window, not a pattern
 * config, on its windowed layers once the prompt is longer than the window (the executor does not
 * combine them): a search there would score patterns the runtime never runs, against a dense
 * reference the model does not compute.
 */
function checkWindow(c: ModelConfig, T: number): void {
  const W = c.slidingWindow;
  if (W !== undefined && T > W && (c.slidingWindowFromLayer ?? 0) < c.numLayers) {
    throw new BadInputError(`search: the model attends through a sliding window of ${W} tokens${c.slidingWindowFromLayer ? ` from layer ${c.slidingWindowFromLayer} on` : ''}, which the runtime runs instead of a pattern config for prompts longer than it; search with a prompt of at most ${W} tokens`);
  }
}

/** The calibration prompt's token ids: the input's first `length` tokens. */
export function calibrationIds(model: Pick<SearchModel, 'tokenizer'>, input: string | Uint32Array, length: number | undefined): Uint32Array {
  if (length !== undefined && (!Number.isSafeInteger(length) || length < 1)) throw new BadInputError(`search: length must be a positive integer, got ${String(length)}`);
  if (input instanceof Uint32Array) {
    if (length !== undefined && input.length < length) throw new BadInputError(`search: the calibration prompt has ${input.length} tokens, fewer than the ${length} asked`);
    return length === undefined ? input : input.subarray(0, length);
  }
  if (typeof input !== 'string') throw new BadInputError('search: the calibration input must be text or token ids (Uint32Array)');
  if (!model.tokenizer) throw new BadInputError('search: text input needs the model tokenizer (give token ids otherwise)');
  const want = length ?? 32768;
  // Tokenize a prefix that should hold enough tokens, growing it if it does not: long files are cut.
  let chars = Math.min(input.length, want * 8);
  for (;;) {
    const ids = model.tokenizer.encode(input.slice(0, chars));
    if (ids.length >= want) return Uint32Array.from(ids.slice(0, want));
    if (chars >= input.length) throw new BadInputError(`search: the calibration text has ${ids.length} tokens, fewer than the ${want} asked (give a longer text or a smaller length)`);
    chars = Math.min(input.length, chars * 2);
  }
}

/** The searched patterns as a table and as MInference's JSON (4th number: the head's recall). */
export function configFromLayers(layers: readonly LayerSearch[]): { patterns: Pattern[][]; config: PatternConfigJson; json: string } {
  const patterns = layers.map((l) => l.heads.map((h) => h.pattern));
  const config = patternConfigFromTable(
    patterns,
    layers.map((l) => l.heads.map((h) => h.recall)),
  );
  return { patterns, config, json: formatPatternConfig(config) };
}

/** Runs the search; see the module comment. The runner's attention settings are restored afterwards. */
export async function searchPatterns(gpu: Gpu, model: SearchModel, input: string | Uint32Array, options: SearchOptions = {}): Promise<SearchResult> {
  const t0 = performance.now();
  const c = model.config;
  const o = resolveSearchOptions(options);
  const layers = checkResume(options.resume ?? [], c);
  const ids = calibrationIds(model, input, options.length);
  checkWindow(c, ids.length);
  const plan = scoringPlan(ids.length, o);
  const first = layers.length;
  const L = c.numLayers;
  const progress = (layer: number, phase: SearchProgress['phase'], within: number, stage?: string): void => {
    // A layer's scoring is one long step: the signal is checked before each candidate too, not only
    // between the prefill's steps (the scorer frees its buffers on the way out).
    if (options.signal?.aborted) throw new AbortedError('search');
    options.onProgress?.({ layer, numLayers: L, phase, stage, fraction: Math.min(1, (layer - first + within) / Math.max(1, L - first)), elapsedMs: performance.now() - t0 });
  };
  if (first < L) {
    const scorer = await GroupScorer.create(gpu, c.headDim, model.runner.attentionCompute);
    try {
      await visitLayers(
        model,
        ids,
        first,
        L - 1,
        async (lt) => {
          const t1 = performance.now();
          const scores: CandidateScore[][] = [];
          for (let gi = 0; gi < lt.groups.length; gi++) {
            const g = lt.groups[gi]!;
            const got = await scorer.score(lt.q[gi]!, lt.k[gi]!, lt.v[gi]!, plan, (stage, i, n) => progress(lt.layer, 'score', (gi + i / n) / lt.groups.length, stage));
            got.forEach((s, h) => (scores[g.headStart + h] = s));
          }
          const result = layerResult(lt.layer, scores, o, performance.now() - t1);
          layers.push(result);
          await options.onLayer?.(result);
        },
        { signal: options.signal, allowLongPrompt: options.allowLongPrompt, onPrefill: (l) => progress(l, 'prefill', 0) },
      );
    } finally {
      scorer.destroy();
    }
  }
  const out = configFromLayers(layers);
  const meanRecall = layers.reduce((a, l) => a + l.heads.reduce((b, h) => b + h.recall, 0), 0) / (L * c.numHeads);
  return {
    promptTokens: ids.length,
    budget: plan.budget,
    space: plan.space,
    scoredBlockSparseTopK: plan.blockSparseTopK,
    layers,
    ...out,
    meanRecall,
    ms: performance.now() - t0,
  };
}

export interface EvaluateOptions {
  /** Prompt length in tokens (as SearchOptions.length). */
  length?: number;
  /** Rows sampled past scoreFrom besides the last 64 (default 256). */
  rows?: number;
  /** First query row scored (default a quarter of the prompt). */
  scoreFrom?: number;
  allowLongPrompt?: boolean;
  signal?: AbortSignal;
  onLayer?: (layer: LayerEvaluation) => void | Promise<void>;
}

export interface LayerEvaluation {
  layer: number;
  heads: PatternScore[];
  meanRecall: number;
  meanDensity: number;
  ms: number;
}

export interface PatternEvaluation {
  promptTokens: number;
  layers: LayerEvaluation[];
  /** Means over every head of the model. */
  meanRecall: number;
  meanDensity: number;
  ms: number;
}

/**
 * How well given patterns (e.g. a searched config) keep each head's attention on another prompt:
 * recall, output error against dense and density per head, measured as the search measures its
 * candidates (same rows, same kernels), with nothing chosen. For held-out text checks of a config.
 */
export async function evaluatePatterns(gpu: Gpu, model: SearchModel, input: string | Uint32Array, patterns: readonly (readonly Pattern[])[], options: EvaluateOptions = {}): Promise<PatternEvaluation> {
  const t0 = performance.now();
  const c = model.config;
  if (!Array.isArray(patterns) || patterns.length !== c.numLayers) throw new BadInputError(`evaluate: ${patterns?.length} layers of patterns, the model has ${c.numLayers}`);
  patterns.forEach((l, i) => {
    if (!Array.isArray(l) || l.length !== c.numHeads) throw new BadInputError(`evaluate: layer ${i} lists ${l?.length} patterns, the model has ${c.numHeads} heads`);
    l.forEach((p, h) => validatePattern(p, `evaluate: layer ${i} head ${h}`));
  });
  const o = resolveSearchOptions({ rows: options.rows, scoreFrom: options.scoreFrom });
  const ids = calibrationIds(model, input, options.length);
  const T = ids.length;
  checkWindow(c, T);
  const rows = sampleRows(T, o.rows, Math.min(o.scoreFrom ?? Math.floor(T / 4), T - 1));
  const layers: LayerEvaluation[] = [];
  const scorer = await GroupScorer.create(gpu, c.headDim, model.runner.attentionCompute);
  try {
    await visitLayers(
      model,
      ids,
      0,
      c.numLayers - 1,
      async (lt) => {
        const t1 = performance.now();
        const heads: PatternScore[] = [];
        for (let gi = 0; gi < lt.groups.length; gi++) {
          const g = lt.groups[gi]!;
          const got = await scorer.evaluate(lt.q[gi]!, lt.k[gi]!, lt.v[gi]!, rows, patterns[lt.layer]!.slice(g.headStart, g.headStart + g.heads));
          got.forEach((s, h) => (heads[g.headStart + h] = s));
        }
        const mean = (f: (s: PatternScore) => number): number => heads.reduce((a, s) => a + f(s), 0) / heads.length;
        const l: LayerEvaluation = { layer: lt.layer, heads, meanRecall: mean((s) => s.recall), meanDensity: mean((s) => s.density), ms: performance.now() - t1 };
        layers.push(l);
        await options.onLayer?.(l);
      },
      { signal: options.signal, allowLongPrompt: options.allowLongPrompt },
    );
  } finally {
    scorer.destroy();
  }
  const all = layers.flatMap((l) => l.heads);
  return {
    promptTokens: T,
    layers,
    meanRecall: all.reduce((a, s) => a + s.recall, 0) / all.length,
    meanDensity: all.reduce((a, s) => a + s.density, 0) / all.length,
    ms: performance.now() - t0,
  };
}
