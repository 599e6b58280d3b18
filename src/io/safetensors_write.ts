/**
 * Small safetensors writer (and a tiny validating reader for the CLI's inputs).
 *
 * Format (https://github.com/huggingface/safetensors): an 8-byte little-endian unsigned header
 * length N, then N bytes of UTF-8 JSON, then the data buffer. The JSON maps each tensor name to
 * { dtype, shape, data_offsets: [begin, end] } (byte offsets into the data buffer, which the tensors
 * cover exactly, without gaps or overlap), plus an optional "__metadata__" map of strings. The
 * header is padded with spaces (0x20) so the data buffer starts at a multiple of 8 bytes. Values are
 * little-endian, row-major.
 *
 * The full model-checkpoint reader (memory-mapped, many dtypes) is src/model/safetensors.ts; this
 * one reads whole small files into memory.
 */
import { BadInputError, ShapeError } from '../gpu/errors.ts';
import { parseHeader, readHeaderLength } from './safetensors_format.ts';
import { bf16BitsToF32, f16BitsToF32 } from '../util/half.ts';

export type SafetensorsDType = 'F32' | 'I32' | 'U32';
export type SafetensorsData = Float32Array | Int32Array | Uint32Array;

export interface SafetensorsTensor {
  dtype: SafetensorsDType;
  shape: readonly number[];
  data: SafetensorsData;
}

/** Alignment of the data buffer's start (the spec's recommendation; every element here is 4 bytes). */
const ALIGN = 8;

function dtypeOf(data: SafetensorsData): SafetensorsDType {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Int32Array) return 'I32';
  return 'U32';
}

function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function checkDims(shape: readonly number[], what: string): void {
  if (!Array.isArray(shape)) throw new ShapeError(`${what}: shape must be an array`);
  for (const d of shape) if (!Number.isInteger(d) || d < 0) throw new ShapeError(`${what}: shape [${shape.join(', ')}] must hold non-negative integers`);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Serialises tensors (in the given order) and optional string metadata into safetensors bytes. */
export function encodeSafetensors(tensors: Readonly<Record<string, { shape: readonly number[]; data: SafetensorsData }>>, metadata?: Readonly<Record<string, string>>): Uint8Array {
  if (!LITTLE_ENDIAN) throw new BadInputError('safetensors: writing needs a little-endian host');
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) {
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') throw new BadInputError(`safetensors: metadata "${k}" must be a string`);
    header.__metadata__ = { ...metadata };
  }
  let offset = 0;
  const parts: Uint8Array[] = [];
  for (const [name, t] of Object.entries(tensors)) {
    if (name === '__metadata__' || name === '') throw new BadInputError(`safetensors: "${name}" is not a valid tensor name`);
    checkDims(t.shape, `safetensors tensor "${name}"`);
    const n = numel(t.shape);
    if (t.data.length !== n) throw new ShapeError(`safetensors tensor "${name}": ${t.data.length} values for shape [${t.shape.join(', ')}] (${n} elements)`);
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[name] = { dtype: dtypeOf(t.data), shape: [...t.shape], data_offsets: [offset, offset + bytes.byteLength] };
    parts.push(bytes);
    offset += bytes.byteLength;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil((8 + json.byteLength) / ALIGN) * ALIGN - 8;
  if (padded !== json.byteLength) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  let at = 8 + json.byteLength;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

export interface DecodedTensor {
  /** The dtype in the file. */
  dtype: string;
  shape: number[];
  /** F32/I32/U32 as stored; F16/BF16/F64 converted to Float32Array. */
  data: SafetensorsData;
}

export interface DecodedSafetensors {
  tensors: Map<string, DecodedTensor>;
  metadata: Record<string, string>;
}

const ELEMENT_BYTES: Readonly<Record<string, number>> = { F32: 4, I32: 4, U32: 4, F16: 2, BF16: 2, F64: 8 };

/**
 * Parses safetensors bytes, validating the header as the checkpoint reader does
 * (src/io/safetensors_format.ts: strict JSON, dtypes, shapes, offsets tiling the data exactly, the
 * file size). Every error names the file and the problem.
 */
export function decodeSafetensors(bytes: Uint8Array, what = 'safetensors'): DecodedSafetensors {
  if (!LITTLE_ENDIAN) throw new BadInputError(`${what}: reading needs a little-endian host`);
  const n = readHeaderLength(bytes.subarray(0, 8), bytes.byteLength, what);
  const { dataStart, metadata, tensors: entries } = parseHeader(bytes.subarray(8, 8 + n), bytes.byteLength, what, ELEMENT_BYTES);

  const tensors = new Map<string, DecodedTensor>();
  for (const e of entries) {
    // Copy into a fresh buffer: the source offset need not be aligned to the element size, and a
    // Node Buffer's slice() would share (and expose) the whole underlying pool.
    const raw = new Uint8Array(bytes.subarray(dataStart + e.begin, dataStart + e.end)).buffer;
    const count = e.numel;
    let data: SafetensorsData;
    switch (e.dtype) {
      case 'F32':
        data = new Float32Array(raw);
        break;
      case 'I32':
        data = new Int32Array(raw);
        break;
      case 'U32':
        data = new Uint32Array(raw);
        break;
      case 'F64':
        data = Float32Array.from(new Float64Array(raw));
        break;
      default: {
        const halves = new Uint16Array(raw);
        const conv = e.dtype === 'F16' ? f16BitsToF32 : bf16BitsToF32;
        data = new Float32Array(count);
        for (let i = 0; i < count; i++) data[i] = conv(halves[i]!);
      }
    }
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata };
}
