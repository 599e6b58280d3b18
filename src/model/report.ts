/**
 * What a run reports: token counts, prefill and decode speed, time to first token, where the GPU time
 * went (when the device has timestamp queries), and peak GPU memory. Built by the executor; printed by
 * the CLI with formatReport().
 */
import { formatBytes, formatCount, formatMs, formatPercent, formatRate, plural } from '../util/numbers.ts';

/** Kinds of GPU work the report breaks time into (from each dispatch's label). */
export type TimeCategory = 'attention' | 'estimation' | 'matmul' | 'other';

export interface PrefillProgress {
  /** Tokens of the current layer done (chunked steps), or totalTokens once its attention ran. */
  tokensDone: number;
  totalTokens: number;
  /** Layer being computed (0-based); numLayers when the final norm and logits are being computed. */
  layer: number;
  numLayers: number;
  /** Fraction of the whole prefill done, 0..1. */
  fraction: number;
  elapsedMs: number;
}

export interface RunReport {
  promptTokens: number;
  generatedTokens: number;
  chunkSize: number;
  /** 'dense' below the dense threshold or when no sparse config is given, else 'sparse'. */
  attentionMode: 'dense' | 'sparse';
  /** Prefill attention arithmetic: 'f32' or 'sgmatrix' (tensor cores, f16 operands). */
  attentionCompute: 'f32' | 'sgmatrix';
  prefillMs: number;
  prefillTokensPerSecond: number;
  /** From the start of prefill to the first generated token's logits being on the host. */
  timeToFirstTokenMs: number;
  decodeMs: number;
  decodeTokensPerSecond: number;
  /** GPU milliseconds per category (timestamp queries), undefined when the device has none or profiling was off. */
  gpuMs?: Record<TimeCategory, number>;
  /** Share of the profiled GPU time per category (0..1). */
  gpuShare?: Record<TimeCategory, number>;
  /** Peak bytes of activations and KV cache handed out by the buffer pool during the run. */
  peakActivationBytes: number;
  /** Bytes of the weights. */
  weightBytes: number;
  /** peakActivationBytes + weightBytes. */
  peakGpuBytes: number;
  /** Planned bytes (KV cache + activations) before the run started. */
  plannedBytes: number;
  /**
   * Per layer, per head: the share of the causal query-key pairs that prefill attention computed
   * (1 for dense heads; what a sparse pattern's index kept otherwise).
   */
  density?: number[][];
  /** The mean of `density` over every layer and head. */
  meanDensity?: number;
  /**
   * Host (JavaScript) time spent encoding GPU work, in ms: all prefill chunk passes and per pass,
   * all decode steps and per step. The rest of prefill and decode time is GPU work and waiting.
   */
  hostMs?: { prefillEncode: number; perChunkPass: number; decodeEncode: number; perDecodeStep: number };
  /** Whether decode steps took their greedy argmax on the GPU and read back token ids, not logits (greedyOnGpu). */
  decodeArgmaxOnGpu?: boolean;
  /**
   * Profiled decode (timestamp queries): GPU ms per decode step summed over its dispatches, and the
   * dispatches that took the most, per step. Wall time per step minus gpuMsPerStep is what the step
   * spends outside kernels (gaps between dispatches, submit, the logits' readback).
   */
  decodeGpu?: { gpuMsPerStep: number; top: { label: string; msPerStep: number; dispatchesPerStep: number }[] };
  /** How long opening the model took (openModel's answers carry it). */
  load?: { readMs: number; uploadMs: number; compileMs: number; totalMs: number };
}

/** Which category a dispatch label falls into. */
export function categorize(label: string): TimeCategory {
  const l = label.toLowerCase();
  if (l.includes('estimat') || l.includes('index') || l.includes('vertical') || l.includes('slash') || l.includes('pool')) return 'estimation';
  if (l.includes('attention') || l.includes('flash')) return 'attention';
  if (l.includes('matmul') || l.includes('gemv') || l.includes('gemm')) return 'matmul';
  return 'other';
}

