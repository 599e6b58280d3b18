/**
 * The pattern search (src/search/) end to end on SwiftShader: a tiny model with planted heads
 * (test/harness/planted_model.ts) searched at 1024 tokens over a scaled-down candidate space; the
 * recovered type per head, the written config loaded back, resuming from a partial result; and the
 * search's host-side arithmetic (rows, budget, choice) without a GPU.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testGpu } from './harness/gpu.ts';
import { memorySource } from './harness/loader_model.ts';
import { PLANTED, PLANTED_CONFIG, plantedModelFiles, plantedPrompt, SLASH_OFFSET } from './harness/planted_model.ts';
import { attentionPicture } from '../src/search/picture.ts';
import type { Gpu } from '../src/gpu/gpu.ts';
import { parseModelConfig, type ModelConfig } from '../src/model/config.ts';
import { Checkpoint } from '../src/model/safetensors.ts';
import { readJson } from '../src/model/source.ts';
import { loadWeights, type ModelWeights } from '../src/model/weights.ts';
import { LlamaRunner } from '../src/model/executor.ts';
import { loadPatternConfig } from '../src/attention/config.ts';
import { chooseCandidate, evaluatePatterns, resolveSearchOptions, sampleRows, scoringPlan, searchPatterns, type SearchProgress, type SearchResult } from '../src/search/search.ts';
import { aShapeDensity, blockSparseDensity, blockSparseTopKFor, PAPER_SPACE, paperSpaceScale, scaledPaperSpace, scaleSpace, type SearchSpace } from '../src/search/space.ts';
import type { CandidateScore } from '../src/search/score.ts';
import { AbortedError, BadInputError } from '../src/gpu/errors.ts';
import type { Pattern } from '../src/attention/types.ts';

/**
 * The test space at 1024 tokens: A-shape 32 sink + 224 window (256 keys a row, density 0.44: the
 * budget), MInference's two extreme Vertical-Slash shapes, (30, 2048) and (3000, 200), at 1/32 of
 * their sizes (the estimator clamps them to at least 30 columns and 50 diagonals, and always keeps
 * the first 30 columns and 100 diagonals), Block-Sparse top-4 (256 keys a row). Two Vertical-Slash
 * shapes instead of four keep the test at about a minute a search on SwiftShader.
 */
const SCALED = scaleSpace(PAPER_SPACE, 1 / 32);
const TEST_SPACE: SearchSpace = { aShape: { nInit: 32, nLocal: 224 }, verticalSlash: [SCALED.verticalSlash[0]!, SCALED.verticalSlash[3]!], blockSparseTopK: 4 };
const SEARCH = { space: TEST_SPACE, rows: 96, scoreFrom: 256 };

