/**
 * safetensors checkpoints: single files (model.safetensors) and sharded ones
 * (model.safetensors.index.json + shards), read through a ModelSource.
 *
 * File layout: 8-byte little-endian header length N, N bytes of JSON
 *   { "__metadata__"?: {string: string}, name: { dtype, shape, data_offsets: [begin, end] }, ... }
 * then the data; offsets are relative to the first byte after the header. Every tensor is validated
 * when the checkpoint is opened: dtype (F32/F16/BF16 only), shape against its byte size, offsets
 * inside the file, no two tensors overlapping, and the header length against the file size.
 */
import { BadInputError, DTypeError } from '../gpu/errors.ts';
import { bf16BitsToF32, f16BitsToF32 } from '../util/half.ts';
import { readJson, type ModelSource } from './source.ts';

export type StoredDType = 'F32' | 'F16' | 'BF16';
export type WeightDType = 'f32' | 'f16' | 'bf16';

const SUPPORTED: Record<StoredDType, { dtype: WeightDType; bytes: number }> = {
  F32: { dtype: 'f32', bytes: 4 },
  F16: { dtype: 'f16', bytes: 2 },
  BF16: { dtype: 'bf16', bytes: 2 },
};

/** safetensors' own limit on the JSON header (100 MB); anything larger is a corrupt length. */
export const MAX_HEADER_BYTES = 100_000_000;

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

export interface TensorInfo {
  name: string;
  /** The runtime dtype the bytes are in (halves packed two per u32 when uploaded as-is). */
  dtype: WeightDType;
  storedDtype: StoredDType;
  shape: number[];
  numel: number;
  byteLength: number;
  /** Which file of the checkpoint holds it. */
  file: string;
  /** Absolute byte offset of the tensor's data in that file. */
  fileOffset: number;
}

export interface SafetensorsFile {
  file: string;
  size: number;
  dataStart: number;
  metadata: Record<string, string>;
  tensors: Map<string, TensorInfo>;
}

/** Reads and validates one safetensors file's header. */
export async function readSafetensorsHeader(source: ModelSource, file: string): Promise<SafetensorsFile> {
  const where = `${source.name}/${file}`;
  const size = await source.size(file);
  if (size < 8) throw new BadInputError(`${where}: ${size} bytes is too short for a safetensors file (8-byte header length missing)`);
  const lenBytes = await source.readRange(file, 0, 8);
  const view = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen < 2 || headerLen > MAX_HEADER_BYTES) {
    throw new BadInputError(`${where}: header length ${headerLen} is not plausible (expected 2..${MAX_HEADER_BYTES} bytes); not a safetensors file or corrupt`);
  }
  if (8 + headerLen > size) {
    throw new BadInputError(`${where}: header length ${headerLen} runs past the end of the file (${size} bytes); the file is truncated or corrupt`);
  }
  const headerBytes = await source.readRange(file, 8, headerLen);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (e) {
    throw new BadInputError(`${where}: header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new BadInputError(`${where}: header must be a JSON object`);
  const dataStart = 8 + headerLen;
  const dataSize = size - dataStart;
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw === 'object' && raw !== null) for (const [k, v] of Object.entries(raw)) if (typeof v === 'string') metadata[k] = v;
      continue;
    }
    if (typeof raw !== 'object' || raw === null) throw new BadInputError(`${where}: tensor ${name}: entry must be an object`);
    const { dtype, shape, data_offsets: offsets } = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof dtype !== 'string') throw new BadInputError(`${where}: tensor ${name}: missing dtype`);
    const sup = SUPPORTED[dtype as StoredDType];
    if (!sup) throw new DTypeError(`${where}: tensor ${name} has dtype ${dtype}; only F32, F16 and BF16 checkpoints are supported`);
    if (!Array.isArray(shape) || shape.some((d) => typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0)) {
      throw new BadInputError(`${where}: tensor ${name}: shape must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || offsets.some((d) => typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0)) {
      throw new BadInputError(`${where}: tensor ${name}: data_offsets must be [begin, end], got ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) throw new BadInputError(`${where}: tensor ${name}: data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataSize) {
      throw new BadInputError(`${where}: tensor ${name}: data_offsets [${begin}, ${end}] run past the end of the data (${dataSize} bytes); the file is truncated or corrupt`);
    }
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    const byteLength = numel * sup.bytes;
    if (byteLength !== end - begin) {
      throw new BadInputError(`${where}: tensor ${name}: shape [${(shape as number[]).join(', ')}] ${dtype} needs ${byteLength} bytes but data_offsets give ${end - begin}`);
    }
    tensors.set(name, {
      name,
      dtype: sup.dtype,
      storedDtype: dtype as StoredDType,
      shape: [...(shape as number[])],
      numel,
      byteLength,
      file,
      fileOffset: dataStart + begin,
    });
  }
  const sorted = [...tensors.values()].filter((t) => t.byteLength > 0).sort((a, b) => a.fileOffset - b.fileOffset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (cur.fileOffset < prev.fileOffset + prev.byteLength) {
      throw new BadInputError(`${where}: tensors ${prev.name} and ${cur.name} overlap in the file`);
    }
  }
  return { file, size, dataStart, metadata, tensors };
}

