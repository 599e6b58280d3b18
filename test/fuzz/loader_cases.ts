/**
 * The loader fuzz's cases (run by test/loader_fuzz.test.ts, in a child process so that a hang or a
 * crash is caught and named): seeded corruptions of the tiny Llama of test/harness/loader_model.ts,
 * in six families, each driven through the loaders a user calls:
 *   header   the 8-byte length and the JSON header of model.safetensors (bytes and structure)
 *   index    model.safetensors.index.json and its two shards
 *   data     the data section (inserted, deleted, appended, flipped bytes; a sparse 8 GiB tail)
 *   config   config.json values, fields, nesting and bytes (then checked against the checkpoint)
 *   pattern  MInference pattern configs and CLI pattern strings
 *   http     a server that lies about sizes, ranges and bodies (openHttpModel)
 *
 * What every case must satisfy:
 *  - a failure is a SparsePrefillError (a typed error); anything else thrown is "untyped";
 *  - a checkpoint that opens reads exactly the bytes its own header declares, the tensors tiling
 *    the data section and the file size adding up (checkDeclared: an oracle written from the
 *    format, independent of the loader); otherwise the case is a "violation";
 *  - a mutation known to break the file or the config (mustFail) does not load;
 *  - a config or pattern table that loads holds only numbers within MODEL_LIMITS.
 * Hangs, crashes and time per case are the runner's business.
 */
import { mkdir, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defaultPatterns, loadPatternConfig, parsePatternString } from '../../src/attention/config.ts';
import type { Pattern } from '../../src/attention/types.ts';
import { SparsePrefillError } from '../../src/gpu/errors.ts';
import { parseModelConfig, type ModelConfig } from '../../src/model/config.ts';
import { MODEL_LIMITS, type IntRange, type NumberRange } from '../../src/model/limits.ts';
import { Checkpoint, encodeSafetensors } from '../../src/model/safetensors.ts';
import { openHttpModel, openLocalModel, readJson, type FetchLike, type ModelSource } from '../../src/model/source.ts';
import { checkCheckpoint } from '../../src/model/weights.ts';
import { headerLengthOf, memorySource, rawSafetensors, tinyModel, withHeaderLength, type TinyModel } from '../harness/loader_model.ts';
import { Rng } from '../harness/rng.ts';

export const FAMILIES = ['header', 'index', 'data', 'config', 'pattern', 'http'] as const;
export type Family = (typeof FAMILIES)[number];
/** Share of the cases each family gets. */
const WEIGHTS: Record<Family, number> = { header: 0.27, index: 0.07, data: 0.16, config: 0.27, pattern: 0.16, http: 0.07 };

export type Outcome =
  | { kind: 'loaded' }
  | { kind: 'typed'; code: string; message: string }
  | { kind: 'untyped'; message: string }
  | { kind: 'violation'; message: string };

export interface CaseResult {
  index: number;
  family: Family;
  mutation: string;
  mustFail: boolean;
  outcome: Outcome;
  ms: number;
}

/** A loaded result that breaks an oracle. */
class Violation extends Error {}

function violation(message: string): never {
  throw new Violation(message);
}

// ------------------------------------------------------------------------------------ the model

export interface Base {
  model: TinyModel;
  /** The tiny model split into two shards plus an index. */
  shards: Record<string, Uint8Array>;
  patternText: string;
  checkpoint: Checkpoint;
  /** Scratch folder for the cases that go through the local file system. */
  tmp: string;
}

export async function makeBase(tmp: string): Promise<Base> {
  const model = tinyModel();
  const half = Math.ceil(model.tensors.length / 2);
  const parts = [model.tensors.slice(0, half), model.tensors.slice(half)];
  const names = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
  const weightMap: Record<string, string> = {};
  parts.forEach((p, i) => p.forEach((t) => (weightMap[t.name] = names[i]!)));
  const shards: Record<string, Uint8Array> = {
    'model.safetensors.index.json': new TextEncoder().encode(JSON.stringify({ metadata: { total_size: model.file.byteLength }, weight_map: weightMap })),
    [names[0]!]: encodeSafetensors(parts[0]!),
    [names[1]!]: encodeSafetensors(parts[1]!),
  };
  const patternText = JSON.stringify([
    { 0: ['vertical_and_slash', 1000, 6096, 0.9], 1: ['stream_llm', 64, 1024, 0.8] },
    { 0: ['block_sparse', 100, 100, 0.7], 1: ['vertical_and_slash', 30, 800, 0.6] },
  ]);
  const checkpoint = await Checkpoint.open(memorySource({ 'model.safetensors': model.file }));
  return { model, shards, patternText, checkpoint, tmp };
}

// ------------------------------------------------------------------------------ nasty values

const DEEP = `${'['.repeat(5000)}1${']'.repeat(5000)}`;
/** A 1 MB string (the 16 MB one of the issue is a plain test; this keeps the run fast). */
const BIG_STRING = `"${'x'.repeat(2 ** 20)}"`;
/** JSON text that is never a valid number of any field: non-numbers, non-finite, out of every range, unsafe. */
const NEVER_A_NUMBER = ['1e300', '1e21', '9007199254740993', '1e309', '-1e309', '"12"', 'true', '{}', DEEP, BIG_STRING, '-1'];

