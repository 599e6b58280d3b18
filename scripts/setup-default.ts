/**
 * Sets up what the README's quick start (`npm start`) and the demo page use by default:
 *   models/needle-reader/            the embedded default model (committed): an 11M-parameter Llama
 *                                    trained by tools/train/ to read English text and answer
 *                                    questions about facts planted in it (see its README.md).
 *   demo/assets/default-document.*   a 40K-token document of held-out text (Brown Corpus N, P, R,
 *                                    never trained on) with four planted facts, and the question
 *                                    about one of them (.json: question, expected value, tokens).
 *                                    Long enough that sparse attention runs (denseBelow 32K).
 *   demo/assets/short-document.*     the same kind of document at 512 tokens, for CPU (software)
 *                                    adapters, which compute about 1 GFLOP/s.
 * The documents are built with the model's own tokenizer (src/eval/needle.ts) and are committed;
 * this script rewrites them only when they differ from what it would build (`--check` only reports).
 *
 *   npx tsx scripts/setup-default.ts [--check]
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import process from 'node:process';
import { REPO_ROOT } from './make-fixtures.ts';
import { openLocalModel } from '../src/model/source.ts';
import { loadTokenizer, type ModelTokenizer } from '../src/model/tokenizer.ts';
import { NeedleDocumentBuilder, type TokenCounter } from '../src/eval/needle.ts';
import { HELDOUT_PATH } from './brown-corpus.ts';

export const DEFAULT_MODEL_DIR = join(REPO_ROOT, 'models', 'needle-reader');

export interface BundledDocument {
  /** Path without extension: <base>.txt holds the document, <base>.json its question. */
  base: string;
  length: number;
  depth: number;
  needles: number;
  seed: number;
}

export const DEFAULT_DOCUMENT: BundledDocument = { base: join(REPO_ROOT, 'demo', 'assets', 'default-document'), length: 40960, depth: 0.6, needles: 4, seed: 11 };
export const SHORT_DOCUMENT: BundledDocument = { base: join(REPO_ROOT, 'demo', 'assets', 'short-document'), length: 512, depth: 0.4, needles: 2, seed: 3 };

/** Prompt and text token counts with a tokenizer, as answer() builds the prompt (chat template). */
export function tokenizerCounter(tok: ModelTokenizer): TokenCounter {
  return {
    promptTokens: (document, question) => tok.encodeChat([{ role: 'user', content: `${document}\n\n${question}` }]).length,
    textTokens: (text) => tok.encode(text, { addSpecialTokens: false }).length,
  };
}

/** The text and metadata of a bundled document. */
export async function buildBundled(doc: BundledDocument, tok?: ModelTokenizer): Promise<{ text: string; meta: string }> {
  const tokenizer = tok ?? (await loadTokenizer(await openLocalModel(DEFAULT_MODEL_DIR)));
  const builder = new NeedleDocumentBuilder(await readFile(HELDOUT_PATH, 'utf8'), tokenizerCounter(tokenizer));
  const d = builder.build({ length: doc.length, depth: doc.depth, needles: doc.needles, seed: doc.seed });
  const meta = {
    question: d.question,
    expectedValue: d.fact.value,
    expectedAnswer: d.expectedAnswer,
    promptTokens: d.promptTokens,
    needleDepth: Number(d.needleDepth.toFixed(4)),
    facts: d.facts.map((f) => ({ key: f.key, value: f.value })),
    madeBy: 'scripts/setup-default.ts (src/eval/needle.ts, held-out Brown text, models/needle-reader tokenizer)',
  };
  return { text: d.document, meta: `${JSON.stringify(meta, null, 2)}\n` };
}

/** Writes a bundled document unless the files already hold it; returns whether it wrote (or, with check, would write). */
export async function ensureBundled(doc: BundledDocument, check = false, tok?: ModelTokenizer): Promise<boolean> {
  const want = await buildBundled(doc, tok);
  const have = [await readFile(`${doc.base}.txt`, 'utf8').catch(() => ''), await readFile(`${doc.base}.json`, 'utf8').catch(() => '')];
  if (have[0] === want.text && have[1] === want.meta) return false;
  if (!check) {
    await writeFile(`${doc.base}.txt`, want.text);
    await writeFile(`${doc.base}.json`, want.meta);
  }
  return true;
}

async function main(args: string[]): Promise<void> {
  const check = args.includes('--check');
  const unknown = args.filter((a) => a !== '--check');
  if (unknown.length) throw new Error(`unknown argument ${unknown[0]} (usage: setup-default.ts [--check])`);
  const tok = await loadTokenizer(await openLocalModel(DEFAULT_MODEL_DIR));
  let stale = false;
  for (const doc of [DEFAULT_DOCUMENT, SHORT_DOCUMENT]) {
    const changed = await ensureBundled(doc, check, tok);
    stale ||= changed;
    console.log(`${changed ? (check ? 'out of date:' : 'wrote') : 'up to date:'} ${doc.base}.txt (${doc.length} tokens)`);
  }
  if (check && stale) process.exitCode = 1;
}

if (process.argv[1] !== undefined && /setup-default\.ts$/.test(process.argv[1])) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error((e as Error).message);
    process.exitCode = 1;
  });
}
