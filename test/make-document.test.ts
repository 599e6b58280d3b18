// scripts/make-document.ts: deterministic, sized as asked, needle planted once at the asked depth.
import { describe, expect, it } from 'vitest';
import { makeDocument, TINY_DOCUMENT_WORDS } from '../scripts/make-document.ts';

const words = (s: string): number => s.split(/\s+/).filter(Boolean).length;

describe('makeDocument', () => {
  it('is deterministic for a seed and differs across seeds', () => {
    expect(makeDocument({ words: 2000, seed: 7 }).text).toBe(makeDocument({ words: 2000, seed: 7 }).text);
    expect(makeDocument({ words: 2000, seed: 8 }).text).not.toBe(makeDocument({ words: 2000, seed: 7 }).text);
  });

  it('has about the asked number of words', () => {
    for (const n of [TINY_DOCUMENT_WORDS, 1000, 16000]) {
      const d = makeDocument({ words: n, seed: 3 });
      expect(d.words).toBe(words(d.text));
      expect(d.words).toBeGreaterThanOrEqual(n);
      expect(d.words).toBeLessThan(n + 60); // at most one record (~30 words) or the needle (~25) over
    }
  });

  it('plants the needle exactly once, at the asked depth, and the question names it', () => {
    for (const depth of [0, 0.25, 0.5, 1]) {
      const d = makeDocument({ words: 4000, seed: 11, needleDepth: depth });
      const hits = d.text.split(d.expectedAnswer).length - 1;
      expect(hits).toBe(1);
      const at = words(d.text.slice(0, d.text.indexOf('Note added by')));
      expect(at).toBe(d.needleWordOffset);
      expect(Math.abs(at / d.words - depth)).toBeLessThan(0.03);
      const building = /spare key to the (.+) kept\?/.exec(d.question)![1]!.replace(/ kept$/, '');
      expect(d.text).toContain(`spare key to the ${building}`);
    }
  });

  it('rejects bad options', () => {
    expect(() => makeDocument({ words: 0 })).toThrow(/words/);
    expect(() => makeDocument({ needleDepth: 1.5 })).toThrow(/needleDepth/);
  });
});
