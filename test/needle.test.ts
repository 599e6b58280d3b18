/**
 * The trained model and its evaluation: needle documents (token-exact lengths, needle at the asked
 * depth, held-out text only), the SVG heat map, the runtime tokenizer against the training one
 * (golden ids written by tools/train/train.py with Hugging Face tokenizers), and on the software
 * adapter the shipped model answering the short bundled document with dense and with sparse
 * attention, and a tiny grid of the harness end to end.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testGpu } from './harness/gpu.ts';
import { openLocalModel } from '../src/model/source.ts';
import { loadTokenizer, type ModelTokenizer } from '../src/model/tokenizer.ts';
import { openModel, type OpenModel } from '../src/model/session.ts';
import { answerIsCorrect, NeedleDocumentBuilder, parseHaystack } from '../src/eval/needle.ts';
import { evenDepths, formatNiahTable, runNiah, type NiahGrid } from '../src/eval/niah.ts';
import { niahHeatmapSvg, niahHeatmapsSvg, scoreColor } from '../src/eval/heatmap.ts';
import { tokenizerCounter } from '../scripts/setup-default.ts';
import templates from '../src/eval/needle_templates.json' with { type: 'json' };

const MODEL = 'models/needle-reader';
const HELDOUT = readFileSync('demo/assets/brown-heldout.txt', 'utf8');
let tok: ModelTokenizer;

beforeAll(async () => {
  tok = await loadTokenizer(await openLocalModel(MODEL));
});

describe('needle documents', () => {
  it('have exactly the asked prompt length (or at most 2 fewer), measured the way answer() builds prompts', () => {
    const counter = tokenizerCounter(tok);
    const b = new NeedleDocumentBuilder(HELDOUT, counter);
    for (const length of [200, 777, 1500, 4096]) {
      for (const depth of [0, 0.3, 1]) {
        const d = b.build({ length, depth, needles: 3, seed: 5 });
        expect(d.promptTokens).toBe(counter.promptTokens(d.document, d.question));
        expect(d.promptTokens).toBeLessThanOrEqual(length);
        expect(d.promptTokens).toBeGreaterThanOrEqual(length - 2);
      }
    }
  });

  it('put the asked needle at the asked depth (within one sentence) and plant every fact once', () => {
    const counter = tokenizerCounter(tok);
    const b = new NeedleDocumentBuilder(HELDOUT, counter);
    for (const depth of [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1]) {
      const d = b.build({ length: 3000, depth, needles: 4, seed: 9 });
      const at = d.document.indexOf(d.fact.sentence);
      expect(at).toBeGreaterThanOrEqual(0);
      const measured = counter.textTokens(d.document.slice(0, at)) / counter.textTokens(d.document);
      expect(Math.abs(measured - depth)).toBeLessThan(0.03);
      expect(Math.abs(d.needleDepth - measured)).toBeLessThan(0.01);
      for (const f of d.facts) expect(d.document.split(f.sentence).length).toBe(2);
      expect(d.question).toContain(d.fact.key);
      expect(answerIsCorrect(d.expectedAnswer, d.fact.value)).toBe(true);
    }
  });

  it('use held-out text and the evaluation lists only', () => {
    const b = new NeedleDocumentBuilder(HELDOUT, tokenizerCounter(tok));
    const heldout = parseHaystack(HELDOUT).map((u) => u.text).sort((x, y) => y.length - x.length);
    const evalKeys = [...templates.keys.eval.words, ...templates.keys.eval.names];
    const evalValues = [...templates.values.eval.words];
    for (let seed = 1; seed <= 6; seed++) {
      const d = b.build({ length: 900, depth: 0.5, needles: 2, seed });
      // Take out the facts and every held-out sentence: what is left is the words of the partial
      // last sentence (at most a sentence's worth of held-out words).
      let rest = d.document;
      for (const f of d.facts) rest = rest.replace(f.sentence, '');
      for (const sentence of heldout) if (rest.includes(sentence)) rest = rest.split(sentence).join('');
      rest = rest.replace(/\s+/g, ' ').trim();
      expect(rest.length).toBeLessThan(400);
      for (const word of rest.split(' ').filter(Boolean)) expect(HELDOUT).toContain(word);
      for (const f of d.facts) {
        expect(evalKeys.some((k) => f.key === k || f.key.endsWith(` ${k}`))).toBe(true);
        if (f.kind === 'word') expect(evalValues).toContain(f.value);
      }
    }
  });

  it('score answers by the value as a whole word', () => {
    expect(answerIsCorrect('The magic number for acorn is 5938271.', '5938271')).toBe(true);
    expect(answerIsCorrect('The magic number for acorn is 59382710.', '5938271')).toBe(false);
    expect(answerIsCorrect('The magic code is 3fa9-0c1e', '3fa9-0c1e')).toBe(true);
    expect(answerIsCorrect('', 'walrus')).toBe(false);
  });
});

describe('heat map', () => {
  const grid: NiahGrid = {
    label: 'dense <test>',
    lengths: [1024, 4096],
    depths: [0, 1],
    cases: [
      { length: 1024, depth: 0, correct: true },
      { length: 1024, depth: 1, correct: false },
      { length: 4096, depth: 0, correct: true },
      { length: 4096, depth: 1, correct: true },
    ].map((c) => ({ ...c, promptTokens: c.length, needleDepth: c.depth, key: 'k', value: 'v', answer: 'a"<', generatedTokens: 3, prefillMs: 1, decodeMs: 1, attentionMode: 'dense' as const, density: 1 })),
    accuracy: { 1024: 0.5, 4096: 1 },
    mean: 0.75,
  };

  it('draws one cell per length and depth, coloured by score, with escaped text', () => {
    const svg = niahHeatmapSvg(grid);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/<rect x=/g)).toHaveLength(4);
    expect(svg).toContain(scoreColor(1));
    expect(svg).toContain(scoreColor(0));
    expect(svg).toContain('dense &lt;test&gt;: 75.0% exact match');
    expect(svg).not.toContain('a"<');
    expect(svg).toContain('>1K<');
    expect(svg).toContain('>4K<');
    expect(svg).toContain('>100%<');
    const two = niahHeatmapsSvg([grid, { ...grid, label: 'sparse' }]);
    expect(two.match(/<rect x=/g)).toHaveLength(8);
  });

  it('colours run red -> yellow -> green', () => {
    expect(scoreColor(0)).toBe('#d73027');
    expect(scoreColor(0.5)).toBe('#fee08b');
    expect(scoreColor(1)).toBe('#1a9850');
    expect(scoreColor(NaN)).toBe('#d73027');
  });

  it('tabulates accuracy per length', () => {
    const t = formatNiahTable([grid]);
    expect(t).toContain('50');
    expect(t).toContain('100');
    expect(t).toContain('75.0');
  });
});

describe('tokenizer', () => {
  it('encodes like the Hugging Face tokenizers the model was trained with', () => {
    const golden = JSON.parse(readFileSync('test/fixtures/needle_reader_tokenizer_golden.json', 'utf8')) as { text: string; ids: number[] }[];
    expect(golden.length).toBeGreaterThan(3);
    for (const g of golden) expect(tok.encode(g.text, { addSpecialTokens: false })).toEqual(g.ids);
  });
});

describe('needle-reader on the software adapter', () => {
  let model: OpenModel;
  const short = JSON.parse(readFileSync('demo/assets/short-document.json', 'utf8')) as { question: string; expectedValue: string };
  const shortText = readFileSync('demo/assets/short-document.txt', 'utf8');

  beforeAll(async () => {
    model = await openModel(await testGpu(), await openLocalModel(MODEL), { attentionConfig: 'dense' });
  }, 300_000);
  afterAll(() => model?.close());

  it('answers the short bundled document right with dense and with sparse attention that skips keys', { timeout: 900_000 }, async () => {
    const dense = await model.answer(shortText, short.question, { maxNewTokens: 32 });
    expect(dense.report.attentionMode).toBe('dense');
    expect(answerIsCorrect(dense.text, short.expectedValue)).toBe(true);
    model.setAttention({ type: 'vertical_and_slash', verticalSize: 64, slashSize: 128 }, 0);
    const sparse = await model.answer(shortText, short.question, { maxNewTokens: 32 });
    expect(sparse.report.attentionMode).toBe('sparse');
    expect(sparse.report.meanDensity!).toBeLessThan(0.9);
    expect(answerIsCorrect(sparse.text, short.expectedValue)).toBe(true);
  });

  it('runs a tiny grid of the harness end to end', { timeout: 600_000 }, async () => {
    model.setAttention('dense');
    const grid = await runNiah(model, HELDOUT, { lengths: [160], depths: evenDepths(2), seed: 2, maxNewTokens: 24, label: 'dense' });
    expect(grid.cases).toHaveLength(2);
    for (const c of grid.cases) {
      expect(c.promptTokens).toBeLessThanOrEqual(160);
      expect(c.promptTokens).toBeGreaterThanOrEqual(158);
      expect(c.answer.length).toBeGreaterThan(0);
    }
    expect(grid.mean).toBe(grid.cases.filter((c) => c.correct).length / 2);
    expect(grid.accuracy[160]).toBe(grid.mean);
  });
});
