/**
 * LlamaRunner: the GPU graph executor of a Llama-family decoder (Llama 2/3, Qwen2, Mistral, Phi-3/4). It runs a
 * whole prompt's prefill in chunks with MInference per-head sparse attention, then decodes token by
 * token over the KV cache.
 *
 * Prefill, layer by layer (attention needs every token's K and V of a layer before any query of it):
 *   pass A per chunk   norm -> q/k/v projections -> RoPE'd q into the whole-prompt Q (per head
 *                      group), RoPE'd k and plain v into the layer's KV cache [Hkv, Scap, D]
 *   attention          over the whole prompt, per head group, each head with its pattern (dense
 *                      below `denseBelow` tokens); MInference estimates the sparse index of each
 *                      head from the last 64 queries of the whole prompt, which is why Q is kept whole;
 *                      layers with a sliding window (Mistral v0.1, Phi-3, some Qwen2) run it instead
 *                      once the prompt is longer than it, in decode too
 *   pass B per chunk   attention rows -> o projection -> residual add + norm -> SwiGLU MLP ->
 *                      residual add
 * The residual stream lives in one [chunk, C] tensor per chunk; only the last token's final hidden
 * state goes through the final norm and the LM head.
 *
 * The forward pass is a flat list of steps (plan) over buffers allocated once per run from the
 * memory plan (src/model/plan.ts) and reused by every chunk and layer; `noReuse` gives every chunk
 * pass fresh buffers instead (a debug switch for aliasing bugs).
 */
import type { Batch, Encoder, Gpu } from '../gpu/gpu.ts';
import { AbortedError, BadInputError } from '../gpu/errors.ts';
import { Tensor, type DType } from '../tensor.ts';
import { usesLongRopeFactors, type ModelConfig } from './config.ts';
import type { ModelWeights } from './weights.ts';
import { planRun, type HeadGroup, type MemoryPlan } from './plan.ts';
import { GpuTimes, type PrefillProgress, type RunReport } from './report.ts';
import { Sampler, type Sampling } from './sampling.ts';
import type { Pattern } from '../attention/types.ts';
import type { MatmulKernel, MatmulVariant } from '../kernels/matmul.ts';
import type { AddRmsNormKernel, RmsNormKernel, NormWeightDType } from '../kernels/rms_norm.ts';
import { resolveAttentionCompute, type AttentionCompute } from '../attention/dense.ts';
import { RopeTable } from '../kernels/rope.ts';
import { ARGMAX_NONE } from '../kernels/argmax.ts';
import { streamEntries } from '../attention/stream.ts';
import { attention as sparseAttention, readDensity, submitAttention, validatePattern, type AttentionRequest, type SubmittedAttention } from '../attention/attention.ts';
import { Recording } from '../gpu/recording.ts';
import { compileModelKernels, matmulFor, prepareSparse, type CompileProgress, type ModelKernels } from './kernels.ts';

export { AbortedError };

export interface RunnerOptions {
  config: ModelConfig;
  weights: ModelWeights;
  kvDType: 'f32' | 'f16';
  /** Tokens per prefill chunk; default: plan.ts DEFAULT_CHUNK, shrunk to the device limits. */
  chunkSize?: number;
  /** Pattern per layer and head (src/attention/config.ts). Without it attention is dense. */
  attentionConfig?: Pattern[][];
  /**
   * Prompts shorter than this run dense attention even with a sparse config. Default 32768, from
   * a measurement (H100, Dawn, random-weight Llama-3.2-1B shape, default Vertical-Slash 1000/6096
   * on every head, sgmatrix matmuls, f16 KV): prefill dense vs sparse 4K 922/997 ms, 8K
   * 2118/2279 ms, 16K 5158/5187 ms, 32K 13160/11780 ms, 64K 41919/30121 ms. Below ~32K the
   * estimation and the sparse kernel cost what the skipped keys save, and dense is exact.
   * Re-measure per model and device (larger head dims and models shift it).
   */
  denseBelow?: number;
  /** Give every chunk pass fresh activation buffers (debugging buffer reuse). */
  noReuse?: boolean;
  /** Record GPU timestamps per dispatch for the report (when the device has timestamp queries). */
  profile?: boolean;
  /** Bytes of KV cache + activations a run may take (checked before allocating). Default: no limit beyond the per-binding limits. */
  memoryBudgetBytes?: number;
  /**
   * Matmul path: 'auto' (default: gemv for few rows; otherwise tensor-core tiles where the device has
   * subgroup matrices, rounding inputs to f16, else tiled f32), or one fixed path, e.g. 'f32'.
   */
  matmulVariant?: MatmulVariant;
  /**
   * Prefill attention arithmetic: 'f32', 'sgmatrix' (tensor cores: f16 Q/K/P/V, f32 accumulation
   * and softmax; needs subgroup matrices) or 'auto' (default): 'sgmatrix' where the device has it
   * (H200, Dawn: dense 65.5 against about 10 TFLOP/s for 'f32' at 32K, output within 3e-4 relative
   * L2 of float64), else 'f32'. Decode (one query row) runs the f32 one-row kernel (decodeAttention).
   */
  attentionCompute?: AttentionCompute | 'auto';
  /** Test hook: split the whole-prompt Q into groups of at most this many KV heads. */
  maxKvHeadsPerGroup?: number;
  /** Called as create() compiles the kernels: compiled so far, of how many. */
  onCompileProgress?: CompileProgress;
  /**
   * Record decode steps once per run and replay them (default true). false encodes every step
   * afresh (a bind group per dispatch), as before replay existed: kept for measurements.
   */
  replayDecode?: boolean;
  /**
   * Decode attention: 'row' (default) the one-row kernel, K/V read once per kv head; 'tiles' the
   * prefill kernel's 64-row query tiles with a key split (the path before it, kept for comparison and
   * as the fallback where a model's query heads per kv head exceed the row kernel's workgroup memory).
   */
  decodeAttention?: 'row' | 'tiles';
  /**
   * Greedy decode steps pick their token with an argmax on the GPU and read back its id (4 bytes)
   * instead of the vocabulary's logits. Applies to greedy generation without onLogits; the same
   * choice as the host's (lowest id on ties, NaN never chosen). Default: on hardware adapters (on
   * software ones reading the logits costs nothing worth a pipeline more to compile).
   */
  greedyOnGpu?: boolean;
  /**
   * Batches of work the host submits ahead of the GPU before it waits for the oldest (default 2):
   * prefill chunk passes and dense attention, and greedy decode steps on the GPU (replayed, each
   * step's token fed to the next on the GPU and read back while the next one runs). The host then
   * encodes while the GPU computes. 1 waits for every batch, as before this existed (kept for
   * measurement). Progress is reported as batches finish; an abort takes effect after the batches
   * already submitted.
   */
  submitAhead?: number;
}

