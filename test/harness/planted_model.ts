/**
 * A tiny Llama whose heads attend in chosen patterns, built by hand for the pattern-search tests:
 * 2 identical layers (o_proj and the MLP are zero, so layer 1 sees the embeddings again), hidden 64,
 * 4 query heads of 64 over 2 kv heads (GQA 2:1), vocabulary 32, f32 weights, rope_theta 1e6.
 *
 * Tokens carry features (one-hot groups, so every embedding has the same norm and RMSNorm scales
 * all of them alike: h = 4 x): a bias, sink / not sink, marker / not marker, and one of 6 topics.
 * The prompt: the sink token at position 0, 64-token segments of 6 topics (SEGMENT_TOPICS: a
 * segment's earlier same-topic segments lie 5 to 13 segments back, at distances that differ from
 * segment to segment, so they are neither local nor on common diagonals), and 8 marker tokens in 8
 * different segments.
 *
 * RoPE rotates the pair (d, d + 32) by position x theta_d, theta_d = 1e6^(-d / 32): pairs 0..7 turn
 * fast, 8..15 slowly (a few radians over hundreds of tokens), 24..31 hardly at all over 1024 tokens
 * (content features). Each query head reads only the dimensions of its feature, so two query heads
 * share a kv head and still attend differently:
 *   head 0 (kv 0)  A-shape: the sink key (dim 28, score 19) and a local bump from pairs 8..15
 *                  (q = k = constant: score 2 sum_p cos(delta theta_p), most mass within ~50 keys)
 *   head 1 (kv 0)  vertical: the marker keys (dim 29, score 12 against 0 elsewhere)
 *   head 2 (kv 1)  slash: keys `SLASH_OFFSET` back (pairs 0..7, k rotated by the offset: score
 *                  8 sum_p cos((delta - offset) theta_p), peaked at delta = offset)
 *   head 3 (kv 1)  block: keys of the query's topic (dims 24..29, score 10 against 0), i.e. whole
 *                  64-token segments scattered over the prompt
 */
import { encodeSafetensors, type TensorToWrite } from '../../src/model/safetensors.ts';
import type { PatternType } from '../../src/attention/types.ts';

export const PLANTED_LENGTH = 1024;
/** The slash head's offset: past the test space's A-shape window (224). */
export const SLASH_OFFSET = 300;
/** The pattern type planted in each query head (both layers). */
export const PLANTED: readonly PatternType[] = ['stream_llm', 'vertical_and_slash', 'vertical_and_slash', 'block_sparse'];

const C = 64;
const D = 64;
const H = 4;
const HKV = 2;
const VOCAB = 32;
const TOPICS = 6;
const THETA = 1e6;
const SEGMENT = 64;
const MARKERS = [5, 150, 290, 420, 560, 700, 830, 960];
/** Topic of each 64-token segment: at most 3 segments per topic, same-topic segments >= 5 apart. */
const SEGMENT_TOPICS = [0, 1, 2, 3, 4, 5, 0, 2, 1, 4, 3, 5, 2, 0, 1, 4];

// Hidden features.
const F_BIAS = 0;
const F_SINK = 1;
const F_NOT_SINK = 2;
const F_MARKER = 3;
const F_NOT_MARKER = 4;
const F_TOPIC = 5; // .. 5 + TOPICS - 1
/** RMSNorm of an embedding with 4 unit features: x / sqrt(4 / 64). */
const H_SCALE = 4;

export const PLANTED_CONFIG: Readonly<Record<string, unknown>> = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: C,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: H,
  num_key_value_heads: HKV,
  head_dim: D,
  hidden_act: 'silu',
  max_position_embeddings: 4096,
  rms_norm_eps: 1e-6,
  rope_theta: THETA,
  tie_word_embeddings: false,
  torch_dtype: 'float32',
  vocab_size: VOCAB,
  bos_token_id: 0,
  eos_token_id: 31,
};

function tokenId(topic: number, marker: boolean, sink: boolean): number {
  return (sink ? 2 * TOPICS : 0) + (marker ? TOPICS : 0) + topic;
}

/** The planted prompt's token ids. */
export function plantedPrompt(length = PLANTED_LENGTH): Uint32Array {
  const ids = new Uint32Array(length);
  for (let i = 0; i < length; i++) ids[i] = tokenId(SEGMENT_TOPICS[Math.floor(i / SEGMENT) % SEGMENT_TOPICS.length]!, MARKERS.includes(i), i === 0);
  return ids;
}

