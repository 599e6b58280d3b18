/**
 * The pattern search's candidates and their cost.
 *
 * MInference's kernel-aware search (paper, section 3.2 and appendix) scores, per head, candidates of
 * one target cost: A-shape with 1024 sink + 4096 local keys; Vertical-Slash (30, 2048), (100, 1800),
 * (500, 1500), (3000, 200); Block-Sparse with the top 100 blocks. Their cost was equal under the
 * paper's own kernel accounting. What our kernels really compute differs: a Vertical-Slash index is
 * built from the estimated columns and diagonals (diagonals become 64-key ranges per 64-query block,
 * neighbouring ones merge), so its cost depends on the head; Block-Sparse computes 64 x 64 blocks.
 * The search therefore equalises the cost it measures (src/search/search.ts):
 *   - the budget is the A-shape candidate's density (its kept causal entries are exact: sink + window);
 *   - each Vertical-Slash candidate is rescaled per head (both sizes by one factor) until the
 *     density of the index our estimator really builds is within costTolerance of the budget;
 *   - Block-Sparse is scored at the largest top-k whose density fits the budget (blockSparseTopKFor),
 *     a subset of the top-k it is written with: MInference's format cannot carry a top-k (it always
 *     runs 100), so the config runs the space's top-k, which keeps at least what was scored.
 * Density = causal query-key entries the kernel computes / all S(S + 1) / 2 of them, the measure the
 * attention API reports per head.
 */
import { BadInputError } from '../gpu/errors.ts';
import { BLOCK, type Pattern } from '../attention/types.ts';
import { streamEntries } from '../attention/stream.ts';
import { MODEL_LIMITS } from '../model/limits.ts';

export interface SearchSpace {
  /** The A-shape candidate; its density is the cost budget of every candidate. */
  aShape: { nInit: number; nLocal: number };
  /** Vertical-Slash candidates at their nominal sizes (rescaled per head to the budget). */
  verticalSlash: readonly { verticalSize: number; slashSize: number }[];
  /** Block-Sparse top-k written into the config (MInference runs 100); scored at the budget's top-k <= it. */
  blockSparseTopK: number;
}

/** MInference's paper space, meant for prompts of 32K tokens and more. */
export const PAPER_SPACE: SearchSpace = Object.freeze({
  aShape: Object.freeze({ nInit: 1024, nLocal: 4096 }),
  verticalSlash: Object.freeze([
    Object.freeze({ verticalSize: 30, slashSize: 2048 }),
    Object.freeze({ verticalSize: 100, slashSize: 1800 }),
    Object.freeze({ verticalSize: 500, slashSize: 1500 }),
    Object.freeze({ verticalSize: 3000, slashSize: 200 }),
  ]),
  blockSparseTopK: 100,
});

/**
 * The space with every size multiplied by `factor` (at least 1 key, or 1 block), for prompts much
 * shorter than 32K tokens: e.g. 1/32 for a 1K-token test prompt.
 */
export function scaleSpace(space: SearchSpace, factor: number): SearchSpace {
  if (!(factor > 0) || !Number.isFinite(factor)) throw new BadInputError(`scaleSpace: factor must be a positive number, got ${factor}`);
  const size = (n: number): number => Math.max(1, Math.round(n * factor));
  return {
    aShape: { nInit: Math.max(0, Math.round(space.aShape.nInit * factor)), nLocal: size(space.aShape.nLocal) },
    verticalSlash: space.verticalSlash.map((c) => ({ verticalSize: size(c.verticalSize), slashSize: size(c.slashSize) })),
    blockSparseTopK: size(space.blockSparseTopK),
  };
}

/** The prompt length PAPER_SPACE's sizes are meant for (MInference searched at 32K tokens and more). */
export const PAPER_SPACE_TOKENS = 32768;

/**
 * PAPER_SPACE with every size times `scale` (scaleSpace), except Block-Sparse's top-k, which stays
 * MInference's 100: its config format cannot carry another top-k (the search scores the top-k that
 * fits the scaled budget, a subset of it). For prompts shorter than 32K tokens; scale 1 is PAPER_SPACE.
 */
