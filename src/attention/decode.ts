/**
 * One-row decode attention (shaders/attention_decode.wgsl): the new token's H query heads against
 * the first kvLen rows of the KV cache, one workgroup per (key split, kv head) serving the kv head's
 * H / Hkv query heads, then a merge of the splits. The prefill kernels answer decode with 64-row
 * query tiles of which one row is real and read K/V once per query head; this kernel computes one
 * row and reads K/V once per kv head.
 *
 *   const k = await DecodeAttentionKernel.create(gpu, { headDim: 64, kvDType: 'f16', group: 4 });
 *   k.encode(batch, q, kCache, vCache, out, { kvLen: p + 1, scratch });   // q, out [H, 1, D]
 *   k.encode(batch, q, kCache, vCache, out, { kvLen: p + 1, window: W, scratch }); // sliding window
 *
 * Every call records the same two dispatches (a recorded decode step replays with new parameters
 * and workgroup counts), reading and writing preallocated scratch of decodeScratchShapes.
 */
import type { Encoder, Gpu, Program } from '../gpu/gpu.ts';
import { BadInputError, DTypeError, ShapeError, UnsupportedError } from '../gpu/errors.ts';
import type { Tensor } from '../tensor.ts';
import { checkHeadDim, type KvDType } from './dense.ts';

export interface DecodeAttentionOptions {
  headDim: number;
  kvDType?: KvDType;
  /** Query heads per kv head (H / Hkv). */
  group: number;
  /** Keys per chunk (tests and tuning): default the most this device's workgroup memory holds, up to 1024. */
  chunk?: number;
}

export interface DecodeEncodeOptions {
  /** Keys in the cache; the query is at position kvLen - 1. */
  kvLen: number;
  /** Sliding window: only the last `window` keys are attended. Default: all. */
  window?: number;
  /** Split partial results, preallocated with decodeScratchShapes (the same buffers every step). */
  scratch: { partO: Tensor; partMl: Tensor };
}

/** Key lanes of the P·V step: a workgroup is KL * headDim / 4 threads. */
const KL = 4;
/** Split lanes of the merge: CL * headDim / 4 threads. */
const CL = 8;
/** Largest number of key splits (the scratch holds this many). */
export const DECODE_MAX_SPLITS = 256;
/** Workgroups a decode dispatch aims for (several per SM on large GPUs). */
const TARGET_WORKGROUPS = 1024;
/** Fewest keys a split takes: below this the merge costs more than the parallelism gains. */
const MIN_SPLIT_KEYS = 128;
/** Keys per chunk (the score buffer) where workgroup memory allows. */
const MAX_CHUNK = 1024;
/** Fewest keys per chunk worth running. */
const MIN_CHUNK = 32;

const pow2AtLeast = (n: number): number => 2 ** Math.ceil(Math.log2(n));

/** Workgroup memory of the main entry besides its score buffer: the group's queries and P·V sums (vec4 per column), and the reduction tree. */
function fixedBytes(headDim: number, group: number): number {
  return group * ((headDim / 4) * 16 * 2 + KL * (headDim / 4) * 4);
}

/** Keys per chunk on this device: the largest score buffer (up to 1024 keys) that fits its workgroup memory; 0 if none does. */
export function decodeChunk(gpu: Gpu, headDim: number, group: number): number {
  const room = gpu.caps.limits.maxComputeWorkgroupStorageSize - fixedBytes(headDim, group);
  const chunk = Math.min(MAX_CHUNK, Math.floor(room / (group * 4 * MIN_CHUNK)) * MIN_CHUNK);
  return chunk >= MIN_CHUNK ? chunk : 0;
}

/** Whether a device runs the kernel for `group` query heads per kv head (its workgroup memory and threads suffice). */
export function decodeGroupFits(gpu: Gpu, headDim: number, group: number): boolean {
  const lim = gpu.caps.limits;
  return Number.isInteger(group) && group >= 1 && decodeChunk(gpu, headDim, group) > 0 && CL * (headDim / 4) <= lim.maxComputeInvocationsPerWorkgroup;
}

/** Shapes of DecodeEncodeOptions.scratch for H query heads of dimension D. */
export function decodeScratchShapes(H: number, D: number): { partO: number[]; partMl: number[] } {
  return { partO: [DECODE_MAX_SPLITS, H, D], partMl: [DECODE_MAX_SPLITS, H, 2] };
}

/**
 * The key split for `keys` attended keys and Hkv kv heads: about TARGET_WORKGROUPS workgroups, at
 * least MIN_SPLIT_KEYS keys a split, at most DECODE_MAX_SPLITS splits; no split is empty.
 */
export function decodeSplit(keys: number, Hkv: number): { splitLen: number; splits: number } {
  const want = Math.max(1, Math.min(DECODE_MAX_SPLITS, Math.ceil(TARGET_WORKGROUPS / Hkv), Math.ceil(keys / MIN_SPLIT_KEYS)));
  const splitLen = Math.ceil(keys / want);
  return { splitLen, splits: Math.ceil(keys / splitLen) };
}