function f32Tensor(name: string, shape: number[], values: Float32Array): TensorToWrite {
  return { name, dtype: 'F32', shape, data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

function theta(d: number): number {
  return THETA ** (-d / (D / 2));
}

/** q_proj, k_proj, v_proj of one layer: [H * D, C], [HKV * D, C], [HKV * D, C]. */
function attentionWeights(): { q: Float32Array; k: Float32Array; v: Float32Array } {
  const q = new Float32Array(H * D * C);
  const k = new Float32Array(HKV * D * C);
  const v = new Float32Array(HKV * D * C);
  // Weight so that the projected dim holds `value` when the feature is on (h = 4 x).
  const setQ = (head: number, d: number, feature: number, value: number): void => void (q[(head * D + d) * C + feature] = value / H_SCALE);
  const setK = (kv: number, d: number, feature: number, value: number): void => void (k[(kv * D + d) * C + feature] = value / H_SCALE);
  // A score of s between a q dim of value a and a k dim of value b needs a b / sqrt(D) = s: a = b = sqrt(8 s).
  const amp = (s: number): number => Math.sqrt(Math.sqrt(D) * s);
  // Head 0, kv 0: sink and a local bump.
  setQ(0, 28, F_BIAS, amp(19));
  setK(0, 28, F_SINK, amp(19));
  for (let p = 8; p < 16; p++) {
    setQ(0, p, F_BIAS, amp(2));
    setK(0, p, F_BIAS, amp(2));
  }
  // Head 1, kv 0: markers.
  setQ(1, 29, F_BIAS, amp(12));
  setK(0, 29, F_MARKER, amp(12));
  // Head 2, kv 1: the slash at SLASH_OFFSET: k's pair rotated by offset x theta_p.
  for (let p = 0; p < 8; p++) {
    setQ(2, p, F_BIAS, amp(8));
    setK(1, p, F_BIAS, amp(8) * Math.cos(SLASH_OFFSET * theta(p)));
    setK(1, p + D / 2, F_BIAS, amp(8) * Math.sin(SLASH_OFFSET * theta(p)));
  }
  // Head 3, kv 1: topics.
  for (let t = 0; t < TOPICS; t++) {
    setQ(3, 24 + t, F_TOPIC + t, amp(10));
    setK(1, 24 + t, F_TOPIC + t, amp(10));
  }
  // Values: a fixed pseudo-random projection, so that outputs differ between keys.
  let s = 12345;
  for (let i = 0; i < v.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    v[i] = (s / 2 ** 32 - 0.5) * 0.5;
  }
  return { q, k, v };
}

/** config.json and model.safetensors bytes of the planted model. */
export function plantedModelFiles(): Record<string, Uint8Array | string> {
  const embed = new Float32Array(VOCAB * C);
  for (let id = 0; id < VOCAB; id++) {
    const topic = id % TOPICS;
    const marker = Math.floor(id / TOPICS) % 2 === 1;
    const sink = id >= 2 * TOPICS && id < 4 * TOPICS;
    const row = embed.subarray(id * C, (id + 1) * C);
    row[F_BIAS] = 1;
    row[sink ? F_SINK : F_NOT_SINK] = 1;
    row[marker ? F_MARKER : F_NOT_MARKER] = 1;
    row[F_TOPIC + topic] = 1;
  }
  const ones = new Float32Array(C).fill(1);
  const { q, k, v } = attentionWeights();
  const tensors: TensorToWrite[] = [f32Tensor('model.embed_tokens.weight', [VOCAB, C], embed)];
  for (let l = 0; l < 2; l++) {
    const p = `model.layers.${l}.`;
    tensors.push(
      f32Tensor(`${p}input_layernorm.weight`, [C], ones),
      f32Tensor(`${p}self_attn.q_proj.weight`, [H * D, C], q),
      f32Tensor(`${p}self_attn.k_proj.weight`, [HKV * D, C], k),
      f32Tensor(`${p}self_attn.v_proj.weight`, [HKV * D, C], v),
      // o_proj and the MLP write nothing: the next layer's input is the embedding again.
      f32Tensor(`${p}self_attn.o_proj.weight`, [C, H * D], new Float32Array(C * H * D)),
      f32Tensor(`${p}post_attention_layernorm.weight`, [C], ones),
      f32Tensor(`${p}mlp.gate_proj.weight`, [64, C], new Float32Array(64 * C)),
      f32Tensor(`${p}mlp.up_proj.weight`, [64, C], new Float32Array(64 * C)),
      f32Tensor(`${p}mlp.down_proj.weight`, [C, 64], new Float32Array(C * 64)),
    );
  }
  const head = new Float32Array(VOCAB * C);
  for (let i = 0; i < head.length; i++) head[i] = ((i * 7919) % 101) / 101 - 0.5;
  tensors.push(f32Tensor('model.norm.weight', [C], ones), f32Tensor('lm_head.weight', [VOCAB, C], head));
  return { 'config.json': JSON.stringify(PLANTED_CONFIG), 'model.safetensors': encodeSafetensors(tensors, { format: 'pt' }) };
}
