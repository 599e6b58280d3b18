/**
 * `sparse-prefill eval niah`: needle-in-a-haystack accuracy of a model over a grid of prompt
 * lengths and needle depths (src/eval/niah.ts), once per attention config given (--pattern /
 * --pattern-config, repeatable; default: the default Vertical-Slash config), with a table on
 * stdout and optionally the whole result as JSON and the grids as an SVG heat map.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BadInputError } from '../gpu/errors.ts';
import { MODEL_LIMITS } from '../model/limits.ts';
import { evenDepths, formatNiahTable, formatTokens, modelTokenCounter, runNiah, type NiahGrid } from '../eval/niah.ts';
import { niahHeatmapsSvg } from '../eval/heatmap.ts';
import { NeedleDocumentBuilder, VALUE_KINDS, type ValueKind } from '../eval/needle.ts';
import type { AttentionConfigInput } from '../model/session.ts';
import { commandHelp, parseArgs, UsageError, type CommandSpec } from './args.ts';
import { intOption, MAX_SEED, PROGRAM, readText, writeOutput } from './common.ts';
import { MODEL_OPTIONS, openCliModel, parseModelOptions } from './model_options.ts';
import { parsePattern, patternText } from './pattern.ts';
import { Progress, type CliIo } from './progress.ts';
import { formatCount } from '../util/numbers.ts';

export const EVAL_COMMAND: CommandSpec = {
  name: 'eval',
  summary: 'Needle-in-a-haystack accuracy over prompt lengths and depths, per attention config.',
  usage: 'niah --model DIR [--lengths 4k,8k,...] [--depths 11] [--pattern P | --pattern-config FILE]... [--json PATH] [--heatmap PATH]',
  positionals: { min: 1, max: 1, names: 'TASK' },
  options: [
    { name: 'lengths', short: 'l', kind: 'string', value: 'LIST', help: 'prompt lengths in tokens, e.g. 4k,8k,16k (k = 1024; default 4k,8k,16k,32k)' },
    { name: 'depths', kind: 'string', value: 'N', help: 'needle depths per length, evenly spaced from 0% to 100% (default 11)' },
    { name: 'needles', kind: 'string', value: 'N', help: 'facts planted per document, one of them asked (default 1)' },
    { name: 'kind', kind: 'string', value: 'number|word|code', help: 'value kind of the asked fact (default: mixed)' },
    { name: 'seed', kind: 'string', value: 'S', help: 'document seed (default 1)' },
    { name: 'haystack', kind: 'string', value: 'PATH', help: 'sentence-per-line text to hide needles in (default: the held-out Brown Corpus text, demo/assets/brown-heldout.txt)' },
    { name: 'max-new-tokens', short: 'n', kind: 'string', value: 'N', help: 'tokens to decode per answer (default 32)' },
    { name: 'answer-prefix', kind: 'flag', help: 'put the start of the answer ("The magic number for KEY is") into the prompt, so that prefill attention decides (RULER\'s answer prefix)' },
    { name: 'json', kind: 'string', value: 'PATH', help: 'write every case and the accuracy table as JSON' },
    { name: 'heatmap', kind: 'string', value: 'PATH', help: 'write the grids as an SVG heat map (length across, depth down)' },
    ...MODEL_OPTIONS.map((o) => (o.name === 'pattern' || o.name === 'pattern-config' ? { ...o, repeat: true, help: `${o.help} (repeatable: one grid each)` } : o)),
  ],
  details: 'Sparse patterns are applied at every length here (--dense-below defaults to 0), so each grid measures its pattern.',
};

/** "4k" -> 4096, "1536" -> 1536. */
export function parseLength(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([kK]?)$/.exec(text.trim());
  const n = m ? Math.round(Number(m[1]) * (m[2] ? 1024 : 1)) : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > MODEL_LIMITS.positions.max) throw new UsageError(`--lengths: "${text}" is not a token count from 1 to ${formatCount(MODEL_LIMITS.positions.max)} (e.g. 4096 or 4k)`, 'eval');
  return n;
}

/** The held-out haystack next to the CLI (dist/cli.mjs or src/cli/eval.ts) or in the working directory. */
function defaultHaystack(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '..', 'demo/assets/brown-heldout.txt'), join(here, '../..', 'demo/assets/brown-heldout.txt'), resolve('demo/assets/brown-heldout.txt')];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new BadInputError(`no haystack text found (looked for ${candidates.join(', ')}); pass --haystack PATH`);
  return found;
}