export class DecodeAttentionKernel {
  private constructor(
    readonly headDim: number,
    readonly kvDType: KvDType,
    readonly group: number,
    private readonly main: Program,
    private readonly combine: Program,
  ) {}

  static async create(gpu: Gpu, options: DecodeAttentionOptions): Promise<DecodeAttentionKernel> {
    const op = 'attention.decode';
    checkHeadDim(op, options.headDim);
    const kvDType = options.kvDType ?? 'f32';
    if (kvDType !== 'f32' && kvDType !== 'f16') throw new DTypeError(`${op}: kvDType must be f32 or f16, got ${String(kvDType)}`);
    const g = options.group;
    if (!Number.isInteger(g) || g < 1) throw new BadInputError(`${op}: group (query heads per kv head) must be a positive integer, got ${String(g)}`);
    if (!decodeGroupFits(gpu, options.headDim, g)) {
      const need = fixedBytes(options.headDim, g) + g * 4 * MIN_CHUNK;
      throw new UnsupportedError(`${op}: ${g} query heads per kv head at head dim ${options.headDim} need ${need} B of workgroup memory and ${CL * (options.headDim / 4)} invocations; this device allows ${gpu.caps.limits.maxComputeWorkgroupStorageSize} B and ${gpu.caps.limits.maxComputeInvocationsPerWorkgroup}`);
    }
    const D4 = options.headDim / 4;
    const fit = decodeChunk(gpu, options.headDim, g);
    const chunk = options.chunk ?? fit;
    if (!Number.isInteger(chunk) || chunk < 1 || chunk > fit) throw new BadInputError(`${op}: chunk must be an integer from 1 to ${fit} (this device's workgroup memory), got ${String(options.chunk)}`);
    const defines = { HEAD_DIM: options.headDim, KV_F16: kvDType === 'f16' ? 1 : 0, GROUP: g, KL, CHUNK: chunk, WG_P2: pow2AtLeast(KL * D4), CL, WGC_P2: pow2AtLeast(CL * D4) };
    const [main, combine] = await Promise.all([
      gpu.compile({ shader: 'attention_decode.wgsl', defines }),
      gpu.compile({ shader: 'attention_decode.wgsl', defines, entryPoint: 'combine' }),
    ]);
    return new DecodeAttentionKernel(options.headDim, kvDType, g, main, combine);
  }

  /** q [H, 1, D] f32 (or [H, D]); k, v [Hkv, Scap, D] of kvDType; out like q. H = Hkv * group. */
  encode(e: Encoder, q: Tensor, k: Tensor, v: Tensor, out: Tensor, options: DecodeEncodeOptions): void {
    const op = 'attention.decode';
    const D = this.headDim;
    const H = q.shape[0]!;
    if (q.dtype !== 'f32' || q.numel !== H * D || q.shape[q.shape.length - 1] !== D) throw new ShapeError(`${op}: q must be f32 [H, 1, ${D}], got ${q.describe()}`);
    if (out.dtype !== 'f32' || out.numel !== H * D) throw new ShapeError(`${op}: out must be f32 with q's ${H * D} elements, got ${out.describe()}`);
    if (k.dtype !== this.kvDType || v.dtype !== this.kvDType) throw new DTypeError(`${op}: k and v must be ${this.kvDType}, got ${k.describe()} and ${v.describe()}`);
    if (k.shape.length !== 3 || k.shape[2] !== D || v.shape.join() !== k.shape.join()) throw new ShapeError(`${op}: k and v must be [Hkv, Scap, ${D}] alike, got ${k.describe()} and ${v.describe()}`);
    const [Hkv, Scap] = k.shape as [number, number, number];
    if (Hkv * this.group !== H) throw new ShapeError(`${op}: ${H} query heads for ${Hkv} kv heads, but this kernel serves ${this.group} query heads per kv head`);
    const { kvLen } = options;
    if (!Number.isInteger(kvLen) || kvLen < 1 || kvLen > Scap) throw new ShapeError(`${op}: kvLen=${kvLen} must be an integer from 1 to the cache's ${Scap} rows`);
    const window = options.window;
    if (window !== undefined && !(Number.isInteger(window) && window >= 1)) throw new ShapeError(`${op}: window=${window} must be a positive integer`);
    const keyStart = window === undefined ? 0 : Math.max(0, kvLen - window);
    const { splitLen, splits } = decodeSplit(kvLen - keyStart, Hkv);
    const { partO, partMl } = options.scratch;
    if (partO.numel < splits * H * D || partMl.numel < splits * H * 2) {
      throw new ShapeError(`${op}: scratch ${partO.describe()} / ${partMl.describe()} is too small for ${splits} splits of ${H} heads (decodeScratchShapes)`);
    }
    const params = { kv_len: kvLen, key_start: keyStart, scap: Scap, n_kv_heads: Hkv, scale: 1 / Math.sqrt(D), split_len: splitLen, n_split: splits };
    e.dispatch({ program: this.main, bindings: { q, k, v, part_o: partO, part_ml: partMl }, params, workgroups: [splits, Hkv, 1], label: op });
    e.dispatch({ program: this.combine, bindings: { part_o: partO, part_ml: partMl, out }, params, workgroups: [H, 1, 1], label: `${op}.combine` });
  }
}
