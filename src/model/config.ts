/**
 * Model configuration: parses a Hugging Face `config.json` of a Llama-family decoder into the few
 * numbers the runtime needs, validating each one (errors name the JSON field).
 *
 * Supported: LlamaForCausalLM (Llama 2, 3, 3.1, 3.2; rope_scaling "llama3"), Qwen2ForCausalLM
 * (q/k/v projection biases, often tied embeddings), MistralForCausalLM and Phi3ForCausalLM (fused
 * qkv_proj and gate_up_proj, split at load; rope_scaling "longrope"; partial_rotary_factor as in
 * Phi-4-mini, which rotates only the first head_dim * factor elements). All share one block: RMSNorm
 * -> GQA attention with rotary embeddings (rotate-half convention: element i pairs with element
 * i + headDim/2) -> residual -> RMSNorm -> SwiGLU MLP -> residual.
 *
 * longrope (Phi-3): inv_freq_i = 1 / (ext_i * theta^(2i/D)) with ext = long_factor when the
 * sequence is longer than original_max_position_embeddings, else short_factor; cos and sin are
 * scaled by the attention factor (rope_scaling.attention_factor, else
 * sqrt(1 + ln(s) / ln(original_max)) with s = max_position_embeddings / original_max, 1 when s <= 1).
 * The runtime picks the factors from the prompt length at prefill and keeps them while decoding
 * (transformers switches to the long factors mid-generation when the sequence crosses
 * original_max, leaving the cached keys rotated with the short ones).
 *
 * Sliding windows (Mistral v0.1's `sliding_window`, Qwen2's `use_sliding_window`, Phi-3's) are recorded in
 * `slidingWindow` (key j visible to query i iff i - j < window), which the executor runs in prefill
 * and decode once the sequence is longer than the window. Qwen2 applies it from layer
 * `max_window_layers` on only (`slidingWindowFromLayer`; transformers' default 28 when absent).
 */
import { BadInputError, UnsupportedError } from '../gpu/errors.ts';
import { formatName, formatValue } from '../util/format.ts';
import { MODEL_LIMITS, type IntRange, type NumberRange } from './limits.ts';
import { readJson, type ModelSource } from './source.ts';

export const SUPPORTED_ARCHITECTURES = ['LlamaForCausalLM', 'Qwen2ForCausalLM', 'MistralForCausalLM', 'Phi3ForCausalLM'] as const;
export type Architecture = (typeof SUPPORTED_ARCHITECTURES)[number];

export interface Llama3RopeScaling {
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

export interface LongRopeScaling {
  type: 'longrope';
  /** Per-frequency divisors (headDim / 2 each): short for sequences up to originalMaxPositionEmbeddings, long past it. */
  shortFactor: number[];
  longFactor: number[];
  originalMaxPositionEmbeddings: number;
  /** cos and sin are multiplied by it. */
  attentionFactor: number;
}

export type RopeScaling = Llama3RopeScaling | LongRopeScaling;

export interface ModelConfig {
  architecture: Architecture;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  /** `head_dim` when given, else hiddenSize / numHeads. q_proj has numHeads * headDim rows. */
  headDim: number;
  /** Rotated leading elements per head when partial_rotary_factor < 1 (Phi-4-mini: 96 of 128); absent: all. */
  rotaryDim?: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling?: RopeScaling;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** q_proj, k_proj and v_proj carry biases (Qwen2). o_proj never does in the supported models. */
  attentionBias: boolean;
  eosTokenIds: number[];
  bosTokenId?: number;
  /** As written in config.json (`torch_dtype`, or `dtype` in newer files), e.g. 'bfloat16'. */
  torchDtype: string;
  /** Attention window of Mistral v0.1 / Phi-3 / Qwen2 with use_sliding_window; undefined means full attention. */
  slidingWindow?: number;
  /** Layers from this index on use slidingWindow (Qwen2's max_window_layers); absent: every layer. */
  slidingWindowFromLayer?: number;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An integer field in `range` (inclusive); `fallback` when absent or null. Errors name the field and the range. */
function intField(obj: Json, field: string, range: IntRange, fallback?: number, where = 'config.json'): number {
  const v = obj[field] ?? fallback;
  if (v === undefined || v === null) throw new BadInputError(`${where}: missing field "${field}"`);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < range.min || v > range.max) {
    throw new BadInputError(`${where}: "${field}" must be an integer in ${range.min}..${range.max}, got ${formatValue(v)}`);
  }
  return v;
}

/** A finite number field in [min, max]; `fallback` when absent or null. */
function numberField(obj: Json, field: string, range: NumberRange, fallback?: number, where = 'config.json'): number {
  const v = obj[field] ?? fallback;
  if (v === undefined || v === null) throw new BadInputError(`${where}: missing field "${field}"`);
  if (typeof v !== 'number' || !Number.isFinite(v) || v < range.min || v > range.max) {
    throw new BadInputError(`${where}: "${field}" must be a number in [${range.min}, ${range.max}], got ${formatValue(v)}`);
  }
  return v;
}

/** A token id or a list of them, each below the vocabulary size. */
function tokenIds(v: unknown, field: string, vocabSize: number, where = 'config.json'): number[] {
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  const max = MODEL_LIMITS.stopTokens.max;
  if (list.length > max) throw new BadInputError(`${where}: "${field}" lists ${list.length} token ids, at most ${max} are allowed`);
  for (const id of list) {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0 || id >= vocabSize) {
      throw new BadInputError(`${where}: "${field}" must be a token id below the vocabulary size ${vocabSize} or a list of them, got ${formatValue(v)}`);
    }
  }
  return list as number[];
}

