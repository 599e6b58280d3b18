/**
 * Needle-in-a-haystack documents (RULER style) for any model: facts planted at a chosen depth in
 * held-out English text (the Brown Corpus categories N, P and R, which the bundled model never saw:
 * demo/assets/brown-heldout.txt), and a question about one of them. The needle, question and answer
 * templates and the keys and values are the evaluation lists of needle_templates.json, the file the
 * training data builder (tools/train/data.py) also reads, so the questions are phrased as the model
 * learnt them while keys and values are ones it never saw.
 *
 * Lengths are prompt lengths in the model's own tokens, exactly as `answer()` builds the prompt: the
 * builder measures the whole prompt with the model's tokenizer and adjusts the haystack word by word
 * until it has the asked number of tokens (or one or two fewer when a word's tokens overshoot).
 *
 * Everything is seeded (mulberry32), so a (length, depth, seed) gives the same document on every host.
 */
import templates from './needle_templates.json' with { type: 'json' };
import { mulberry32 } from '../util/prng.ts';

export type ValueKind = 'number' | 'word' | 'code';
export const VALUE_KINDS: readonly ValueKind[] = ['number', 'word', 'code'];

/** Counts tokens the way the model will see them. */
export interface TokenCounter {
  /** Tokens of the prompt answer(document, question) builds. */
  promptTokens(document: string, question: string): number;
  /** Tokens of a piece of text inside a document (no special tokens). */
  textTokens(text: string): number;
}

export interface NeedleFact {
  key: string;
  value: string;
  kind: ValueKind;
  /** The planted sentence. */
  sentence: string;
}

export interface NeedleOptions {
  /** Prompt tokens wanted. */
  length: number;
  /** Where the asked needle goes: 0 = before the first sentence, 1 = after the last. */
  depth: number;
  /** Facts planted (the asked one and needles - 1 others at random depths). Default 1. */
  needles?: number;
  /** Value kind of the asked fact (default: chosen by the seed). */
  kind?: ValueKind;
  seed?: number;
}

export interface NeedleDocument {
  document: string;
  question: string;
  /** The fact asked about. */
  fact: NeedleFact;
  /** Every planted fact, in document order. */
  facts: NeedleFact[];
  /** What the model was trained to answer, e.g. "The magic number for acorn is 5938271." */
  expectedAnswer: string;
  /** Tokens of the prompt answer() builds (measured with the model's tokenizer). */
  promptTokens: number;
  depth: number;
  /** Where the asked needle starts, as a fraction of the document's tokens. */
  needleDepth: number;
}

function pick<T>(rng: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rng() * xs.length)]!;
}

function fill(template: string, kind: ValueKind, key: string, value: string): string {
  return template.replaceAll('{kind}', templates.kinds[kind]).replaceAll('{key}', key).replaceAll('{value}', value);
}

/** The evaluation keys: words, names, and adjective + word phrases. */
function evalKeys(): string[] {
  const k = templates.keys.eval;
  return [...k.words, ...k.names, ...k.adjectives.flatMap((a) => k.words.slice(0, 8).map((w) => `${a} ${w}`))];
}

function makeValue(rng: () => number, kind: ValueKind): string {
  const v = templates.values.eval;
  if (kind === 'number') return String(1_000_000 + Math.floor(rng() * 9_000_000));
  if (kind === 'word') return pick(rng, v.words);
  const hex = (): string => Array.from({ length: 4 }, () => pick(rng, [...v.code_alphabet])).join('');
  return `${hex()}-${hex()}`;
}

/** A fact with its planted sentence, the question about it and the answer the model learnt. */
export function makeFact(rng: () => number, key: string, kind: ValueKind): { fact: NeedleFact; question: string; answer: string } {
  const value = makeValue(rng, kind);
  return {
    fact: { key, value, kind, sentence: fill(pick(rng, templates.needles), kind, key, value) },
    question: fill(pick(rng, templates.questions), kind, key, value),
    answer: fill(templates.answer, kind, key, value),
  };
}