interface FieldPools {
  bad: readonly string[];
  maybe: readonly string[];
}
const INT_POOLS: FieldPools = {
  bad: [...NEVER_A_NUMBER, '[2]', '0', '0.5', '1.5', '1e9', '2147483648', '9007199254740991', '1e-320'],
  maybe: ['1', '2', '64', '128', '256', '512', '1024', '4096', '65536', 'null'],
};
const FLOAT_POOLS: FieldPools = {
  bad: [...NEVER_A_NUMBER, '[2]', '0', '-0', '1e-300', '1e-320'],
  maybe: ['0.5', '1e-6', '1e-12', '1.5', '10000', '1e8', '1e12', 'null'],
};
const ID_POOLS: FieldPools = {
  bad: [...NEVER_A_NUMBER, '512', '600', '1e20', '1e15', '[1e15]', '[2, 600]', '0.5', `[${Array(1025).fill(1).join(',')}]`, `[${DEEP}]`],
  maybe: ['0', '511', '[0, 511]', '[7]', 'null', '[]'],
};

/** Fields of config.json (a dotted path for rope_scaling's) with their pools and whether they are required. */
const CONFIG_FIELDS: { path: string; pools: FieldPools; required: boolean }[] = [
  ...['hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'vocab_size'].map((path) => ({ path, pools: INT_POOLS, required: true })),
  ...['num_key_value_heads', 'head_dim', 'max_position_embeddings'].map((path) => ({ path, pools: INT_POOLS, required: false })),
  ...['rms_norm_eps', 'rope_theta'].map((path) => ({ path, pools: FLOAT_POOLS, required: false })),
  ...['bos_token_id', 'eos_token_id'].map((path) => ({ path, pools: ID_POOLS, required: false })),
  ...['factor', 'low_freq_factor', 'high_freq_factor'].map((f) => ({ path: `rope_scaling.${f}`, pools: FLOAT_POOLS, required: true })),
  { path: 'rope_scaling.original_max_position_embeddings', pools: INT_POOLS, required: true },
  { path: 'partial_rotary_factor', pools: { bad: [...NEVER_A_NUMBER, '1e-9', '0', '-0.5', '1.5'], maybe: ['0.5', '0.25', '1', 'null'] }, required: false },
  { path: 'torch_dtype', pools: { bad: [BIG_STRING, '5', DEEP, '""', '[]'], maybe: ['"float16"', '"auto"', 'null'] }, required: false },
  { path: 'tie_word_embeddings', pools: { bad: ['1', '"true"', DEEP, '[]'], maybe: ['true', 'false', 'null'] }, required: false },
  { path: 'architectures', pools: { bad: ['["GPT2LMHeadModel"]', '[]', '"LlamaForCausalLM"', `[${BIG_STRING}]`, DEEP, 'null'], maybe: ['["MistralForCausalLM"]'] }, required: true },
  { path: 'rope_scaling', pools: { bad: ['1', '"llama3"', '[]', DEEP, '{"rope_type":"yarn","factor":4}', `{"rope_type":${BIG_STRING}}`], maybe: ['null', '{}', '{"rope_type":"default"}'] }, required: false },
  { path: 'hidden_act', pools: { bad: ['"gelu"', BIG_STRING, DEEP], maybe: ['"silu"', 'null'] }, required: false },
];

const SIZE_POOLS: FieldPools = {
  bad: [...NEVER_A_NUMBER, '1.5', '268435457', 'null', '[]'],
  maybe: ['0', '1', '4096', '268435456'],
};

// ---------------------------------------------------------------------------------- helpers

function pick<T>(rng: Rng, list: readonly T[]): T {
  return list[rng.int(0, list.length)]!;
}

function splice(bytes: Uint8Array, at: number, remove: number, insert: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(bytes.byteLength - remove + insert.byteLength);
  out.set(bytes.subarray(0, at));
  out.set(insert, at);
  out.set(bytes.subarray(at + remove), at + insert.byteLength);
  return out;
}

function randomBytes(rng: Rng, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.int(0, 256);
  return out;
}

/** Replaces the JSON string "@@" (the placeholder) in `text` with raw JSON text. */
function inject(text: string, raw: string): string {
  return text.replace('"@@"', () => raw);
}

/** 1 to 4 random byte edits (replace, insert, delete) within [from, to). */
function byteEdits(rng: Rng, bytes: Uint8Array, from: number, to: number): Uint8Array {
  let out = bytes;
  const edits = rng.int(1, 5);
  for (let e = 0; e < edits; e++) {
    const at = rng.int(from, Math.max(from + 1, Math.min(to, out.byteLength)));
    const op = rng.int(0, 3);
    if (op === 0) {
      out = out === bytes ? out.slice() : out;
      out[at] = rng.next() < 0.5 ? rng.int(0, 256) : pick(rng, [0x22, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x30, 0x39, 0x20, 0x2d, 0x65, 0x2e]);
    } else if (op === 1) {
      out = splice(out, at, 0, randomBytes(rng, rng.int(1, 4)));
    } else {
      out = splice(out, at, Math.min(rng.int(1, 4), out.byteLength - at));
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------ oracles

/**
 * The loaded checkpoint holds exactly what `file` declares: a strict JSON header starting with '{',
 * tensors tiling the data section from 0 to its end (so the size is 8 + N + data), and every
 * tensor's bytes equal to the file's at its declared range. `size` is what the source reports
 * (bytes past `file` read as zeros).
 */
export async function checkDeclared(ckpt: Checkpoint, fileName: string, file: Uint8Array, size = file.byteLength): Promise<void> {
  if (size < 8) violation(`${fileName}: a ${size}-byte file loaded`);
  const n = headerLengthOf(file);
  if (8 + n > size) violation(`${fileName}: header length ${n} past the end loaded`);
  const headerBytes = file.subarray(8, 8 + n);
  let header: Record<string, { dtype: string; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes));
  } catch {
    return violation(`${fileName}: a header that is not strict JSON loaded`);
  }
  if (headerBytes[0] !== 0x7b) violation(`${fileName}: a header not starting with '{' loaded`);
  const entries = Object.entries(header).filter(([k]) => k !== '__metadata__');
  const inFile = ckpt.files.find((f) => f.file === fileName);
  if (!inFile) return violation(`${fileName}: not among the checkpoint's files`);
  if (inFile.tensors.size !== entries.length) violation(`${fileName}: ${inFile.tensors.size} tensors loaded, the header declares ${entries.length}`);
  const spans = entries.map(([, e]) => e.data_offsets).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const covered = spans.reduce((end, [b, e]) => (b === end ? e : Number.NaN), 0);
  if (covered !== size - 8 - n) violation(`${fileName}: loaded though the tensors cover ${covered} of ${size - 8 - n} data bytes`);
  for (const [name, e] of entries) {
    const info = ckpt.info(name);
    const [b, end] = e.data_offsets;
    if (info.fileOffset !== 8 + n + b || info.byteLength !== end - b) violation(`${name}: loaded at ${info.fileOffset}+${info.byteLength}, declared at ${8 + n + b}+${end - b}`);
    const got = await ckpt.read(name);
    const want = new Uint8Array(end - b);
    want.set(file.subarray(Math.min(8 + n + b, file.byteLength), Math.min(8 + n + end, file.byteLength)));
    for (let i = 0; i < want.byteLength; i++) if (got[i] !== want[i]) violation(`${name}: byte ${i} read as ${got[i]}, the file holds ${want[i]}`);
  }
}

function inRange(v: number | undefined, r: IntRange | NumberRange, what: string): void {
  if (v === undefined || !Number.isFinite(v) || v < r.min || v > r.max) violation(`config loaded with ${what} = ${v}, outside [${r.min}, ${r.max}]`);
}

/** Every number of a loaded config lies within MODEL_LIMITS, ids below the vocabulary. */
function checkConfigValues(c: ModelConfig): void {
  const L = MODEL_LIMITS;
  inRange(c.hiddenSize, L.hiddenSize, 'hiddenSize');
  inRange(c.intermediateSize, L.intermediateSize, 'intermediateSize');
  inRange(c.numLayers, L.layers, 'numLayers');
  inRange(c.numHeads, L.heads, 'numHeads');
  inRange(c.numKvHeads, { min: 1, max: c.numHeads }, 'numKvHeads');
  inRange(c.headDim, L.headDim, 'headDim');
  inRange(c.rotaryDim ?? c.headDim, { min: 4, max: c.headDim }, 'rotaryDim');
  inRange(c.vocabSize, L.vocabSize, 'vocabSize');
  inRange(c.rmsNormEps, L.rmsNormEps, 'rmsNormEps');
  inRange(c.ropeTheta, L.ropeTheta, 'ropeTheta');
  inRange(c.maxPositionEmbeddings, L.positions, 'maxPositionEmbeddings');
  for (const id of [...c.eosTokenIds, ...(c.bosTokenId === undefined ? [] : [c.bosTokenId])]) inRange(id, { min: 0, max: c.vocabSize - 1 }, 'a token id');
  const s = c.ropeScaling;
  if (s?.type === 'llama3') {
    inRange(s.factor, L.ropeScaleFactor, 'rope factor');
    inRange(s.lowFreqFactor, L.ropeFreqFactor, 'low_freq_factor');
    inRange(s.highFreqFactor, L.ropeFreqFactor, 'high_freq_factor');
    inRange(s.originalMaxPositionEmbeddings, L.positions, 'original_max_position_embeddings');
  }
  for (const [k, v] of Object.entries(c)) if (typeof v === 'number' && !Number.isSafeInteger(v) && !Number.isFinite(v)) violation(`config loaded with ${k} = ${v}`);
}

function checkPatterns(table: Pattern[][], layers: number, heads: number): void {
  if (table.length !== layers || table.some((l) => l.length !== heads)) violation(`pattern table of ${table.length} layers loaded for a ${layers}-layer model`);
  for (const p of table.flat()) {
    for (const v of Object.values(p)) if (typeof v === 'number') inRange(v, { min: 0, max: MODEL_LIMITS.positions.max }, `a ${p.type} size`);
  }
}

// ------------------------------------------------------------------------------------ families

interface Mutation {
  mutation: string;
  mustFail: boolean;
  run(): Promise<void>;
}

/** Opens one safetensors file (in memory, or on disk for every 5th case), checks it against its declaration and the config. */
function fileCase(base: Base, index: number, mutation: string, mustFail: boolean, file: Uint8Array, virtualSize?: number): Mutation {
  const onDisk = index % 5 === 0;
  return {
    mutation: `${mutation}${onDisk ? ' (on disk)' : ''}`,
    mustFail,
    async run() {
      let source: ModelSource;
      const dir = join(base.tmp, `case-${index}`);
      if (onDisk) {
        await mkdir(dir, { recursive: true });
        await writeFile(join(dir, 'model.safetensors'), file);
        if (virtualSize !== undefined) await truncate(join(dir, 'model.safetensors'), virtualSize);
        source = await openLocalModel(dir);
      } else {
        source = memorySource({ 'model.safetensors': file }, 'mem', virtualSize === undefined ? {} : { 'model.safetensors': virtualSize });
      }
      try {
        const ckpt = await Checkpoint.open(source);
        await checkDeclared(ckpt, 'model.safetensors', file, virtualSize);
        checkCheckpoint(ckpt, parseModelConfig(base.model.config));
      } finally {
        if (onDisk) await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

function headerCase(rng: Rng, base: Base, index: number): Mutation {
  const file = base.model.file;
  const n = headerLengthOf(file);
  const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n))) as Record<string, { dtype: string; shape: unknown; data_offsets: unknown }>;
  const data = file.subarray(8 + n);
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const name = pick(rng, names);
  /** The header re-serialized after `edit`, with a consistent length. */
  const edited = (edit: (h: Record<string, unknown>) => void, raw?: string): Uint8Array => {
    const h = structuredClone(header) as Record<string, unknown>;
    edit(h);
    const text = JSON.stringify(h);
    return rawSafetensors(raw === undefined ? text : inject(text, raw), data, true);
  };
  switch (rng.int(0, 12)) {
    case 0: {
      // Writers pad the header with spaces; a length lowered into the padding still leaves valid JSON.
      const padded = rawSafetensors(JSON.stringify(header) + ' '.repeat(rng.int(0, 24)), data, true);
      const pn = headerLengthOf(padded);
      const spaces = pn - JSON.stringify(header).length;
      const k = rng.int(1, spaces + 3);
      return fileCase(base, index, `header length - ${k} (${spaces} trailing spaces)`, true, withHeaderLength(padded, BigInt(pn - k)));
    }
    case 1: {
      const k = rng.int(1, 64);
      return fileCase(base, index, `header length + ${k}`, true, withHeaderLength(file, BigInt(n + k)));
    }
    case 2: {
      const v = pick(rng, [0n, 1n, 2n ** 63n, 2n ** 64n - 1n, BigInt(rng.int(0, 2 ** 31)), 100_000_001n]);
      return fileCase(base, index, `header length ${v}`, true, withHeaderLength(file, v));
    }
    case 3:
      return fileCase(base, index, 'byte edits in the header JSON', false, byteEdits(rng, file, 8, 8 + n));
    case 4: {
      const prefix = pick(rng, [[0xef, 0xbb, 0xbf], [0x20], [0x0a], [0xfe, 0xff]]);
      const text = new TextDecoder().decode(file.subarray(8, 8 + n)).trimEnd();
      const out = rawSafetensors(new Uint8Array([...prefix, ...new TextEncoder().encode(text)]), data);
      return fileCase(base, index, `header prefixed with ${prefix.map((b) => b.toString(16)).join(' ')}`, true, out);
    }
    case 5: {
      const k = rng.int(1, 9) * pick(rng, [1, 2, 64, -1, -2]);
      return fileCase(base, index, `${name}: data_offsets shifted by ${k}`, true, edited((h) => {
        const o = (h[name] as { data_offsets: number[] }).data_offsets;
        h[name] = { ...(h[name] as object), data_offsets: [o[0]! + k, o[1]! + k] };
      }));
    }
    case 6: {
      // Two tensors of one size swap places: still a valid file (loads what it declares), the config check then passes too.
      const sizes = new Map<number, string[]>();
      for (const t of names) {
        const [b, e] = header[t]!.data_offsets as number[];
        sizes.set(e! - b!, [...(sizes.get(e! - b!) ?? []), t]);
      }
      const pair = [...sizes.values()].find((l) => l.length >= 2)!;
      return fileCase(base, index, `${pair[0]} and ${pair[1]} swap data_offsets`, false, edited((h) => {
        const a = h[pair[0]!] as { data_offsets: unknown };
        const b = h[pair[1]!] as { data_offsets: unknown };
        [a.data_offsets, b.data_offsets] = [b.data_offsets, a.data_offsets];
      }));
    }
    case 7: {
      // No shape here is the config's for the tensor, so none may load ([1, 65536] and [64, 256] keep some tensors' sizes).
      const raw = pick(rng, [...NEVER_A_NUMBER, '[2]', '[]', '[0]', '[64, 256]', '[1, 65536]', '[2.5, 1]', '[4294967296, 4294967296]', '[9007199254740993]']);
      return fileCase(base, index, `${name}: shape ${raw.slice(0, 40)}`, true, edited((h) => ((h[name] as { shape: unknown }).shape = '@@'), raw));
    }
    case 8: {
      const raw = pick(rng, ['"F16"', '"F32"', '"I64"', '"BOOL"', '"F8_E4M3"', '"bf16"', '7', 'null', DEEP, BIG_STRING]);
      // F16 has BF16's size: the file stays valid (and the config does not fix the dtype), so it may load.
      return fileCase(base, index, `${name}: dtype ${raw.slice(0, 20)}`, raw !== '"F16"', edited((h) => ((h[name] as { dtype: unknown }).dtype = '@@'), raw));
    }
    case 9: {
      const raw = pick(rng, [...NEVER_A_NUMBER, '[0]', '[0, 1, 2]', '[-8, 0]', '[0.5, 8]', `[0, ${DEEP}]`, '[9007199254740993, 9007199254740994]', '"0,8"']);
      return fileCase(base, index, `${name}: data_offsets ${raw.slice(0, 40)}`, true, edited((h) => ((h[name] as { data_offsets: unknown }).data_offsets = '@@'), raw));
    }
    case 10: {
      const op = rng.int(0, 4);
      if (op === 0) return fileCase(base, index, `${name} removed from the header`, true, edited((h) => delete h[name]));
      if (op === 1) return fileCase(base, index, `${name} listed twice (as ${name}.copy)`, true, edited((h) => (h[`${name}.copy`] = h[name])));
      if (op === 2) {
        const end = (header[name]!.data_offsets as number[])[1]!;
        return fileCase(base, index, `an empty tensor added at byte ${end}`, false, edited((h) => (h['extra.empty'] = { dtype: 'BF16', shape: [0, 5], data_offsets: [end, end] })));
      }
      const [b, e] = header[name]!.data_offsets as number[];
      const text = JSON.stringify(header).replace(/^\{/, `{"${name}":{"dtype":"BF16","shape":[${(e! - b!) / 2}],"data_offsets":[${b! + 2},${e! + 2}]},`);
      return fileCase(base, index, `${name} given twice in the JSON text, the first at other offsets`, false, rawSafetensors(text, data, true));
    }
    default: {
      const raw = pick(rng, ['{"k": 1}', '{"k": {"x": "y"}}', '[]', '"pt"', DEEP, `{"k": ${BIG_STRING}}`, '{"k": "v", "format": "np"}', 'null']);
      const ok = raw === 'null' || raw.startsWith('{"k": "v"') || raw === `{"k": ${BIG_STRING}}`;
      return fileCase(base, index, `__metadata__ ${raw.slice(0, 30)}`, !ok, edited((h) => (h.__metadata__ = '@@'), raw));
    }
  }
}

function dataCase(rng: Rng, base: Base, index: number): Mutation {
  const file = base.model.file;
  const start = 8 + headerLengthOf(file);
  switch (rng.int(0, 6)) {
    case 0: {
      const at = rng.int(start, file.byteLength + 1);
      const k = rng.int(1, 17);
      return fileCase(base, index, `${k} bytes inserted at ${at}`, true, splice(file, at, 0, randomBytes(rng, k)));
    }
    case 1: {
      const at = rng.int(start, file.byteLength);
      const k = Math.min(rng.int(1, 17), file.byteLength - at);
      return fileCase(base, index, `${k} bytes deleted at ${at}`, true, splice(file, at, k));
    }
    case 2: {
      const k = pick(rng, [1, 2, 7, 8, 1000, rng.int(1, file.byteLength - start)]);
      return fileCase(base, index, `truncated by ${k}`, true, file.subarray(0, file.byteLength - k));
    }
    case 3: {
      const k = pick(rng, [1, 2, 8, 4096]);
      return fileCase(base, index, `${k} garbage bytes appended`, true, splice(file, file.byteLength, 0, randomBytes(rng, k)));
    }
    case 4: {
      const size = pick(rng, [file.byteLength + 1, 2 ** 31, 8 * 2 ** 30]);
      return fileCase(base, index, `extended to ${size} bytes with zeros (sparse)`, true, file, size);
    }
    default: {
      // Flipped data bytes: the file stays valid; it must load exactly what it holds.
      const out = file.slice();
      const k = rng.int(1, 33);
      for (let i = 0; i < k; i++) out[rng.int(start, out.byteLength)] ^= 1 << rng.int(0, 8);
      return fileCase(base, index, `${k} data bits flipped`, false, out);
    }
  }
}

function indexCase(rng: Rng, base: Base, index: number): Mutation {
  const files = { ...base.shards };
  const indexJson = JSON.parse(new TextDecoder().decode(files['model.safetensors.index.json'])) as { weight_map: Record<string, string> };
  const names = Object.keys(indexJson.weight_map);
  const name = pick(rng, names);
  const shardNames = Object.keys(files).filter((f) => f.endsWith('.safetensors'));
  const setIndex = (text: string): void => void (files['model.safetensors.index.json'] = new TextEncoder().encode(text));
  let mutation: string;
  let mustFail = true;
  switch (rng.int(0, 7)) {
    case 0: {
      const other = shardNames.find((s) => s !== indexJson.weight_map[name])!;
      setIndex(JSON.stringify({ weight_map: { ...indexJson.weight_map, [name]: other } }));
      mutation = `${name} listed under the other shard`;
      break;
    }
    case 1: {
      const raw = pick(rng, ['"../model.safetensors"', '"/etc/passwd"', '""', '"a//b"', '7', DEEP, BIG_STRING, '"missing.safetensors"']);
      setIndex(inject(JSON.stringify({ weight_map: { ...indexJson.weight_map, [name]: '@@' } }), raw));
      mutation = `${name} listed under ${raw.slice(0, 30)}`;
      break;
    }
    case 2: {
      const { [name]: _dropped, ...rest } = indexJson.weight_map;
      setIndex(JSON.stringify({ weight_map: rest }));
      // A tensor stored in a shard but not listed is tolerated (the shards are read whole), so this may load.
      mutation = `${name} not listed in the index`;
      mustFail = false;
      break;
    }
    case 3: {
      const raw = pick(rng, ['{}', '[]', 'null', DEEP, '{"weight_map": []}', '{"weight_map": {}}', `{"weight_map": ${BIG_STRING}}`]);
      setIndex(raw);
      mutation = `index ${raw.slice(0, 30)}`;
      break;
    }
    case 4: {
      const shard = pick(rng, shardNames);
      delete files[shard];
      mutation = `${shard} missing`;
      break;
    }
    case 5: {
      const shard = pick(rng, shardNames);
      const s = files[shard]!;
      files[shard] = pick(rng, [splice(s, s.byteLength, 0, new Uint8Array(3)), s.subarray(0, s.byteLength - 2), withHeaderLength(s, BigInt(headerLengthOf(s) - 1))]);
      mutation = `${shard} resized or its header length changed`;
      break;
    }
    default: {
      const bytes = byteEdits(rng, files['model.safetensors.index.json']!, 0, files['model.safetensors.index.json']!.byteLength);
      files['model.safetensors.index.json'] = bytes;
      mutation = 'byte edits in the index';
      mustFail = false;
    }
  }
  return {
    mutation,
    mustFail,
    async run() {
      const ckpt = await Checkpoint.open(memorySource(files));
      for (const f of ckpt.files) await checkDeclared(ckpt, f.file, files[f.file]!);
      checkCheckpoint(ckpt, parseModelConfig(base.model.config));
    },
  };
}

function configCase(rng: Rng, base: Base, index: number): Mutation {
  const original = base.model.config;
  let text: string;
  let mutation: string;
  let mustFail = false;
  const op = rng.int(0, 10);
  if (op < 7) {
    const field = pick(rng, CONFIG_FIELDS);
    const bad = rng.next() < 0.6;
    const raw = pick(rng, bad ? field.pools.bad : field.pools.maybe);
    const c = structuredClone(original) as Record<string, Record<string, unknown>>;
    const [top, sub] = field.path.split('.') as [string, string | undefined];
    if (sub) c[top]![sub] = '@@';
    else (c as Record<string, unknown>)[top] = '@@';
    text = inject(JSON.stringify(c), raw);
    mutation = `${field.path} = ${raw.slice(0, 40)}`;
    mustFail = bad;
  } else if (op === 7) {
    const field = pick(rng, CONFIG_FIELDS);
    const c = structuredClone(original) as Record<string, Record<string, unknown>>;
    const [top, sub] = field.path.split('.') as [string, string | undefined];
    if (sub) delete c[top]![sub];
    else delete (c as Record<string, unknown>)[top];
    text = JSON.stringify(c);
    mutation = `${field.path} removed`;
    mustFail = field.required;
  } else if (op === 8) {
    text = pick(rng, [DEEP, '[]', '42', '"config"', 'null', BIG_STRING, '{}', `{"architectures": ${DEEP}}`]);
    mutation = `config.json is ${text.slice(0, 30)}`;
    mustFail = true;
  } else {
    const bytes = new TextEncoder().encode(JSON.stringify(original));
    text = new TextDecoder().decode(byteEdits(rng, bytes, 0, bytes.byteLength));
    mutation = 'byte edits in config.json';
  }
  const onDisk = index % 5 === 0;
  return {
    mutation: `${mutation}${onDisk ? ' (on disk)' : ''}`,
    mustFail,
    async run() {
      const dir = join(base.tmp, `case-${index}`);
      try {
        let source: ModelSource;
        if (onDisk) {
          await mkdir(dir, { recursive: true });
          await writeFile(join(dir, 'config.json'), text);
          source = await openLocalModel(dir);
        } else {
          source = memorySource({ 'config.json': text });
        }
        const config = parseModelConfig(await readJson(source, 'config.json'));
        checkConfigValues(config);
        checkCheckpoint(base.checkpoint, config);
        checkPatterns(defaultPatterns({ layers: config.numLayers, heads: config.numHeads }), config.numLayers, config.numHeads);
      } finally {
        if (onDisk) await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

function patternCase(rng: Rng, base: Base): Mutation {
  const table = JSON.parse(base.patternText) as Record<string, unknown[]>[];
  const layer = rng.int(0, 2);
  const head = String(rng.int(0, 2));
  let text: string;
  let mutation: string;
  let mustFail = true;
  let model = { layers: 2, heads: 2 };
  const set = (slot: number, raw: string): string => {
    const t = structuredClone(table);
    t[layer]![head]![slot] = '@@';
    return inject(JSON.stringify(t), raw);
  };
  switch (rng.int(0, 9)) {
    case 0:
    case 1: {
      const bad = rng.next() < 0.6;
      const raw = pick(rng, bad ? SIZE_POOLS.bad : SIZE_POOLS.maybe);
      const slot = rng.int(1, 3);
      text = set(slot, raw);
      mutation = `layer ${layer} head ${head} size ${slot} = ${raw.slice(0, 30)}`;
      mustFail = bad;
      break;
    }
    case 2: {
      const raw = pick(rng, ['"triangle"', BIG_STRING, '7', DEEP, 'null', '"stream_llm"', '"block_sparse"', '"dense"']);
      text = set(0, raw);
      mutation = `layer ${layer} head ${head} type ${raw.slice(0, 30)}`;
      mustFail = !['"stream_llm"', '"block_sparse"'].includes(raw);
      break;
    }
    case 3: {
      const raw = pick(rng, ['"x"', '1e309', DEEP, 'null', '1e300', '-5']);
      text = set(3, raw);
      mutation = `layer ${layer} head ${head} score ${raw.slice(0, 30)}`;
      mustFail = !['1e300', '-5'].includes(raw);
      break;
    }
    case 4: {
      const key = pick(rng, ['01', '-1', '1e0', '2', '99999999999999999999', '', ' 1', '1.0']);
      const t = structuredClone(table);
      t[layer]![key] = t[layer]![head]!;
      delete t[layer]![head];
      text = JSON.stringify(t);
      mutation = `head key "${key}"`;
      break;
    }
    case 5: {
      const t = structuredClone(table);
      if (rng.next() < 0.5) t.pop();
      else t.push(t[0]!);
      text = JSON.stringify(t);
      mutation = `${t.length} layers`;
      break;
    }
    case 6: {
      text = pick(rng, [DEEP, '{}', '"x"', '[[]]', '[{}, {}]', `[${DEEP}, {}]`, `[{"0": ${DEEP}, "1": []}, {}]`, BIG_STRING]);
      mutation = `config is ${text.slice(0, 30)}`;
      break;
    }
    case 7: {
      const v = pick(rng, [0, -1, 1.5, 1e9, 2 ** 31, 2 ** 53 - 1, 2 ** 53 + 2, Infinity, Number.NaN]);
      model = rng.next() < 0.5 ? { layers: v, heads: 2 } : { layers: 2, heads: v };
      text = base.patternText;
      mutation = `model shape ${JSON.stringify(model)}`;
      break;
    }
    default: {
      const bytes = new TextEncoder().encode(base.patternText);
      text = new TextDecoder().decode(byteEdits(rng, bytes, 0, bytes.byteLength));
      mutation = 'byte edits in the pattern config';
      mustFail = false;
    }
  }
  const cli = rng.next() < 0.15;
  if (cli) {
    const raw = pick(rng, [...SIZE_POOLS.bad, ...SIZE_POOLS.maybe]);
    const form = pick(rng, ['["vertical_and_slash", @, 100]', '["stream_llm", 4, @]', '["block_sparse", @]']);
    const s = form.replace('@', raw);
    return {
      mutation: `CLI pattern ${s.slice(0, 50)}`,
      mustFail: SIZE_POOLS.bad.includes(raw),
      async run() {
        const p = parsePatternString(s);
        checkPatterns([[p]], 1, 1);
      },
    };
  }
  return {
    mutation,
    mustFail,
    async run() {
      checkPatterns(loadPatternConfig(text, model), model.layers, model.heads);
    },
  };
}

function httpCase(rng: Rng, base: Base): Mutation {
  const file = base.model.file;
  const lieAt = rng.int(0, 4); // which request lies (0: the size probe)
  const lies = ['total smaller', 'total larger', 'other range', 'total changes', 'longer body', 'shorter body', 'status 200', 'status 500', 'garbage Content-Range', 'throws', 'body errors', 'honest'] as const;
  const lie = pick(rng, lies);
  const k = rng.int(1, 9);
  let calls = 0;
  const fetchImpl: FetchLike = async (_url, init) => {
    const m = /bytes=(\d+)-(\d+)/.exec(init?.headers?.Range ?? '');
    const a = m ? Number(m[1]) : 0;
    const b = m ? Math.min(Number(m[2]), file.length - 1) : file.length - 1;
    let total = file.length;
    let range = `bytes ${a}-${b}/${total}`;
    let body: Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array> = file.slice(a, b + 1);
    let status = m ? 206 : 200;
    if (calls++ === lieAt) {
      switch (lie) {
        case 'total smaller':
          total -= k;
          range = `bytes ${a}-${b}/${total}`;
          break;
        case 'total larger':
          total += k;
          range = `bytes ${a}-${b}/${total}`;
          break;
        case 'other range':
          range = `bytes ${a + k}-${b + k}/${total}`;
          body = file.slice(a + k, b + k + 1);
          break;
        case 'total changes':
          range = `bytes ${a}-${b}/${total + k}`;
          break;
        case 'longer body':
          body = file.slice(a, b + 1 + k);
          break;
        case 'shorter body':
          body = file.slice(a, Math.max(a, b + 1 - k));
          break;
        case 'status 200':
          status = 200;
          body = file.slice();
          break;
        case 'status 500':
          status = 500;
          break;
        case 'garbage Content-Range':
          range = pick(rng, ['', 'bytes 0-7/abc', 'bytes 0-7/1e3', 'bytes */*', `bytes ${a}-${b}/-${total}`, `bytes ${a}-${b}/99999999999999999999`]);
          break;
        case 'throws':
          throw new TypeError('fetch failed');
        case 'body errors':
          body = new ReadableStream<Uint8Array>({
            pull(c) {
              c.error(new TypeError('terminated'));
            },
          });
          break;
        case 'honest':
          break;
      }
    }
    return new Response(body, { status, headers: { 'content-range': range } });
  };
  return {
    mutation: `server: ${lie}${lie === 'honest' ? '' : ` (request ${lieAt}, k=${k})`}`,
    // Requests: 0 HEAD (exists), 1 the size probe, 2 the header length, 3 the header, then the tensors.
    // Every lie on a ranged read must be caught; on the probe only those that change the size or the
    // answer's status; on HEAD none need be.
    mustFail: lie !== 'honest' && (lieAt >= 2 || (lieAt === 1 && ['total smaller', 'total larger', 'total changes', 'status 500', 'garbage Content-Range', 'throws'].includes(lie))),
    async run() {
      const ckpt = await Checkpoint.open(openHttpModel('http://fuzz.test/model', fetchImpl));
      await checkDeclared(ckpt, 'model.safetensors', file);
      checkCheckpoint(ckpt, parseModelConfig(base.model.config));
    },
  };
}

// ---------------------------------------------------------------------------------- the runner

/** The per-case generator: family and mutation follow from (seed, index) alone. */
export function caseRng(seed: number, index: number): Rng {
  return new Rng((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca77)) >>> 0);
}

export function familyOf(rng: Rng): Family {
  let u = rng.next();
  for (const f of FAMILIES) {
    u -= WEIGHTS[f];
    if (u < 0) return f;
  }
  return FAMILIES[FAMILIES.length - 1]!;
}

/** Case `index` of `seed`, built but not run. */
export function buildFuzzCase(base: Base, seed: number, index: number): { family: Family } & Mutation {
  const rng = caseRng(seed, index);
  const family = familyOf(rng);
  const m =
    family === 'header'
        ? headerCase(rng, base, index)
        : family === 'index'
          ? indexCase(rng, base, index)
          : family === 'data'
            ? dataCase(rng, base, index)
            : family === 'config'
              ? configCase(rng, base, index)
              : family === 'pattern'
                ? patternCase(rng, base)
                : httpCase(rng, base);
  return { family, ...m };
}

/** Builds and runs case `index` of `seed`; never throws. */
export async function runFuzzCase(base: Base, seed: number, index: number): Promise<CaseResult> {
  let m: ReturnType<typeof buildFuzzCase>;
  try {
    m = buildFuzzCase(base, seed, index);
  } catch (e) {
    return { index, family: familyOf(caseRng(seed, index)), mutation: 'building the case', mustFail: false, outcome: { kind: 'untyped', message: `the generator failed: ${String(e)}` }, ms: 0 };
  }
  const family = m.family;
  const t0 = performance.now();
  let outcome: Outcome;
  try {
    await m.run();
    outcome = m.mustFail ? { kind: 'violation', message: 'loaded, but the mutation breaks the input' } : { kind: 'loaded' };
  } catch (e) {
    if (e instanceof Violation) outcome = { kind: 'violation', message: e.message };
    else if (e instanceof SparsePrefillError) outcome = { kind: 'typed', code: e.code, message: e.message.slice(0, 300) };
    else outcome = { kind: 'untyped', message: `${(e as Error)?.name}: ${String((e as Error)?.message).slice(0, 300)}` };
  }
  return { index, family, mutation: m.mutation, mustFail: m.mustFail, outcome, ms: performance.now() - t0 };
}