/** Phi-3's longrope ("su" in its first configs); `json` is the whole config (original_max may sit at its top level). */
function parseLongRope(raw: Json, fieldName: string, json: Json, rotaryDim: number, maxPositions: number): LongRopeScaling {
  const where = `config.json ${fieldName}`;
  const { min, max } = MODEL_LIMITS.ropeFreqFactor;
  const factors = (name: string): number[] => {
    const v = raw[name];
    if (!Array.isArray(v) || v.length !== rotaryDim / 2 || !v.every((x) => typeof x === 'number' && x >= min && x <= max)) {
      throw new BadInputError(`${where}: "${name}" must list ${rotaryDim / 2} numbers in [${min}, ${max}] (rotated dimensions / 2), got ${formatValue(v)}`);
    }
    return v as number[];
  };
  const origField = raw.original_max_position_embeddings !== undefined && raw.original_max_position_embeddings !== null ? raw : json;
  if (origField.original_max_position_embeddings === undefined || origField.original_max_position_embeddings === null) {
    throw new BadInputError(`${where}: longrope needs original_max_position_embeddings (a positive integer)`);
  }
  const orig = intField(origField, 'original_max_position_embeddings', MODEL_LIMITS.positions, undefined, origField === raw ? where : 'config.json');
  let attentionFactor: number;
  if (raw.attention_factor !== undefined && raw.attention_factor !== null) {
    attentionFactor = numberField(raw, 'attention_factor', MODEL_LIMITS.ropeAttentionFactor, undefined, where);
  } else {
    const scale = raw.factor !== undefined && raw.factor !== null ? numberField(raw, 'factor', MODEL_LIMITS.ropeScaleFactor, undefined, where) : maxPositions / orig;
    attentionFactor = scale <= 1 ? 1 : Math.sqrt(1 + Math.log(scale) / Math.log(orig));
    const range = MODEL_LIMITS.ropeAttentionFactor;
    if (!(attentionFactor >= range.min && attentionFactor <= range.max)) {
      throw new BadInputError(`${where}: the attention factor sqrt(1 + ln(${scale}) / ln(${orig})) = ${attentionFactor} is outside [${range.min}, ${range.max}]`);
    }
  }
  return { type: 'longrope', shortFactor: factors('short_factor'), longFactor: factors('long_factor'), originalMaxPositionEmbeddings: orig, attentionFactor };
}

