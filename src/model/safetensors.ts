/**
 * safetensors checkpoints: single files (model.safetensors) and sharded ones
 * (model.safetensors.index.json + shards), read through a ModelSource.
 *
 * File layout: 8-byte little-endian header length N, N bytes of JSON
 *   { "__metadata__"?: {string: string}, name: { dtype, shape, data_offsets: [begin, end] }, ... }
 * then the data; offsets are relative to the first byte after the header. Every file is validated
 * when the checkpoint is opened, as strictly as the reference implementation
 * (src/io/safetensors_format.ts): dtype (F32/F16/BF16 only), shape against its byte size, the
 * tensors tiling the data section exactly, and the file size against the header.
 */
import { BadInputError } from '../gpu/errors.ts';
import { parseHeader, readHeaderLength } from '../io/safetensors_format.ts';
import { formatName, formatValue } from '../util/format.ts';
import { bf16BitsToF32, f16BitsToF32 } from '../util/half.ts';
import { checkFileName, readJson, type ModelSource } from './source.ts';

export type StoredDType = 'F32' | 'F16' | 'BF16';
export type WeightDType = 'f32' | 'f16' | 'bf16';

const SUPPORTED: Record<StoredDType, { dtype: WeightDType; bytes: number }> = {
  F32: { dtype: 'f32', bytes: 4 },
  F16: { dtype: 'f16', bytes: 2 },
  BF16: { dtype: 'bf16', bytes: 2 },
};

export { MAX_HEADER_BYTES } from '../io/safetensors_format.ts';

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

/** Element sizes of the dtypes a checkpoint may hold; another dtype is a DTypeError naming the tensor. */
const ELEMENT_BYTES: Readonly<Record<string, number>> = Object.fromEntries(Object.entries(SUPPORTED).map(([k, v]) => [k, v.bytes]));

/** Reads and validates one safetensors file's header (every check of src/io/safetensors_format.ts). */
export async function readSafetensorsHeader(source: ModelSource, file: string): Promise<SafetensorsFile> {
  const where = `${source.name}/${formatName(file)}`;
  const size = await source.size(file);
  if (!Number.isSafeInteger(size) || size < 0) throw new BadInputError(`${where}: the source reports an invalid size ${formatValue(size)}`);
  const headerLength = readHeaderLength(size < 8 ? new Uint8Array(0) : await source.readRange(file, 0, 8), size, where);
  const parsed = parseHeader(await source.readRange(file, 8, headerLength), size, where, ELEMENT_BYTES);
  const tensors = new Map<string, TensorInfo>();
  for (const t of parsed.tensors) {
    const stored = t.dtype as StoredDType;
    tensors.set(t.name, {
      name: t.name,
      dtype: SUPPORTED[stored].dtype,
      storedDtype: stored,
      shape: t.shape,
      numel: t.numel,
      byteLength: t.end - t.begin,
      file,
      fileOffset: parsed.dataStart + t.begin,
    });
  }
  return { file, size, dataStart: parsed.dataStart, metadata: parsed.metadata, tensors };
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
    const where = `${source.name}/${INDEX_FILE}`;
    const index = await readJson(source, INDEX_FILE);
    if (typeof index !== 'object' || index === null || Array.isArray(index)) throw new BadInputError(`${where}: expected a JSON object with a "weight_map", got ${formatValue(index)}`);
    const map = (index as { weight_map?: unknown }).weight_map;
    if (typeof map !== 'object' || map === null || Array.isArray(map)) throw new BadInputError(`${where}: missing "weight_map" object, got ${formatValue(map)}`);
    const entries = Object.entries(map as Record<string, unknown>);
    if (entries.length === 0) throw new BadInputError(`${where}: "weight_map" lists no tensors`);
    for (const [name, file] of entries) {
      if (typeof file !== 'string') throw new BadInputError(`${where}: weight_map entry ${formatName(name)} must name a file, got ${formatValue(file)}`);
      checkFileName(file);
    }
    const shardNames = [...new Set(entries.map(([, f]) => f as string))].sort();
    const files: SafetensorsFile[] = [];
    for (const shard of shardNames) {
      if (!(await source.exists(shard))) throw new BadInputError(`${source.name}: shard ${formatName(shard)} listed in ${INDEX_FILE} is missing`);
      files.push(await readSafetensorsHeader(source, shard));
    }
    const tensors = new Map<string, TensorInfo>();
    for (const f of files) {
      for (const [name, info] of f.tensors) {
        const prev = tensors.get(name);
        if (prev) throw new BadInputError(`${source.name}: tensor ${formatName(name)} is stored twice (${formatName(prev.file)} and ${formatName(f.file)})`);
        tensors.set(name, info);
      }
    }
    for (const [name, file] of entries) {
      const info = tensors.get(name);
      const [n, f] = [formatName(name), formatName(file as string)];
      if (!info) throw new BadInputError(`${source.name}: tensor ${n} is listed in ${INDEX_FILE} under ${f} but that shard does not contain it`);
      if (info.file !== file) throw new BadInputError(`${source.name}: tensor ${n} is listed under ${f} but stored in ${formatName(info.file)}`);
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
    if (!t) throw new BadInputError(`${this.source.name}: checkpoint has no tensor ${formatName(name)}`);
    return t;
  }

  /** `length` bytes of a tensor's data from `byteOffset` within the tensor. */
  async readRange(name: string, byteOffset: number, length: number): Promise<Uint8Array> {
    const t = this.info(name);
    if (!Number.isSafeInteger(byteOffset) || !Number.isSafeInteger(length) || byteOffset < 0 || length < 0 || byteOffset + length > t.byteLength) {
      throw new BadInputError(`tensor ${formatName(name)}: byte range ${formatValue(byteOffset)}..${formatValue(byteOffset + length)} is outside its ${t.byteLength} bytes`);
    }
    const bytes = await this.source.readRange(t.file, t.fileOffset + byteOffset, length);
    if (bytes.byteLength !== length) throw new BadInputError(`${this.source.name}/${formatName(t.file)}: read ${bytes.byteLength} bytes of tensor ${formatName(name)} at ${byteOffset}, expected ${length}`);
    return bytes;
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
