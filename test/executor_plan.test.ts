/**
 * The memory plan is the only list of a run's buffers: a run allocates exactly what
 * LlamaRunner.planFor() lists (no more, no fewer, same shapes and dtypes), prefill and decode
 * included, and reset() returns every one of them to the pool. Decode steps are recorded once and
 * replayed; their tokens equal those of profiled decode (which encodes every step afresh).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testGpu } from './harness/gpu.ts';
import { openLocalModel } from '../src/model/source.ts';
import { openModel, type OpenModel } from '../src/model/session.ts';
import type { Gpu } from '../src/gpu/gpu.ts';
import type { DType } from '../src/tensor.ts';
import { sizeClass } from '../src/gpu/pool.ts';

let gpu: Gpu;
let model: OpenModel;
const DOC = 'The lamp was lit at dusk. One of the special magic numbers for harbor is: 4417. The tide came in late.';

beforeAll(async () => {
  gpu = await testGpu();
  model = await openModel(gpu, await openLocalModel('models/needle-reader'), { attentionConfig: 'dense', kvDType: 'f32', chunkSize: 24 });
});

afterAll(() => model?.close());

describe('executor buffers', () => {
  it('a run allocates exactly the planned buffers and reset() frees them all', async () => {
    const ids = model.prompt(DOC, 'What is the special magic number for harbor mentioned in the provided text?');
    // The attention kernels upload each head list once and keep it (the kernel owns it, not the
    // run): one run first, so that the measured run shows only what runs allocate.
    await model.runner.generate(ids, { maxNewTokens: 2, stopTokens: [] });
    model.runner.reset();
    const made: string[] = [];
    const empty = gpu.empty.bind(gpu);
    gpu.empty = (shape: readonly number[], dtype: DType, label?: string) => {
      made.push(`${shape.join('x')}:${dtype}`);
      return empty(shape, dtype, label);
    };
    const before = gpu.pool.allocatedBytes;
    try {
      await model.runner.generate(ids, { maxNewTokens: 4, stopTokens: [] });
    } finally {
      gpu.empty = empty;
    }
    const plan = model.runner.planFor(ids.length, 4);
    expect(plan.nChunks).toBeGreaterThan(1);
    const planned = plan.buffers.flatMap((b) => Array.from({ length: b.count }, () => `${b.shape.join('x')}:${b.dtype}`));
    expect([...made].sort()).toEqual([...planned].sort());
    expect(gpu.pool.allocatedBytes - before).toBe(plan.buffers.reduce((s, b) => s + sizeClass(b.bytes) * b.count, 0));
    model.runner.reset();
    expect(gpu.pool.allocatedBytes).toBe(before);
  });

  it('replayed decode steps give the tokens of freshly encoded ones', async () => {
    const ids = model.prompt(DOC, 'What is the magic number for harbor?');
    const replayed = await model.runner.generate(ids, { maxNewTokens: 6, stopTokens: [] });
    expect(replayed.report.hostMs!.perDecodeStep).toBeGreaterThan(0);
    const profiled = await openModel(gpu, await openLocalModel('models/needle-reader'), { attentionConfig: 'dense', kvDType: 'f32', chunkSize: 24, profile: true });
    try {
      const fresh = await profiled.runner.generate(ids, { maxNewTokens: 6, stopTokens: [] });
      expect(replayed.tokens).toEqual(fresh.tokens);
      expect(Array.from(replayed.promptLogits)).toEqual(Array.from(fresh.promptLogits));
    } finally {
      profiled.close();
    }
  });

  it('one-row decode attention gives the tokens of the tiled kernel it replaced', async () => {
    const ids = model.prompt(DOC, 'What is the magic number for harbor?');
    const row = await model.runner.generate(ids, { maxNewTokens: 6, stopTokens: [] });
    const tiled = await openModel(gpu, await openLocalModel('models/needle-reader'), { attentionConfig: 'dense', kvDType: 'f32', chunkSize: 24, decodeAttention: 'tiles' });
    try {
      const t = await tiled.runner.generate(ids, { maxNewTokens: 6, stopTokens: [] });
      expect(row.tokens).toEqual(t.tokens);
    } finally {
      tiled.close();
    }
  });

  it('greedy decode with the argmax on the GPU gives the host argmax tokens, replayed and freshly encoded', async () => {
    const ids = model.prompt(DOC, 'What is the magic number for harbor?');
    // The shared model runs on a software adapter, where greedyOnGpu defaults to off: the host's argmax.
    const host = await model.runner.generate(ids, { maxNewTokens: 6, stopTokens: [] });
    expect(host.report.decodeArgmaxOnGpu).toBe(false);
    for (const profile of [false, true]) {
      const onGpu = await openModel(gpu, await openLocalModel('models/needle-reader'), { attentionConfig: 'dense', kvDType: 'f32', chunkSize: 24, greedyOnGpu: true, profile });
      try {
        const g = await onGpu.runner.generate(ids, { maxNewTokens: 6, stopTokens: [] });
        expect(g.tokens, `profile ${profile}`).toEqual(host.tokens);
        expect(g.report.decodeArgmaxOnGpu).toBe(true);
        // A logits hook needs the logits: those steps read them back and sample on the host.
        const seen: number[] = [];
        const h = await onGpu.runner.generate(ids, { maxNewTokens: 6, stopTokens: [], onLogits: (l) => seen.push(l.length) });
        expect(h.tokens).toEqual(host.tokens);
        expect(seen).toEqual(Array(6).fill(model.runner.config.vocabSize));
        expect(h.report.decodeArgmaxOnGpu).toBe(false);
      } finally {
        onGpu.close();
      }
    }
  });

  it('work submitted ahead of the GPU (submitAhead) changes neither logits, tokens, stops nor progress order', async () => {
    const ids = model.prompt(DOC, 'What is the magic number for harbor?');
    const host = await model.runner.generate(ids, { maxNewTokens: 5, stopTokens: [] });
    const stopAt = host.tokens[2]!;
    const expectStopped = host.tokens.slice(0, host.tokens.indexOf(stopAt) + 1);
    let serialLogits: Float32Array | undefined;
    for (const submitAhead of [1, 3]) {
      const m = await openModel(gpu, await openLocalModel('models/needle-reader'), { attentionConfig: 'dense', kvDType: 'f32', chunkSize: 24, greedyOnGpu: true, submitAhead });
      try {
        const fractions: number[] = [];
        const g = await m.runner.generate(ids, { maxNewTokens: 5, stopTokens: [], onProgress: (p) => fractions.push(p.fraction) });
        expect(g.tokens, `submitAhead ${submitAhead}`).toEqual(host.tokens);
        expect(m.runner.position).toBe(ids.length + 4);
        // Progress comes as batches finish, in order, ending at 1.
        expect(fractions.length).toBeGreaterThan(3);
        expect(fractions.every((f, i) => i === 0 || f >= fractions[i - 1]!)).toBe(true);
        expect(fractions.at(-1)).toBe(1);
        // A stop token mid-way: steps submitted past it leave the same tokens and cache position.
        const s = await m.runner.generate(ids, { maxNewTokens: 5, stopTokens: [stopAt] });
        expect(s.tokens).toEqual(expectStopped);
        expect(s.stop).toBe('stop_token');
        expect(m.runner.position).toBe(ids.length + expectStopped.length - 1);
        const logits = (await m.runner.prefill(ids)).logits;
        if (serialLogits) expect(Array.from(logits)).toEqual(Array.from(serialLogits));
        serialLogits ??= logits;
      } finally {
        m.close();
      }
    }
  });
});
