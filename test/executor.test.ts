/**
 * End-to-end executor tests on tiny random fixture models (scripts/make-fixtures.ts) against the
 * float64 CPU reference (test/reference/model.ts). Shapes are tiny: SwiftShader runs ~0.5 GFLOP/s.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testGpu } from './harness/gpu.ts';
import { FIXTURES, fixtureConfig, fixtureTensors, writeFixture } from '../scripts/make-fixtures.ts';
import { openLocalModel, readJson } from '../src/model/source.ts';
import { parseModelConfig, type ModelConfig } from '../src/model/config.ts';
import { Checkpoint, encodeSafetensors } from '../src/model/safetensors.ts';
import { loadWeights, type ModelWeights } from '../src/model/weights.ts';
import { AbortedError, LlamaRunner, type RunnerOptions } from '../src/model/executor.ts';
import { PlanError } from '../src/model/plan.ts';
import { BadInputError, DeviceLostError } from '../src/gpu/errors.ts';
import { requestGpu } from '../src/gpu/device.ts';
import { loadReferenceModel, referenceForward, type RefModel } from './reference/model.ts';
import type { Gpu } from '../src/gpu/gpu.ts';
import type { Pattern } from '../src/attention/types.ts';
import { openModel } from '../src/model/session.ts';

function relL2(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  expect(got.length).toBe(ref.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = got[i]! - ref[i]!;
    num += d * d;
    den += ref[i]! * ref[i]!;
  }
  return Math.sqrt(num / den);
}

function argmax(a: ArrayLike<number>): number {
  let b = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[b]!) b = i;
  return b;
}

/** Seeded ids in [0, vocab). */
function promptIds(n: number, vocab: number, seed: number): Uint32Array {
  let s = seed >>> 0;
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s % vocab;
  }
  return out;
}

interface Loaded {
  config: ModelConfig;
  weights: ModelWeights;
  ref: RefModel;
}

let dir = '';
let gpu: Gpu;
const models = new Map<string, Loaded>();

/**
 * A fixture model from scripts/make-fixtures.ts. With `vocab`, its embedding and LM head are cut to
 * the first `vocab` rows (and config.json says so): the real tokenizers' 128K-151K rows make every
 * LM-head product take seconds on SwiftShader, and most tests here only need the transformer.
 */
async function load(name: string, vocab?: number, overrides: Record<string, unknown> = {}): Promise<Loaded> {
  const tag = Object.entries(overrides).map(([k, v]) => `-${k}=${String(v)}`).join('');
  const key = `${name}:${vocab ?? 'full'}${tag}`;
  let m = models.get(key);
  if (m) return m;
  const spec = FIXTURES[name]!;
  const d = join(dir, key.replace(':', '-'));
  if (vocab === undefined) {
    await writeFixture(d, spec);
  } else {
    await mkdir(d, { recursive: true });
    const tensors = fixtureTensors(spec).map((t) => {
      if (t.name !== 'model.embed_tokens.weight' && t.name !== 'lm_head.weight') return t;
      const rowBytes = t.data.byteLength / t.shape[0]!;
      return { ...t, shape: [vocab, t.shape[1]!], data: t.data.subarray(0, vocab * rowBytes) };
    });
    await writeFile(join(d, 'model.safetensors'), encodeSafetensors(tensors, { format: 'pt' }));
    const config = { ...fixtureConfig(spec), vocab_size: vocab, bos_token_id: 0, eos_token_id: vocab - 1, ...overrides };
    await writeFile(join(d, 'config.json'), JSON.stringify(config));
  }
  const source = await openLocalModel(d);
  const config = parseModelConfig(await readJson(source, 'config.json'));
  const weights = await loadWeights(gpu, await Checkpoint.open(source), config);
  m = { config, weights, ref: await loadReferenceModel(d) };
  models.set(key, m);
  return m;
}

/** Vocabulary of the cut fixtures. */
const SMALL_VOCAB = 500;

async function runner(m: Loaded, options: Partial<RunnerOptions> = {}): Promise<LlamaRunner> {
  return LlamaRunner.create(gpu, { config: m.config, weights: m.weights, kvDType: 'f32', chunkSize: 16, matmulVariant: 'f32', ...options });
}

