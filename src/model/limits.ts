/**
 * Every bound the loaders put on a number read from a model's files, in one place. A value outside
 * its range is a BadInputError naming the field before anything is allocated or looped over, so a
 * corrupt config.json (num_hidden_layers: 1e9, rms_norm_eps: 1e-320) or pattern config fails fast
 * instead of hanging, crashing or loading nonsense.
 *
 * The ranges admit every released Llama, Qwen2, Mistral and Phi-3 checkpoint with room to spare; the
 * largest real values are noted next to each. Integer ranges are inclusive; every product of them
 * that the loaders compute (vocab * hidden, heads * head_dim * hidden, ...) stays below 2^53.
 */

export interface IntRange {
  min: number;
  max: number;
}

/** A closed range of finite numbers; min > 0 excludes zero, subnormals and negative values. */
export interface NumberRange {
  min: number;
  max: number;
}

/** The smallest normal float32: epsilons and factors reach the GPU as f32 and must not flush to 0. */
export const F32_MIN_NORMAL = 2 ** -126;

export const MODEL_LIMITS = {
  /** num_hidden_layers. Llama 3.1 405B: 126. */
  layers: { min: 1, max: 1024 },
  /** num_attention_heads (and num_key_value_heads). Llama 3.1 405B: 128. */
  heads: { min: 1, max: 1024 },
  /** head_dim, given or hidden_size / num_attention_heads. Every supported family: 64 to 256. */
  headDim: { min: 1, max: 1024 },
  /** hidden_size. Llama 3.1 405B: 16384. */
  hiddenSize: { min: 1, max: 65536 },
  /** intermediate_size. Llama 3.1 405B: 53248. */
  intermediateSize: { min: 1, max: 262144 },
  /** vocab_size. Llama 3: 128256; Qwen2: 151936; Phi-4-mini: 200064. */
  vocabSize: { min: 1, max: 4194304 },
  /**
   * max_position_embeddings, original_max_position_embeddings, sliding_window, and the sizes in
   * pattern configs (token counts). Llama 4 Scout: 10M; 2^28 keeps RopeTable's positions exact.
   */
  positions: { min: 1, max: 2 ** 28 },
  /** eos_token_id entries. Real configs list 1 to 3. */
  stopTokens: { min: 0, max: 1024 },
  /** Characters of torch_dtype ("bfloat16"). */
  dtypeNameChars: { min: 1, max: 64 },
  /** rope_theta: above 1 or the frequencies stop decreasing. Llama 2: 1e4; Qwen2.5-1M: 1e7; largest seen ~1e8. */
  ropeTheta: { min: 2, max: 1e12 },
  /** rms_norm_eps: 1e-5 or 1e-6 in practice. */
  rmsNormEps: { min: F32_MIN_NORMAL, max: 1 },
  /** llama3 rope_scaling factor (Llama 3.1: 8, 3.2: 32) and longrope's scale factor. */
  ropeScaleFactor: { min: 1, max: 1e4 },
  /** llama3 low_freq_factor / high_freq_factor (1 and 4), longrope short/long factors (1 to ~64). */
  ropeFreqFactor: { min: 1e-3, max: 1e4 },
  /** longrope attention_factor (Phi-3: ~1.19); multiplies cos and sin. */
  ropeAttentionFactor: { min: 1e-2, max: 1e2 },
  /** Bytes of a JSON file read whole (config.json, the shard index, tokenizer.json: ~33 MB for Gemma 3); as safetensors headers. */
  jsonFileBytes: { min: 0, max: 100_000_000 },
} as const satisfies Record<string, IntRange | NumberRange>;
