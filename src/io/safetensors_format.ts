/**
 * The safetensors layout checks, as strict as the reference implementation
 * (huggingface/safetensors, `SafeTensors::read_metadata` and `Metadata::validate`), shared by the
 * checkpoint reader (src/model/safetensors.ts) and the CLI's whole-file reader
 * (src/io/safetensors_write.ts).
 *
 * A file is: an 8-byte little-endian header length N (at most MAX_HEADER_BYTES), N bytes of UTF-8
 * JSON starting with '{' (no byte-order mark, no leading whitespace; trailing spaces pad it), then
 * the data section. The JSON maps each tensor name to { dtype, shape, data_offsets: [begin, end] }
 * (offsets relative to the data section) plus an optional "__metadata__" map of strings.
 *
 * What a file must satisfy, or it is refused with a BadInputError (DTypeError for an unknown dtype)
 * that names the file, the tensor and the numbers:
 *  - every count and offset is a safe integer; begin <= end; numel(shape) * element size = end - begin;
 *  - sorted by offset, the tensors' byte ranges tile the data section: the first starts at 0, each
 *    next one where the previous ended (no gap, no overlap), the last ends at the data's end;
 *  - so the file's size is exactly 8 + N + the data length the header declares.
 * Without the tiling and size checks, a header length lowered by a few bytes (eaten from the
 * padding), bytes inserted into the data or garbage appended all load, with every tensor read from
 * the wrong place.
 */
import { BadInputError, DTypeError } from '../gpu/errors.ts';
import { formatName, formatValue } from '../util/format.ts';

/** The reference implementation's limit on the JSON header (100 MB); anything larger is a corrupt length. */
export const MAX_HEADER_BYTES = 100_000_000;

export interface HeaderTensor {
  name: string;
  /** As written in the file (a key of the element-size table given to parseHeader). */
  dtype: string;
  shape: number[];
  numel: number;
  /** Byte range in the data section: [begin, end). */
  begin: number;
  end: number;
}

export interface ParsedHeader {
  /** N: the JSON header's length in bytes. */
  headerLength: number;
  /** 8 + N: where the data section starts in the file. */
  dataStart: number;
  /** Bytes of the data section (the file's size - 8 - N), which the tensors tile exactly. */
  dataLength: number;
  metadata: Record<string, string>;
  /** In the header's order. */
  tensors: HeaderTensor[];
}

/** The header length N from the file's first 8 bytes, checked against the limit and the file size. */
export function readHeaderLength(first8: Uint8Array, fileSize: number, where: string): number {
  if (fileSize < 8 || first8.byteLength < 8) {
    throw new BadInputError(`${where}: ${fileSize} bytes is too short for a safetensors file (the 8-byte header length is missing)`);
  }
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n < 2n || n > BigInt(MAX_HEADER_BYTES)) {
    throw new BadInputError(`${where}: header length ${n} is not plausible (expected 2..${MAX_HEADER_BYTES} bytes); not a safetensors file or corrupt`);
  }
  const len = Number(n);
  if (8 + len > fileSize) {
    throw new BadInputError(`${where}: header length ${len} does not fit the ${fileSize}-byte file: it runs past the end of the file (truncated or corrupt)`);
  }
  return len;
}

/** The element count of a shape, or undefined when it is not below `cap` (so nothing overflows). */
function boundedNumel(shape: readonly number[], cap: number): number | undefined {
  if (shape.includes(0)) return 0;
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (n > cap) return undefined;
  }
  return n;
}

function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/**
 * Parses and validates a header (the N bytes after the length) of a file of `fileSize` bytes.
 * `elementBytes` maps each accepted dtype to its size in bytes (another dtype is a DTypeError).
 */
