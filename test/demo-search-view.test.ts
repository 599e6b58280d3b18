// The pattern search and the picture in the demo page's words (demo/search-view.ts).
import { describe, expect, it } from 'vitest';
import { describeSpace, pictureHead, RECALL_MEANS, searchOutcomeText, searchPlanText, searchProgressText } from '../demo/search-view.ts';
import { scaledPaperSpace, PAPER_SPACE } from '../src/search/space.ts';
import { BadInputError } from '../src/gpu/errors.ts';
import type { SearchPlan } from '../demo/protocol.ts';

describe('demo search view', () => {
  it('names the candidates of a space', () => {
    expect(describeSpace(PAPER_SPACE)).toBe('A-shape (1,024, 4,096), Vertical-Slash (30, 2,048) (100, 1,800) (500, 1,500) (3,000, 200), Block-Sparse (top 100)');
    expect(describeSpace(scaledPaperSpace(1 / 64))).toBe('A-shape (16, 64), Vertical-Slash (1, 32) (2, 28) (8, 23) (47, 3), Block-Sparse (top 100)');
  });

  it('says what the search scores, on which rows and at which cost', () => {
    const plan: SearchPlan = { promptTokens: 512, scale: 1 / 64, space: scaledPaperSpace(1 / 64), budget: 0.3, scoredRows: 320, sampledRows: 256, firstRow: 128, numLayers: 6, numHeads: 6 };
    expect(searchPlanText(plan)).toBe(
      "Searching 6 layers × 6 heads on the document's 512 tokens: MInference's space scaled to the prompt (× 512/32768), " +
        'A-shape (16, 64), Vertical-Slash (1, 32) (2, 28) (8, 23) (47, 3), Block-Sparse (top 100), each at the A-shape\'s cost (30.0% of the causal query-key pairs). ' +
        "Recall is the share of softmax mass kept on the document's last rows: 320 query rows from token 128 on.",
    );
    expect(searchPlanText({ ...plan, scale: 1, promptTokens: 40000 })).toContain("on the document's 40,000 tokens: MInference's space, A-shape");
  });

  it('words a search step for the progress bar, with the time left once under way', () => {
    expect(searchProgressText({ layer: 0, numLayers: 6, phase: 'prefill', fraction: 0, elapsedMs: 500 })).toEqual({ phase: 'Pattern search', detail: 'layer 1/6 · dense prefill up to it · 500 ms' });
    expect(searchProgressText({ layer: 2, numLayers: 6, phase: 'score', stage: 'dense', fraction: 0.5, elapsedMs: 10_000 }).detail).toBe('layer 3/6 · dense reference · 10.00 s · about 10.00 s left');
    expect(searchProgressText({ layer: 5, numLayers: 6, phase: 'score', stage: 'stream_llm(16, 64)', fraction: 1, elapsedMs: 20_000 }).detail).toBe('layer 6/6 · scoring stream_llm(16, 64) · 20.00 s');
  });

  it('closes with the mean recall and what it measures', () => {
    expect(searchOutcomeText({ promptTokens: 498, scoredBlockSparseTopK: 3, meanRecall: 0.95312, ms: 61_000, json: '[]' }, 36)).toBe(
      `Mean recall 0.953 over 36 heads (${RECALL_MEANS}), searched in 1 min 1 s on 498 tokens.`,
    );
  });

  it('checks the picture layer and head against the model', () => {
    expect(pictureHead('0', '5', 6, 6)).toEqual({ layer: 0, head: 5 });
    expect(pictureHead('3', '2', undefined, undefined)).toEqual({ layer: 3, head: 2 });
    expect(() => pictureHead('6', '0', 6, 6)).toThrow(/layer must be a whole number from 0 to 5, got "6"/);
    expect(() => pictureHead('0', '-1', 6, 6)).toThrow(BadInputError);
    expect(() => pictureHead('', '0', 6, 6)).toThrow(/layer/);
    expect(() => pictureHead('1.5', '0', undefined, undefined)).toThrow(/layer must be a whole number 0 or more, got "1.5"/);
  });
});