export interface PrefillOptions {
  /** Tokens the KV cache leaves room for after the prompt (default 0; generate() sets it). */
  maxNewTokens?: number;
  onProgress?: (p: PrefillProgress) => void;
  signal?: AbortSignal;
  /** Accept prompts longer than the model's max_position_embeddings. */
  allowLongPrompt?: boolean;
  /** Also read back the last token's final hidden state (before the final norm). */
  returnHidden?: boolean;
  /**
   * Called for every layer once its whole-prompt queries, keys and values are on the GPU, before its
   * attention runs (the pattern search reads them here). Tensors are per head group (plan.groups):
   * q [heads, T, D] f32 (RoPE applied), k and v [kvHeads, T, D] f32 (k with RoPE). They are reused
   * by the next layer: copy what must outlive the call.
   */
  onLayer?: (layer: LayerTensors) => Promise<void> | void;
}

export interface LayerTensors {
  layer: number;
  promptLen: number;
  groups: readonly HeadGroup[];
  q: readonly Tensor[];
  k: readonly Tensor[];
  v: readonly Tensor[];
}

export interface PrefillResult {
  /** Logits of the last prompt token [vocab]. */
  logits: Float32Array;
  /** The last token's residual stream after the last layer, before the final norm [hidden] (returnHidden). */
  hidden?: Float32Array;
  plan: MemoryPlan;
  ms: number;
}

export interface GenerateOptions extends Omit<PrefillOptions, 'maxNewTokens'> {
  maxNewTokens: number;
  sampling?: Sampling;
  /** Generation stops after emitting one of these (default: the config's eos ids). */
  stopTokens?: readonly number[];
  /** Called with each new token as soon as it is chosen. */
  onToken?: (id: number) => void;
  /** Called with the logits each token is chosen from (index 0: the last prompt token's). */
  onLogits?: (logits: Float32Array, index: number) => void;
}

export interface GenerateResult {
  tokens: number[];
  /** Why generation ended. */
  stop: 'stop_token' | 'max_tokens';
  /** Logits of the last prompt token. */
  promptLogits: Float32Array;
  report: RunReport;
}

/** Buffers of one chunk pass, [rows, ...] views (rows <= chunk). */
interface ChunkBuffers {
  normed: Tensor;
  qProj: Tensor;
  kProj: Tensor;
  vProj: Tensor;
  attnRows: Tensor;
  proj: Tensor;
  gate: Tensor;
  up: Tensor;
  act: Tensor;
}

/** Everything one run allocates; freed by release(). */
interface RunState {
  plan: MemoryPlan;
  kCache: Tensor[];
  vCache: Tensor[];
  residual: Tensor[];
  q: Tensor[];
  attnOut: Tensor[];
  /** Per head group, f32 K and V with exactly T rows (only when some layer runs sparse). */
  kWhole: Tensor[];
  vWhole: Tensor[];
  chunk: ChunkBuffers;
  logits: Tensor;
  /** Decode: the token id, its residual row, its queries and attention output, the key-split scratch. */
  decodeId: Tensor;
  /** The GPU's greedy choice of a decode step (greedyOnGpu). */
  decodeNext: Tensor;
  tok: Tensor;
  qDecode: Tensor;
  attnDecode: Tensor;
  split: { partO: Tensor; partMl: Tensor };
  /** Decode steps recorded once per run and replayed (not when profiling); greedy: with the argmax. */
  decodeRecording?: { recording: Recording; greedy: boolean };
  /** Host time spent encoding (JS), per phase. */
  host: { prefillMs: number; chunkPasses: number; decodeMs: number; decodeSteps: number };
  /** The prompt's token ids per chunk (views of the planned tensors). */
  ids: Tensor[];
  extra: Tensor[];
  /** Next position to write in the KV cache (= tokens in it). */
  pos: number;
  /** Per layer, per head: the share of causal query-key pairs prefill attention computed. */
  density: number[][];
  /** Sparse attention submitted without readback: its density counts, read once after the prefill. */
  pendingDensity: { layer: number; headStart: number; submitted: SubmittedAttention }[];
}

type Step =
  | { kind: 'encode'; encode: (b: Batch) => void }
  /**
   * `queued`: run() has submitted all its work by the time it returns its promise (dense attention),
   * so later steps may be encoded before it finishes; otherwise (sparse attention: estimation, index
   * building and the kernel go through several awaits) it is awaited first.
   */
  | { kind: 'attention'; layer: number; queued: boolean; run: (profile: boolean) => Promise<{ label: string; ms: number }[]> }
  | { kind: 'hook'; run: () => Promise<void> | void }
  | { kind: 'flush'; layer: number; tokensDone: number; work: number };

function rows(t: Tensor, n: number): Tensor {
  const width = t.shape[t.shape.length - 1]!;
  return new Tensor(t.buffer, [n, width], t.dtype, t.byteOffset, t.label);
}

/** Heads [start, start+count) of a head-major [H, S, D] tensor as a view (offset must be binding-aligned). */
function headSlice(t: Tensor, start: number, count: number): Tensor {
  if (start === 0 && count === t.shape[0]) return t;
  const [, S, D] = t.shape as [number, number, number];
  const bytes = t.dtype === 'f32' ? 4 : 2;
  return new Tensor(t.buffer, [count, S, D], t.dtype, t.byteOffset + start * S * D * bytes, t.label);
}

function checkAttentionConfig(ac: Pattern[][] | undefined, c: ModelConfig): void {
  if (!ac) return;
  if (ac.length !== c.numLayers) throw new BadInputError(`attentionConfig lists ${ac.length} layers, the model has ${c.numLayers}`);
  ac.forEach((layer, l) => {
    if (layer.length !== c.numHeads) throw new BadInputError(`attentionConfig layer ${l} lists ${layer.length} heads, the model has ${c.numHeads}`);
    layer.forEach((p, h) => validatePattern(p, `attentionConfig layer ${l} head ${h}`));
  });
}

function checkDenseBelow(v: number | undefined): void {
  if (v !== undefined && (!Number.isInteger(v) || v < 0)) throw new BadInputError(`denseBelow must be an integer >= 0, got ${v}`);
}

/** See RunnerOptions.denseBelow for the measurement behind it. */
export const DEFAULT_DENSE_BELOW = 32768;

/** Scap is rounded up to this many positions so that per-KV-head views of the cache start at binding-aligned offsets (256 B). */
const SCAP_ALIGN = 64;

export class LlamaRunner {
  private state: RunState | undefined;
  private lastReport: RunReport | undefined;
  private ropeTable: RopeTable;
  private readonly biases: { q?: Tensor; k?: Tensor; v?: Tensor }[];
  private denseBelowTokens: number;
  private patterns: Pattern[][] | undefined;
  /** The sparse kernels of patterns set after create() (setAttention), compiled before the next run. */
  private sparsePrepared: Promise<void> = Promise.resolve();

  private constructor(
    private readonly gpu: Gpu,
    readonly options: Readonly<RunnerOptions>,
    private readonly k: ModelKernels,
    ropeTable: RopeTable,
    biases: { q?: Tensor; k?: Tensor; v?: Tensor }[],
    /** The prefill attention arithmetic in use (options.attentionCompute resolved). */
    readonly attentionCompute: AttentionCompute,
  ) {
    this.ropeTable = ropeTable;
    this.biases = biases;
    this.denseBelowTokens = options.denseBelow ?? DEFAULT_DENSE_BELOW;
    this.patterns = options.attentionConfig;
  }

