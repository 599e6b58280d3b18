/**
 * Sets up what the demo page and the README's quick start use by default:
 *   .fixtures/default-model/          a small Llama with RANDOM weights and the real Llama 3
 *                                     tokenizer (Hugging Face layout), served by `npx vite` at
 *                                     /.fixtures/default-model/. It runs the whole pipeline at a
 *                                     realistic vocabulary size, but its answers are noise.
 *   demo/assets/default-document.txt  the bundled 16K-word document (+ .json with its question),
 *                                     regenerated only when missing or different.
 * Idempotent: a second run with nothing changed rewrites nothing.
 *
 *   npx tsx scripts/setup-default.ts [--force]
 *
 * For real answers, point the page (model: Local folder / URL) or the CLI at a real model folder,
 * e.g. one downloaded with `huggingface-cli download meta-llama/Llama-3.2-1B-Instruct`.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import process from 'node:process';
import { DEFAULT_FIXTURE_DIR, REPO_ROOT, writeFixture, type FixtureSpec } from './make-fixtures.ts';
import { DEFAULT_DOCUMENT_WORDS, makeDocument, writeDocument } from './make-document.ts';

/**
 * The default demo model: Llama 3.2 layout (tied embeddings, since an untied lm_head would double
 * the 128256-row vocabulary table; llama3 rope scaling), hidden 128 = 2 query heads of 64 sharing
 * one KV head (GQA 2:1), 4 layers: ~33 MB of bf16 weights, almost all of it the embedding table,
 * small enough to load quickly in a browser and to prefill a few hundred tokens on a software adapter.
 */
export const DEFAULT_MODEL_SPEC: FixtureSpec = {
  name: 'default-model',
  architecture: 'LlamaForCausalLM',
  tokenizer: 'llama3',
  hiddenSize: 128,
  intermediateSize: 344,
  numLayers: 4,
  numHeads: 2,
  numKvHeads: 1,
  headDim: 64,
  dtype: 'BF16',
  tied: true,
  ropeTheta: 500000,
  ropeScaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
  seed: 2024,
};

export const DEFAULT_MODEL_DIR = join(DEFAULT_FIXTURE_DIR, 'default-model');
export const DEFAULT_DOCUMENT_PATH = join(REPO_ROOT, 'demo', 'assets', 'default-document.txt');

const README_TEXT = `This folder was written by scripts/setup-default.ts. The model has RANDOM weights: it exercises
the whole pipeline (real Llama 3 tokenizer, Llama 3 architecture, bf16 safetensors), but what it
answers is noise. For real answers point the demo page or the CLI at a real model folder.
`;

/** Writes the default model into `dir` unless an identical one is there; returns whether it wrote. */
export async function ensureDefaultModel(dir = DEFAULT_MODEL_DIR, spec: FixtureSpec = DEFAULT_MODEL_SPEC, force = false): Promise<boolean> {
  const stamp = JSON.stringify({ version: 1, spec });
  const stampFile = join(dir, '.setup-default.json');
  if (!force && (await readFile(stampFile, 'utf8').catch(() => '')) === stamp) return false;
  // Write beside, then swap, so a dev server never serves a half-written folder.
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  try {
    await writeFixture(tmp, spec);
    await writeFile(join(tmp, 'README.txt'), README_TEXT);
    await writeFile(join(tmp, '.setup-default.json'), stamp);
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    if ((await readFile(stampFile, 'utf8').catch(() => '')) !== stamp) throw e; // not a lost race
  }
  return true;
}

/** Writes the bundled document unless the file already holds exactly that text; returns whether it wrote. */
export async function ensureDefaultDocument(path = DEFAULT_DOCUMENT_PATH, words = DEFAULT_DOCUMENT_WORDS): Promise<boolean> {
  const want = makeDocument({ words, seed: 1, needleDepth: 0.5 });
  const have = await readFile(path, 'utf8').catch(() => undefined);
  const metaPath = path.replace(/\.[^./\\]*$/, '') + '.json';
  const haveMeta = await readFile(metaPath, 'utf8').catch(() => undefined);
  if (have === want.text && haveMeta !== undefined) return false;
  await mkdir(join(path, '..'), { recursive: true });
  await writeDocument(path, { words, seed: 1, needleDepth: 0.5 });
  return true;
}

async function main(args: string[]): Promise<void> {
  const force = args.includes('--force');
  const unknown = args.filter((a) => a !== '--force');
  if (unknown.length) throw new Error(`unknown argument ${unknown[0]} (usage: setup-default.ts [--force])`);
  const t0 = Date.now();
  const wroteModel = await ensureDefaultModel(DEFAULT_MODEL_DIR, DEFAULT_MODEL_SPEC, force);
  const wroteDoc = await ensureDefaultDocument();
  console.log(`${wroteModel ? 'wrote' : 'up to date:'} ${DEFAULT_MODEL_DIR} (random-weight Llama, real Llama 3 tokenizer; its answers are noise)`);
  console.log(`${wroteDoc ? 'wrote' : 'up to date:'} ${DEFAULT_DOCUMENT_PATH}`);
  console.log(`done in ${Date.now() - t0} ms. Start the demo with: npx vite   (then open the printed URL)`);
}

if (process.argv[1] !== undefined && /setup-default\.ts$/.test(process.argv[1])) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error((e as Error).message);
    process.exitCode = 1;
  });
}
