/**
 * The pattern search and the attention picture in words, for the demo page (pure functions, no DOM;
 * unit-tested in test/demo-search-view.test.ts). The search itself is src/search/search.ts, run by
 * the worker; its per-layer lines are formatLayerSummary's, as the CLI prints them.
 */
import { BadInputError } from '../src/gpu/errors.ts';
import type { SearchProgress } from '../src/search/search.ts';
import type { SearchSpace } from '../src/search/space.ts';
import { formatCount, formatMs, formatPercent, plural } from './format.ts';
import { patternName } from './estimate.ts';
import type { SearchOutcome, SearchPlan } from './protocol.ts';

/**
 * Query rows sampled per head on software adapters (besides the last 64), instead of the search's
 * 256: every candidate is scored on every row, and with 256 rows a search of the short document
 * took 3 min 25 s on SwiftShader in headless Chromium (2 cores); 64 rows score 128 rows per head
 * instead of about 320.
 */
export const SOFTWARE_SEARCH_ROWS = 64;

/** What the recall the search reports measures, in words. */
export const RECALL_MEANS = "the share of softmax mass kept on the document's last rows";

/** "A-shape (16, 64), Vertical-Slash (1, 64) … (94, 6), Block-Sparse (top 100)": the candidates of a space. */
export function describeSpace(space: SearchSpace): string {
  const vs = space.verticalSlash.map((c) => `(${formatCount(c.verticalSize)}, ${formatCount(c.slashSize)})`).join(' ');
  return `${patternName({ type: 'stream_llm', nInit: space.aShape.nInit, nLocal: space.aShape.nLocal })}, Vertical-Slash ${vs}, ${patternName({ type: 'block_sparse', topK: space.blockSparseTopK })}`;
}

/** The search as it starts: what it scores, on which rows, at which cost. */
export function searchPlanText(plan: SearchPlan): string {
  const scale = plan.scale === 1 ? "MInference's space" : `MInference's space scaled to the prompt (× ${plan.promptTokens}/32768)`;
  return (
    `Searching ${plural(plan.numLayers, 'layer')} × ${plural(plan.numHeads, 'head')} on the document's ${formatCount(plan.promptTokens)} tokens: ` +
    `${scale}, ${describeSpace(plan.space)}, each at the A-shape's cost (${formatPercent(plan.budget)} of the causal query-key pairs). ` +
    `Recall is ${RECALL_MEANS}: ${plural(plan.scoredRows, 'query row')} from token ${formatCount(plan.firstRow)} on.`
  );
}

/** The progress bar's words for a search step. */
export function searchProgressText(p: SearchProgress): { phase: string; detail: string } {
  const what = p.phase === 'prefill' ? 'dense prefill up to it' : p.stage === 'dense' ? 'dense reference' : `scoring ${p.stage ?? 'a candidate'}`;
  const left = p.fraction > 0.02 && p.fraction < 1 ? ` · about ${formatMs((p.elapsedMs / p.fraction) * (1 - p.fraction))} left` : '';
  return { phase: 'Pattern search', detail: `layer ${p.layer + 1}/${p.numLayers} · ${what} · ${formatMs(p.elapsedMs)}${left}` };
}

/** The search's closing line. */
export function searchOutcomeText(o: SearchOutcome, heads: number): string {
  return `Mean recall ${o.meanRecall.toFixed(3)} over ${plural(heads, 'head')} (${RECALL_MEANS}), searched in ${formatMs(o.ms)} on ${formatCount(o.promptTokens)} tokens.`;
}

/** The layer and head the picture inputs name, checked against the model (0-based, as in the config). */
export function pictureHead(layerText: string, headText: string, numLayers: number | undefined, numHeads: number | undefined): { layer: number; head: number } {
  const read = (text: string, name: string, count: number | undefined): number => {
    const n = Number(text);
    const range = count === undefined ? '0 or more' : `from 0 to ${count - 1}`;
    if (text.trim() === '' || !Number.isSafeInteger(n) || n < 0 || (count !== undefined && n >= count)) throw new BadInputError(`the picture's ${name} must be a whole number ${range}, got "${text}"`);
    return n;
  };
  return { layer: read(layerText, 'layer', numLayers), head: read(headText, 'head', numHeads) };
}