  /** Prompts shorter than this run dense attention even with a sparse config. */
  get denseBelow(): number {
    return this.denseBelowTokens;
  }

  /** The per-layer, per-head patterns in force (undefined: dense). */
  get attentionConfig(): Pattern[][] | undefined {
    return this.patterns;
  }

  /**
   * Changes the attention of later runs without reloading the weights: new patterns (undefined:
   * dense) and optionally the dense threshold. Validated like create()'s options.
   */
  setAttention(patterns: Pattern[][] | undefined, denseBelow?: number): void {
    if (this.busy) throw new BadInputError('setAttention: the runner is running a prefill or generate call; await it first');
    checkAttentionConfig(patterns, this.config);
    checkDenseBelow(denseBelow);
    this.patterns = patterns;
    if (denseBelow !== undefined) this.denseBelowTokens = denseBelow;
    const prepared = prepareSparse(this.gpu, this.config.headDim, this.attentionCompute, patterns);
    // A failed compile is reported by the next run (not as an unhandled rejection now).
    prepared.catch(() => undefined);
    this.sparsePrepared = prepared;
  }

  get config(): ModelConfig {
    return this.options.config;
  }

  /** Validates the model against the kernels and compiles every pipeline the runs need. */
  static async create(gpu: Gpu, options: RunnerOptions): Promise<LlamaRunner> {
    const { config: c, weights: w } = options;
    if (options.kvDType !== 'f32' && options.kvDType !== 'f16') throw new BadInputError(`kvDType must be 'f32' or 'f16', got ${String(options.kvDType)}`);
    if (w.layers.length !== c.numLayers) throw new BadInputError(`weights have ${w.layers.length} layers, the config ${c.numLayers}`);
    checkDenseBelow(options.denseBelow);
    if (options.submitAhead !== undefined && (!Number.isInteger(options.submitAhead) || options.submitAhead < 1)) {
      throw new BadInputError(`submitAhead must be an integer >= 1, got ${options.submitAhead}`);
    }
    checkAttentionConfig(options.attentionConfig, c);
    const attnCompute = resolveAttentionCompute(gpu, options.attentionCompute, c.headDim);
    const kernels = await compileModelKernels(
      gpu,
      { config: c, weights: w, kvDType: options.kvDType, matmulVariant: options.matmulVariant ?? 'auto', attentionCompute: attnCompute, patterns: options.attentionConfig, decodeAttention: options.decodeAttention, greedyOnGpu: options.greedyOnGpu ?? !gpu.caps.software },
      options.onCompileProgress,
    );
    // The matmul kernel takes f32 biases; half-precision checkpoint biases are widened once here.
    const biases: { q?: Tensor; k?: Tensor; v?: Tensor }[] = [];
    for (const L of w.layers) {
      const b: { q?: Tensor; k?: Tensor; v?: Tensor } = {};
      if (c.attentionBias) {
        for (const [name, t] of [['q', L.qBias], ['k', L.kBias], ['v', L.vBias]] as const) {
          if (!t) throw new BadInputError(`the config has attention biases but the weights have no ${name} bias`);
          b[name] = t.dtype === 'f32' ? t : gpu.upload(await gpu.readF32(t), t.shape, 'f32', `${name}_proj.bias.f32`);
        }
      }
      biases.push(b);
    }
    const ropeTable = RopeTable.create(gpu, c, Math.max(c.maxPositionEmbeddings, 1));
    return new LlamaRunner(gpu, options, kernels, ropeTable, biases, attnCompute);
  }

  /** The report of the last prefill / generate call. */
  get report(): RunReport | undefined {
    return this.lastReport;
  }

  /** Tokens currently in the KV cache (0 before any prefill). */
  get position(): number {
    return this.state?.pos ?? 0;
  }

  // ------------------------------------------------------------------ validation and planning

  private checkIds(ids: Uint32Array, allowLongPrompt: boolean): void {
    const c = this.config;
    if (!(ids instanceof Uint32Array)) throw new BadInputError(`token ids must be a Uint32Array, got ${(ids as object)?.constructor?.name ?? typeof ids}`);
    if (ids.length === 0) throw new BadInputError('the prompt is empty (0 tokens)');
    for (let i = 0; i < ids.length; i++) {
      if (ids[i]! >= c.vocabSize) throw new BadInputError(`token id ${ids[i]} at position ${i} is outside the vocabulary (size ${c.vocabSize})`);
    }
    if (ids.length > c.maxPositionEmbeddings && !allowLongPrompt) {
      throw new BadInputError(`the prompt has ${ids.length} tokens, more than the model's max_position_embeddings (${c.maxPositionEmbeddings}); pass allowLongPrompt to run it anyway`);
    }
  }

  /** Whether any layer runs a sparse pattern for a prompt of T tokens. */
  private anySparse(T: number): boolean {
    for (let l = 0; l < this.config.numLayers; l++) if (this.isSparse(l, T)) return true;
    return false;
  }

  private isSparse(l: number, T: number): boolean {
    const p = this.patternsFor(l, T);
    return p !== undefined && p.some((x) => x.type !== 'dense');
  }

  /**
   * The memory plan a prompt of `promptLen` tokens (+ maxNewTokens) would use; throws PlanError if it
   * cannot fit. `wholeKv`: also f32 K and V of the whole prompt (sparse layers or an onLayer hook).
   */
  planFor(promptLen: number, maxNewTokens = 0, wholeKv = this.anySparse(promptLen)): MemoryPlan {
    const c = this.config;
    const lim = this.gpu.caps.limits;
    const scapWanted = Math.ceil((promptLen + Math.max(1, maxNewTokens)) / SCAP_ALIGN) * SCAP_ALIGN;
    return planRun({
      config: c,
      promptLen,
      maxNewTokens: scapWanted - promptLen,
      kvDType: this.options.kvDType,
      chunkSize: this.options.chunkSize,
      limits: { maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize, maxBufferSize: lim.maxBufferSize },
      memoryBudgetBytes: this.options.memoryBudgetBytes,
      maxKvHeadsPerGroup: this.options.maxKvHeadsPerGroup,
      compactKv: wholeKv,
    });
  }

  // ------------------------------------------------------------------ buffers

