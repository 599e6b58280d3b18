/**
 * `sparse-prefill run`: open a Hugging Face model folder, prefill a document + question with
 * MInference sparse attention, stream the answer to stdout, and print the run report to stderr.
 *
 * Exports the command spec and its handler; src/cli/cli.ts lists the spec in COMMANDS and
 * dispatches `run` to runCommand.
 */
import { readFile } from 'node:fs/promises';
import { BadInputError } from '../gpu/errors.ts';
import { openLocalModel } from '../model/source.ts';
import { openModel } from '../model/session.ts';
import { formatReport } from '../model/report.ts';
import type { Sampling } from '../model/sampling.ts';
import type { AttentionCompute } from '../attention/dense.ts';
import type { MatmulVariant } from '../kernels/matmul.ts';
import { commandHelp, parseArgs, UsageError, type CommandSpec } from './args.ts';
import { formatBytes, Progress, type CliIo } from './progress.ts';
import { openGpu, PROGRAM } from './cli.ts';

export const RUN_COMMAND: CommandSpec = {
  name: 'run',
  summary: 'Answer a question about a long document with a local model (prefill + decode).',
  usage: '--model DIR (--document PATH | --text TEXT) --question TEXT [options]',
  options: [
    { name: 'model', short: 'm', kind: 'string', value: 'DIR', required: true, help: 'Hugging Face model folder (config.json, *.safetensors, tokenizer.json)' },
    { name: 'document', short: 'd', kind: 'string', value: 'PATH', help: 'text file with the document' },
    { name: 'text', kind: 'string', value: 'TEXT', help: 'the document given inline' },
    { name: 'question', short: 'Q', kind: 'string', value: 'TEXT', required: true, help: 'the question asked after the document' },
    { name: 'max-new-tokens', short: 'n', kind: 'string', value: 'N', help: 'tokens to generate at most (default 128)' },
    { name: 'pattern-config', kind: 'string', value: 'PATH', help: "MInference per-head pattern JSON, or 'dense' (default: Vertical-Slash (1000, 6096) on every head for prompts of at least --dense-below tokens)" },
    { name: 'dense-below', kind: 'string', value: 'N', help: 'prompts shorter than N tokens run dense attention (default 32768, measured on an H100)' },
    { name: 'chunk', kind: 'string', value: 'N', help: 'prefill chunk size in tokens (default: chosen from device limits)' },
    { name: 'matmul', kind: 'string', value: 'auto|f32|f16|sgmatrix|gemv', help: "matmul path: 'auto' (default), 'sgmatrix' (tensor cores, rounds to f16), 'f32' (SwiftShader)" },
    { name: 'attention', kind: 'string', value: 'auto|f32|sgmatrix', help: "prefill attention arithmetic: 'auto' (default: tensor cores where the device has subgroup matrices, e.g. with --experimental on NVIDIA), 'f32', 'sgmatrix'" },
    { name: 'kv', kind: 'string', value: 'f16|f32', help: 'KV cache element type (default f16 when the device has shader-f16)' },
    { name: 'temperature', kind: 'string', value: 'T', help: 'sample with this temperature (default: greedy)' },
    { name: 'top-k', kind: 'string', value: 'K', help: 'sampling: keep the K most likely tokens' },
    { name: 'top-p', kind: 'string', value: 'P', help: 'sampling: nucleus mass' },
    { name: 'seed', kind: 'string', value: 'S', help: 'sampling seed (default 0)' },
    { name: 'no-chat', kind: 'flag', help: 'plain "document + question" prompt even when the tokenizer has a chat template' },
    { name: 'allow-long', kind: 'flag', help: 'allow prompts longer than max_position_embeddings' },
    { name: 'profile', kind: 'flag', help: 'GPU timestamps per kernel in the report (where the device has them)' },
    { name: 'experimental', kind: 'flag', help: "request Dawn's experimental features (shader-f16, subgroup matrices on NVIDIA; Node only)" },
    { name: 'quiet', short: 'q', kind: 'flag', help: 'no progress lines on stderr' },
  ],
};