export async function evalCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const a = parseArgs(argv, EVAL_COMMAND);
  if (a.flags.help) {
    io.out(commandHelp(PROGRAM, EVAL_COMMAND));
    return 0;
  }
  if (a.positionals[0] !== 'niah') throw new UsageError(`unknown evaluation "${a.positionals[0]}" (evaluations: niah)`, 'eval');
  const progress = new Progress(io, !a.flags.quiet);
  const lengths = (a.strings.lengths ?? '4k,8k,16k,32k').split(',').map(parseLength);
  const depths = evenDepths(intOption(a.strings.depths, 'depths', 1, 'eval', 101) ?? 11);
  const needles = intOption(a.strings.needles, 'needles', 1, 'eval', 16) ?? 1;
  const kind = a.strings.kind;
  if (kind !== undefined && !(VALUE_KINDS as readonly string[]).includes(kind)) throw new UsageError(`--kind must be one of ${VALUE_KINDS.join(', ')}, got "${kind}"`, 'eval');
  const seed = intOption(a.strings.seed, 'seed', 0, 'eval', MAX_SEED) ?? 1;
  const maxNewTokens = intOption(a.strings['max-new-tokens'], 'max-new-tokens', 1, 'eval') ?? 32;
  const configs: { label: string; config: AttentionConfigInput }[] = [];
  for (const p of a.lists.pattern ?? []) {
    const pattern = parsePattern(p);
    configs.push({ label: patternText(pattern), config: pattern });
  }
  for (const path of a.lists['pattern-config'] ?? []) {
    configs.push(path === 'dense' ? { label: 'dense', config: 'dense' } : { label: path.replace(/^.*[\\/]/, ''), config: await readText(path, 'pattern config') });
  }
  if (configs.length === 0) configs.push({ label: 'default', config: 'default' });
  const haystack = await readText(a.strings.haystack ?? defaultHaystack(), 'haystack');
  const choice = await parseModelOptions(a, 'eval');
  const denseBelow = choice.options.denseBelow ?? 0;

  const longest = Math.max(...lengths);
  const { gpu, model } = await openCliModel({ ...choice, options: { ...choice.options, attentionConfig: 'dense' } }, progress, ({ config }) => {
    const positions = config.maxPositionEmbeddings;
    if (longest + maxNewTokens > positions) {
      throw new UsageError(`--lengths ${formatTokens(longest)} (+ --max-new-tokens ${maxNewTokens}) is longer than the model's max_position_embeddings (${formatCount(positions)})`, 'eval');
    }
  });
  const grids: NiahGrid[] = [];
  const builder = new NeedleDocumentBuilder(haystack, modelTokenCounter(model));
  try {
    for (const c of configs) {
      model.setAttention(c.config, denseBelow);
      const grid = await runNiah(model, haystack, {
        lengths,
        depths,
        needles,
        kind: kind as ValueKind | undefined,
        seed,
        maxNewTokens,
        label: c.label,
        builder,
        answerPrefix: a.flags['answer-prefix'] === true,
        onCase: (x, done, total) =>
          progress.step(
            `${c.label} ${done}/${total}: ${formatTokens(x.length)} depth ${Math.round(x.depth * 100)}% ${x.correct ? 'right' : 'WRONG'} ` +
              `(${x.promptTokens} tokens, prefill ${x.prefillMs.toFixed(0)} ms${x.attentionMode === 'sparse' ? `, kept ${(x.density * 100).toFixed(1)}%` : ''}): ${JSON.stringify(x.answer)}`,
          ),
      });
      grids.push(grid);
    }
  } finally {
    model.close();
    gpu.destroy();
  }
  io.out(formatNiahTable(grids));
  if (a.strings.json) {
    await writeOutput(a.strings.json, JSON.stringify({ model: choice.dir, lengths, depths, needles, seed, grids }, null, 1));
    progress.step(`wrote ${a.strings.json}`);
  }
  if (a.strings.heatmap) {
    await writeOutput(a.strings.heatmap, niahHeatmapsSvg(grids));
    progress.step(`wrote ${a.strings.heatmap}`);
  }
  return 0;
}