  /** Allocates every buffer the plan lists (plan.buffers is the only list) and names them for the run. */
  private allocate(plan: MemoryPlan): RunState {
    const gpu = this.gpu;
    const { chunk, promptLen: T, groups } = plan;
    const all: Tensor[] = [];
    const byName = new Map<string, Tensor[]>();
    try {
      for (const b of plan.buffers) {
        const list = Array.from({ length: b.count }, (_, i) => gpu.empty(b.shape, b.dtype, b.count > 1 ? `${b.name}.${i}` : b.name));
        all.push(...list);
        byName.set(b.name, list);
      }
    } catch (e) {
      gpu.release(...all);
      throw e;
    }
    const one = (name: string): Tensor => byName.get(name)![0]!;
    const perGroup = (prefix: string, range: (g: HeadGroup) => string): Tensor[] => (byName.has(`${prefix}${range(groups[0]!)}`) ? groups.map((g) => one(`${prefix}${range(g)}`)) : []);
    const heads = (g: HeadGroup): string => `[${g.headStart}..${g.headStart + g.heads})`;
    const kvHeads = (g: HeadGroup): string => `[${g.kvStart}..${g.kvStart + g.kvHeads})`;
    const chunkBuf = (name: keyof ChunkBuffers): Tensor => one(name);
    return {
      plan,
      kCache: byName.get('kCache')!,
      vCache: byName.get('vCache')!,
      // The last chunk may be shorter: a view with its own row count.
      residual: byName.get('residual')!.map((t, i) => rows(t, Math.min(chunk, T - i * chunk))),
      ids: byName.get('ids')!.map((t, i) => new Tensor(t.buffer, [Math.min(chunk, T - i * chunk)], 'u32', t.byteOffset, t.label)),
      q: perGroup('q', heads),
      attnOut: perGroup('attnOut', heads),
      kWhole: perGroup('kWhole', kvHeads),
      vWhole: perGroup('vWhole', kvHeads),
      chunk: {
        normed: chunkBuf('normed'),
        qProj: chunkBuf('qProj'),
        kProj: chunkBuf('kProj'),
        vProj: chunkBuf('vProj'),
        attnRows: chunkBuf('attnRows'),
        proj: chunkBuf('proj'),
        gate: chunkBuf('gate'),
        up: chunkBuf('up'),
        act: chunkBuf('act'),
      },
      logits: one('logits'),
      decodeId: one('decodeId'),
      decodeNext: one('decodeNext'),
      tok: one('tok'),
      qDecode: one('qDecode'),
      attnDecode: one('attnDecode'),
      split: { partO: one('splitO'), partMl: one('splitMl') },
      host: { prefillMs: 0, chunkPasses: 0, decodeMs: 0, decodeSteps: 0 },
      extra: all,
      pos: 0,
      density: [],
      pendingDensity: [],
    };
  }

  /** Fresh chunk buffers for one pass (noReuse, the debug switch): owned by the run, freed with it. */
  private chunkBuffers(n: number, mk: (shape: number[], dtype: DType, label: string) => Tensor): ChunkBuffers {
    const c = this.config;
    const C = c.hiddenSize;
    const HD = c.numHeads * c.headDim;
    const KD = c.numKvHeads * c.headDim;
    const I = c.intermediateSize;
    return {
      normed: mk([n, C], 'f32', 'normed'),
      qProj: mk([n, HD], 'f32', 'qProj'),
      kProj: mk([n, KD], 'f32', 'kProj'),
      vProj: mk([n, KD], 'f32', 'vProj'),
      attnRows: mk([n, HD], 'f32', 'attnRows'),
      proj: mk([n, C], 'f32', 'proj'),
      gate: mk([n, I], 'f32', 'gate'),
      up: mk([n, I], 'f32', 'up'),
      act: mk([n, I], 'f32', 'act'),
    };
  }

  /** The chunk buffers for a pass over `n` rows: views of the planned ones, or fresh ones with noReuse. */
  private passBuffers(st: RunState, n: number): ChunkBuffers {
    if (this.options.noReuse) {
      return this.chunkBuffers(n, (shape, dtype, label) => {
        const t = this.gpu.empty(shape, dtype, label);
        st.extra.push(t);
        return t;
      });
    }
    const b = st.chunk;
    return {
      normed: rows(b.normed, n),
      qProj: rows(b.qProj, n),
      kProj: rows(b.kProj, n),
      vProj: rows(b.vProj, n),
      attnRows: rows(b.attnRows, n),
      proj: rows(b.proj, n),
      gate: rows(b.gate, n),
      up: rows(b.up, n),
      act: rows(b.act, n),
    };
  }

  private releaseState(): void {
    const st = this.state;
    this.state = undefined;
    if (!st) return;
    st.decodeRecording?.recording.destroy();
    this.gpu.release(...st.extra, ...st.pendingDensity.flatMap((p) => p.submitted.pending.map((x) => x.counts)));
    // Released buffers become reusable at the next submit; an empty submit makes that happen now.
    if (!this.gpu.lost) {
      try {
        this.gpu.submit([]);
      } catch {
        /* device already failed: nothing to recycle */
      }
    }
  }

  /** Frees the KV cache and activations of the last run (weights stay). */
  reset(): void {
    this.releaseState();
  }

  /** Frees the run state and the runner's own small buffers. The weights belong to the caller. */
  destroy(): void {
    this.releaseState();
    this.ropeTable.release(this.gpu);
    // Only the f32 copies made in create() belong to the runner, not the weights' own bias tensors.
    this.biases.forEach((b, l) => {
      const L = this.options.weights.layers[l]!;
      for (const [t, own] of [[b.q, L.qBias], [b.k, L.kBias], [b.v, L.vBias]] as const) if (t && t !== own) this.gpu.release(t);
    });
    this.k.dense?.destroy();
    this.k.densePrefill?.destroy();
    this.k.window?.destroy();
    this.k.windowDecode?.destroy();
  }

  // ------------------------------------------------------------------ layer helpers

  private mm(w: Tensor, bias: boolean, decode = false): MatmulKernel {
    return matmulFor(this.k, w, bias, decode);
  }

  private normK(w: Tensor): RmsNormKernel {
    return this.k.norm[w.dtype as NormWeightDType]!;
  }

  private addNormK(w: Tensor): AddRmsNormKernel {
    return this.k.addNorm[w.dtype as NormWeightDType]!;
  }

  /** Weight of the norm that follows layer l's MLP (the next layer's input norm, or the final norm). */
  private nextNorm(l: number): Tensor {
    const w = this.options.weights;
    return l + 1 < this.config.numLayers ? w.layers[l + 1]!.inputNorm : w.finalNorm;
  }

