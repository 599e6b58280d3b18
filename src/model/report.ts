/**
 * What a run reports: token counts, prefill and decode speed, time to first token, where the GPU time
 * went (when the device has timestamp queries), and peak GPU memory. Built by the executor; printed by
 * the CLI with formatReport().
 */
import { formatBytes } from '../util/format.ts';

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
}

/** Which category a dispatch label falls into. */
export function categorize(label: string): TimeCategory {
  const l = label.toLowerCase();
  if (l.includes('estimat') || l.includes('index') || l.includes('vertical') || l.includes('slash') || l.includes('pool')) return 'estimation';
  if (l.includes('attention') || l.includes('flash')) return 'attention';
  if (l.includes('matmul') || l.includes('gemv') || l.includes('gemm')) return 'matmul';
  return 'other';
}

export class GpuTimes {
  readonly ms: Record<TimeCategory, number> = { attention: 0, estimation: 0, matmul: 0, other: 0 };
  any = false;
  add(times: readonly { label: string; ms: number }[]): void {
    for (const t of times) {
      if (!Number.isFinite(t.ms) || t.ms < 0) continue;
      this.ms[categorize(t.label)] += t.ms;
      this.any = true;
    }
  }
  shares(): Record<TimeCategory, number> {
    const total = this.ms.attention + this.ms.estimation + this.ms.matmul + this.ms.other;
    const f = (v: number): number => (total > 0 ? v / total : 0);
    return { attention: f(this.ms.attention), estimation: f(this.ms.estimation), matmul: f(this.ms.matmul), other: f(this.ms.other) };
  }
}

export function formatReport(r: RunReport): string {
  const lines = [
    `prompt ${r.promptTokens} tokens (chunk ${r.chunkSize}, ${r.attentionMode} attention, ${r.attentionCompute}): prefill ${r.prefillMs.toFixed(0)} ms, ${r.prefillTokensPerSecond.toFixed(1)} tok/s`,
    `time to first token ${r.timeToFirstTokenMs.toFixed(0)} ms; decode ${r.generatedTokens} tokens in ${r.decodeMs.toFixed(0)} ms, ${r.decodeTokensPerSecond.toFixed(2)} tok/s`,
  ];
  if (r.gpuShare && r.gpuMs) {
    const s = r.gpuShare;
    const pct = (v: number): string => `${(v * 100).toFixed(1)}%`;
    lines.push(`GPU time: attention ${pct(s.attention)}, index estimation ${pct(s.estimation)}, matmuls ${pct(s.matmul)}, other ${pct(s.other)}`);
  }
  if (r.attentionMode === 'sparse' && r.density && r.meanDensity !== undefined) {
    const perLayer = r.density.map((l) => `${((l.reduce((a, b) => a + b, 0) / l.length) * 100).toFixed(0)}%`);
    lines.push(`sparse attention computed ${(r.meanDensity * 100).toFixed(1)}% of the causal query-key pairs (per layer: ${perLayer.join(' ')})`);
  }
  lines.push(`peak GPU memory ${formatBytes(r.peakGpuBytes)} (weights ${formatBytes(r.weightBytes)}, activations + KV cache ${formatBytes(r.peakActivationBytes)}; planned ${formatBytes(r.plannedBytes)})`);
  return lines.join('\n');
}
