/**
 * The needle-in-a-haystack accuracy harness: for every length and depth of a grid, build a needle
 * document from held-out text (needle.ts), prefill it and decode greedily with the model's own
 * attention settings, and score whether the answer states the planted value. Runs wherever
 * openModel runs (Node, Deno, the browser): the caller passes the haystack text.
 *
 *   const grid = await runNiah(model, haystackText, { lengths: [4096, 8192], depths: 11 });
 *   console.log(formatNiahTable([grid]));
 */
import type { OpenModel } from '../model/session.ts';
import type { PrefillProgress } from '../model/report.ts';
import { answerIsCorrect, NeedleDocumentBuilder, type TokenCounter, type ValueKind } from './needle.ts';

export interface NiahOptions {
  /** Prompt lengths in tokens. */
  lengths: readonly number[];
  /** Depths in [0, 1], or a count of evenly spaced depths from 0 to 1 (MInference's figures use 11). */
  depths: readonly number[] | number;
  /** Facts planted per document (1 asked, the rest distractors). Default 1. */
  needles?: number;
  kind?: ValueKind;
  seed?: number;
  /** Tokens to decode at most (default 32: the trained answer is about 20). */
  maxNewTokens?: number;
  /** A name for the grid (e.g. the attention config). */
  label?: string;
  signal?: AbortSignal;
  /** After each document: its result and how many of the grid are done. */
  onCase?: (c: NiahCase, done: number, total: number) => void;
  onPrefillProgress?: (p: PrefillProgress) => void;
  /** A builder to share between grids (it keeps the documents it built); default: a new one. */
  builder?: NeedleDocumentBuilder;
  /**
   * Put the answer's start ("The magic number for <key> is") into the prompt, as RULER does, so
   * that the value's first token is chosen at the last prefill position, where sparse prefill
   * attention decides whether the needle is seen. Without it the model writes that start itself
   * and reads the value back during decode, whose attention is dense.
   */
  answerPrefix?: boolean;
}

export interface NiahCase {
  length: number;
  depth: number;
  promptTokens: number;
  needleDepth: number;
  key: string;
  value: string;
  answer: string;
  generatedTokens: number;
  correct: boolean;
  prefillMs: number;
  decodeMs: number;
  attentionMode: 'dense' | 'sparse';
  /** Mean share of causal query-key pairs computed in prefill. */
  density: number;
  /** Per layer, per head (sparse runs). */
  densityPerHead?: number[][];
}

export interface NiahGrid {
  label: string;
  lengths: number[];
  depths: number[];
  cases: NiahCase[];
  /** Exact match per length (share of its depths answered right). */
  accuracy: Record<number, number>;
  /** Over the whole grid. */
  mean: number;
}

/** n evenly spaced depths from 0 to 1. */
export function evenDepths(n: number): number[] {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`depth count must be a positive integer, got ${n}`);
  return n === 1 ? [0.5] : Array.from({ length: n }, (_, i) => i / (n - 1));
}

/** The model's tokenizer as the needle builder needs it. */
export function modelTokenCounter(model: OpenModel): TokenCounter {
  return {
    promptTokens: (document, question) => model.prompt(document, question).length,
    textTokens: (text) => model.tokenizer.encode(text, { addSpecialTokens: false }).length,
  };
}

export async function runNiah(model: OpenModel, haystackText: string, o: NiahOptions): Promise<NiahGrid> {
  const depths = typeof o.depths === 'number' ? evenDepths(o.depths) : [...o.depths];
  const lengths = [...o.lengths];
  const builder = o.builder ?? new NeedleDocumentBuilder(haystackText, modelTokenCounter(model));
  const cases: NiahCase[] = [];
  const total = lengths.length * depths.length;
  for (const length of lengths) {
    for (const depth of depths) {
      if (o.signal?.aborted) throw new DOMException('the evaluation was aborted', 'AbortError');
      const doc = builder.build({ length, depth, needles: o.needles, kind: o.kind, seed: o.seed });
      const prefix = o.answerPrefix ? doc.expectedAnswer.slice(0, doc.expectedAnswer.lastIndexOf(doc.fact.value)).trimEnd() : undefined;
      const r = await model.answer(doc.document, doc.question, {
        answerPrefix: prefix,
        maxNewTokens: o.maxNewTokens ?? 32,
        signal: o.signal,
        onProgress: o.onPrefillProgress,
        allowLongPrompt: true,
      });
      const c: NiahCase = {
        length,
        depth,
        promptTokens: r.promptTokens,
        needleDepth: doc.needleDepth,
        key: doc.fact.key,
        value: doc.fact.value,
        answer: r.text,
        generatedTokens: r.tokens.length,
        correct: answerIsCorrect(r.text, doc.fact.value),
        prefillMs: r.report.prefillMs,
        decodeMs: r.report.decodeMs,
        attentionMode: r.report.attentionMode,
        density: r.report.meanDensity ?? 1,
      };
      if (r.report.attentionMode === 'sparse' && r.report.density) c.densityPerHead = r.report.density;
      cases.push(c);
      o.onCase?.(c, cases.length, total);
    }
  }
  const accuracy: Record<number, number> = {};
  for (const L of lengths) {
    const row = cases.filter((c) => c.length === L);
    accuracy[L] = row.filter((c) => c.correct).length / row.length;
  }
  return { label: o.label ?? 'model', lengths, depths, cases, accuracy, mean: cases.filter((c) => c.correct).length / cases.length };
}

/** "4K", "128K", "1.5K", "900". */
export function formatTokens(n: number): string {
  if (n < 1024 || n % 512 !== 0) return String(n);
  const k = n / 1024;
  return `${Number.isInteger(k) ? k : k.toFixed(1)}K`;
}

/** One row per grid: exact match (%) per length and overall, with the mean density kept. */
export function formatNiahTable(grids: readonly NiahGrid[]): string {
  if (grids.length === 0) return '';
  const lengths = grids[0]!.lengths;
  const width = Math.max(9, ...grids.map((g) => g.label.length));
  const head = ['attention'.padEnd(width), ...lengths.map((L) => formatTokens(L).padStart(6)), '  mean', '  kept'].join(' ');
  const rows = grids.map((g) => {
    const kept = g.cases.reduce((a, c) => a + c.density, 0) / g.cases.length;
    return [
      g.label.padEnd(width),
      ...lengths.map((L) => (g.accuracy[L] === undefined ? '-' : (g.accuracy[L]! * 100).toFixed(0)).padStart(6)),
      (g.mean * 100).toFixed(1).padStart(6),
      `${(kept * 100).toFixed(0)}%`.padStart(6),
    ].join(' ');
  });
  return [`exact match (%) over ${grids[0]!.depths.length} depths per length`, head, ...rows].join('\n');
}