export function scaledPaperSpace(scale: number): SearchSpace {
  return scale === 1 ? PAPER_SPACE : { ...scaleSpace(PAPER_SPACE, scale), blockSparseTopK: PAPER_SPACE.blockSparseTopK };
}

/** The scale that fits PAPER_SPACE to a prompt of `tokens` tokens: tokens / 32768, 1 from 32K tokens on. */
export function paperSpaceScale(tokens: number): number {
  if (!Number.isSafeInteger(tokens) || tokens < 1) throw new BadInputError(`paperSpaceScale: tokens must be a positive integer, got ${String(tokens)}`);
  return Math.min(1, tokens / PAPER_SPACE_TOKENS);
}

function isCount(x: unknown, min: number): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= min && x <= MODEL_LIMITS.positions.max;
}

/** Checks a space (sizes are token counts, bounded as pattern configs' are). */
export function validateSpace(space: SearchSpace): void {
  const where = 'search space';
  if (!space || typeof space !== 'object') throw new BadInputError(`${where}: expected { aShape, verticalSlash, blockSparseTopK }`);
  const a = space.aShape;
  if (!a || !isCount(a.nInit, 0) || !isCount(a.nLocal, 1)) throw new BadInputError(`${where}: aShape needs integers nInit >= 0 and nLocal >= 1, got ${JSON.stringify(a)}`);
  if (!Array.isArray(space.verticalSlash)) throw new BadInputError(`${where}: verticalSlash must be a list of { verticalSize, slashSize }`);
  space.verticalSlash.forEach((c, i) => {
    if (!c || !isCount(c.verticalSize, 1) || !isCount(c.slashSize, 1)) throw new BadInputError(`${where}: verticalSlash[${i}] needs positive integer sizes, got ${JSON.stringify(c)}`);
  });
  if (!isCount(space.blockSparseTopK, 1)) throw new BadInputError(`${where}: blockSparseTopK must be a positive integer, got ${String(space.blockSparseTopK)}`);
}

/** All causal query-key entries of a prompt of S tokens. */
export function causalEntries(S: number): number {
  return (S * (S + 1)) / 2;
}

/** A-shape's density at S tokens (exact). */
export function aShapeDensity(S: number, nInit: number, nLocal: number): number {
  return streamEntries(S, nInit, nLocal) / causalEntries(S);
}

/**
 * Block-Sparse's density at S tokens with the top `topK` key blocks per query block, when the
 * query block's own (diagonal) block is among them, as it is where attention is local: query block
 * m keeps min(topK, m + 1) blocks, the diagonal one causally masked.
 */
export function blockSparseDensity(S: number, topK: number): number {
  let n = 0;
  for (let m = 0; m * BLOCK < S; m++) {
    const rows = Math.min(BLOCK, S - m * BLOCK);
    n += (Math.min(topK, m + 1) - 1) * BLOCK * rows + (rows * (rows + 1)) / 2;
  }
  return n / causalEntries(S);
}

/** The largest top-k <= maxTopK whose Block-Sparse density stays within the budget (at least 1). */
export function blockSparseTopKFor(S: number, budget: number, maxTopK: number): number {
  let k = 1;
  while (k < maxTopK && blockSparseDensity(S, k + 1) <= budget) k++;
  return k;
}

/** A candidate's name in reports: its nominal pattern, e.g. "vertical_and_slash(30, 2048)". */
export function candidateName(p: Pattern): string {
  switch (p.type) {
    case 'dense':
      return 'dense';
    case 'stream_llm':
      return `stream_llm(${p.nInit}, ${p.nLocal})`;
    case 'vertical_and_slash':
      return `vertical_and_slash(${p.verticalSize}, ${p.slashSize})`;
    case 'block_sparse':
      return `block_sparse(${p.topK})`;
  }
}

/** The space's candidates at their nominal sizes, in the search's order of preference on ties. */
export function nominalCandidates(space: SearchSpace): Pattern[] {
  return [
    { type: 'stream_llm', nInit: space.aShape.nInit, nLocal: space.aShape.nLocal },
    ...space.verticalSlash.map((c): Pattern => ({ type: 'vertical_and_slash', verticalSize: c.verticalSize, slashSize: c.slashSize })),
    { type: 'block_sparse', topK: space.blockSparseTopK },
  ];
}