describe('search arithmetic (no GPU)', () => {
  it('samples rows past scoreFrom and always the last 64', () => {
    const rows = sampleRows(1000, 10, 200);
    expect(rows.filter((r) => r >= 936)).toHaveLength(64);
    expect(rows.filter((r) => r < 936)).toHaveLength(10);
    expect(Math.min(...rows)).toBeGreaterThanOrEqual(200);
    expect(rows).toEqual([...rows].sort((a, b) => a - b));
    // Short prompts: only the tail.
    expect(sampleRows(50, 10, 10)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('budget: the A-shape density; Block-Sparse scored at the top-k that fits it', () => {
    const o = resolveSearchOptions({});
    const plan = scoringPlan(32768, o);
    expect(plan.budget).toBeCloseTo(aShapeDensity(32768, 1024, 4096), 12);
    expect(plan.budget).toBeGreaterThan(0.28);
    expect(plan.budget).toBeLessThan(0.3);
    // 80 blocks of 64 keys: 5120 keys a row, A-shape's 1024 + 4096.
    expect(plan.blockSparseTopK).toBe(80);
    expect(blockSparseDensity(32768, 80)).toBeLessThanOrEqual(plan.budget);
    expect(blockSparseDensity(32768, 81)).toBeGreaterThan(plan.budget);
    expect(blockSparseTopKFor(32768, 1, 100)).toBe(100);
    expect(() => scoringPlan(5000, o)).toThrow(BadInputError);
  });

  it('choice: within budget first, then recall, then output error, then the space order', () => {
    const c = (recall: number, outputError: number, withinBudget = true): CandidateScore => {
      const p: Pattern = { type: 'dense' };
      return { name: 'x', scored: p, runs: p, recall, outputError, density: 0.3, withinBudget };
    };
    expect(chooseCandidate([c(0.9, 0.1), c(0.95, 0.1)], 0.005, 0.005)).toBe(1);
    expect(chooseCandidate([c(0.9, 0.1), c(0.99, 0.1, false)], 0.005, 0.005)).toBe(0);
    expect(chooseCandidate([c(0.9, 0.1, false), c(0.99, 0.1, false)], 0.005, 0.005)).toBe(1);
    expect(chooseCandidate([c(0.95, 0.1), c(0.953, 0.05)], 0.005, 0.005)).toBe(1);
    expect(chooseCandidate([c(0.95, 0.052), c(0.953, 0.05)], 0.005, 0.005)).toBe(0);
  });

  it('refuses prompts longer than a sliding window (the runtime runs the window there, not a config)', async () => {
    const config = parseModelConfig({ ...PLANTED_CONFIG, architectures: ['MistralForCausalLM'], model_type: 'mistral', sliding_window: 512 });
    const model = { config, runner: undefined as never };
    await expect(searchPatterns(undefined as never, model, plantedPrompt(), SEARCH)).rejects.toThrow(/sliding window of 512 tokens/);
    const dense: Pattern[][] = [0, 1].map(() => Array.from({ length: 4 }, (): Pattern => ({ type: 'dense' })));
    await expect(evaluatePatterns(undefined as never, model, plantedPrompt(), dense)).rejects.toThrow(/sliding window of 512 tokens/);
    // At most the window: allowed (fails later here, on the missing runner, not on the window).
    await expect(searchPatterns(undefined as never, model, plantedPrompt(512), { ...SEARCH, scoreFrom: 128 })).rejects.not.toThrow(/sliding window/);
  });

  it('fits the paper space to a prompt length: sizes scaled by tokens / 32K, Block-Sparse kept at top-100', () => {
    expect(paperSpaceScale(512)).toBe(1 / 64);
    expect(paperSpaceScale(32768)).toBe(1);
    expect(paperSpaceScale(40000)).toBe(1);
    expect(() => paperSpaceScale(0)).toThrow(BadInputError);
    expect(scaledPaperSpace(1)).toBe(PAPER_SPACE);
    const s = scaledPaperSpace(1 / 64);
    expect(s.aShape).toEqual({ nInit: 16, nLocal: 64 });
    expect(s.verticalSlash[0]).toEqual({ verticalSize: 1, slashSize: 32 });
    expect(s.blockSparseTopK).toBe(100);
  });

  it('rejects bad options with typed errors', () => {
    expect(() => resolveSearchOptions({ rows: 0 })).toThrow(BadInputError);
    expect(() => resolveSearchOptions({ costTolerance: -1 })).toThrow(BadInputError);
    expect(() => resolveSearchOptions({ space: { ...PAPER_SPACE, blockSparseTopK: 0 } })).toThrow(BadInputError);
    expect(() => resolveSearchOptions({ space: { ...PAPER_SPACE, verticalSlash: [{ verticalSize: 1.5, slashSize: 3 }] } })).toThrow(BadInputError);
  });
});

describe('searchPatterns on planted heads (SwiftShader)', () => {
  let gpu: Gpu;
  let config: ModelConfig;
  let weights: ModelWeights;
  let runner: LlamaRunner;
  let full: SearchResult;
  const progress: SearchProgress[] = [];
  const ids = plantedPrompt();

  beforeAll(async () => {
    gpu = await testGpu();
    const source = memorySource(plantedModelFiles(), 'planted');
    config = parseModelConfig(await readJson(source, 'config.json'));
    weights = await loadWeights(gpu, await Checkpoint.open(source), config);
    runner = await LlamaRunner.create(gpu, { config, weights, kvDType: 'f32', matmulVariant: 'f32' });
  });

  afterAll(() => {
    runner?.destroy();
    weights?.destroy();
  });

  it('recovers the planted pattern type of every head in both layers', async () => {
    const t0 = performance.now();
    full = await searchPatterns(gpu, { config, runner }, ids, { ...SEARCH, onProgress: (p) => progress.push(p) });
    const ms = performance.now() - t0;
    const got = full.layers.map((l) => l.heads.map((h) => h.pattern.type));
    const table = full.layers.flatMap((l) => l.heads.map((h) => `L${l.layer}H${h.head}: ${h.candidates.map((c) => `${c.name} r=${c.recall.toFixed(3)} e=${c.outputError.toFixed(3)} d=${c.density.toFixed(2)}${c.withinBudget ? '' : '!'}`).join(' | ')}`));
    console.log(`search ${(ms / 1000).toFixed(1)} s\n${table.join('\n')}`);
    expect(got).toEqual([PLANTED, PLANTED]);
    for (const l of full.layers) for (const h of l.heads) expect(h.recall, `layer ${l.layer} head ${h.head}`).toBeGreaterThan(0.95);
    expect(full.promptTokens).toBe(1024);
    // One progress report per candidate and the dense reference, per layer; fractions rise to 1.
    expect(progress.filter((p) => p.phase === 'score' && p.layer === 1).map((p) => p.stage)).toEqual(['dense', ...full.layers[1]!.heads[0]!.candidates.map((c) => c.name)]);
    expect(progress.map((p) => p.fraction)).toEqual([...progress.map((p) => p.fraction)].sort((a, b) => a - b));
  }, 600_000);

  it('candidates were compared at equal measured cost', () => {
    for (const l of full.layers) {
      for (const h of l.heads) {
        for (const c of h.candidates) {
          if (c.scored.type === 'vertical_and_slash' || c.scored.type === 'stream_llm') expect(c.density / full.budget, `${c.name} on L${l.layer}H${h.head}`).toBeLessThan(1.1);
          if (c.scored.type === 'vertical_and_slash') expect(c.density / full.budget, `${c.name} on L${l.layer}H${h.head}`).toBeGreaterThan(0.9);
          if (c.scored.type === 'block_sparse') expect(c.density).toBeLessThanOrEqual(full.budget);
        }
      }
    }
  });

  it('writes MInference JSON that loads back to the chosen patterns', () => {
    const loaded = loadPatternConfig(full.json, { layers: 2, heads: 4 }, { blockSparseTopK: TEST_SPACE.blockSparseTopK });
    expect(loaded).toEqual(full.patterns);
    expect(full.patterns).toEqual(full.layers.map((l) => l.heads.map((h) => h.pattern)));
    // Four values per entry, the 4th the head's recall.
    expect(full.config[0]!['1']![3]).toBeCloseTo(full.layers[0]!.heads[1]!.recall, 12);
  });

  it('resumes from a partial result: earlier layers are kept, not searched again', async () => {
    const seen: SearchProgress[] = [];
    const resumed = await searchPatterns(gpu, { config, runner }, ids, { ...SEARCH, resume: full.layers.slice(0, 1), onProgress: (p) => seen.push(p) });
    expect(seen.some((p) => p.layer === 0)).toBe(false);
    expect(resumed.layers[0]).toBe(full.layers[0]);
    expect(resumed.patterns).toEqual(full.patterns);
    expect(resumed.layers[1]!.heads.map((h) => h.recall)).toEqual(full.layers[1]!.heads.map((h) => h.recall));
    // All layers given: nothing runs.
    const none = await searchPatterns(gpu, { config, runner }, ids, { ...SEARCH, resume: full.layers, onProgress: () => expect.unreachable() });
    expect(none.json).toBe(full.json);
    await expect(searchPatterns(gpu, { config, runner }, ids, { ...SEARCH, resume: [full.layers[1]!] })).rejects.toThrow(/resume entry 0 is layer 1/);
  }, 600_000);

  it('cancels between candidates: an abort while a layer is scored stops before the next candidate', async () => {
    const ac = new AbortController();
    const stages: string[] = [];
    const onProgress = (p: SearchProgress): void => {
      if (p.phase !== 'score') return;
      stages.push(p.stage!);
      if (stages.length === 2) ac.abort();
    };
    await expect(searchPatterns(gpu, { config, runner }, ids, { ...SEARCH, signal: ac.signal, onProgress })).rejects.toThrow(AbortedError);
    expect(stages).toEqual(['dense', 'stream_llm(32, 224)']);
    expect(runner.attentionConfig).toBeUndefined();
  }, 300_000);

  it('evaluatePatterns measures a config as the search measured its choice', async () => {
    const ev = await evaluatePatterns(gpu, { config, runner }, ids, full.patterns, { rows: SEARCH.rows, scoreFrom: SEARCH.scoreFrom });
    expect(ev.layers.map((l) => l.heads.map((h) => h.recall))).toEqual(full.layers.map((l) => l.heads.map((h) => h.recall)));
    expect(ev.layers.map((l) => l.heads.map((h) => h.density))).toEqual(full.layers.map((l) => l.heads.map((h) => h.density)));
    expect(ev.meanRecall).toBeCloseTo(full.meanRecall, 12);
    // Dense heads cost everything and lose nothing; a wrong table is refused.
    const dense = await evaluatePatterns(gpu, { config, runner }, ids.subarray(0, 300), [[...full.patterns[0]!.slice(0, 3), { type: 'dense' }], full.patterns[1]!], { rows: 8 });
    expect(dense.layers[0]!.heads[3]).toEqual({ pattern: { type: 'dense' }, recall: 1, outputError: 0, density: 1 });
    await expect(evaluatePatterns(gpu, { config, runner }, ids, [full.patterns[0]!])).rejects.toThrow(/1 layers of patterns/);
  }, 300_000);

  it('pictures a head: the dense attention of the last query block beside the keys its pattern keeps', async () => {
    const vertical = full.layers[0]!.heads[1]!.pattern;
    const pic = await attentionPicture(gpu, { config, runner }, ids, { layer: 0, head: 1, pattern: vertical, bins: 256 });
    expect([pic.rowStart, pic.rows, pic.bins, pic.binKeys]).toEqual([960, 64, 256, 4]);
    for (let r = 0; r < pic.rows; r++) {
      const row = pic.dense.subarray(r * pic.bins, (r + 1) * pic.bins);
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      for (let b = 0; b < pic.bins; b++) expect(pic.keptMass[r * pic.bins + b]!).toBeLessThanOrEqual(row[b]! + 1e-7);
    }
    // The marker head: the last row's mass sits in the markers' bins, and the searched pattern keeps it.
    const last = pic.dense.subarray((pic.rows - 1) * pic.bins);
    const markerBins = new Set([5, 150, 290, 420, 560, 700, 830, 960].map((j) => Math.floor(j / pic.binKeys)));
    expect([...markerBins].reduce((a, b) => a + last[b]!, 0)).toBeGreaterThan(0.99);
    expect(pic.recall).toBeGreaterThan(0.99);
    expect(pic.columns.length + pic.ranges.length).toBeGreaterThan(0);
    // A-shape on the same head keeps the sink and the window only.
    const a = await attentionPicture(gpu, { config, runner }, ids, { layer: 0, head: 1, pattern: { type: 'stream_llm', nInit: 32, nLocal: 224 } });
    expect(a.ranges).toEqual([[0, 32], [737, 1024]]);
    expect(a.recall).toBeLessThan(0.7);
    expect(a.keptKeys[(a.rows - 1) * a.bins + 100]).toBe(0);
    expect(a.keptKeys[(a.rows - 1) * a.bins + 255]).toBe(1);
    // The slash head: the last row's peak is SLASH_OFFSET keys back.
    const s = await attentionPicture(gpu, { config, runner }, ids, { layer: 1, head: 2, pattern: full.layers[1]!.heads[2]!.pattern });
    const row = s.dense.subarray((s.rows - 1) * s.bins);
    expect(row.indexOf(Math.max(...row))).toBe(Math.floor((1023 - SLASH_OFFSET) / s.binKeys));
    expect(runner.attentionConfig).toBeUndefined();
  }, 300_000);

  it('leaves the runner as it was and refuses short or tokenizer-less input', async () => {
    expect(runner.attentionConfig).toBeUndefined();
    await expect(searchPatterns(gpu, { config, runner }, 'some text', SEARCH)).rejects.toThrow(/needs the model tokenizer/);
    await expect(searchPatterns(gpu, { config, runner }, ids.subarray(0, 200), SEARCH)).rejects.toThrow(/every candidate would be dense/);
    await expect(searchPatterns(gpu, { config, runner }, ids, { ...SEARCH, length: 2000 })).rejects.toThrow(/fewer than the 2000 asked/);
  });
});