/** GPU times of profiled dispatches, per dispatch label; the categories are derived from the labels. */
export class GpuTimes {
  /** Milliseconds and dispatch count per dispatch label. */
  readonly byLabel = new Map<string, { ms: number; count: number }>();
  /** Adds per-dispatch times (a profiled batch's answer); negative or non-finite ones are dropped. */
  add(times: readonly { label: string; ms: number }[]): void {
    for (const t of times) if (Number.isFinite(t.ms) && t.ms >= 0) this.record(t.label, t.ms, 1);
  }
  /** Adds another record's times. */
  merge(o: GpuTimes): void {
    for (const [label, e] of o.byLabel) this.record(label, e.ms, e.count);
  }
  private record(label: string, ms: number, count: number): void {
    const e = this.byLabel.get(label) ?? { ms: 0, count: 0 };
    e.ms += ms;
    e.count += count;
    this.byLabel.set(label, e);
  }
  /** Whether any time was recorded. */
  get any(): boolean {
    return this.byLabel.size > 0;
  }
  /** Milliseconds per category (categorize() of each label). */
  get ms(): Record<TimeCategory, number> {
    const ms: Record<TimeCategory, number> = { attention: 0, estimation: 0, matmul: 0, other: 0 };
    for (const [label, e] of this.byLabel) ms[categorize(label)] += e.ms;
    return ms;
  }
  get totalMs(): number {
    let total = 0;
    for (const e of this.byLabel.values()) total += e.ms;
    return total;
  }
  shares(): Record<TimeCategory, number> {
    const ms = this.ms;
    const total = ms.attention + ms.estimation + ms.matmul + ms.other;
    const f = (v: number): number => (total > 0 ? v / total : 0);
    return { attention: f(ms.attention), estimation: f(ms.estimation), matmul: f(ms.matmul), other: f(ms.other) };
  }
}

export function formatReport(r: RunReport): string {
  const attention = r.attentionMode === 'sparse' ? 'sparse attention' : 'dense attention';
  const lines = [
    `prompt ${plural(r.promptTokens, 'token')} (chunks of ${formatCount(r.chunkSize)}, ${attention}, ${r.attentionCompute}): prefill ${formatMs(r.prefillMs)}, ${formatRate(r.prefillTokensPerSecond, 'tok/s')}`,
    `time to first token ${formatMs(r.timeToFirstTokenMs)}; ${decodeLine(r)}`,
  ];
  if (r.gpuShare && r.gpuMs) {
    const s = r.gpuShare;
    const ms = r.gpuMs;
    const part = (name: string, k: TimeCategory): string => `${name} ${formatMs(ms[k])} (${formatPercent(s[k])})`;
    lines.push(`GPU time (timestamp queries): ${part('attention', 'attention')}, ${part('index estimation', 'estimation')}, ${part('matmuls', 'matmul')}, ${part('other', 'other')}`);
  }
  if (r.attentionMode === 'sparse' && r.density && r.meanDensity !== undefined) {
    const perLayer = r.density.map((l) => `${((l.reduce((a, b) => a + b, 0) / l.length) * 100).toFixed(0)}%`);
    lines.push(`sparse attention computed ${formatPercent(r.meanDensity)} of the causal query-key pairs (per layer: ${perLayer.join(' ')})`);
  }
  lines.push(`peak GPU memory ${formatBytes(r.peakGpuBytes)} (weights ${formatBytes(r.weightBytes)}, activations + KV cache ${formatBytes(r.peakActivationBytes)}; planned ${formatBytes(r.plannedBytes)})`);
  if (r.decodeGpu) {
    const top = r.decodeGpu.top.map((t) => `${t.label} ${formatMs(t.msPerStep)}`).join(', ');
    lines.push(`decode GPU time per step ${formatMs(r.decodeGpu.gpuMsPerStep)} (most: ${top})`);
  }
  if (r.hostMs) lines.push(`host encode time: ${formatMs(r.hostMs.perChunkPass)} per prefill chunk pass, ${formatMs(r.hostMs.perDecodeStep)} per decode step`);
  if (r.load) lines.push(`model load ${formatMs(r.load.totalMs)}: read ${formatMs(r.load.readMs)}, upload ${formatMs(r.load.uploadMs)}, compile ${formatMs(r.load.compileMs)}`);
  return lines.join('\n');
}

/** "decode 20 tokens in 310 ms, 61.3 tok/s"; the first token comes from the prefill's logits, so one token has no decode rate. */
function decodeLine(r: RunReport): string {
  if (r.generatedTokens === 0) return 'no tokens generated';
  if (r.generatedTokens === 1) return 'generated 1 token (from the prefill logits, no decode step)';
  return `decode ${plural(r.generatedTokens, 'token')} in ${formatMs(r.decodeMs)}, ${formatRate(r.decodeTokensPerSecond, 'tok/s')}`;
}