/** Every head Vertical-Slash with budgets that cover every key: must equal dense attention. */
function coveringPatterns(c: ModelConfig): Pattern[][] {
  return Array.from({ length: c.numLayers }, () => Array.from({ length: c.numHeads }, (): Pattern => ({ type: 'vertical_and_slash', verticalSize: 100000, slashSize: 100000 })));
}

beforeAll(async () => {
  gpu = await testGpu();
  dir = await mkdtemp(join(tmpdir(), 'executor-'));
});

afterAll(async () => {
  for (const m of models.values()) m.weights.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('LlamaRunner prefill', () => {
  it('llama GQA bf16: last-token logits and hidden state match the float64 reference across chunk boundaries (T=41, chunk 16)', async () => {
    const m = await load('llama-untied-bf16');
    const r = await runner(m);
    const ids = promptIds(41, m.config.vocabSize, 1);
    const got = await r.prefill(ids, { returnHidden: true });
    const ref = await referenceForward(m.ref, [...ids]);
    expect(got.plan.nChunks).toBe(3);
    const T = ids.length;
    const H = m.config.hiddenSize;
    const refHidden = ref.hidden[m.config.numLayers]!.subarray((T - 1) * H, T * H);
    expect(relL2(got.hidden!, refHidden)).toBeLessThan(1e-4);
    expect(relL2(got.logits, ref.logits)).toBeLessThan(1e-4);
    expect(argmax(got.logits)).toBe(argmax(ref.logits));
    r.destroy();
  }, 400_000);

  it('qwen2 (q/k/v biases, tied): logits match the reference; chunked (16) equals unchunked', async () => {
    const m = await load('qwen2-tiny-bf16', SMALL_VOCAB);
    const ids = promptIds(37, m.config.vocabSize, 2);
    const chunked = await runner(m, { chunkSize: 16 });
    const whole = await runner(m, { chunkSize: 64 });
    const a = await chunked.prefill(ids);
    const b = await whole.prefill(ids);
    expect(b.plan.nChunks).toBe(1);
    const ref = await referenceForward(m.ref, [...ids]);
    expect(relL2(a.logits, ref.logits)).toBeLessThan(1e-4);
    expect(relL2(a.logits, b.logits)).toBeLessThan(1e-5);
    chunked.destroy();
    whole.destroy();
  }, 120_000);

  it.each(['phi3-longrope-bf16', 'phi4-partial-bf16'])('%s (fused qkv_proj / gate_up_proj, longrope; phi4: partial rotary 96 of 128): logits match the reference with the short and the long factors', async (name) => {
    const m = await load(name, SMALL_VOCAB);
    const r = await runner(m);
    // original_max_position_embeddings is 32: 20 tokens use the short factors, 41 the long ones
    // (and cross chunk boundaries); running the short prompt again after the long one rebuilds the table.
    for (const T of [20, 41, 20]) {
      const ids = promptIds(T, m.config.vocabSize, 7);
      const got = await r.prefill(ids, { returnHidden: true });
      const ref = await referenceForward(m.ref, [...ids]);
      const H = m.config.hiddenSize;
      expect(relL2(got.hidden!, ref.hidden[m.config.numLayers]!.subarray((T - 1) * H, T * H)), `T=${T}`).toBeLessThan(1e-4);
      expect(relL2(got.logits, ref.logits), `T=${T}`).toBeLessThan(1e-4);
    }
    r.destroy();
  }, 200_000);

  it('dense equals sparse with budgets covering everything; split Q head groups equal one group', async () => {
    const m = await load('llama-tied-f32', SMALL_VOCAB);
    const ids = promptIds(70, m.config.vocabSize, 3);
    const dense = await runner(m);
    const sparse = await runner(m, { attentionConfig: coveringPatterns(m.config), denseBelow: 0 });
    const split = await runner(m, { maxKvHeadsPerGroup: 1 });
    const sparseSplit = await runner(m, { attentionConfig: coveringPatterns(m.config), denseBelow: 0, maxKvHeadsPerGroup: 1, kvDType: 'f16' });
    const a = await dense.prefill(ids);
    const b = await sparse.prefill(ids);
    const c = await split.prefill(ids);
    const d = await sparseSplit.prefill(ids);
    expect(sparse.report!.attentionMode).toBe('sparse');
    expect(c.plan.groups.length).toBe(2);
    const ref = await referenceForward(m.ref, [...ids]);
    expect(relL2(a.logits, ref.logits)).toBeLessThan(1e-4);
    expect(relL2(b.logits, a.logits)).toBeLessThan(1e-5);
    expect(relL2(c.logits, a.logits)).toBeLessThan(1e-6);
    // Prefill attention reads the compact f32 K/V, so an f16 cache does not change sparse prefill logits.
    expect(relL2(d.logits, a.logits)).toBeLessThan(1e-5);
    // Density is read once after the prefill (nothing inside the layer loop): every head computed everything.
    for (const r of [sparse, sparseSplit]) expect(r.report!.density!.flat()).toEqual(new Array(m.config.numLayers * m.config.numHeads).fill(1));
    for (const r of [dense, sparse, split, sparseSplit]) r.destroy();
  }, 120_000);

  it('sparse density read after the prefill equals the one read per layer when profiling; same logits', async () => {
    const m = await load('llama-tied-f32', SMALL_VOCAB);
    const ids = promptIds(150, m.config.vocabSize, 5);
    const mix: Pattern[] = [
      { type: 'vertical_and_slash', verticalSize: 8, slashSize: 40 },
      { type: 'stream_llm', nInit: 4, nLocal: 40 },
      { type: 'block_sparse', topK: 1 },
      { type: 'dense' },
    ];
    const patterns = Array.from({ length: m.config.numLayers }, (_, l) => Array.from({ length: m.config.numHeads }, (_, h) => mix[(l + h) % mix.length]!));
    const lean = await runner(m, { attentionConfig: patterns, denseBelow: 0, maxKvHeadsPerGroup: 1 });
    const profiled = await runner(m, { attentionConfig: patterns, denseBelow: 0, maxKvHeadsPerGroup: 1, profile: true });
    // Readbacks during the lean prefill: the logits and, once, the density of every sparse layer.
    const readBytes = vi.spyOn(gpu, 'readBytes');
    const a = await lean.prefill(ids);
    expect(readBytes).toHaveBeenCalledTimes(2);
    readBytes.mockRestore();
    const b = await profiled.prefill(ids);
    expect(a.logits).toEqual(b.logits);
    const density = lean.report!.density!;
    expect(density).toEqual(profiled.report!.density);
    expect(density.flat().every((d) => d > 0 && d < 1 || d === 1)).toBe(true);
    expect(Math.min(...density.flat())).toBeLessThan(1);
    for (const r of [lean, profiled]) r.destroy();
  }, 200_000);

  it('f16 KV cache stays close to the reference; noReuse gives the same logits', async () => {
    const m = await load('llama-untied-bf16', SMALL_VOCAB);
    const ids = promptIds(20, m.config.vocabSize, 4);
    const ref = await referenceForward(m.ref, [...ids]);
    const f16 = await runner(m, { kvDType: 'f16' });
    expect(relL2((await f16.prefill(ids)).logits, ref.logits)).toBeLessThan(2e-3);
    const noReuse = await runner(m, { noReuse: true });
    const reuse = await runner(m);
    expect(relL2((await noReuse.prefill(ids)).logits, (await reuse.prefill(ids)).logits)).toBeLessThan(1e-6);
    for (const r of [f16, noReuse, reuse]) r.destroy();
  }, 120_000);
});

describe('LlamaRunner decode', () => {
  it('greedy decode is deterministic and equals the reference greedy tokens', async () => {
    const m = await load('llama-untied-bf16', SMALL_VOCAB);
    const r = await runner(m);
    const ids = promptIds(19, m.config.vocabSize, 5);
    const n = 4;
    const streamed: number[] = [];
    const stepLogits: Float32Array[] = [];
    const a = await r.generate(ids, { maxNewTokens: n, stopTokens: [], onToken: (id) => streamed.push(id), onLogits: (l) => stepLogits.push(l) });
    const b = await r.generate(ids, { maxNewTokens: n, stopTokens: [] });
    expect(a.tokens).toEqual(b.tokens);
    expect(streamed).toEqual(a.tokens);
    expect(a.tokens.length).toBe(n);
    expect(stepLogits.length).toBe(n);
    expect(a.stop).toBe('max_tokens');
    const seq = [...ids];
    const want: number[] = [];
    for (let i = 0; i < n; i++) {
      const ref = await referenceForward(m.ref, seq);
      // Every decode step's logits (KV cache, positions, Tq=1 attention) match the full recompute.
      expect(relL2(stepLogits[i]!, ref.logits)).toBeLessThan(1e-4);
      const next = argmax(ref.logits);
      want.push(next);
      seq.push(next);
    }
    expect(a.tokens).toEqual(want);
    expect(a.report.generatedTokens).toBe(n);
    expect(a.report.prefillTokensPerSecond).toBeGreaterThan(0);
    // A stop token ends generation and is emitted.
    const c = await r.generate(ids, { maxNewTokens: n, stopTokens: [want[1]!] });
    expect(c.tokens).toEqual(want.slice(0, 2));
    expect(c.stop).toBe('stop_token');
    // Seeded sampling reproduces itself.
    const s1 = await r.generate(ids, { maxNewTokens: 3, stopTokens: [], sampling: { temperature: 1, topK: 50, topP: 0.9, seed: 11 } });
    const s2 = await r.generate(ids, { maxNewTokens: 3, stopTokens: [], sampling: { temperature: 1, topK: 50, topP: 0.9, seed: 11 } });
    expect(s1.tokens).toEqual(s2.tokens);
    r.destroy();
  }, 180_000);
});

describe('LlamaRunner sliding window', () => {
  // A 16-token window: Mistral on every layer; Qwen2 from max_window_layers (1) on, so layer 0 stays full.
  it.each([
    ['mistral-tiny-f16', { sliding_window: 16 }],
    ['qwen2-tiny-bf16', { use_sliding_window: true, sliding_window: 16, max_window_layers: 1 }],
  ] as const)('%s with a 16-token window: prefill across chunks and every decode step match the windowed reference', async (name, overrides) => {
    const m = await load(name, SMALL_VOCAB, overrides);
    expect(m.config.slidingWindow).toBe(16);
    const r = await runner(m);
    const ids = promptIds(37, m.config.vocabSize, 9);
    const stepLogits: Float32Array[] = [];
    const out = await r.generate(ids, { maxNewTokens: 3, stopTokens: [], onLogits: (l) => stepLogits.push(l) });
    const seq = [...ids];
    for (let i = 0; i < 3; i++) {
      const ref = await referenceForward(m.ref, seq);
      expect(relL2(stepLogits[i]!, ref.logits), `step ${i}`).toBeLessThan(1e-4);
      seq.push(out.tokens[i]!);
    }
    // The window matters here: full causal attention gives other logits.
    const fullRef = await referenceForward((await load(name, SMALL_VOCAB)).ref, [...ids]);
    expect(relL2(stepLogits[0]!, fullRef.logits)).toBeGreaterThan(1e-3);
    r.destroy();
  }, 180_000);
});

describe('LlamaRunner errors and progress', () => {
  it('rejects bad prompts with typed errors and stays usable', async () => {
    const m = await load('llama-tied-f32', SMALL_VOCAB);
    const r = await runner(m);
    const V = m.config.vocabSize;
    await expect(r.prefill(new Uint32Array(0))).rejects.toThrow(BadInputError);
    await expect(r.prefill(Uint32Array.of(1, V, 2))).rejects.toThrow(/outside the vocabulary/);
    const long = new Uint32Array(m.config.maxPositionEmbeddings + 1);
    await expect(r.prefill(long)).rejects.toThrow(/max_position_embeddings/);
    const first = r.prefill(Uint32Array.of(1, 2, 3));
    await expect(r.prefill(Uint32Array.of(1, 2, 3))).rejects.toThrow(/already running/);
    await first;
    const tight = await runner(m, { memoryBudgetBytes: 1024 });
    await expect(tight.prefill(Uint32Array.of(1, 2, 3))).rejects.toThrow(PlanError);
    const ids = promptIds(40, V, 6);
    // Warm up (kernels cache small head lists), then free the run: an aborted run must leave nothing behind.
    await r.prefill(ids);
    r.reset();
    const before = gpu.pool.allocatedBytes;
    const ctl = new AbortController();
    const p = r.prefill(ids, {
      signal: ctl.signal,
      onProgress: (e) => {
        if (e.layer === 1) ctl.abort();
      },
    });
    await expect(p).rejects.toThrow(AbortedError);
    gpu.submit([]);
    expect(gpu.pool.allocatedBytes).toBe(before);
    // Still usable, and progress is monotonic and ends at 1.
    const fractions: number[] = [];
    const ok = await r.prefill(ids, { onProgress: (e) => fractions.push(e.fraction) });
    const ref = await referenceForward(m.ref, [...ids]);
    expect(relL2(ok.logits, ref.logits)).toBeLessThan(1e-4);
    expect(fractions.length).toBeGreaterThan(4);
    for (let i = 1; i < fractions.length; i++) expect(fractions[i]!).toBeGreaterThanOrEqual(fractions[i - 1]!);
    expect(fractions[fractions.length - 1]).toBe(1);
    r.destroy();
    tight.destroy();
  }, 120_000);

  it('attention compute: auto takes f32 on a software adapter; sgmatrix without subgroup matrices is refused by name', async () => {
    const m = await load('llama-tied-f32', SMALL_VOCAB);
    const r = await runner(m, { attentionCompute: 'auto' });
    if (gpu.caps.software) expect(r.attentionCompute).toBe('f32');
    await r.prefill(Uint32Array.of(1, 2, 3));
    expect(r.report!.attentionCompute).toBe(r.attentionCompute);
    r.destroy();
    if (!gpu.caps.subgroupMatrix) await expect(runner(m, { attentionCompute: 'sgmatrix' })).rejects.toThrow(/subgroup-matrix/);
    await expect(runner(m, { attentionCompute: 'tensor' as never })).rejects.toThrow(/attention compute must be/);
  }, 60_000);
});

describe('LlamaRunner device loss', () => {
  it('device lost mid-prefill rejects with DeviceLostError, and later calls fail fast with it', async () => {
    const m = await load('llama-tied-f32', SMALL_VOCAB);
    // A device of its own: losing it must not take the shared test device down.
    const own = await requestGpu({ label: 'executor-device-loss' });
    const source = await openLocalModel(join(dir, 'llama-tied-f32-500'));
    const weights = await loadWeights(own, await Checkpoint.open(source), m.config);
    const r = await LlamaRunner.create(own, { config: m.config, weights, kvDType: 'f32', chunkSize: 16, matmulVariant: 'f32' });
    const ids = promptIds(40, m.config.vocabSize, 7);
    let lostAt = -1;
    const p = r.prefill(ids, {
      onProgress: (e) => {
        if (lostAt < 0 && e.layer === 1) {
          lostAt = e.tokensDone;
          own.device.destroy();
        }
      },
    });
    await expect(p).rejects.toThrow(DeviceLostError);
    expect(lostAt).toBeGreaterThan(0);
    expect(r.position).toBe(0);
    await expect(r.prefill(ids)).rejects.toThrow(DeviceLostError);
  }, 300_000);
});

describe('session', () => {
  it('openModel + answer: chat-templated prompt, streamed text, report', async () => {
    const d = join(dir, 'session');
    await writeFixture(d, FIXTURES['llama-untied-bf16']!);
    const model = await openModel(gpu, await openLocalModel(d), { kvDType: 'f32', chunkSize: 16, matmulVariant: 'f32' });
    try {
      const doc = 'The quick brown fox jumps over the lazy dog.';
      const ids = model.prompt(doc, 'What jumps?');
      expect(ids.length).toBeGreaterThan(10);
      if (model.tokenizer.hasChatTemplate) expect(model.tokenizer.decode([...ids])).toContain('What jumps?');
      const pieces: string[] = [];
      const fractions: number[] = [];
      const r = await model.answer(doc, 'What jumps?', { maxNewTokens: 2, onToken: (_id, text) => pieces.push(text), onProgress: (p) => fractions.push(p.fraction) });
      expect(r.tokens.length).toBeGreaterThanOrEqual(1);
      expect(r.tokens.length).toBeLessThanOrEqual(2);
      expect(r.text.startsWith(pieces.join(''))).toBe(true);
      expect(r.promptTokens).toBe(ids.length);
      expect(fractions[fractions.length - 1]).toBe(1);
      expect(r.report.peakGpuBytes).toBeGreaterThan(r.report.weightBytes);
    } finally {
      model.close();
    }
  }, 300_000);
});