function parseRopeScaling(raw: unknown, fieldName: string, json: Json, rotaryDim: number, maxPositions: number): RopeScaling | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!isObject(raw)) throw new BadInputError(`config.json: "${fieldName}" must be an object or null, got ${formatValue(raw)}`);
  const type = raw.rope_type ?? raw.type;
  if (type === undefined || type === 'default') return undefined;
  if (type === 'longrope' || type === 'su') return parseLongRope(raw, fieldName, json, rotaryDim, maxPositions);
  if (type !== 'llama3') {
    throw new UnsupportedError(`config.json: ${fieldName} type ${formatValue(type)} is not supported (supported: "llama3", "longrope", or none)`);
  }
  const where = `config.json ${fieldName}`;
  const s: Llama3RopeScaling = {
    type: 'llama3',
    factor: numberField(raw, 'factor', MODEL_LIMITS.ropeScaleFactor, undefined, where),
    lowFreqFactor: numberField(raw, 'low_freq_factor', MODEL_LIMITS.ropeFreqFactor, undefined, where),
    highFreqFactor: numberField(raw, 'high_freq_factor', MODEL_LIMITS.ropeFreqFactor, undefined, where),
    originalMaxPositionEmbeddings: intField(raw, 'original_max_position_embeddings', MODEL_LIMITS.positions, undefined, where),
  };
  if (s.highFreqFactor <= s.lowFreqFactor) {
    throw new BadInputError(`${where}: high_freq_factor (${s.highFreqFactor}) must be greater than low_freq_factor (${s.lowFreqFactor})`);
  }
  return s;
}

/**
 * Parses and validates a config.json object. Every number is checked against its range in
 * src/model/limits.ts before anything uses it, and cross-field rules (heads divisible by kv heads,
 * token ids below the vocabulary) are checked here; the tensors' shapes are checked against the
 * config by checkCheckpoint (weights.ts) before any weight is allocated.
 */