export function parseHeader(headerBytes: Uint8Array, fileSize: number, where: string, elementBytes: Readonly<Record<string, number>>): ParsedHeader {
  const headerLength = headerBytes.byteLength;
  const dataStart = 8 + headerLength;
  const dataLength = fileSize - dataStart;
  if (!Number.isSafeInteger(fileSize) || dataLength < 0) {
    throw new BadInputError(`${where}: header length ${headerLength} does not fit the ${fileSize}-byte file`);
  }
  if (headerBytes[0] === 0xef && headerBytes[1] === 0xbb && headerBytes[2] === 0xbf) {
    throw new BadInputError(`${where}: header starts with a UTF-8 byte-order mark, which safetensors does not allow (the JSON must start with '{')`);
  }
  let header: unknown;
  try {
    // ignoreBOM keeps a byte-order mark in the text, where JSON.parse rejects it (the default would strip it).
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes));
  } catch (e) {
    throw new BadInputError(`${where}: header is not valid UTF-8 JSON (${formatName(String((e as Error).message))})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new BadInputError(`${where}: header must be a JSON object, got ${formatValue(header)}`);
  if (headerBytes[0] !== 0x7b) throw new BadInputError(`${where}: header must start with '{' (found byte 0x${headerBytes[0]!.toString(16)}; leading whitespace is not allowed)`);

  const metadata: Record<string, string> = {};
  const tensors: HeaderTensor[] = [];
  const supported = Object.keys(elementBytes).join(', ');
  for (const [key, raw] of Object.entries(header as Record<string, unknown>)) {
    const name = formatName(key);
    if (key === '__metadata__') {
      if (raw === null) continue;
      if (typeof raw !== 'object' || Array.isArray(raw)) throw new BadInputError(`${where}: __metadata__ must be an object of strings, got ${formatValue(raw)}`);
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new BadInputError(`${where}: __metadata__.${formatName(k)} must be a string, got ${formatValue(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new BadInputError(`${where}: tensor ${name}: entry must be an object, got ${formatValue(raw)}`);
    const { dtype, shape, data_offsets: offsets } = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof dtype !== 'string') throw new BadInputError(`${where}: tensor ${name}: dtype must be a string, got ${formatValue(dtype)}`);
    const size = Object.prototype.hasOwnProperty.call(elementBytes, dtype) ? elementBytes[dtype] : undefined;
    if (size === undefined) throw new DTypeError(`${where}: tensor ${name} has dtype ${formatName(dtype, 40)}; supported: ${supported}`);
    if (!Array.isArray(shape) || !shape.every(isCount)) {
      throw new BadInputError(`${where}: tensor ${name}: shape must be a list of non-negative integers, got ${formatValue(shape)}`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
      throw new BadInputError(`${where}: tensor ${name}: invalid data_offsets ${formatValue(offsets)} (expected [begin, end], non-negative integers)`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) throw new BadInputError(`${where}: tensor ${name}: invalid data_offsets [${begin}, ${end}] (end before begin)`);
    if (end > dataLength) {
      throw new BadInputError(`${where}: tensor ${name}: data_offsets [${begin}, ${end}]: the range runs past the ${dataLength}-byte data buffer (truncated or corrupt)`);
    }
    const numel = boundedNumel(shape, dataLength);
    const described = `shape ${formatValue(shape)} ${dtype}`;
    if (numel === undefined) throw new BadInputError(`${where}: tensor ${name}: ${described} has more elements than the ${dataLength}-byte data buffer holds`);
    if (numel * size !== end - begin) {
      throw new BadInputError(`${where}: tensor ${name}: ${described} needs ${numel * size} bytes, data_offsets give ${end - begin}`);
    }
    tensors.push({ name: key, dtype, shape: shape.slice(), numel, begin, end });
  }

  // The tensors must tile the data section: sorted by offset, each starts where the previous ended.
  const sorted = tensors.slice().sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let prev: HeaderTensor | undefined;
  for (const t of sorted) {
    if (t.begin !== at) {
      const after = prev ? `after tensor ${formatName(prev.name)} [${prev.begin}, ${prev.end}]` : 'at the start of the data';
      throw new BadInputError(`${where}: tensor ${formatName(t.name)} starts at byte ${t.begin}, expected ${at} ${after} (gap or overlap in data_offsets)`);
    }
    at = t.end;
    prev = t;
  }
  if (at !== dataLength) {
    throw new BadInputError(
      `${where}: the tensors cover ${at} bytes but the data buffer has ${dataLength} (file size ${fileSize} = 8 + header ${headerLength} + data; expected ${dataStart + at}): the header length or the file size is wrong`,
    );
  }
  return { headerLength, dataStart, dataLength, metadata, tensors };
}
