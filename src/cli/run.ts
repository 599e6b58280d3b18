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
import { intOption, numOption, PROGRAM, readText } from './common.ts';
import { MODEL_OPTIONS, openCliModel, parseModelOptions } from './model_options.ts';
import { Progress, type CliIo } from './progress.ts';
import { answerIsCorrect } from '../eval/needle.ts';

export const RUN_COMMAND: CommandSpec = {
  name: 'run',
  summary: 'Answer a question about a long document with a local model (prefill + decode).',
  usage: '--model DIR (--document PATH | --text TEXT) --question TEXT [options]',
  options: [
    { name: 'document', short: 'd', kind: 'string', value: 'PATH', help: 'text file with the document' },
    { name: 'text', kind: 'string', value: 'TEXT', help: 'the document given inline' },
    { name: 'question', short: 'Q', kind: 'string', value: 'TEXT', required: true, help: 'the question asked after the document' },
    { name: 'max-new-tokens', short: 'n', kind: 'string', value: 'N', help: 'tokens to generate at most (default 128)' },
    { name: 'expect', kind: 'string', value: 'TEXT', help: 'the value a right answer states: each answer is marked right or wrong' },
    { name: 'compare', kind: 'flag', help: 'also run the prompt with dense attention and print both answers, prefill times, the speedup and the density kept' },
    { name: 'temperature', kind: 'string', value: 'T', help: 'sample with this temperature (default: greedy)' },
    { name: 'top-k', kind: 'string', value: 'K', help: 'sampling: keep the K most likely tokens' },
    { name: 'top-p', kind: 'string', value: 'P', help: 'sampling: nucleus mass' },
    { name: 'seed', kind: 'string', value: 'S', help: 'sampling seed (default 0)' },
    { name: 'no-chat', kind: 'flag', help: 'plain "document + question" prompt even when the tokenizer has a chat template' },
    { name: 'allow-long', kind: 'flag', help: 'allow prompts longer than max_position_embeddings' },
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
    topK: intOption(a.strings['top-k'], 'top-k', 0, 'run'),
    topP: numOption(a.strings['top-p'], 'top-p', 'run'),
    seed: intOption(a.strings.seed, 'seed', 0, 'run') ?? 0,
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
  const question = a.strings.question!;

  const { gpu, model } = await openCliModel(choice, progress);
  try {
    const ids = model.prompt(document, question, !a.flags['no-chat']);
    progress.step(`prompt: ${ids.length} tokens`);
    const ask = async (what: string): Promise<{ text: string; report: RunReport }> => {
      let lastFrac = -1;
      let line = '';
      const r = await model.answer(document, question, {
        maxNewTokens,
        sampling,
        chat: !a.flags['no-chat'],
        allowLongPrompt: a.flags['allow-long'] === true,
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
        io.err(`answer: ${r.tokens.length} tokens, stopped by ${r.stop === 'stop_token' ? 'a stop token' : '--max-new-tokens'}: ${JSON.stringify(r.text)}`);
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
  const ms = (r: RunReport): string => `${r.prefillMs.toFixed(0)} ms`;
  const lines = [
    `dense  attention: ${JSON.stringify(dense.text)}${verdict(dense.text)}  prefill ${ms(dense.report)}`,
    `sparse attention: ${JSON.stringify(sparse.text)}${verdict(sparse.text)}  prefill ${ms(sparse.report)}` +
      (sparse.report.meanDensity !== undefined ? `, computed ${(sparse.report.meanDensity * 100).toFixed(1)}% of the causal query-key pairs` : ''),
  ];
  if (sparse.report.attentionMode === 'dense') {
    lines.push(`the prompt (${sparse.report.promptTokens} tokens) is shorter than --dense-below (${model.runner.denseBelow}), so both runs were dense`);
  } else {
    lines.push(`sparse prefill ${(dense.report.prefillMs / sparse.report.prefillMs).toFixed(2)}x the speed of dense; the answers ${dense.text === sparse.text ? 'agree' : 'differ'}`);
  }
  return lines;
}
