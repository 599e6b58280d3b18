/**
 * The high-level entry: open a Hugging Face model folder (config, tokenizer, weights), build the
 * runner, and answer a question about a long document.
 *
 *   const model = await openModel(gpu, await openLocalModel(dir), { kvDType: 'f16' });
 *   const { text } = await model.answer(document, 'Who wrote it?', { maxNewTokens: 64, onToken });
 *   model.close();
 *
 * The prompt uses the tokenizer's chat template when it has one (one user message: document, a
 * blank line, the question) and otherwise the plain text "document\n\nquestion\n" with the
 * tokenizer's own special tokens.
 */
import type { Gpu } from '../gpu/gpu.ts';
import { BadInputError } from '../gpu/errors.ts';
import { loadGenerationConfig, parseModelConfig, type ModelConfig } from './config.ts';
import { readJson, type ModelSource } from './source.ts';
import { Checkpoint } from './safetensors.ts';
import { checkCheckpoint, loadWeights, type LoadProgress, type ModelWeights } from './weights.ts';
import { loadTokenizer, type ModelTokenizer } from './tokenizer.ts';
import { LlamaRunner, type GenerateResult } from './executor.ts';
import type { PrefillProgress, RunReport } from './report.ts';
import type { Sampling } from './sampling.ts';
import type { Pattern } from '../attention/types.ts';
import { defaultPatterns, loadPatternConfig } from '../attention/config.ts';
import type { MatmulVariant } from '../kernels/matmul.ts';
import type { AttentionCompute } from '../attention/dense.ts';

export interface OpenModelOptions {
  kvDType?: 'f32' | 'f16';
  chunkSize?: number;
  /**
   * Per-layer, per-head patterns, or an MInference JSON config (text or parsed); 'default' (the
   * default): Vertical-Slash (1000, 6096) on every head, as MInference does; 'dense': no sparse attention.
   */
  attentionConfig?: AttentionConfigInput;
  denseBelow?: number;
  profile?: boolean;
  memoryBudgetBytes?: number;
  matmulVariant?: MatmulVariant;
  /** Prefill attention arithmetic (RunnerOptions.attentionCompute): 'auto' (default), 'f32' or 'sgmatrix'. */
  attentionCompute?: AttentionCompute | 'auto';
  /** Decode attention (RunnerOptions.decodeAttention): 'row' (default) or 'tiles'. */
  decodeAttention?: 'row' | 'tiles';
  /** Greedy decode steps take their argmax on the GPU (RunnerOptions.greedyOnGpu; default on hardware adapters). */
  greedyOnGpu?: boolean;
  /** Batches submitted ahead of the GPU before the host waits (RunnerOptions.submitAhead; default 2, 1 waits for each). */
  submitAhead?: number;
  onLoadProgress?: (p: LoadProgress) => void;
  /** Called as the kernels compile (after the weights are loaded): compiled so far, of how many. */
  onCompileProgress?: (done: number, total: number) => void;
  /** Refuse weights that hold NaN or Inf (LoadWeightsOptions.checkFinite). Default true. */
  checkFiniteWeights?: boolean;
  /**
   * The source's tokenizer, already loaded (e.g. to check a prompt's length before the weights
   * load, as the CLI does); loaded from the source when absent.
   */
  tokenizer?: ModelTokenizer;
}

/** Where openModel's time went, in milliseconds. */
export interface LoadTimes {
  /** config.json, the safetensors headers, the tokenizer and generation_config.json. */
  readMs: number;
  /** Weights streamed to the GPU (reads overlap the uploads) and the NaN/Inf check. */
  uploadMs: number;
  /** Kernel compilation (LlamaRunner.create). */
  compileMs: number;
  totalMs: number;
}