  /**
   * Pass A of layer l over `n` rows at positions pos0..pos0+n-1 (a prefill chunk, or decode's one
   * token): input norm (unless `normed` already holds it), q/k/v projections, RoPE'd queries into
   * each head group's tensor at row `qRow`, RoPE'd K and plain V into the layer's cache, and with
   * `whole` f32 copies of K and V for the sparse estimators.
   */
  private encodePassA(
    e: Encoder,
    l: number,
    rows: { residual: Tensor; n: number; pos0: number; normed: boolean },
    buf: ChunkBuffers,
    queries: { t: Tensor; g: HeadGroup; qRow: number }[],
    whole: { k: Tensor[]; v: Tensor[]; groups: readonly HeadGroup[] } | undefined,
    decode: boolean,
  ): void {
    const c = this.config;
    const L = this.options.weights.layers[l]!;
    const bias = c.attentionBias;
    const bs = this.biases[l]!;
    const { pos0 } = rows;
    if (!rows.normed) this.normK(L.inputNorm).encode(e, rows.residual, L.inputNorm, buf.normed, c.rmsNormEps);
    this.mm(L.q, bias, decode).encode(e, buf.normed, L.q, buf.qProj, bs.q);
    this.mm(L.k, bias, decode).encode(e, buf.normed, L.k, buf.kProj, bs.k);
    this.mm(L.v, bias, decode).encode(e, buf.normed, L.v, buf.vProj, bs.v);
    const table = this.ropeTable;
    for (const q of queries) this.k.ropeQ.encode(e, buf.qProj, q.t, { headStart: q.g.headStart, heads: q.g.heads, posOffset: pos0, dstOffset: q.qRow, table });
    this.k.ropeK.encode(e, buf.kProj, this.state!.kCache[l]!, { headStart: 0, heads: c.numKvHeads, posOffset: pos0, dstOffset: pos0, table });
    this.k.copyV.encode(e, buf.vProj, this.state!.vCache[l]!, { headStart: 0, heads: c.numKvHeads, posOffset: pos0, dstOffset: pos0 });
    whole?.groups.forEach((g, gi) => {
      const sel = { headStart: g.kvStart, heads: g.kvHeads, posOffset: pos0, dstOffset: pos0 };
      this.k.ropeQ.encode(e, buf.kProj, whole.k[gi]!, { ...sel, table });
      this.k.copyF32.encode(e, buf.vProj, whole.v[gi]!, sel);
    });
  }

  /**
   * Pass B of layer l over `n` rows: attention output rows (each head group's tensor from row
   * `srcRow`) -> o projection -> residual add + post norm -> SwiGLU MLP -> residual add, which also
   * writes the next norm of the residual into `buf.normed` (decode's next layer and the LM head use
   * it; prefill chunks recompute it, since other chunks overwrite the scratch in between).
   */
  private encodePassB(e: Encoder, l: number, residual: Tensor, buf: ChunkBuffers, attn: { t: Tensor; g: HeadGroup }[], srcRow: number, n: number, decode: boolean): void {
    const L = this.options.weights.layers[l]!;
    const eps = this.config.rmsNormEps;
    for (const a of attn) this.k.headsToTokens.encode(e, a.t, buf.attnRows, { srcOffset: srcRow, tokens: n, headStart: a.g.headStart });
    this.mm(L.o, false, decode).encode(e, buf.attnRows, L.o, buf.proj);
    this.addNormK(L.postNorm).encode(e, residual, buf.proj, L.postNorm, buf.normed, eps);
    this.mm(L.gate, false, decode).encode(e, buf.normed, L.gate, buf.gate);
    this.mm(L.up, false, decode).encode(e, buf.normed, L.up, buf.up);
    this.k.siluMul.encode(e, buf.gate, buf.up, buf.act);
    this.mm(L.down, false, decode).encode(e, buf.act, L.down, buf.proj);
    const next = this.nextNorm(l);
    this.addNormK(next).encode(e, residual, buf.proj, next, buf.normed, eps);
  }

  // ------------------------------------------------------------------ prefill plan

  private patternsFor(layer: number, T: number): Pattern[] | undefined {
    const ac = this.patterns;
    // A prompt longer than the model's sliding window runs the window on every head (the model's own
    // attention); a sparse config is not combined with it.
    if (!ac || T < this.denseBelow || this.windowFor(T, layer) !== undefined) return undefined;
    return ac[layer];
  }

  /** Layer `layer`'s sliding window when it restricts attention over `keys` keys (undefined: full causal). */
  private windowFor(keys: number, layer: number): number | undefined {
    const W = this.config.slidingWindow;
    const windowedLayer = layer >= (this.config.slidingWindowFromLayer ?? 0);
    return this.k.window && W !== undefined && windowedLayer && keys > W ? W : undefined;
  }

  /** The flat step list of a whole prefill. */
  private buildPrefill(st: RunState, ids: Uint32Array, onLayer?: PrefillOptions['onLayer']): Step[] {
    const c = this.config;
    const w = this.options.weights;
    const { chunk, nChunks, promptLen: T, groups } = st.plan;
    const steps: Step[] = [];
    const L0 = c.numLayers;
    for (let i = 0; i < nChunks; i++) this.gpu.write(st.ids[i]!, Uint32Array.from(ids.subarray(i * chunk, Math.min(T, (i + 1) * chunk))));
    // Work units for progress: each layer is 2 passes over T tokens plus attention (counted as T).
    const work = (l: number, done: number): number => l * 3 * T + done;
    const chunks = Array.from({ length: nChunks }, (_, i) => ({ i, c0: i * chunk, n: Math.min(chunk, T - i * chunk) }));
    for (let l = 0; l < L0; l++) {
      // Sparse layers (and the onLayer hook) also need f32 K and V of the whole prompt.
      const whole = this.isSparse(l, T) || onLayer !== undefined ? { k: st.kWhole, v: st.vWhole, groups } : undefined;
      for (const { i, c0, n } of chunks) {
        steps.push({
          kind: 'encode',
          encode: (e) => {
            const buf = this.passBuffers(st, n);
            const residual = st.residual[i]!;
            if (l === 0) this.k.embed.encode(e, st.ids[i]!, w.embed, residual);
            const queries = groups.map((g, gi) => ({ t: st.q[gi]!, g, qRow: c0 }));
            this.encodePassA(e, l, { residual, n, pos0: c0, normed: false }, buf, queries, whole, false);
          },
        });
        steps.push({ kind: 'flush', layer: l, tokensDone: c0 + n, work: work(l, c0 + n) });
      }
      if (onLayer) steps.push({ kind: 'hook', run: () => onLayer({ layer: l, promptLen: T, groups, q: st.q, k: st.kWhole, v: st.vWhole }) });
      const sparse = this.isSparse(l, T);
      steps.push({ kind: 'attention', layer: l, queued: !sparse, run: (profile) => (sparse ? this.runSparseAttention(st, l, T, profile) : this.runDenseAttention(st, l, T, profile)) });
      steps.push({ kind: 'flush', layer: l, tokensDone: T, work: work(l, 2 * T) });
      for (const { i, c0, n } of chunks) {
        steps.push({
          kind: 'encode',
          encode: (e) => {
            const attn = groups.map((g, gi) => ({ t: st.attnOut[gi]!, g }));
            this.encodePassB(e, l, st.residual[i]!, this.passBuffers(st, n), attn, c0, n, false);
          },
        });
        steps.push({ kind: 'flush', layer: l, tokensDone: c0 + n, work: work(l, 2 * T + c0 + n) });
      }
    }
    // Final norm and LM head on the last token only.
    steps.push({
      kind: 'encode',
      encode: (e) => {
        const last = st.residual[nChunks - 1]!;
        const row = T - 1 - (nChunks - 1) * chunk;
        e.copy({ buffer: last.buffer, offset: last.byteOffset + row * c.hiddenSize * 4 }, st.tok, c.hiddenSize * 4);
        const buf = this.passBuffers(st, 1);
        this.normK(w.finalNorm).encode(e, st.tok, w.finalNorm, buf.normed, c.rmsNormEps);
        this.mm(w.lmHead, false, true).encode(e, buf.normed, w.lmHead, st.logits);
      },
    });
    steps.push({ kind: 'flush', layer: L0, tokensDone: T, work: L0 * 3 * T });
    return steps;
  }