export function parseModelConfig(json: unknown): ModelConfig {
  if (!isObject(json)) throw new BadInputError(`config.json: expected a JSON object, got ${formatValue(json)}`);
  const archs = json.architectures;
  const arch = Array.isArray(archs) ? archs[0] : undefined;
  if (typeof arch !== 'string') {
    throw new BadInputError(`config.json: "architectures" must list the model class (supported: ${SUPPORTED_ARCHITECTURES.join(', ')}), got ${formatValue(archs)}`);
  }
  if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new UnsupportedError(`architecture ${formatName(arch, 80)} is not supported (supported: ${SUPPORTED_ARCHITECTURES.join(', ')})`);
  }
  const architecture = arch as Architecture;

  const act = json.hidden_act ?? json.hidden_activation ?? 'silu';
  if (act !== 'silu') throw new UnsupportedError(`config.json: hidden_act ${formatValue(act)} is not supported (only "silu")`);
  if (json.mlp_bias === true) throw new UnsupportedError('config.json: mlp_bias=true is not supported (the MLP has no biases in the supported models)');
  // Qwen2 always has q/k/v biases (hard-wired in its attention, not a config flag).
  const attentionBias = architecture === 'Qwen2ForCausalLM';
  if (architecture !== 'Qwen2ForCausalLM' && json.attention_bias === true) {
    // Llama's attention_bias also puts a bias on o_proj, which the runtime does not implement.
    throw new UnsupportedError(`config.json: attention_bias=true is not supported for ${architecture} (o_proj bias)`);
  }

  const L = MODEL_LIMITS;
  const hiddenSize = intField(json, 'hidden_size', L.hiddenSize);
  const numHeads = intField(json, 'num_attention_heads', L.heads);
  const numKvHeads = intField(json, 'num_key_value_heads', L.heads, numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new BadInputError(`config.json: num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads})`);
  }
  let headDim: number;
  if (json.head_dim !== undefined && json.head_dim !== null) {
    headDim = intField(json, 'head_dim', L.headDim);
  } else {
    if (hiddenSize % numHeads !== 0) {
      throw new BadInputError(`config.json: hidden_size (${hiddenSize}) must be divisible by num_attention_heads (${numHeads}) when head_dim is not given`);
    }
    headDim = hiddenSize / numHeads;
    if (headDim > L.headDim.max) {
      throw new BadInputError(`config.json: hidden_size / num_attention_heads = ${headDim} (the head dimension) must be at most ${L.headDim.max}`);
    }
  }
  if (headDim % 2 !== 0) throw new BadInputError(`config.json: head_dim (${headDim}) must be even for rotary embeddings`);
  if (headDim % 4 !== 0) throw new UnsupportedError(`config.json: head_dim ${headDim} is not a multiple of 4, which the rope kernel needs`);

  // partial_rotary_factor (Phi-4-mini 0.75): only the first int(head_dim * factor) elements rotate.
  let rotaryDim = headDim;
  const partial = json.partial_rotary_factor;
  if (partial !== undefined && partial !== null) {
    if (typeof partial !== 'number' || !(partial > 0) || partial > 1) throw new BadInputError(`config.json: partial_rotary_factor must be in (0, 1], got ${formatValue(partial)}`);
    rotaryDim = Math.floor(headDim * partial);
    if (rotaryDim === 0) throw new BadInputError(`config.json: partial_rotary_factor ${partial} rotates none of the ${headDim} elements of a head`);
    if (rotaryDim % 4 !== 0) {
      throw new UnsupportedError(`config.json: partial_rotary_factor ${partial} rotates ${rotaryDim} of ${headDim} elements; the rope kernel needs a multiple of 4`);
    }
  }

  // Newer transformers write rope parameters into "rope_parameters"; older ones use rope_theta/rope_scaling.
  const ropeParams = isObject(json.rope_parameters) ? json.rope_parameters : undefined;
  const ropeTheta =
    ropeParams?.rope_theta !== undefined ? numberField(ropeParams, 'rope_theta', L.ropeTheta, undefined, 'config.json rope_parameters') : numberField(json, 'rope_theta', L.ropeTheta, 10000);
  const maxPositions = intField(json, 'max_position_embeddings', L.positions, 2048);
  const ropeScaling = ropeParams
    ? parseRopeScaling(ropeParams, 'rope_parameters', json, rotaryDim, maxPositions)
    : parseRopeScaling(json.rope_scaling, 'rope_scaling', json, rotaryDim, maxPositions);

  let slidingWindow: number | undefined;
  const sw = json.sliding_window;
  const swActive = architecture === 'MistralForCausalLM' || architecture === 'Phi3ForCausalLM' || (architecture === 'Qwen2ForCausalLM' && json.use_sliding_window === true);
  if (swActive && sw !== undefined && sw !== null) slidingWindow = intField(json, 'sliding_window', L.positions);
  let slidingWindowFromLayer: number | undefined;
  if (slidingWindow !== undefined && architecture === 'Qwen2ForCausalLM') {
    slidingWindowFromLayer = intField(json, 'max_window_layers', { min: 0, max: L.layers.max }, 28);
  }

  const torchDtype = json.torch_dtype ?? json.dtype ?? 'float32';
  if (typeof torchDtype !== 'string' || torchDtype.length < L.dtypeNameChars.min || torchDtype.length > L.dtypeNameChars.max) {
    throw new BadInputError(`config.json: "torch_dtype" must be a dtype name such as "bfloat16", got ${formatValue(torchDtype)}`);
  }
  const tie = json.tie_word_embeddings ?? false;
  if (typeof tie !== 'boolean') throw new BadInputError(`config.json: "tie_word_embeddings" must be a boolean, got ${formatValue(tie)}`);
  const vocabSize = intField(json, 'vocab_size', L.vocabSize);
  const bos = json.bos_token_id;
  const bosIds = tokenIds(bos, 'bos_token_id', vocabSize);
  if (bosIds.length > 1) throw new BadInputError(`config.json: "bos_token_id" must be one token id, got ${formatValue(bos)}`);

  const config: ModelConfig = {
    architecture,
    hiddenSize,
    intermediateSize: intField(json, 'intermediate_size', L.intermediateSize),
    numLayers: intField(json, 'num_hidden_layers', L.layers),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize,
    rmsNormEps: numberField(json, 'rms_norm_eps', L.rmsNormEps, 1e-6),
    ropeTheta,
    maxPositionEmbeddings: maxPositions,
    tieWordEmbeddings: tie,
    attentionBias,
    eosTokenIds: tokenIds(json.eos_token_id, 'eos_token_id', vocabSize),
    torchDtype,
  };
  if (ropeScaling) config.ropeScaling = ropeScaling;
  if (rotaryDim !== headDim) config.rotaryDim = rotaryDim;
  if (bosIds.length === 1) config.bosTokenId = bosIds[0];
  if (slidingWindow !== undefined) config.slidingWindow = slidingWindow;
  if (slidingWindowFromLayer !== undefined) config.slidingWindowFromLayer = slidingWindowFromLayer;
  return config;
}