/** Whether an answer states the value: the value as a whole word (RULER's string match, made strict). */
export function answerIsCorrect(answer: string, value: string): boolean {
  const escaped = value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[^0-9A-Za-z])${escaped}([^0-9A-Za-z]|$)`).test(answer);
}

/** A haystack sentence; `breakBefore`: it opens a paragraph. */
interface Unit {
  text: string;
  breakBefore: boolean;
}

/** Sentence-per-line text, paragraphs separated by a blank line (scripts/brown-corpus.ts). */
export function parseHaystack(text: string): Unit[] {
  const units: Unit[] = [];
  for (const para of text.split(/\n\s*\n/)) {
    const sentences = para.split('\n').map((s) => s.trim()).filter((s) => s !== '');
    sentences.forEach((s, i) => units.push({ text: s, breakBefore: i === 0 && units.length > 0 }));
  }
  return units;
}

function joinUnits(units: readonly Unit[]): string {
  let out = '';
  units.forEach((u, i) => {
    if (i > 0) out += u.breakBefore ? '\n\n' : ' ';
    out += u.text;
  });
  return out;
}

export class NeedleDocumentBuilder {
  private readonly units: Unit[];
  private readonly unitTokens = new Map<string, number>();
  /** Built documents by their options (a grid per attention config asks for the same ones). */
  private readonly built = new Map<string, NeedleDocument>();
  /** Words that ended the document, per (seed, length): the next depth starts from them. */
  private readonly tailWords = new Map<string, string[]>();

  constructor(
    haystackText: string,
    private readonly counter: TokenCounter,
  ) {
    this.units = parseHaystack(haystackText);
    if (this.units.length < 2) throw new RangeError('the haystack text has fewer than two sentences');
  }

  /** Estimated tokens of a unit inside a document (its separator included). */
  private estimate(text: string, breakBefore: boolean): number {
    const key = (breakBefore ? '\n\n' : ' ') + text;
    let n = this.unitTokens.get(key);
    if (n === undefined) {
      n = this.counter.textTokens(key);
      this.unitTokens.set(key, n);
    }
    return n;
  }

  build(o: NeedleOptions): NeedleDocument {
    const key = JSON.stringify([o.length, o.depth, o.needles ?? 1, o.kind ?? '', o.seed ?? 1]);
    let doc = this.built.get(key);
    if (!doc) {
      doc = this.make(o);
      this.built.set(key, doc);
    }
    return doc;
  }

  private make(o: NeedleOptions): NeedleDocument {
    const needles = o.needles ?? 1;
    if (!Number.isInteger(o.length) || o.length < 1) throw new RangeError(`length must be a positive integer, got ${o.length}`);
    if (!(o.depth >= 0 && o.depth <= 1)) throw new RangeError(`depth must be in [0, 1], got ${o.depth}`);
    if (!Number.isInteger(needles) || needles < 1 || needles > 16) throw new RangeError(`needles must be an integer in [1, 16], got ${needles}`);
    const seed = o.seed ?? 1;
    // The haystack's start depends on the seed and length only, so a depth sweep reads one text.
    const hayRng = mulberry32(seed * 7919 + o.length);
    const rng = mulberry32(seed * 104729 + o.length * 31 + Math.round(o.depth * 1000));
    const keys = evalKeys();
    const chosen: string[] = [];
    while (chosen.length < needles) {
      const k = pick(rng, keys);
      if (!chosen.includes(k)) chosen.push(k);
    }
    const made = chosen.map((k, i) => makeFact(rng, k, i === 0 && o.kind ? o.kind : pick(rng, VALUE_KINDS)));
    const asked = made[0]!;

    // Whole sentences from a paragraph start, as many as the estimates allow, then words of the next.
    const starts = this.units.map((u, i) => (i === 0 || u.breakBefore ? i : -1)).filter((i) => i >= 0);
    const first = starts[Math.floor(hayRng() * starts.length)]!;
    const overhead = this.counter.promptTokens(made.map((m) => m.fact.sentence).join(' '), asked.question);
    const budget = o.length - overhead;
    const hay: Unit[] = [];
    let used = 0;
    let i = first;
    for (;;) {
      const u = this.units[i % this.units.length]!;
      const unit = { text: u.text, breakBefore: hay.length > 0 && u.breakBefore };
      const n = this.estimate(unit.text, unit.breakBefore);
      if (used + n > budget) break;
      hay.push(unit);
      used += n;
      i++;
    }
    const next = this.units[i % this.units.length]!;
    // Words that may end the document: those of the next few sentences, in order (a word whose
    // tokens overshoot what is left is skipped, so the length can come out exact).
    const spare = [1, 2, 3].flatMap((k) => this.units[(i + k - 1) % this.units.length]!.text.split(' '));
    // The needles' places among the sentence boundaries (0 .. hay.length), the asked one at `depth`.
    const cum: number[] = [0];
    for (const u of hay) cum.push(cum[cum.length - 1]! + this.estimate(u.text, u.breakBefore));
    const total = cum[cum.length - 1]!;
    let at = 0;
    for (let b = 0; b < cum.length; b++) if (Math.abs(cum[b]! - o.depth * total) < Math.abs(cum[at]! - o.depth * total)) at = b;
    const places = [at, ...made.slice(1).map(() => Math.floor(rng() * (hay.length + 1)))];

    // Assemble, measure, and move words between the document's end and `spare` until it fits.
    const tailKey = `${seed}:${o.length}`;
    let tail: string[] = [...(this.tailWords.get(tailKey) ?? [])];
    const assemble = (): { document: string; needleAt: number } => {
      const body: Unit[] = [...hay, ...(tail.length ? [{ text: tail.join(' '), breakBefore: next.breakBefore }] : [])];
      // A needle placed after the last whole sentence goes after the partial one too.
      const where = places.map((p) => (p >= hay.length ? body.length : p));
      const units: Unit[] = [];
      let needleAt = 0;
      for (let b = 0; b <= body.length; b++) {
        made.forEach((m, j) => {
          if (where[j] !== b) return;
          if (j === 0) needleAt = units.length;
          units.push({ text: m.fact.sentence, breakBefore: false });
        });
        if (b < body.length) units.push({ ...body[b]!, breakBefore: units.length > 0 && body[b]!.breakBefore });
      }
      return { document: joinUnits(units), needleAt: joinUnits(units.slice(0, needleAt)).length };
    };
    let best: { document: string; needleAt: number; tokens: number; tail: string[] } | undefined;
    let from = 0; // next word of `spare` to consider
    const seen = new Set<string>();
    for (let round = 0; round < 16 && !seen.has(tail.join(' ')); round++) {
      seen.add(tail.join(' '));
      const doc = assemble();
      const tokens = this.counter.promptTokens(doc.document, asked.question);
      if (tokens <= o.length && (!best || tokens > best.tokens)) best = { ...doc, tokens, tail: [...tail] };
      const gap = o.length - tokens;
      if (gap === 0) break;
      if (gap > 0) {
        let room = gap;
        while (room > 0 && from < spare.length) {
          const w = spare[from++]!;
          const n = this.estimate(w, false);
          if (n > room) continue;
          tail.push(w);
          room -= n;
        }
        if (room === gap) break; // nothing fitted
      } else {
        let over = -gap;
        while (over > 0 && tail.length > 0) over -= this.estimate(tail.pop()!, false);
      }
    }
    if (!best) throw new RangeError(`length ${o.length} is too short for ${needles} needle(s) and the question (${overhead} tokens)`);
    this.tailWords.set(tailKey, best.tail);
    const docTokens = this.counter.textTokens(best.document);
    const needleDepth = best.needleAt === 0 ? 0 : this.counter.textTokens(best.document.slice(0, best.needleAt)) / docTokens;
    const order = [...made].sort((a, b) => best.document.indexOf(a.fact.sentence) - best.document.indexOf(b.fact.sentence));
    return {
      document: best.document,
      question: asked.question,
      fact: asked.fact,
      facts: order.map((m) => m.fact),
      expectedAnswer: asked.answer,
      promptTokens: best.tokens,
      depth: o.depth,
      needleDepth,
    };
  }
}