export interface AnswerOptions {
  maxNewTokens: number;
  sampling?: Sampling;
  stopTokens?: readonly number[];
  onProgress?: (p: PrefillProgress) => void;
  /** Each new token with the text it adds to the answer so far. */
  onToken?: (id: number, text: string) => void;
  signal?: AbortSignal;
  allowLongPrompt?: boolean;
  /** Use the chat template when the tokenizer has one (default true). */
  chat?: boolean;
  /**
   * The start of the answer, written into the prompt after the assistant header (RULER's "answer
   * prefix"): the model continues it, so the first generated token is chosen by prefill. The
   * returned text starts with it.
   */
  answerPrefix?: string;
}

export interface Answer {
  text: string;
  tokens: number[];
  promptTokens: number;
  stop: GenerateResult['stop'];
  report: RunReport;
}

/**
 * What attentionConfig accepts: per-layer, per-head patterns; one pattern for every head; an
 * MInference JSON config (text or parsed); 'default' (Vertical-Slash (1000, 6096) everywhere) or 'dense'.
 */
export type AttentionConfigInput = Pattern[][] | Pattern | string | unknown[] | 'default' | 'dense';

function isPattern(v: unknown): v is Pattern {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && 'type' in v;
}

/** The per-layer, per-head patterns an attentionConfig input stands for (undefined: dense). */
export function resolveAttentionConfig(ac: AttentionConfigInput, config: ModelConfig): Pattern[][] | undefined {
  const shape = { layers: config.numLayers, heads: config.numHeads };
  if (ac === 'dense') return undefined;
  if (ac === 'default') return defaultPatterns(shape);
  if (isPattern(ac)) return ac.type === 'dense' ? undefined : Array.from({ length: shape.layers }, () => Array.from({ length: shape.heads }, () => ({ ...ac })));
  return isPatternTable(ac) ? ac : loadPatternConfig(ac, shape);
}

export interface OpenModel {
  config: ModelConfig;
  /** How long opening took (also on each answer's report as `load`). */
  loadTimes: LoadTimes;
  tokenizer: ModelTokenizer;
  runner: LlamaRunner;
  weights: ModelWeights;
  /** The prompt token ids answer() would use. */
  prompt(document: string, question: string, chat?: boolean): Uint32Array;
  answer(document: string, question: string, options: AnswerOptions): Promise<Answer>;
  /**
   * Changes the attention of later answers without reloading: a config as openModel's
   * attentionConfig takes, and optionally the dense threshold (denseBelow).
   */
  setAttention(attentionConfig: AttentionConfigInput, denseBelow?: number): void;
  /** Frees the runner's buffers and the weights. */
  close(): void;
}

function isPatternTable(v: unknown): v is Pattern[][] {
  return Array.isArray(v) && v.every((l) => Array.isArray(l) && l.every((p) => typeof p === 'object' && p !== null && 'type' in p));
}

/**
 * The prompt answer() sends for a document and a question: the tokenizer's chat template when it has
 * one and `chat` is not false (one user message: document, a blank line, the question), else the
 * plain text "document\n\nquestion\n". An empty document or question is refused.
 */
export function buildPrompt(tokenizer: ModelTokenizer, document: string, question: string, chat = true): Uint32Array {
  if (typeof document !== 'string' || typeof question !== 'string') throw new BadInputError('document and question must be strings');
  if (!document.trim()) throw new BadInputError('the document is empty (nothing but whitespace): pass the text to read');
  if (!question.trim()) throw new BadInputError('the question is empty (nothing but whitespace): pass what to ask about the document');
  const content = `${document}\n\n${question}`;
  const ids = chat && tokenizer.hasChatTemplate ? tokenizer.encodeChat([{ role: 'user', content }]) : tokenizer.encode(`${content}\n`);
  return Uint32Array.from(ids);
}

