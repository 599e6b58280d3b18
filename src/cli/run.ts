/**
 * `sparse-prefill run`: open a Hugging Face model folder, prefill a document + question with
 * MInference sparse attention, stream the answer to stdout, and print the run report to stderr.
 * With --compare the same prompt also runs with dense attention, and both answers, both prefill
 * times, the speedup and the share of attention that sparse prefill computed are printed.
 */
import type { Sampling } from '../model/sampling.ts';
import { formatReport, type RunReport } from '../model/report.ts';
import type { OpenModel } from '../model/session.ts';
import { commandHelp, parseArgs, UsageError, type CommandSpec } from './args.ts';
import { intOption, MAX_SEED, numOption, PROGRAM, readText } from './common.ts';
import { MODEL_OPTIONS, openCliModel, parseModelOptions } from './model_options.ts';
import { Progress, type CliIo } from './progress.ts';
import { answerIsCorrect } from '../eval/needle.ts';
import { buildPrompt, resolveAttentionConfig } from '../model/session.ts';
import { DEFAULT_DENSE_BELOW } from '../model/executor.ts';
import { MODEL_LIMITS } from '../model/limits.ts';
import { formatCount, formatMs, formatPercent, plural } from '../util/numbers.ts';

export const RUN_COMMAND: CommandSpec = {
  name: 'run',
  summary: 'Answer a question about a long document with a local model (prefill + decode).',
  usage: '--model DIR (--document PATH | --text TEXT) --question TEXT [options]',
  options: [
    { name: 'document', short: 'd', kind: 'string', value: 'PATH', help: 'text file with the document' },
    { name: 'text', kind: 'string', value: 'TEXT', help: 'the document given inline' },
    { name: 'question', kind: 'string', value: 'TEXT', required: true, help: 'the question asked after the document' },
    { name: 'max-new-tokens', short: 'n', kind: 'string', value: 'N', help: 'tokens to generate at most (default 128)' },
    { name: 'expect', kind: 'string', value: 'TEXT', help: 'the value a right answer states: each answer is marked right or wrong' },
    { name: 'compare', kind: 'flag', help: 'also run the prompt with dense attention and print both answers, prefill times, the speedup and the density kept' },
    { name: 'temperature', kind: 'string', value: 'T', help: 'sample with this temperature (default: greedy)' },
    { name: 'top-k', kind: 'string', value: 'K', help: 'sampling: keep the K most likely tokens' },
    { name: 'top-p', kind: 'string', value: 'P', help: 'sampling: nucleus mass' },
    { name: 'seed', kind: 'string', value: 'S', help: 'sampling seed (default 0)' },
    { name: 'chat', kind: 'flag', defaultOn: true, help: 'put the document and question in the tokenizer\'s chat template when it has one (default); --no-chat: the plain "document + question" text' },
    { name: 'allow-long', kind: 'flag', help: 'run prompts (+ --max-new-tokens) longer than the model\'s max_position_embeddings' },
    ...MODEL_OPTIONS,
  ],
};

function samplingOf(a: ReturnType<typeof parseArgs>): Sampling {
  const temperature = numOption(a.strings.temperature, 'temperature', 'run');
  if (temperature !== undefined && temperature < 0) throw new UsageError(`--temperature must be >= 0 (0: greedy), got ${temperature}`, 'run');
  if ((temperature === undefined || temperature === 0) && ['top-k', 'top-p', 'seed'].some((o) => a.strings[o] !== undefined)) {
    throw new UsageError('--top-k, --top-p and --seed apply to sampling: give --temperature > 0 as well', 'run');
  }
  if (temperature === undefined || temperature === 0) return 'greedy';
  return {
    temperature,
    topK: intOption(a.strings['top-k'], 'top-k', 0, 'run', MODEL_LIMITS.vocabSize.max),
    topP: numOption(a.strings['top-p'], 'top-p', 'run'),
    seed: intOption(a.strings.seed, 'seed', 0, 'run', MAX_SEED) ?? 0,
  };
}

