/**
 * The options that open a model, shared by `run` and `eval`: the folder, the attention config and
 * threshold, the prefill chunk, the matmul and attention arithmetic, the KV cache type; and opening
 * the GPU and the model with progress lines.
 */
import type { Gpu } from '../gpu/gpu.ts';
import type { AttentionCompute } from '../attention/dense.ts';
import type { MatmulVariant } from '../kernels/matmul.ts';
import { openLocalModel } from '../model/source.ts';
import { openModel, type OpenModel, type OpenModelOptions } from '../model/session.ts';
import { UsageError, type OptionSpec, type ParsedArgs } from './args.ts';
import { GPU_OPTIONS, intOption, openGpu, readText } from './common.ts';
import { formatBytes, type Progress } from './progress.ts';
import { parsePattern } from './pattern.ts';
import type { Pattern } from '../attention/types.ts';

export const MODEL_OPTIONS: OptionSpec[] = [
  { name: 'model', short: 'm', kind: 'string', value: 'DIR', required: true, help: 'Hugging Face model folder (config.json, *.safetensors, tokenizer.json)' },
  { name: 'pattern-config', kind: 'string', value: 'PATH', help: "MInference per-head pattern JSON, or 'dense' (default: Vertical-Slash (1000, 6096) on every head for prompts of at least --dense-below tokens)" },
  { name: 'pattern', kind: 'string', value: 'PATTERN', help: "one pattern for every head: dense, '[\"vertical_and_slash\", V, S]', '[\"stream_llm\", N_INIT, N_LOCAL]', '[\"block_sparse\", TOP_K]'" },
  { name: 'dense-below', kind: 'string', value: 'N', help: 'prompts shorter than N tokens run dense attention (default 32768, measured on an H100)' },
  { name: 'chunk', kind: 'string', value: 'N', help: 'prefill chunk size in tokens (default: chosen from device limits)' },
  { name: 'matmul', kind: 'string', value: 'auto|f32|f16|sgmatrix|gemv', help: "matmul path: 'auto' (default), 'sgmatrix' (tensor cores, rounds to f16), 'f32' (SwiftShader)" },
  { name: 'attention', kind: 'string', value: 'auto|f32|sgmatrix', help: "prefill attention arithmetic: 'auto' (default: tensor cores where the device has subgroup matrices, e.g. with --experimental on NVIDIA), 'f32', 'sgmatrix'" },
  { name: 'kv', kind: 'string', value: 'f16|f32', help: 'KV cache element type (default f16 when the device has shader-f16)' },
  { name: 'profile', kind: 'flag', help: 'GPU timestamps per kernel in the report (where the device has them)' },
  ...GPU_OPTIONS,
];

export interface ModelChoice {
  dir: string;
  experimental: boolean;
  /** The pattern config's text, one pattern for every head, 'dense', or undefined (the default config). */
  patternConfig: string | Pattern | undefined;
  options: OpenModelOptions;
}

/** Checks the model options (reading --pattern-config) before anything is loaded. */
export async function parseModelOptions(a: ParsedArgs, command: string): Promise<ModelChoice> {
  const matmul = a.strings.matmul;
  if (matmul !== undefined && !['auto', 'f32', 'sgmatrix', 'f16', 'gemv'].includes(matmul)) throw new UsageError(`--matmul must be auto, f32, f16, sgmatrix or gemv, got "${matmul}"`, command);
  const attentionCompute = a.strings.attention;
  if (attentionCompute !== undefined && !['auto', 'f32', 'sgmatrix'].includes(attentionCompute)) throw new UsageError(`--attention must be auto, f32 or sgmatrix, got "${attentionCompute}"`, command);
  const kv = a.strings.kv;
  if (kv !== undefined && kv !== 'f16' && kv !== 'f32') throw new UsageError(`--kv must be f16 or f32, got "${kv}"`, command);
  const patternPath = a.strings['pattern-config'];
  if (patternPath !== undefined && a.strings.pattern !== undefined) throw new UsageError('give --pattern or --pattern-config, not both', command);
  const patternConfig =
    a.strings.pattern !== undefined
      ? parsePattern(a.strings.pattern)
      : patternPath === undefined || patternPath === 'dense'
        ? patternPath
        : await readText(patternPath, 'pattern config');
  return {
    dir: a.strings.model!,
    experimental: a.flags.experimental === true,
    patternConfig,
    options: {
      kvDType: kv as 'f16' | 'f32' | undefined,
      chunkSize: intOption(a.strings.chunk, 'chunk', 1, command),
      denseBelow: intOption(a.strings['dense-below'], 'dense-below', 0, command),
      attentionConfig: patternConfig,
      profile: a.flags.profile === true,
      matmulVariant: matmul as MatmulVariant | undefined,
      attentionCompute: attentionCompute as AttentionCompute | 'auto' | undefined,
    },
  };
}

/** Opens the GPU and the model, with progress lines; the caller destroys the GPU. */
export async function openCliModel(choice: ModelChoice, progress: Progress): Promise<{ gpu: Gpu; model: OpenModel }> {
  const source = await openLocalModel(choice.dir);
  const gpu = await progress.timed('opening the GPU', () => openGpu({ experimental: choice.experimental }));
  try {
    let lastPct = -1;
    const model = await progress.timed('loading the model', () =>
      openModel(gpu, source, {
        ...choice.options,
        onLoadProgress: (p) => {
          const pct = Math.floor((p.loadedBytes / p.totalBytes) * 10) * 10;
          if (pct !== lastPct) {
            lastPct = pct;
            progress.step(`weights ${pct}% (${formatBytes(p.loadedBytes)} of ${formatBytes(p.totalBytes)})`);
          }
        },
      }),
    );
    return { gpu, model };
  } catch (e) {
    gpu.destroy();
    throw e;
  }
}
