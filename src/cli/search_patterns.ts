/**
 * `sparse-prefill search-patterns`: MInference's kernel-aware pattern search on a calibration text
 * (src/search/search.ts), writing MInference's per-layer, per-head JSON config, which `run` and
 * `eval` take as --pattern-config and MInference itself loads.
 *
 * Beside the config, OUT.search.json holds every head's scores and is rewritten after each layer:
 * a search that is interrupted resumes from it (same model shape, prompt and options), and one that
 * finished just writes OUT again. A one-line summary per layer (pattern mix, mean recall, density)
 * and a progress bar go to stderr.
 */
import { rename } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { BadInputError } from '../gpu/errors.ts';
import { calibrationIds, configFromLayers, formatLayerSummary, searchPatterns, type LayerSearch, type SearchProgress } from '../search/search.ts';
import { scaledPaperSpace, type SearchSpace } from '../search/space.ts';
import { parseModelConfig, type ModelConfig } from '../model/config.ts';
import { openLocalModel, readJson } from '../model/source.ts';
import { loadTokenizer } from '../model/tokenizer.ts';
import { commandHelp, parseArgs, UsageError, type CommandSpec } from './args.ts';
import { intOption, numOption, PROGRAM, readText, writeOutput } from './common.ts';
import { MODEL_OPTIONS, openCliModel, parseModelOptions } from './model_options.ts';
import { Progress, type CliIo } from './progress.ts';

/** The search runs dense attention and reports no run: the options that choose a sparse config or a profile do not apply. */
const NOT_FOR_SEARCH = new Set(['pattern', 'pattern-config', 'dense-below', 'profile']);

export const SEARCH_COMMAND: CommandSpec = {
  name: 'search-patterns',
  summary: "Search each head's sparse pattern on a calibration text and write MInference's JSON config.",
  usage: '--model DIR --file PATH --out PATH [--length 32k] [options]',
  options: [
    { name: 'file', short: 'f', kind: 'string', value: 'PATH', required: true, help: "calibration text (held-out text of the model's domain); its first --length tokens are used" },
    { name: 'out', short: 'o', kind: 'string', value: 'PATH', required: true, help: "the config to write (MInference's per-layer, per-head JSON); PATH.search.json keeps every score and lets an interrupted search resume" },
    { name: 'length', short: 'l', kind: 'string', value: 'N', help: 'calibration prompt length in tokens, e.g. 32k (k = 1024; default 32k)' },
    { name: 'rows', kind: 'string', value: 'N', help: 'query rows scored per head past the first quarter of the prompt, besides the last 64 (default 256)' },
    { name: 'space-scale', kind: 'string', value: 'X', help: "multiply the paper space's sizes (A-shape 1024 + 4096, Vertical-Slash (30, 2048) ... (3000, 200)) by X, for prompts shorter than 32K; Block-Sparse stays MInference's top-100 (default 1)" },
    { name: 'restart', kind: 'flag', help: 'ignore a partial search in PATH.search.json and start over' },
    ...MODEL_OPTIONS.filter((o) => !NOT_FOR_SEARCH.has(o.name)),
  ],
  details:
    "Candidates are scored at equal cost on this device with the runtime's own kernels: A-shape's density is the budget, Vertical-Slash sizes are scaled per head until the index the estimator builds computes as much, Block-Sparse is scored at the top-k that fits it. " +
    'Each head gets the candidate with the highest attention recall (softmax mass kept on sampled rows past the first quarter of the prompt and the last 64), then the lowest output error against dense.',
};

/** "32k" -> 32768, "1536" -> 1536 (k = 1024). */
export function parseTokenCount(text: string, option: string, command: string): number {
  const m = /^(\d+(?:\.\d+)?)([kK]?)$/.exec(text.trim());
  const n = m ? Number(m[1]) * (m[2] ? 1024 : 1) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--${option}: "${text}" is not a token count (e.g. 32768 or 32k)`, command);
  return n;
}

/** What OUT.search.json holds: enough to check that a resumed search is the same search. */
export interface SearchState {
  format: typeof STATE_FORMAT;
  model: { layers: number; heads: number; kvHeads: number; headDim: number };
  /** The calibration prompt: its length and a hash of its token ids. */
  prompt: { tokens: number; hash: string };
  rows: number;
  space: SearchSpace;
  layers: LayerSearch[];
}

const STATE_FORMAT = 'sparse-prefill.search/1';

/** FNV-1a of the token ids, as 8 hex digits: tells two calibration prompts apart. */
export function promptHash(ids: Uint32Array): string {
  let h = 0x811c9dc5;
  for (const id of ids) {
    for (let b = 0; b < 32; b += 8) {
      h ^= (id >>> b) & 0xff;
      h = Math.imul(h, 0x01000193) >>> 0;
    }
  }
  return h.toString(16).padStart(8, '0');
}

function modelShape(c: ModelConfig): SearchState['model'] {
  return { layers: c.numLayers, heads: c.numHeads, kvHeads: c.numKvHeads, headDim: c.headDim };
}

/** Reads OUT.search.json; undefined when absent. */
async function readState(path: string): Promise<SearchState | undefined> {
  if (!existsSync(path)) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(await readText(path, 'search state'));
  } catch (e) {
    if (e instanceof BadInputError) throw e;
    throw new BadInputError(`${path} is not valid JSON (pass --restart to start over): ${(e as Error).message}`);
  }
  const s = v as Partial<SearchState> | null;
  if (!s || s.format !== STATE_FORMAT || !Array.isArray(s.layers) || !s.model || !s.prompt || !s.space) {
    throw new BadInputError(`${path} is not a search state of this program (format ${STATE_FORMAT}); pass --restart to start over`);
  }
  return s as SearchState;
}

/** Where a saved state differs from this search; undefined when it can be resumed. */
function stateMismatch(saved: SearchState, want: Omit<SearchState, 'layers' | 'format'>): string | undefined {
  const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
  if (!same(saved.model, want.model)) return `another model shape (${JSON.stringify(saved.model)})`;
  if (!same(saved.prompt, want.prompt)) return `another calibration prompt (${saved.prompt.tokens} tokens, hash ${saved.prompt.hash})`;
  if (saved.rows !== want.rows) return `another --rows (${saved.rows})`;
  if (!same(saved.space, want.space)) return 'another candidate space (--space-scale)';
  return undefined;
}

/** Writes via a temporary file and a rename, so an interrupted write never leaves half a file. */
async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeOutput(tmp, text);
  try {
    await rename(tmp, path);
  } catch (e) {
    throw new BadInputError(`cannot write ${path}: ${(e as Error).message}`);
  }
}

/** A text progress bar: [#####-----] 50%. */
function bar(fraction: number, width = 20): string {
  const n = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${'#'.repeat(n)}${'-'.repeat(width - n)}] ${(fraction * 100).toFixed(0).padStart(3)}%`;
}

