/**
 * A shrunken Llama held in memory for loader tests and the loader fuzz (test/loader_fuzz.test.ts):
 * 2 layers, hidden 128, 2 heads of 64 (1 kv head), intermediate 256, vocabulary 512, BF16, untied,
 * llama3 rope scaling; about 0.85 MB of weights. No tokenizer: the loaders under test never need one.
 * Also an in-memory ModelSource, optionally reporting a file as larger than its bytes (a "sparse"
 * tail of zeros, as a file extended with `truncate -s 8G` would read).
 */
import { BadInputError } from '../../src/gpu/errors.ts';
import { encodeSafetensors, type TensorToWrite } from '../../src/model/safetensors.ts';
import type { ModelSource } from '../../src/model/source.ts';
import { expectedTensors } from '../../src/model/weights.ts';
import { parseModelConfig } from '../../src/model/config.ts';
import { f32ToBf16Bits } from '../../src/util/half.ts';
import { Rng } from './rng.ts';

export const TINY_CONFIG: Readonly<Record<string, unknown>> = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 128,
  intermediate_size: 256,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  head_dim: 64,
  hidden_act: 'silu',
  max_position_embeddings: 4096,
  rms_norm_eps: 1e-5,
  rope_theta: 500000,
  rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 1024 },
  tie_word_embeddings: false,
  torch_dtype: 'bfloat16',
  vocab_size: 512,
  bos_token_id: 1,
  eos_token_id: [2, 3],
};

export interface TinyModel {
  config: Record<string, unknown>;
  tensors: TensorToWrite[];
  /** model.safetensors bytes (header padded to 8 bytes, tensors in load order). */
  file: Uint8Array<ArrayBuffer>;
}

/** The tiny model with seeded N(0, 0.02^2) weights (norm weights around 1). */
export function tinyModel(seed = 13): TinyModel {
  const config = structuredClone(TINY_CONFIG) as Record<string, unknown>;
  const rng = new Rng(seed);
  const tensors: TensorToWrite[] = expectedTensors(parseModelConfig(config)).map((e) => {
    const n = e.shape.reduce((a, b) => a * b, 1);
    const norm = e.shape.length === 1;
    const bits = new Uint16Array(n);
    for (let i = 0; i < n; i++) bits[i] = f32ToBf16Bits(norm ? 1 + 0.1 * rng.normal() : 0.02 * rng.normal());
    return { name: e.name, dtype: 'BF16', shape: e.shape, data: new Uint8Array(bits.buffer) };
  });
  return { config, tensors, file: encodeSafetensors(tensors, { format: 'pt' }) as Uint8Array<ArrayBuffer> };
}

/**
 * Files held in memory. `sizes` makes a file report a larger size than its bytes; reads past its
 * bytes return zeros. Reads return copies. Missing files and ranges past the end are BadInputErrors.
 */
export function memorySource(files: Record<string, Uint8Array | string>, name = 'mem', sizes: Record<string, number> = {}): ModelSource {
  const bytes = (f: string): Uint8Array => {
    const v = files[f];
    if (v === undefined) throw new BadInputError(`${name}: missing file ${f}`);
    return typeof v === 'string' ? new TextEncoder().encode(v) : v;
  };
  const size = (f: string): number => sizes[f] ?? bytes(f).byteLength;
  return {
    name,
    exists: async (f) => f in files,
    size: async (f) => size(f),
    readText: async (f) => new TextDecoder().decode(bytes(f)),
    readRange: async (f, off, len) => {
      const b = bytes(f);
      if (off + len > size(f)) throw new BadInputError(`${name}/${f}: range past the end`);
      const out = new Uint8Array(len);
      if (off < b.byteLength) out.set(b.subarray(off, Math.min(off + len, b.byteLength)));
      return out;
    },
  };
}

/**
 * A safetensors file written by hand: the 8-byte length, the header (text as UTF-8, or raw bytes;
 * with `padTo8`, spaces appended up to a multiple of 8 bytes, as writers do), then `data`. For
 * malformed headers.
 */
export function rawSafetensors(header: string | Uint8Array, data: Uint8Array, padTo8 = false): Uint8Array<ArrayBuffer> {
  const bytes = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const pad = padTo8 ? (8 - (bytes.byteLength % 8)) % 8 : 0;
  const out = new Uint8Array(8 + bytes.byteLength + pad + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(bytes.byteLength + pad), true);
  out.set(bytes, 8);
  out.fill(0x20, 8 + bytes.byteLength, 8 + bytes.byteLength + pad);
  out.set(data, 8 + bytes.byteLength + pad);
  return out;
}

/** The header length a safetensors file's first 8 bytes declare. */
export function headerLengthOf(file: Uint8Array): number {
  return Number(new DataView(file.buffer, file.byteOffset, 8).getBigUint64(0, true));
}

/** A copy of `file` declaring header length `n`. */
export function withHeaderLength(file: Uint8Array, n: number | bigint): Uint8Array<ArrayBuffer> {
  const out = file.slice() as Uint8Array<ArrayBuffer>;
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  return out;
}