  /**
   * Whole-prompt dense (or sliding-window) attention of layer l, every head group in one batch,
   * submitted before the returned promise (not an async function: nothing may come first).
   */
  private runDenseAttention(st: RunState, l: number, T: number, profile: boolean): Promise<{ label: string; ms: number }[]> {
    const W = this.windowFor(T, l);
    // A sliding window is an A-shape without sinks.
    const windowDensity = W === undefined ? 1 : streamEntries(T, 0, W) / ((T * (T + 1)) / 2);
    st.density[l] = new Array<number>(this.config.numHeads).fill(windowDensity);
    const b = this.gpu.batch({ label: `attention.${l}`, profile });
    st.plan.groups.forEach((g, gi) => this.encodeDenseGroup(b, st, l, g, gi, T));
    return b.submit();
  }

  /** Whole-prompt sparse attention of layer l (some head not dense), per head group. */
  private async runSparseAttention(st: RunState, l: number, T: number, profile: boolean): Promise<{ label: string; ms: number }[]> {
    const patterns = this.patternsFor(l, T)!;
    const times: { label: string; ms: number }[] = [];
    const groups = st.plan.groups;
    st.density[l] = new Array<number>(this.config.numHeads).fill(1);
    for (let gi = 0; gi < groups.length; gi++) {
      const g = groups[gi]!;
      // The compact f32 K/V copies with exactly T rows: the estimators do not read the cache.
      const request: AttentionRequest = {
        q: st.q[gi]!,
        k: st.kWhole[gi]!,
        v: st.vWhole[gi]!,
        out: st.attnOut[gi]!,
        patterns: patterns.slice(g.headStart, g.headStart + g.heads),
        kvLen: T,
        compute: this.attentionCompute,
      };
      if (profile) {
        // Profiling times estimation and attention apart (and reads each density as it goes).
        const r = await sparseAttention(this.gpu, { ...request, profile });
        if (r.times) times.push(...r.times);
        r.density.forEach((d, h) => (st.density[l]![g.headStart + h] = d));
      } else {
        // Nothing read back inside the layer loop: the counts wait for the end of the prefill (readPendingDensity).
        const r = await submitAttention(this.gpu, request);
        st.pendingDensity.push({ layer: l, headStart: g.headStart, submitted: r });
      }
    }
    return times;
  }

  private encodeDenseGroup(b: Batch, st: RunState, l: number, g: HeadGroup, gi: number, T: number): void {
    const k = headSlice(st.kCache[l]!, g.kvStart, g.kvHeads);
    const v = headSlice(st.vCache[l]!, g.kvStart, g.kvHeads);
    const heads = Array.from({ length: g.heads }, (_, h) => h);
    const W = this.windowFor(T, l);
    if (W !== undefined) {
      this.k.window!.encode(b, st.q[gi]!, k, v, st.attnOut[gi]!, heads, { nInit: 0, nLocal: W }, { qPos0: 0, kvLen: T });
      return;
    }
    (this.k.densePrefill ?? this.k.dense)!.encode(b, st.q[gi]!, k, v, st.attnOut[gi]!, heads, { qPos0: 0, kvLen: T });
  }

  // ------------------------------------------------------------------ running

  /** Batches the host may submit before it waits for the oldest (RunnerOptions.submitAhead). */
  private get submitAhead(): number {
    return this.options.submitAhead ?? 2;
  }

  /**
   * Runs a step list: encode steps go into one batch until the next flush, which submits it; up to
   * `submitAhead` submitted batches (and queued attention) may be on the GPU while the host encodes
   * the next, and each flush's progress is reported once everything before it has finished.
   */
  private async execute(
    steps: Step[],
    opts: { profile: boolean; times: GpuTimes; signal?: AbortSignal; what: string; onFlush?: (s: Extract<Step, { kind: 'flush' }>) => void },
  ): Promise<void> {
    let batch: Batch | undefined;
    const inFlight: Promise<void>[] = [];
    const track = (work: Promise<{ label: string; ms: number }[]>, then?: () => void): void => {
      const p = work.then((t) => {
        opts.times.add(t);
        then?.();
      });
      // Handled here so that a failure is not reported as unhandled before it is awaited in turn.
      p.catch(() => undefined);
      inFlight.push(p);
    };
    // The oldest first: batches finish in submission order.
    const waitUntil = async (n: number): Promise<void> => {
      while (inFlight.length > n) await inFlight.shift()!;
    };
    const submit = (then?: () => void): void => {
      if (batch) {
        const b = batch;
        batch = undefined;
        track(b.submit(), then);
      } else if (then) {
        // Nothing new to submit: report once the work before it is done.
        track((inFlight.at(-1) ?? Promise.resolve()).then(() => []), then);
      }
    };
    try {
      for (const s of steps) {
        if (opts.signal?.aborted) throw new AbortedError(opts.what);
        if (s.kind === 'encode') {
          batch ??= this.gpu.batch({ label: opts.what, profile: opts.profile });
          const t0 = performance.now();
          s.encode(batch);
          if (this.state) {
            this.state.host.prefillMs += performance.now() - t0;
            this.state.host.chunkPasses++;
          }
        } else if (s.kind === 'attention') {
          submit();
          if (s.queued) {
            track(s.run(opts.profile));
          } else {
            await waitUntil(0);
            opts.times.add(await s.run(opts.profile));
          }
        } else if (s.kind === 'hook') {
          submit();
          await waitUntil(0);
          await s.run();
        } else {
          submit(() => opts.onFlush?.(s));
        }
        await waitUntil(this.submitAhead - 1);
      }
      submit();
      await waitUntil(0);
    } finally {
      // After a throw: what is still on the GPU settles before the caller frees the run's buffers.
      await Promise.allSettled(inFlight);
    }
  }

  /**
   * Runs the whole prompt and leaves its K/V in the cache (room for maxNewTokens more). Returns the
   * last token's logits. On any error everything the run allocated is freed and the runner stays
   * usable.
   */
  async prefill(ids: Uint32Array, options: PrefillOptions = {}): Promise<PrefillResult> {
    return this.exclusive('prefill', async () => {
      await this.sparseReady();
      const t0 = performance.now();
      const times = new GpuTimes();
      const r = await this.prefillInner(ids, options, times, t0);
      this.lastReport = this.makeReport(r.plan, times, r.ms, r.ms, 0, 0);
      return r;
    });
  }

  /** Waits for the sparse kernels of patterns given to setAttention (compiled ahead, not run). */
  private async sparseReady(): Promise<void> {
    try {
      await this.sparsePrepared;
    } catch (e) {
      // Retried by the next run rather than cached as failed.
      this.sparsePrepared = prepareSparse(this.gpu, this.config.headDim, this.attentionCompute, this.patterns);
      this.sparsePrepared.catch(() => undefined);
      throw e;
    }
  }

  private busy = false;