/** The closing line: the pattern mix over the model and the mean recall. */
function summaryLine(out: string, statePath: string, layers: readonly LayerSearch[], c: ModelConfig, tokens: number): string {
  const mix: Record<string, number> = {};
  let recall = 0;
  for (const l of layers) {
    for (const [t, n] of Object.entries(l.mix)) mix[t] = (mix[t] ?? 0) + n;
    for (const h of l.heads) recall += h.recall;
  }
  const parts = Object.entries(mix).map(([t, n]) => `${n} ${t}`);
  return `wrote ${out}: ${c.numLayers} layers x ${c.numHeads} heads (${parts.join(', ')}), mean recall ${(recall / (c.numLayers * c.numHeads)).toFixed(3)} on ${tokens} tokens; scores in ${statePath}`;
}

export async function searchCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const cmd = SEARCH_COMMAND.name;
  const a = parseArgs(argv, SEARCH_COMMAND);
  if (a.flags.help) {
    io.out(commandHelp(PROGRAM, SEARCH_COMMAND));
    return 0;
  }
  const progress = new Progress(io, !a.flags.quiet);
  const length = a.strings.length === undefined ? 32768 : parseTokenCount(a.strings.length, 'length', cmd);
  const rows = intOption(a.strings.rows, 'rows', 1, cmd) ?? 256;
  const scale = numOption(a.strings['space-scale'], 'space-scale', cmd) ?? 1;
  if (!(scale > 0)) throw new UsageError(`--space-scale must be a positive number, got ${scale}`, cmd);
  // Block-Sparse keeps MInference's top-100: its format cannot carry another top-k.
  const space = scaledPaperSpace(scale);
  const out = a.strings.out!;
  const statePath = `${out}.search.json`;
  const text = await readText(a.strings.file!, 'calibration text');
  const saved = a.flags.restart ? undefined : await readState(statePath);
  const choice = await parseModelOptions(a, cmd);
  // The prompt and a saved state are checked with the config and tokenizer alone, before the GPU.
  const source = await openLocalModel(choice.dir);
  const config = parseModelConfig(await readJson(source, 'config.json'));
  const tokenizer = await loadTokenizer(source);
  const ids = await progress.timed('tokenizing the calibration text', async () => calibrationIds({ tokenizer }, text, length));
  const want = { model: modelShape(config), prompt: { tokens: ids.length, hash: promptHash(ids) }, rows, space };
  let resume: LayerSearch[] = [];
  if (saved) {
    const why = stateMismatch(saved, want);
    if (why) throw new BadInputError(`${statePath} holds a search of ${why}; pass --restart to start over, or another --out`);
    resume = saved.layers;
    progress.step(`resuming from ${statePath}: ${resume.length} of ${config.numLayers} layers done`);
    if (resume.length === config.numLayers) {
      // Finished earlier: the config is rewritten from the saved scores, no model run.
      await writeAtomically(out, configFromLayers(resume).json);
      io.out(summaryLine(out, statePath, resume, config, ids.length));
      return 0;
    }
  }

  const { gpu, model } = await openCliModel({ ...choice, options: { ...choice.options, attentionConfig: 'dense' } }, progress);
  try {
    const state: SearchState = { format: STATE_FORMAT, ...want, layers: [...resume] };
    const L = model.config.numLayers;
    let lastLine = '';
    const result = await searchPatterns(gpu, model, ids, {
      space,
      rows,
      resume,
      onProgress: (p: SearchProgress) => {
        const line = `search ${bar(p.fraction)} layer ${p.layer + 1}/${L} ${p.phase === 'prefill' ? 'prefill' : p.stage}`;
        if (line !== lastLine) progress.step(line);
        lastLine = line;
      },
      onLayer: async (l) => {
        progress.step(formatLayerSummary(l, L));
        state.layers.push(l);
        await writeAtomically(statePath, JSON.stringify(state));
      },
    });
    await writeAtomically(out, result.json);
    io.out(summaryLine(out, statePath, result.layers, model.config, result.promptTokens));
  } finally {
    model.close();
    gpu.destroy();
  }
  return 0;
}