/**
 * Rotary inverse frequencies, R/2 of them (R = rotaryDim, default headDim): theta^(-2i/R), adjusted
 * by Llama 3's frequency-dependent scaling when configured (long wavelengths divided by `factor`,
 * short ones kept, a smooth blend between) or divided by longrope's factors for seqLen. Position p
 * rotates pair (i, i + R/2) by p * invFreq[i].
 */
export function ropeInvFrequencies(config: Pick<ModelConfig, 'headDim' | 'rotaryDim' | 'ropeTheta' | 'ropeScaling'>, seqLen = 0): Float64Array {
  const R = config.rotaryDim ?? config.headDim;
  const half = R / 2;
  const out = new Float64Array(half);
  for (let i = 0; i < half; i++) out[i] = 1 / config.ropeTheta ** ((2 * i) / R);
  const s = config.ropeScaling;
  if (!s) return out;
  if (s.type === 'longrope') {
    const ext = longRopeFactors(s, seqLen);
    for (let i = 0; i < half; i++) out[i] = out[i]! / ext[i]!;
    return out;
  }
  const lowFreqWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highFreqWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  for (let i = 0; i < half; i++) {
    const f = out[i]!;
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highFreqWavelen) continue; // high frequency: unchanged
    if (wavelen > lowFreqWavelen) {
      out[i] = f / s.factor; // low frequency: fully scaled
      continue;
    }
    const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    out[i] = (1 - smooth) * (f / s.factor) + smooth * f;
  }
  return out;
}

/** Whether a sequence of seqLen tokens uses longrope's long factors (past original_max_position_embeddings). */
export function usesLongRopeFactors(config: Pick<ModelConfig, 'ropeScaling'>, seqLen: number): boolean {
  const s = config.ropeScaling;
  return s?.type === 'longrope' && seqLen > s.originalMaxPositionEmbeddings;
}

/** longrope: the factors a sequence of seqLen tokens uses. */
export function longRopeFactors(s: LongRopeScaling, seqLen: number): number[] {
  return usesLongRopeFactors({ ropeScaling: s }, seqLen) ? s.longFactor : s.shortFactor;
}

/** The factor cos and sin are scaled by (longrope's attention factor; 1 otherwise). */
export function ropeAttentionFactor(config: Pick<ModelConfig, 'ropeScaling'>): number {
  return config.ropeScaling?.type === 'longrope' ? config.ropeScaling.attentionFactor : 1;
}

export interface GenerationDefaults {
  eosTokenIds: number[];
  bosTokenId?: number;
}

/**
 * generation_config.json's token ids, when the folder has one (instruct models often list more
 * end-of-turn ids there than config.json does, e.g. Llama 3's <|eot_id|>), each below `vocabSize`
 * (the model's, when known). Undefined when absent.
 */
export async function loadGenerationConfig(source: ModelSource, vocabSize: number = MODEL_LIMITS.vocabSize.max): Promise<GenerationDefaults | undefined> {
  if (!(await source.exists('generation_config.json'))) return undefined;
  const where = `${source.name}/generation_config.json`;
  const json = await readJson(source, 'generation_config.json');
  if (!isObject(json)) throw new BadInputError(`${where}: expected a JSON object, got ${formatValue(json)}`);
  const bos = tokenIds(json.bos_token_id, 'bos_token_id', vocabSize, where);
  const out: GenerationDefaults = { eosTokenIds: tokenIds(json.eos_token_id, 'eos_token_id', vocabSize, where) };
  if (bos.length === 1) out.bosTokenId = bos[0];
  return out;
}
