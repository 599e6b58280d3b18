import { describe, expect, it } from 'vitest';
import { planRun, PlanError, DEFAULT_CHUNK } from '../src/model/plan.ts';
import { categorize, GpuTimes, formatReport } from '../src/model/report.ts';

const llama8b = { hiddenSize: 4096, intermediateSize: 14336, numLayers: 32, numHeads: 32, numKvHeads: 8, headDim: 128, vocabSize: 128256 };
const big = { maxStorageBufferBindingSize: 2 ** 31 - 4, maxBufferSize: 2 ** 31 - 4 };

describe('memory plan', () => {
  it('chunks a prompt and sizes the KV cache', () => {
    const p = planRun({ config: llama8b, promptLen: 5000, maxNewTokens: 100, kvDType: 'f16', limits: big });
    expect(p.chunk).toBe(DEFAULT_CHUNK);
    expect(p.nChunks).toBe(3);
    expect(p.scap).toBe(5100);
    expect(p.groups).toEqual([{ kvStart: 0, kvHeads: 8, headStart: 0, heads: 32 }]);
    const kv = p.buffers.find((b) => b.name === 'kCache')!;
    expect(kv.bytes).toBe(8 * 5100 * 128 * 2);
    expect(kv.count).toBe(32);
  });

  it('splits the whole-prompt Q into KV-head groups past the binding limit (128K x 32 heads)', () => {
    const p = planRun({ config: llama8b, promptLen: 131072, maxNewTokens: 0, kvDType: 'f16', limits: big });
    // one KV group = 4 query heads x 128K x 128 x 4 B = 256 MiB; 7 fit in 2 GiB - 4
    expect(p.groups.map((g) => g.kvHeads)).toEqual([7, 1]);
    expect(p.groups[1]).toEqual({ kvStart: 7, kvHeads: 1, headStart: 28, heads: 4 });
    for (const b of p.buffers) expect(b.bytes).toBeLessThanOrEqual(big.maxStorageBufferBindingSize);
  });

  it('shrinks the default chunk to the binding limit and rejects too-large chunks', () => {
    const small = { maxStorageBufferBindingSize: 64 * 2 ** 20, maxBufferSize: 256 * 2 ** 20 };
    const p = planRun({ config: llama8b, promptLen: 4096, maxNewTokens: 0, kvDType: 'f16', limits: small });
    expect(p.chunk).toBe(Math.floor((64 * 2 ** 20) / (14336 * 4)));
    expect(() => planRun({ config: llama8b, promptLen: 4096, maxNewTokens: 0, kvDType: 'f16', chunkSize: 4096, limits: small })).toThrow(PlanError);
  });

  it('rejects a KV cache or query group that cannot fit, and budgets', () => {
    const small = { maxStorageBufferBindingSize: 128 * 2 ** 20, maxBufferSize: 128 * 2 ** 20 };
    expect(() => planRun({ config: llama8b, promptLen: 100000, maxNewTokens: 0, kvDType: 'f32', limits: small })).toThrow(/KV cache of one layer/);
    expect(() => planRun({ config: llama8b, promptLen: 1000, maxNewTokens: 0, kvDType: 'f16', limits: big, memoryBudgetBytes: 1e6 })).toThrow(/budget/);
    expect(() => planRun({ config: llama8b, promptLen: 0, maxNewTokens: 0, kvDType: 'f16', limits: big })).toThrow(PlanError);
  });

  it('shrinks the default chunk to fit a memory budget, never an explicit one', () => {
    const base = { config: llama8b, promptLen: 8192, maxNewTokens: 0, kvDType: 'f16' as const, limits: big };
    const free = planRun(base);
    expect(free.chunk).toBe(2048);
    const chunkBytes = (c: number): number => planRun({ ...base, chunkSize: c }).totalBytes;
    const budget = chunkBytes(512) + 1;
    const p = planRun({ ...base, memoryBudgetBytes: budget });
    expect(p.chunk).toBe(512);
    expect(p.totalBytes).toBeLessThanOrEqual(budget);
    expect(() => planRun({ ...base, chunkSize: 2048, memoryBudgetBytes: budget })).toThrow(/budget/);
  });

  it('honours a forced group size', () => {
    const p = planRun({ config: { ...llama8b, numKvHeads: 4, numHeads: 8 }, promptLen: 10, maxNewTokens: 0, kvDType: 'f32', limits: big, maxKvHeadsPerGroup: 3 });
    expect(p.groups).toEqual([
      { kvStart: 0, kvHeads: 3, headStart: 0, heads: 6 },
      { kvStart: 3, kvHeads: 1, headStart: 6, heads: 2 },
    ]);
  });
});

describe('report', () => {
  it('categorises dispatch labels and shares time', () => {
    expect(categorize('matmul-f32')).toBe('matmul');
    expect(categorize('attention.dense')).toBe('attention');
    expect(categorize('attention.sparse')).toBe('attention');
    expect(categorize('estimate.vertical_slash')).toBe('estimation');
    expect(categorize('rms_norm')).toBe('other');
    const t = new GpuTimes();
    t.add([
      { label: 'matmul-f32', ms: 3 },
      { label: 'attention.dense', ms: 1 },
    ]);
    expect(t.shares().matmul).toBeCloseTo(0.75);
    const text = formatReport({
      promptTokens: 10, generatedTokens: 2, chunkSize: 16, attentionMode: 'dense', attentionCompute: 'f32', prefillMs: 100, prefillTokensPerSecond: 100,
      timeToFirstTokenMs: 100, decodeMs: 10, decodeTokensPerSecond: 100, peakActivationBytes: 1024, weightBytes: 2048,
      peakGpuBytes: 3072, plannedBytes: 1000, gpuMs: t.ms, gpuShare: t.shares(),
    });
    expect(text).toMatch(/matmuls 3\.0 ms \(75\.0%\)/);
    expect(text).toMatch(/^prompt 10 tokens \(chunks of 16, dense attention, f32\)/);
    expect(text).toMatch(/decode 2 tokens in 10 ms, 100 tok\/s/);
    const one = formatReport({
      promptTokens: 40960, generatedTokens: 1, chunkSize: 2048, attentionMode: 'dense', attentionCompute: 'f32', prefillMs: 1530, prefillTokensPerSecond: 26771.2,
      timeToFirstTokenMs: 1533, decodeMs: 3, decodeTokensPerSecond: 0, peakActivationBytes: 1024, weightBytes: 2048, peakGpuBytes: 3072, plannedBytes: 1000,
      load: { readMs: 40, uploadMs: 120, compileMs: 2500, totalMs: 2660 },
    });
    expect(one).toMatch(/^prompt 40,960 tokens \(chunks of 2,048, dense attention, f32\): prefill 1\.53 s, 26,771 tok\/s/);
    expect(one).toMatch(/generated 1 token \(from the prefill logits, no decode step\)/);
    expect(one).not.toMatch(/0\.00 tok\/s|1 tokens/);
    expect(one).toMatch(/model load 2\.66 s: read 40 ms, upload 120 ms, compile 2\.50 s/);
  });
});