function intOption(v: string | undefined, name: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got "${v}"`, 'run');
  return n;
}

function numOption(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${v}"`, 'run');
  return n;
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new BadInputError(`cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

export async function runCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const a = parseArgs(argv, RUN_COMMAND);
  if (a.flags.help) {
    io.out(commandHelp(PROGRAM, RUN_COMMAND));
    return 0;
  }
  const progress = new Progress(io, !a.flags.quiet);
  if ((a.strings.document === undefined) === (a.strings.text === undefined)) throw new UsageError('give exactly one of --document PATH or --text TEXT', 'run');
  const maxNewTokens = intOption(a.strings['max-new-tokens'], 'max-new-tokens', 1) ?? 128;
  const denseBelow = intOption(a.strings['dense-below'], 'dense-below', 0);
  const chunkSize = intOption(a.strings.chunk, 'chunk', 1);
  const matmul = a.strings.matmul;
  if (matmul !== undefined && !['auto', 'f32', 'sgmatrix', 'f16', 'gemv'].includes(matmul)) throw new UsageError(`--matmul must be auto, f32, f16, sgmatrix or gemv, got "${matmul}"`, 'run');
  const attentionCompute = a.strings.attention;
  if (attentionCompute !== undefined && !['auto', 'f32', 'sgmatrix'].includes(attentionCompute)) throw new UsageError(`--attention must be auto, f32 or sgmatrix, got "${attentionCompute}"`, 'run');
  const kv = a.strings.kv;
  if (kv !== undefined && kv !== 'f16' && kv !== 'f32') throw new UsageError(`--kv must be f16 or f32, got "${kv}"`, 'run');
  const temperature = numOption(a.strings.temperature, 'temperature');
  if (temperature !== undefined && temperature < 0) throw new UsageError(`--temperature must be >= 0 (0: greedy), got ${temperature}`, 'run');
  if ((temperature === undefined || temperature === 0) && ['top-k', 'top-p', 'seed'].some((o) => a.strings[o] !== undefined)) {
    throw new UsageError('--top-k, --top-p and --seed apply to sampling: give --temperature > 0 as well', 'run');
  }
  let sampling: Sampling = 'greedy';
  if (temperature !== undefined && temperature > 0) {
    sampling = {
      temperature,
      topK: intOption(a.strings['top-k'], 'top-k', 0),
      topP: numOption(a.strings['top-p'], 'top-p'),
      seed: intOption(a.strings.seed, 'seed', 0) ?? 0,
    };
  }
  const document = a.strings.document !== undefined ? await readText(a.strings.document, 'document') : a.strings.text!;
  const patternPath = a.strings['pattern-config'];
  const patternConfig = patternPath === undefined || patternPath === 'dense' ? patternPath : await readText(patternPath, 'pattern config');
  const source = await openLocalModel(a.strings.model!);

  const gpu = await progress.timed('opening the GPU', () => openGpu({ experimental: a.flags.experimental === true }));
  try {
    let lastPct = -1;
    const model = await progress.timed('loading the model', () =>
      openModel(gpu, source, {
        kvDType: kv as 'f16' | 'f32' | undefined,
        chunkSize,
        denseBelow,
        attentionConfig: patternConfig,
        profile: a.flags.profile === true,
        matmulVariant: matmul as MatmulVariant | undefined,
        attentionCompute: attentionCompute as AttentionCompute | 'auto' | undefined,
        onLoadProgress: (p) => {
          const pct = Math.floor((p.loadedBytes / p.totalBytes) * 10) * 10;
          if (pct !== lastPct) {
            lastPct = pct;
            progress.step(`weights ${pct}% (${formatBytes(p.loadedBytes)} of ${formatBytes(p.totalBytes)})`);
          }
        },
      }),
    );
    try {
      const ids = model.prompt(document, a.strings.question!, !a.flags['no-chat']);
      progress.step(`prompt: ${ids.length} tokens`);
      let lastFrac = -1;
      let line = '';
      const r = await model.answer(document, a.strings.question!, {
        maxNewTokens,
        sampling,
        chat: !a.flags['no-chat'],
        allowLongPrompt: a.flags['allow-long'] === true,
        onProgress: (p) => {
          const f = Math.floor(p.fraction * 20);
          if (f !== lastFrac) {
            lastFrac = f;
            progress.step(`prefill ${(p.fraction * 100).toFixed(0)}% (layer ${Math.min(p.layer + 1, p.numLayers)}/${p.numLayers})`);
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
        // The streamed text may be only whitespace (a random-weight model's answer often is):
        // repeat it quoted, with why generation stopped, so the run's outcome is always visible.
        io.err(`answer: ${r.tokens.length} tokens, stopped by ${r.stop === 'stop_token' ? 'a stop token' : '--max-new-tokens'}: ${JSON.stringify(r.text)}`);
        io.err(formatReport(r.report));
      }
    } finally {
      model.close();
    }
  } finally {
    gpu.destroy();
  }
  return 0;
}