  /** One run at a time: a run owns the KV cache and the planned buffers. */
  private async exclusive<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.busy) throw new BadInputError(`${what}: the runner is already running a prefill or generate call; await it first`);
    this.busy = true;
    try {
      return await fn();
    } finally {
      this.busy = false;
    }
  }

  private async prefillInner(ids: Uint32Array, options: PrefillOptions, times: GpuTimes, t0: number): Promise<PrefillResult> {
    this.releaseState();
    this.gpu.check();
    this.checkIds(ids, options.allowLongPrompt === true);
    const maxNew = options.maxNewTokens ?? 0;
    if (!Number.isInteger(maxNew) || maxNew < 0) throw new BadInputError(`maxNewTokens must be an integer >= 0, got ${maxNew}`);
    if (maxNew > 0 && ids.length + maxNew > this.config.maxPositionEmbeddings && options.allowLongPrompt !== true) {
      throw new BadInputError(
        `prompt (${ids.length}) + maxNewTokens (${maxNew}) exceed the model's max_position_embeddings (${this.config.maxPositionEmbeddings}); pass allowLongPrompt to run it anyway`,
      );
    }
    const plan = this.planFor(ids.length, maxNew, this.anySparse(ids.length) || options.onLayer !== undefined);
    // longrope (Phi-3) picks its factors by the prompt length; decode keeps the prefill's table.
    const wantLong = usesLongRopeFactors(this.config, ids.length);
    if (plan.scap > this.ropeTable.maxPositions || wantLong !== this.ropeTable.long) {
      // Also: allowLongPrompt past max_position_embeddings needs a table covering the whole cache.
      const table = RopeTable.create(this.gpu, this.config, Math.max(plan.scap, this.ropeTable.maxPositions), ids.length);
      this.ropeTable.release(this.gpu);
      this.ropeTable = table;
    }
    if (options.signal?.aborted) throw new AbortedError('prefill');
    this.gpu.pool.peakBytes = this.gpu.pool.allocatedBytes;
    const st = this.allocate(plan);
    this.state = st;
    try {
      const steps = this.buildPrefill(st, ids, options.onLayer);
      const T = ids.length;
      const L = this.config.numLayers;
      const total = L * 3 * T;
      await this.execute(steps, {
        profile: this.options.profile === true,
        times,
        signal: options.signal,
        what: 'prefill',
        onFlush: (s) =>
          options.onProgress?.({
            tokensDone: s.tokensDone,
            totalTokens: T,
            layer: s.layer,
            numLayers: L,
            fraction: Math.min(1, s.work / total),
            elapsedMs: performance.now() - t0,
          }),
      });
      const logits = await this.gpu.readF32(st.logits);
      let hidden: Float32Array | undefined;
      if (options.returnHidden) hidden = await this.gpu.readF32(st.tok);
      st.pos = T;
      const result: PrefillResult = { logits: Float32Array.from(logits), plan, ms: performance.now() - t0 };
      await this.readPendingDensity(st);
      if (hidden) result.hidden = Float32Array.from(hidden);
      return result;
    } catch (e) {
      this.releaseState();
      throw e;
    }
  }

  /** The sparse layers' density, read back once for the whole prefill (report only: after its time is taken). */
  private async readPendingDensity(st: RunState): Promise<void> {
    const items = st.pendingDensity.splice(0);
    const got = await readDensity(this.gpu, items.map((x) => x.submitted));
    items.forEach((x, i) => got[i]!.forEach((d, h) => (st.density[x.layer]![x.headStart + h] = d)));
  }

  /** One decode step's work: the token in st.decodeId at position p, through every layer, to the logits. */
  private encodeDecode(e: Encoder, st: RunState, p: number, greedy: boolean): void {
    const c = this.config;
    const w = this.options.weights;
    const buf = this.passBuffers(st, 1);
    const all: HeadGroup = { headStart: 0, heads: c.numHeads, kvStart: 0, kvHeads: c.numKvHeads };
    this.k.embed.encode(e, st.decodeId, w.embed, st.tok);
    for (let l = 0; l < c.numLayers; l++) {
      // Layers > 0: the previous layer's fused residual add already wrote norm(residual) * inputNorm.
      this.encodePassA(e, l, { residual: st.tok, n: 1, pos0: p, normed: l > 0 }, buf, [{ t: st.qDecode, g: all, qRow: 0 }], undefined, true);
      const W = this.windowFor(p + 1, l);
      if (this.k.decode) {
        this.k.decode.encode(e, st.qDecode, st.kCache[l]!, st.vCache[l]!, st.attnDecode, { kvLen: p + 1, window: W, scratch: st.split });
      } else if (W !== undefined) {
        (this.k.windowDecode ?? this.k.window)!.encode(e, st.qDecode, st.kCache[l]!, st.vCache[l]!, st.attnDecode, this.allHeads, { nInit: 0, nLocal: W }, { qPos0: p, kvLen: p + 1 });
      } else {
        this.k.dense!.encode(e, st.qDecode, st.kCache[l]!, st.vCache[l]!, st.attnDecode, this.allHeads, { qPos0: p, kvLen: p + 1, scratch: st.split });
      }
      this.encodePassB(e, l, st.tok, buf, [{ t: st.attnDecode, g: all }], 0, 1, true);
    }
    // The last layer's fused add + norm used the final norm weight: buf.normed is final_norm(residual).
    this.mm(w.lmHead, false, true).encode(e, buf.normed, w.lmHead, st.logits);
    if (greedy) {
      this.k.argmax!.encode(e, st.logits, st.decodeNext);
      // The choice is the next step's input, without a round trip through the host.
      e.copy(st.decodeNext, st.decodeId, 4);
    }
  }

  private get allHeads(): number[] {
    return Array.from({ length: this.config.numHeads }, (_, h) => h);
  }

  /**
   * Submits one decode step: the token at the current position (`id`, written from the host; or,
   * undefined, the id the previous greedy step's argmax left in st.decodeId on the GPU) through
   * every layer, and resolves to the next logits, or with `greedy` (argmax on the GPU) the next
   * token's id. Replayed steps (recorded at the first step of a run, new parameters after) are on
   * the queue when this returns, so the caller may submit the next one before this one resolves;
   * with profiling on (or replayDecode false) each step is encoded into a batch and awaited.
   */
  private submitDecodeStep(st: RunState, id: number | undefined, times: GpuTimes, greedy: boolean): Promise<{ logits?: Float32Array; next?: number }> {
    const p = st.pos;
    if (p >= st.plan.scap) return Promise.reject(new BadInputError(`the KV cache is full (${st.plan.scap} positions)`));
    if (id !== undefined) this.gpu.write(st.decodeId, Uint32Array.of(id));
    const t0 = performance.now();
    const out = greedy ? st.decodeNext : st.logits;
    let bytes: Promise<ArrayBuffer>;
    if (this.options.profile === true || this.options.replayDecode === false) {
      const b = this.gpu.batch({ label: 'decode', profile: this.options.profile === true });
      this.encodeDecode(b, st, p, greedy);
      st.host.decodeMs += performance.now() - t0;
      bytes = b.submit().then((t) => {
        times.add(t);
        return this.gpu.readBytes(out.buffer, out.byteOffset, out.byteLength);
      });
    } else {
      if (st.decodeRecording?.greedy !== greedy) {
        st.decodeRecording?.recording.destroy();
        const recording = new Recording(this.gpu, 'decode');
        st.decodeRecording = { recording, greedy };
        this.encodeDecode(recording, st, p, greedy);
      } else {
        st.decodeRecording.recording.update((e) => this.encodeDecode(e, st, p, greedy));
      }
      st.host.decodeMs += performance.now() - t0;
      bytes = st.decodeRecording.recording.run(out) as Promise<ArrayBuffer>;
    }
    st.host.decodeSteps++;
    st.pos = p + 1;
    return bytes.then((got) => {
      if (!greedy) return { logits: new Float32Array(got) };
      const next = new Uint32Array(got)[0]!;
      // The host's argmax (sampling.ts) refuses all-NaN logits the same way.
      if (next === ARGMAX_NONE) throw new BadInputError('argmax: logits are empty or all NaN');
      return { next };
    });
  }

  /**
   * Prefill + decode. Tokens are chosen greedily or by seeded sampling, streamed through onToken,
   * and generation stops at a stop token (emitted) or after maxNewTokens.
   */
  async generate(ids: Uint32Array, options: GenerateOptions): Promise<GenerateResult> {
    return this.exclusive('generate', async () => {
      await this.sparseReady();
      return this.generateInner(ids, options);
    });
  }

  private async generateInner(ids: Uint32Array, options: GenerateOptions): Promise<GenerateResult> {
    const { maxNewTokens } = options;
    if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) throw new BadInputError(`maxNewTokens must be an integer >= 1, got ${maxNewTokens}`);
    const sampler = new Sampler(options.sampling ?? 'greedy');
    const stop = new Set(options.stopTokens ?? this.config.eosTokenIds);
    for (const s of stop) if (!Number.isInteger(s) || s < 0) throw new BadInputError(`stop token ${s} is not a token id`);
    const t0 = performance.now();
    const times = new GpuTimes();
    const pre = await this.prefillInner(ids, { ...options, maxNewTokens }, times, t0);
    const st = this.state!;
    const tokens: number[] = [];
    let reason: GenerateResult['stop'] = 'max_tokens';
    let ttft = 0;
    const decodeTimes = new GpuTimes();
    // Greedy without a logits hook: the decode steps' argmax runs on the GPU (greedyOnGpu) and feeds
    // the next step there, so replayed steps can be submitted before their input token is read back.
    const greedy = this.k.argmax !== undefined && sampler.greedy && options.onLogits === undefined;
    const replayed = this.options.profile !== true && this.options.replayDecode !== false;
    const ahead = greedy && replayed ? this.submitAhead : 1;
    /** Takes a chosen token; true when generation ends with it. */
    const emit = (id: number): boolean => {
      if (tokens.length === 0) ttft = performance.now() - t0;
      tokens.push(id);
      options.onToken?.(id);
      if (stop.has(id)) {
        reason = 'stop_token';
        return true;
      }
      return tokens.length >= maxNewTokens;
    };
    // Decode step s takes token s - 1 at position T + s - 1 and yields token s.
    const inFlight: Promise<{ logits?: Float32Array; next?: number }>[] = [];
    const td = performance.now();
    let decodeMs = 0;
    try {
      options.onLogits?.(pre.logits, 0);
      let input: number | undefined = sampler.sample(pre.logits);
      let done = emit(input);
      while (!done) {
        if (options.signal?.aborted) throw new AbortedError('generate');
        // A step is only submitted if the token it yields could still be emitted.
        while (inFlight.length < ahead && tokens.length + inFlight.length < maxNewTokens) {
          const step = this.submitDecodeStep(st, input, decodeTimes, greedy);
          step.catch(() => undefined);
          inFlight.push(step);
          // Greedy on the GPU: later inputs are the GPU's own choices.
          if (greedy) input = undefined;
        }
        const out = await inFlight.shift()!;
        if (out.next !== undefined) {
          done = emit(out.next);
        } else {
          options.onLogits?.(out.logits!, tokens.length);
          input = sampler.sample(out.logits!);
          done = emit(input);
        }
      }
      decodeMs = performance.now() - td;
      // Steps submitted past the end (a stop token came first) still finish, and leave no trace:
      // the cache holds the prompt and every token but the last.
      await Promise.all(inFlight.splice(0));
      st.pos = ids.length + tokens.length - 1;
    } catch (e) {
      await Promise.allSettled(inFlight);
      this.releaseState();
      throw e;
    }
    times.merge(decodeTimes);
    const report = this.makeReport(pre.plan, times, pre.ms, ttft, tokens.length, decodeMs);
    const steps = tokens.length - 1;
    if (steps > 0) report.decodeArgmaxOnGpu = greedy;
    if (decodeTimes.any && steps > 0) {
      const top = [...decodeTimes.byLabel].sort((a, b) => b[1].ms - a[1].ms).slice(0, 6);
      report.decodeGpu = {
        gpuMsPerStep: decodeTimes.totalMs / steps,
        top: top.map(([label, e]) => ({ label, msPerStep: e.ms / steps, dispatchesPerStep: e.count / steps })),
      };
    }
    this.lastReport = report;
    return { tokens, stop: reason, promptLogits: pre.logits, report };
  }

  private makeReport(plan: MemoryPlan, times: GpuTimes, prefillMs: number, ttft: number, generated: number, decodeMs: number): RunReport {
    const T = plan.promptLen;
    const sparse = this.anySparse(T);
    const weightBytes = this.options.weights.bytes;
    const peak = this.gpu.pool.peakBytes;
    // Decode steps after the first token: the first token comes from the prefill logits.
    const steps = Math.max(0, generated - 1);
    const r: RunReport = {
      promptTokens: T,
      generatedTokens: generated,
      chunkSize: plan.chunk,
      attentionMode: sparse ? 'sparse' : 'dense',
      attentionCompute: this.attentionCompute,
      prefillMs,
      prefillTokensPerSecond: (T / prefillMs) * 1000,
      timeToFirstTokenMs: ttft,
      decodeMs,
      decodeTokensPerSecond: steps > 0 && decodeMs > 0 ? (steps / decodeMs) * 1000 : 0,
      peakActivationBytes: peak,
      weightBytes,
      peakGpuBytes: peak + weightBytes,
      plannedBytes: plan.totalBytes,
    };
    const host = this.state?.host;
    if (host) {
      r.hostMs = {
        prefillEncode: host.prefillMs,
        perChunkPass: host.chunkPasses ? host.prefillMs / host.chunkPasses : 0,
        decodeEncode: host.decodeMs,
        perDecodeStep: host.decodeSteps ? host.decodeMs / host.decodeSteps : 0,
      };
    }
    const density = this.state?.density;
    if (density && density.length === this.config.numLayers) {
      r.density = density.map((l) => [...l]);
      r.meanDensity = density.flat().reduce((a, b) => a + b, 0) / (this.config.numLayers * this.config.numHeads);
    }
    if (times.any) {
      r.gpuMs = times.ms;
      r.gpuShare = times.shares();
    }
    return r;
  }
}
