/**
 * The options that open a model, shared by `run` and `eval`: the folder, the attention config and
 * threshold, the prefill chunk, the matmul and attention arithmetic, the KV cache type; and opening
 * the GPU and the model with progress lines. What can be checked before the weights load is checked
 * first (options, the prompt against the model's length, the matmul path against the device), and
 * the messages name the CLI's flags, not the library's options.
 */
import type { Gpu } from '../gpu/gpu.ts';
import type { AttentionCompute } from '../attention/dense.ts';
import { pathAvailable, type MatmulPath, type MatmulVariant } from '../kernels/matmul.ts';
import { parseModelConfig, type ModelConfig } from '../model/config.ts';
import { openLocalModel, readJson, type ModelSource } from '../model/source.ts';
import { loadTokenizer, type ModelTokenizer } from '../model/tokenizer.ts';
import { openModel, type OpenModel, type OpenModelOptions } from '../model/session.ts';
import { DEFAULT_DENSE_BELOW } from '../model/executor.ts';
import { formatCount, formatMs } from '../util/numbers.ts';
import { UsageError, type OptionSpec, type ParsedArgs } from './args.ts';
import { GPU_OPTIONS, intOption, openGpu, readText } from './common.ts';
import { formatBytes, type Progress } from './progress.ts';
import { parsePattern } from './pattern.ts';
import type { Pattern } from '../attention/types.ts';

/** --matmul choices: every prefill path. gemv serves at most 8 rows, so it is decode's path under 'auto' and no choice here. */
const MATMUL_CHOICES = ['auto', 'f32', 'f16', 'sgmatrix'] as const;

export const MODEL_OPTIONS: OptionSpec[] = [
  { name: 'model', short: 'm', kind: 'string', value: 'DIR', required: true, help: 'Hugging Face model folder (config.json, *.safetensors, tokenizer.json)' },
  { name: 'pattern-config', kind: 'string', value: 'PATH', help: "MInference per-head pattern JSON, or 'dense' (default: Vertical-Slash (1000, 6096) on every head for prompts of at least --dense-below tokens)" },
  { name: 'pattern', kind: 'string', value: 'PATTERN', help: "one pattern for every head: dense, '[\"vertical_and_slash\", V, S]', '[\"stream_llm\", N_INIT, N_LOCAL]', '[\"block_sparse\", TOP_K]'" },
  { name: 'dense-below', kind: 'string', value: 'N', help: `prompts shorter than N tokens run dense attention (default ${formatCount(DEFAULT_DENSE_BELOW)}, measured on an H100; 0: sparse at every length)` },
  { name: 'chunk', kind: 'string', value: 'N', help: 'prefill chunk size in tokens (default: chosen from device limits)' },
  { name: 'matmul', kind: 'string', value: MATMUL_CHOICES.join('|'), help: "prefill matmul path: 'auto' (default: f32 tiles, gemv for decode), 'f32', 'f16' (needs shader-f16), 'sgmatrix' (tensor cores, rounds to f16; needs --experimental on NVIDIA)" },
  { name: 'attention', kind: 'string', value: 'auto|f32|sgmatrix', help: "prefill attention arithmetic: 'auto' (default: tensor cores where the device has subgroup matrices, e.g. with --experimental on NVIDIA), 'f32', 'sgmatrix'" },
  { name: 'kv', kind: 'string', value: 'f16|f32', help: 'KV cache element type (default f16 when the device has shader-f16)' },
  { name: 'profile', kind: 'flag', help: 'GPU time per kind of work in the report (attention, index estimation, matmuls, other: milliseconds and shares), where the device has timestamp queries' },
  ...GPU_OPTIONS,
];

export interface ModelChoice {
  dir: string;
  experimental: boolean;
  /** false: --no-bounds-checks. */
  boundsChecks: boolean;
  /** The pattern config's text, one pattern for every head, 'dense', or undefined (the default config). */
  patternConfig: string | Pattern | undefined;
  options: OpenModelOptions;
  command: string;
}

/** Checks the model options (reading --pattern-config) before anything is loaded. */
export async function parseModelOptions(a: ParsedArgs, command: string): Promise<ModelChoice> {
  const matmul = a.strings.matmul;
  if (matmul === 'gemv') throw new UsageError('--matmul gemv is not a prefill path: it serves at most 8 rows, and --matmul auto already uses it for decode', command);
  if (matmul !== undefined && !(MATMUL_CHOICES as readonly string[]).includes(matmul)) throw new UsageError(`--matmul must be ${MATMUL_CHOICES.join(', ')}, got "${matmul}"`, command);
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
    boundsChecks: a.flags['bounds-checks'] !== false,
    patternConfig,
    command,
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

/**
 * What a command can check once the config and tokenizer are read, before the GPU opens and the
 * weights load; it may return options that replace the command's (e.g. dense attention when the
 * prompt is below the sparse threshold, so that no sparse kernel is compiled).
 */
export type BeforeLoad = (model: { config: ModelConfig; tokenizer: ModelTokenizer }) => Partial<OpenModelOptions> | void;

/**
 * Opens the model's files, lets `check` look at the config and tokenizer, then opens the GPU and
 * the model with progress lines (weights, kernel compilation, the load time split); the caller
 * destroys the GPU.
 */
export async function openCliModel(choice: ModelChoice, progress: Progress, check?: BeforeLoad): Promise<{ gpu: Gpu; model: OpenModel }> {
  const source: ModelSource = await openLocalModel(choice.dir);
  const config = parseModelConfig(await readJson(source, 'config.json'));
  const tokenizer = await loadTokenizer(source);
  const overrides = check?.({ config, tokenizer }) ?? {};
  const gpu = await progress.timed('opening the GPU', () => openGpu({ experimental: choice.experimental, boundsChecks: choice.boundsChecks, note: (m) => progress.step(m) }));
  try {
    const variant = choice.options.matmulVariant;
    if (variant !== undefined && variant !== 'auto') {
      const why = pathAvailable(gpu, variant as MatmulPath);
      if (why) throw new UsageError(`--matmul ${variant} cannot run on this device: ${why}`, choice.command);
    }
    let lastPct = -1;
    let lastCompileLine = 0;
    progress.step('loading the model ...');
    const model = await openModel(gpu, source, {
      ...choice.options,
      ...overrides,
      tokenizer,
      onLoadProgress: (p) => {
        const pct = p.totalBytes > 0 ? Math.floor((p.loadedBytes / p.totalBytes) * 10) * 10 : 100;
        if (pct !== lastPct) {
          lastPct = pct;
          progress.step(`weights ${pct}% (${formatBytes(p.loadedBytes)} of ${formatBytes(p.totalBytes)})`);
        }
      },
      onCompileProgress: (done, total) => {
        // At most a line a second, and the last one.
        const now = performance.now();
        if (done < total && now - lastCompileLine < 1000) return;
        lastCompileLine = now;
        progress.step(`compiling kernels ${done}/${total}`);
      },
    });
    const t = model.loadTimes;
    progress.step(`model loaded in ${formatMs(t.totalMs)} (read ${formatMs(t.readMs)}, upload ${formatMs(t.uploadMs)}, compile ${formatMs(t.compileMs)})`);
    return { gpu, model };
  } catch (e) {
    gpu.destroy();
    throw e;
  }
}