/** Converts a tensor's raw little-endian bytes to floats. */
export function decodeTensorBytes(dtype: WeightDType, bytes: Uint8Array): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === 'f32') {
    const out = new Float32Array(bytes.byteLength / 4);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
    return out;
  }
  const out = new Float32Array(bytes.byteLength / 2);
  const conv = dtype === 'f16' ? f16BitsToF32 : bf16BitsToF32;
  for (let i = 0; i < out.length; i++) out[i] = conv(view.getUint16(2 * i, true));
  return out;
}

export class Checkpoint {
  private constructor(
    readonly source: ModelSource,
    readonly files: readonly SafetensorsFile[],
    private readonly tensors: ReadonlyMap<string, TensorInfo>,
  ) {}

  /** Opens model.safetensors, or the shards listed in model.safetensors.index.json. */
  static async open(source: ModelSource): Promise<Checkpoint> {
    if (await source.exists(SINGLE_FILE)) {
      const f = await readSafetensorsHeader(source, SINGLE_FILE);
      return new Checkpoint(source, [f], f.tensors);
    }
    if (!(await source.exists(INDEX_FILE))) {
      throw new BadInputError(`${source.name}: no ${SINGLE_FILE} or ${INDEX_FILE} (only safetensors checkpoints are supported)`);
    }
    const index = await readJson(source, INDEX_FILE);
    const map = (index as { weight_map?: unknown } | null)?.weight_map;
    if (typeof map !== 'object' || map === null || Array.isArray(map)) throw new BadInputError(`${source.name}/${INDEX_FILE}: missing "weight_map" object`);
    const entries = Object.entries(map as Record<string, unknown>);
    for (const [name, file] of entries) {
      if (typeof file !== 'string') throw new BadInputError(`${source.name}/${INDEX_FILE}: weight_map entry ${name} must name a file`);
    }
    const shardNames = [...new Set(entries.map(([, f]) => f as string))].sort();
    const files: SafetensorsFile[] = [];
    for (const shard of shardNames) {
      if (!(await source.exists(shard))) throw new BadInputError(`${source.name}: shard ${shard} listed in ${INDEX_FILE} is missing`);
      files.push(await readSafetensorsHeader(source, shard));
    }
    const tensors = new Map<string, TensorInfo>();
    for (const f of files) {
      for (const [name, info] of f.tensors) {
        const prev = tensors.get(name);
        if (prev) throw new BadInputError(`${source.name}: tensor ${name} is stored twice (${prev.file} and ${f.file})`);
        tensors.set(name, info);
      }
    }
    for (const [name, file] of entries) {
      const info = tensors.get(name);
      if (!info) throw new BadInputError(`${source.name}: tensor ${name} is listed in ${INDEX_FILE} under ${String(file)} but that shard does not contain it`);
      if (info.file !== file) throw new BadInputError(`${source.name}: tensor ${name} is listed under ${String(file)} but stored in ${info.file}`);
    }
    return new Checkpoint(source, files, tensors);
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  /** BadInputError naming the tensor when the checkpoint does not have it. */
  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new BadInputError(`${this.source.name}: checkpoint has no tensor ${name}`);
    return t;
  }

  /** `length` bytes of a tensor's data from `byteOffset` within the tensor. */
  async readRange(name: string, byteOffset: number, length: number): Promise<Uint8Array> {
    const t = this.info(name);
    if (!Number.isSafeInteger(byteOffset) || !Number.isSafeInteger(length) || byteOffset < 0 || length < 0 || byteOffset + length > t.byteLength) {
      throw new BadInputError(`tensor ${name}: byte range ${byteOffset}..${byteOffset + length} is outside its ${t.byteLength} bytes`);
    }
    return this.source.readRange(t.file, t.fileOffset + byteOffset, length);
  }

  /** A whole tensor's bytes (for small tensors and tests; large ones should go through readRange). */
  async read(name: string): Promise<Uint8Array> {
    return this.readRange(name, 0, this.info(name).byteLength);
  }

  /** A whole tensor as floats. */
  async readFloat32(name: string): Promise<Float32Array> {
    return decodeTensorBytes(this.info(name).dtype, await this.read(name));
  }
}

// ------------------------------------------------------------------------------------- writing

export interface TensorToWrite {
  name: string;
  dtype: StoredDType;
  shape: readonly number[];
  /** Raw little-endian bytes, numel * bytesPerElement of them. */
  data: Uint8Array;
}

/**
 * Serializes tensors as one safetensors file (used by the fixtures and tests). The header is padded
 * with spaces to a multiple of 8 bytes, as the reference implementation does, so the data is aligned.
 */
export function encodeSafetensors(tensors: readonly TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    const bytes = numel * SUPPORTED[t.dtype].bytes;
    if (bytes !== t.data.byteLength) throw new BadInputError(`encodeSafetensors: tensor ${t.name} [${t.shape.join(', ')}] ${t.dtype} needs ${bytes} bytes, got ${t.data.byteLength}`);
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  const pad = (8 - (new TextEncoder().encode(json).byteLength % 8)) % 8;
  json += ' '.repeat(pad);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.byteLength;
  for (const t of tensors) {
    out.set(t.data, pos);
    pos += t.data.byteLength;
  }
  return out;
}