export async function openModel(gpu: Gpu, source: ModelSource, options: OpenModelOptions = {}): Promise<OpenModel> {
  const t0 = performance.now();
  const config = parseModelConfig(await readJson(source, 'config.json'));
  // The tensors must agree with the config before anything is built from its numbers.
  const checkpoint = await Checkpoint.open(source);
  checkCheckpoint(checkpoint, config);
  const tokenizer = options.tokenizer ?? (await loadTokenizer(source));
  // Instruct models list their end-of-turn ids (e.g. Llama 3's <|eot_id|>) in generation_config.json.
  const generation = await loadGenerationConfig(source, config.vocabSize);
  const stopDefault = [...new Set([...config.eosTokenIds, ...tokenizer.eosTokenIds, ...(generation?.eosTokenIds ?? [])])];
  // Without a config every head gets MInference's default, Vertical-Slash (1000, 6096); prompts
  // shorter than denseBelow still run dense. 'dense' turns sparse attention off.
  const patterns = resolveAttentionConfig(options.attentionConfig ?? 'default', config);
  const t1 = performance.now();
  const weights = await loadWeights(gpu, checkpoint, config, { onProgress: options.onLoadProgress, checkFinite: options.checkFiniteWeights });
  const t2 = performance.now();
  let runner: LlamaRunner;
  try {
    runner = await LlamaRunner.create(gpu, {
      config,
      weights,
      kvDType: options.kvDType ?? (gpu.caps.f16 ? 'f16' : 'f32'),
      chunkSize: options.chunkSize,
      attentionConfig: patterns,
      denseBelow: options.denseBelow,
      profile: options.profile,
      memoryBudgetBytes: options.memoryBudgetBytes,
      matmulVariant: options.matmulVariant,
      attentionCompute: options.attentionCompute,
      decodeAttention: options.decodeAttention,
      greedyOnGpu: options.greedyOnGpu,
      submitAhead: options.submitAhead,
      onCompileProgress: options.onCompileProgress,
    });
  } catch (e) {
    weights.destroy();
    throw e;
  }
  const t3 = performance.now();
  const loadTimes: LoadTimes = { readMs: t1 - t0, uploadMs: t2 - t1, compileMs: t3 - t2, totalMs: t3 - t0 };

  const prompt = (document: string, question: string, chat = true): Uint32Array => buildPrompt(tokenizer, document, question, chat);

  return {
    config,
    loadTimes,
    tokenizer,
    runner,
    weights,
    prompt,
    async answer(document, question, opts) {
      const base = prompt(document, question, opts.chat !== false);
      const prefix = opts.answerPrefix ?? '';
      const ids = prefix ? Uint32Array.from([...base, ...tokenizer.encode(prefix, { addSpecialTokens: false })]) : base;
      const stop = opts.stopTokens ?? stopDefault;
      const tokens: number[] = [];
      let prevText = '';
      const r = await runner.generate(ids, {
        maxNewTokens: opts.maxNewTokens,
        sampling: opts.sampling,
        stopTokens: stop,
        onProgress: opts.onProgress,
        signal: opts.signal,
        allowLongPrompt: opts.allowLongPrompt,
        onToken: (id) => {
          tokens.push(id);
          if (!opts.onToken) return;
          // Decode the whole answer each time and hold back a trailing U+FFFD (a multi-byte character
          // split across tokens), so the streamed pieces concatenate to the final text.
          const text = tokenizer.decode(tokens, { skipSpecialTokens: true }).replace(/\uFFFD+$/, '');
          // If the decoder rewrote text already streamed (e.g. clean-up of spaces), stream on from
          // where the two agree rather than going silent for the rest of the answer.
          let common = 0;
          while (common < prevText.length && common < text.length && prevText[common] === text[common]) common++;
          const delta = text.slice(common);
          prevText = text;
          opts.onToken(id, delta);
        },
      });
      return {
        text: prefix + tokenizer.decode(r.tokens, { skipSpecialTokens: true }),
        tokens: r.tokens,
        promptTokens: ids.length,
        stop: r.stop,
        report: { ...r.report, load: loadTimes },
      };
    },
    setAttention(ac, denseBelow) {
      runner.setAttention(resolveAttentionConfig(ac, config), denseBelow);
    },
    close() {
      runner.destroy();
      weights.destroy();
    },
  };
}