export async function runCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const a = parseArgs(argv, RUN_COMMAND);
  if (a.flags.help) {
    io.out(commandHelp(PROGRAM, RUN_COMMAND));
    return 0;
  }
  const progress = new Progress(io, !a.flags.quiet);
  if ((a.strings.document === undefined) === (a.strings.text === undefined)) throw new UsageError('give exactly one of --document PATH or --text TEXT', 'run');
  const maxNewTokens = intOption(a.strings['max-new-tokens'], 'max-new-tokens', 1, 'run') ?? 128;
  const sampling = samplingOf(a);
  const choice = await parseModelOptions(a, 'run');
  const isDense = choice.patternConfig === 'dense' || (typeof choice.patternConfig === 'object' && choice.patternConfig.type === 'dense');
  if (a.flags.compare && isDense) throw new UsageError('--compare runs dense beside the sparse config: give a sparse --pattern-config (or none for the default), not dense', 'run');
  const document = a.strings.document !== undefined ? await readText(a.strings.document, 'document') : a.strings.text!;
  if (!document.trim()) throw new UsageError(a.strings.document !== undefined ? `the document ${a.strings.document} is empty: --document needs a file with text` : '--text is empty: give the document\'s text', 'run');
  const question = a.strings.question!;
  if (!question.trim()) throw new UsageError('--question is empty: give the question to ask about the document', 'run');
  const chat = a.flags.chat !== false;
  const allowLong = a.flags['allow-long'] === true;

  const { gpu, model } = await openCliModel(choice, progress, ({ config, tokenizer }) => {
    // The prompt's length is known once it is tokenized: refuse a long one before the weights load.
    const promptTokens = buildPrompt(tokenizer, document, question, chat).length;
    progress.step(`prompt: ${plural(promptTokens, 'token')}`);
    const positions = config.maxPositionEmbeddings;
    if (!allowLong && promptTokens + maxNewTokens > positions) {
      const what = promptTokens > positions ? `the prompt has ${plural(promptTokens, 'token')}` : `the prompt (${plural(promptTokens, 'token')}) + --max-new-tokens (${formatCount(maxNewTokens)}) reach ${formatCount(promptTokens + maxNewTokens)} positions`;
      throw new UsageError(`${what}, more than the model's max_position_embeddings (${formatCount(positions)}); pass --allow-long to run it anyway`, 'run');
    }
    // The pattern config is checked against the model here, before the weights load; below the
    // threshold no sparse pattern runs, so none is compiled.
    const sparse = resolveAttentionConfig(choice.options.attentionConfig ?? 'default', config);
    const denseBelow = choice.options.denseBelow ?? DEFAULT_DENSE_BELOW;
    if (sparse && promptTokens < denseBelow) {
      progress.step(`the prompt is shorter than --dense-below (${formatCount(denseBelow)} tokens): attention is dense${a.flags.compare ? ' in both runs' : ''}, and no sparse kernel is compiled`);
      return { attentionConfig: 'dense' };
    }
  });
  try {
    if (choice.options.profile && !gpu.caps.timestamps) progress.step('--profile: this device has no timestamp queries, so the report has no GPU times');
    const ask = async (what: string): Promise<{ text: string; report: RunReport }> => {
      let lastFrac = -1;
      let line = '';
      const r = await model.answer(document, question, {
        maxNewTokens,
        sampling,
        chat,
        allowLongPrompt: allowLong,
        onProgress: (p) => {
          const f = Math.floor(p.fraction * 20);
          if (f !== lastFrac) {
            lastFrac = f;
            progress.step(`${what}prefill ${(p.fraction * 100).toFixed(0)}% (layer ${Math.min(p.layer + 1, p.numLayers)}/${p.numLayers})`);
          }
        },
        onToken: (_id, text) => {
          // Stream whole lines to stdout (CliIo has no partial-line write).
          line += text;
          const parts = line.split('\n');
          line = parts.pop()!;
          for (const p of parts) io.out(p);
        },
      });
      if (line) io.out(line);
      if (!a.flags.quiet) {
        // The streamed text may be only whitespace: repeat it quoted, with why generation stopped.
        io.err(`answer: ${plural(r.tokens.length, 'token')}, stopped by ${r.stop === 'stop_token' ? 'a stop token' : '--max-new-tokens'}: ${JSON.stringify(r.text)}`);
        io.err(formatReport(r.report));
      }
      return { text: r.text, report: r.report };
    };
    const expect = a.strings.expect;
    const verdict = (text: string): string => (expect === undefined ? '' : answerIsCorrect(text, expect) ? '  [right]' : `  [wrong: expected ${JSON.stringify(expect)}]`);
    if (!a.flags.compare) {
      const r = await ask('');
      if (expect !== undefined) io.out(`answer${verdict(r.text)}`);
      return 0;
    }
    const sparseConfig = model.runner.attentionConfig;
    model.setAttention('dense');
    const dense = await ask('dense: ');
    model.runner.setAttention(sparseConfig);
    const sparse = await ask('sparse: ');
    io.out(compareLines(model, dense, sparse, verdict).join('\n'));
  } finally {
    model.close();
    gpu.destroy();
  }
  return 0;
}

type Verdict = (text: string) => string;

function compareLines(model: OpenModel, dense: { text: string; report: RunReport }, sparse: { text: string; report: RunReport }, verdict: Verdict): string[] {
  const ms = (r: RunReport): string => formatMs(r.prefillMs);
  const lines = [
    `dense  attention: ${JSON.stringify(dense.text)}${verdict(dense.text)}  prefill ${ms(dense.report)}`,
    `sparse attention: ${JSON.stringify(sparse.text)}${verdict(sparse.text)}  prefill ${ms(sparse.report)}` +
      (sparse.report.meanDensity !== undefined ? `, computed ${formatPercent(sparse.report.meanDensity)} of the causal query-key pairs` : ''),
  ];
  if (sparse.report.attentionMode === 'dense') {
    lines.push(`the prompt (${plural(sparse.report.promptTokens, 'token')}) is shorter than --dense-below (${formatCount(model.runner.denseBelow)}), so both runs were dense`);
  } else {
    lines.push(`sparse prefill ${(dense.report.prefillMs / sparse.report.prefillMs).toFixed(2)}x the speed of dense; the answers ${dense.text === sparse.text ? 'agree' : 'differ'}`);
  }
  return lines;
}
