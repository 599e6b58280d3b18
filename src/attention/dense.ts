/**
 * Dense causal flash attention (shaders/attention.wgsl, MODE 0), generalised for chunked prefill and
 * decode: q [H, Tq, D] holds queries at positions qPos0 .. qPos0 + Tq - 1, k/v [Hkv, Scap, D] hold
 * kvLen valid keys; key j is visible to the query at position p iff j <= p and j < kvLen.
 *
 * Also the machinery the A-shape and sparse kernels share: tile choice, validation, head lists.
 * Decode (few query rows, many keys) splits the keys across workgroups and merges the partial
 * softmax results ("flash-decoding", entry `combine`).
 */
import type { Encoder, Gpu, Program } from '../gpu/gpu.ts';
import { BadInputError, DTypeError, ShapeError, UnsupportedError, TensorTooLargeError } from '../gpu/errors.ts';
import type { Tensor } from '../tensor.ts';
import { compileSgmatrix } from '../kernels/matmul.ts';

export const SUPPORTED_HEAD_DIMS: readonly number[] = [64, 96, 128];

export type KvDType = 'f32' | 'f16';

/** Query rows (bq) and keys (bk) per workgroup tile. Both divide 64 (the sparse index block). */
export interface AttentionTiles {
  bq: 32 | 64;
  bk: 16 | 32 | 64;
}

export interface AttentionKernelOptions {
  headDim: number;
  /** Element type of k and v: f32, or f16 packed two per u32. q and out are always f32. Default f32. */
  kvDType?: KvDType;
  /** Tile sizes; by default the largest that fit the device's workgroup memory (f32 path only). */
  tiles?: Partial<AttentionTiles>;
  /**
   * 'f32': f32 everywhere (any device). 'sgmatrix': QK^T and PV on tensor cores (subgroup matrices,
   * f16 operands, f32 accumulation and softmax, one walk over the keys with lazy rescaling; needs
   * chromium-experimental-subgroup-matrix and 32-wide subgroups). Default 'f32' here; the runner's
   * 'auto' takes 'sgmatrix' where the device has it (H200, Dawn: dense 65.5 TFLOP/s at 32K with
   * bounds checks, 81.3 without; BENCHMARKS.md session 5). Its cases run on the GPU machine only
   * (bench/device-check.ts): the software adapters have no subgroup matrices.
   */
  compute?: AttentionCompute;
}

export type AttentionCompute = 'f32' | 'sgmatrix';

/** Tensor-core tiles: 4 subgroups x 16 query rows, 32 keys. */
const SG_TILES: AttentionTiles = { bq: 64, bk: 32 };
const SG_SUBGROUPS = 4;

export function sgWorkgroupBytes(headDim: number): number {
  const qp = headDim + 8;
  const { bq, bk } = SG_TILES;
  // K and V tiles (Q is staged through them), f32 scores, f16 probabilities, the tile's keys.
  return 2 * bk * qp * 2 + bq * bk * 4 + bq * bk * 2 + bk * 4;
}

/** Checks that the tensor-core path can run here; returns its tiles. */
export function sgTiles(gpu: Gpu, op: string, headDim: number): AttentionTiles {
  const c = gpu.caps;
  if (!c.subgroupMatrix || !c.f16 || !c.subgroups) throw new UnsupportedError(`${op}: compute 'sgmatrix' needs shader-f16, subgroups and chromium-experimental-subgroup-matrix`);
  if (c.subgroupMinSize !== 32 || c.subgroupMaxSize !== 32) throw new UnsupportedError(`${op}: compute 'sgmatrix' needs 32-wide subgroups, the device has ${c.subgroupMinSize}-${c.subgroupMaxSize}`);
  const bytes = sgWorkgroupBytes(headDim);
  if (bytes > c.limits.maxComputeWorkgroupStorageSize) throw new UnsupportedError(`${op}: compute 'sgmatrix' needs ${bytes} bytes of workgroup memory for D=${headDim}, the device allows ${c.limits.maxComputeWorkgroupStorageSize}`);
  return SG_TILES;
}

/**
 * The attention arithmetic for a request: 'auto' (or undefined) takes 'sgmatrix' where the
 * tensor-core path can run (a hardware adapter with subgroup matrices), else 'f32'; an explicit
 * 'sgmatrix' on a device without it is an UnsupportedError naming what is missing.
 */
export function resolveAttentionCompute(gpu: Gpu, compute: AttentionCompute | 'auto' | undefined, headDim: number): AttentionCompute {
  if (compute === 'f32') return 'f32';
  if (compute === 'sgmatrix') {
    sgTiles(gpu, 'attention', headDim);
    return 'sgmatrix';
  }
  if (compute !== undefined && compute !== 'auto') throw new BadInputError(`attention compute must be 'auto', 'f32' or 'sgmatrix', got ${String(compute)}`);
  if (gpu.caps.software) return 'f32';
  try {
    sgTiles(gpu, 'attention', headDim);
    return 'sgmatrix';
  } catch (e) {
    if (e instanceof UnsupportedError) return 'f32';
    throw e;
  }
}

/** Tiles for a kernel: tensor-core tiles, or the f32 choice. */
export function tilesFor(gpu: Gpu, op: string, options: AttentionKernelOptions): AttentionTiles {
  return options.compute === 'sgmatrix' ? sgTiles(gpu, op, options.headDim) : chooseTiles(gpu, options.headDim, options.tiles);
}

export interface DenseKernelOptions extends AttentionKernelOptions {
  /**
   * Compile the key-split (flash-decoding) programs used when few query rows face many keys
   * (decode). Default true; prefill-only users can skip the extra compile.
   */
  splitKeys?: boolean;
  /**
   * Tensor-core path only, for measurement: count the key tiles walked and the tiles whose lazy
   * rescale fired (attention.wgsl SGMAT), read by readRescaleStats(). The atomics cost time.
   */
  rescaleStats?: boolean;
}

/** Key tiles the tensor-core kernel walked, and how many of them rescaled O (DenseKernelOptions.rescaleStats). */
export interface RescaleStats {
  tiles: number;
  rescaled: number;
}

/** Threads per workgroup: TX x TY = 8 x 16. TX = 8 divides D/4 for every D (16, 24, 32) and every bk. */
const TX = 8;
const TY = 16;

/** Workgroup memory of one attention workgroup (mirrors the var<workgroup> list in attention.wgsl). */
export function workgroupBytes(t: AttentionTiles, headDim: number): number {
  const qs = headDim / 4 + 1; // padded row stride in vec4
  return (t.bq * qs + t.bk * qs) * 16 + t.bq * t.bk * 4 + t.bq * TX * 4 + t.bk * 4 + 4;
}

export function checkHeadDim(op: string, headDim: number): void {
  if (!SUPPORTED_HEAD_DIMS.includes(headDim)) {
    throw new UnsupportedError(`${op}: head dim ${headDim} is not supported (supported: ${SUPPORTED_HEAD_DIMS.join(', ')})`);
  }
}

/** The tiles for a device: the requested ones, else bq 64 / bk 16 where it fits, else 32 / 16. */
export function chooseTiles(gpu: Gpu, headDim: number, requested: Partial<AttentionTiles> = {}): AttentionTiles {
  const limit = gpu.caps.limits.maxComputeWorkgroupStorageSize;
  if (gpu.caps.limits.maxComputeInvocationsPerWorkgroup < TX * TY) {
    throw new UnsupportedError(`attention: needs ${TX * TY} invocations per workgroup, the device allows ${gpu.caps.limits.maxComputeInvocationsPerWorkgroup}`);
  }
  const candidates: AttentionTiles[] =
    requested.bq !== undefined || requested.bk !== undefined
      ? [{ bq: requested.bq ?? 32, bk: requested.bk ?? 16 }]
      : [
          { bq: 64, bk: 16 },
          { bq: 32, bk: 16 },
        ];
  for (const t of candidates) {
    if (![32, 64].includes(t.bq) || ![16, 32, 64].includes(t.bk)) throw new UnsupportedError(`attention: tiles bq=${t.bq} bk=${t.bk} (bq in 32, 64; bk in 16, 32, 64)`);
    if (workgroupBytes(t, headDim) <= limit) return t;
  }
  const t = candidates[candidates.length - 1]!;
  throw new UnsupportedError(`attention: tiles bq=${t.bq} bk=${t.bk} need ${workgroupBytes(t, headDim)} bytes of workgroup memory for D=${headDim}; the device allows ${limit}`);
}

export interface AttentionShape {
  H: number;
  Hkv: number;
  /** Query rows per head. */
  Tq: number;
  /** Key rows per kv head in k and v (capacity). */
  Scap: number;
  D: number;
}

/** Checks q [H, Tq, D] f32, k/v [Hkv, Scap, D] (kvDType), out [H, Tq, D] f32; returns the shape. */
export function validateQkvo(op: string, q: Tensor, k: Tensor, v: Tensor, out: Tensor, headDim: number, kvDType: KvDType): AttentionShape {
  for (const [name, t] of [['q', q], ['k', k], ['v', v], ['out', out]] as const) {
    if (t.shape.length !== 3) throw new ShapeError(`${op}: ${name} must be 3-D [heads, rows, D], got ${t.describe()}`);
  }
  if (q.dtype !== 'f32') throw new DTypeError(`${op}: q must be f32, got ${q.describe()}`);
  if (out.dtype !== 'f32') throw new DTypeError(`${op}: out must be f32, got ${out.describe()}`);
  for (const [name, t] of [['k', k], ['v', v]] as const) {
    if (t.dtype !== kvDType) throw new DTypeError(`${op}: ${name} must be ${kvDType} (the kernel was created for it), got ${t.describe()}`);
  }
  const [H, Tq, D] = q.shape as [number, number, number];
  const [Hkv, Scap, Dk] = k.shape as [number, number, number];
  if (D !== headDim || Dk !== headDim) throw new ShapeError(`${op}: head dim of q ${q.describe()} / k ${k.describe()} differs from the kernel's D=${headDim}`);
  if (v.shape[0] !== Hkv || v.shape[1] !== Scap || v.shape[2] !== D) throw new ShapeError(`${op}: v ${v.describe()} must have k's shape [${Hkv}, ${Scap}, ${D}]`);
  if (out.shape[0] !== H || out.shape[1] !== Tq || out.shape[2] !== D) throw new ShapeError(`${op}: out ${out.describe()} must have q's shape [${H}, ${Tq}, ${D}]`);
  if (H % Hkv !== 0) throw new ShapeError(`${op}: query heads H=${H} must be a multiple of kv heads Hkv=${Hkv}`);
  return { H, Hkv, Tq, Scap, D };
}

/**
 * Query-head lists as u32 tensors, uploaded once and kept (they are tiny) so that a list is never
 * recycled while queued work still reads it.
 */
export class HeadLists {
  private lists = new Map<string, Tensor>();
  constructor(private readonly gpu: Gpu) {}

  get(op: string, heads: Tensor | readonly number[], H: number): { tensor: Tensor; n: number } {
    if (!Array.isArray(heads)) {
      const t = heads as Tensor;
      if (t.dtype !== 'u32' || t.shape.length !== 1) throw new DTypeError(`${op}: heads must be a 1-D u32 tensor, got ${t.describe()}`);
      return { tensor: t, n: t.shape[0]! };
    }
    const list = heads as readonly number[];
    if (list.length === 0) throw new ShapeError(`${op}: the head list is empty`);
    const seen = new Set<number>();
    for (const h of list) {
      if (!Number.isInteger(h) || h < 0 || h >= H) throw new ShapeError(`${op}: head ${h} is outside 0..${H - 1}`);
      if (seen.has(h)) throw new ShapeError(`${op}: head ${h} is listed twice`);
      seen.add(h);
    }
    const key = list.join(',');
    let t = this.lists.get(key);
    if (!t) {
      t = this.gpu.upload(Uint32Array.from(list), [list.length], 'u32', 'attention.heads');
      this.lists.set(key, t);
    }
    return { tensor: t, n: list.length };
  }

  destroy(): void {
    for (const t of this.lists.values()) this.gpu.release(t);
    this.lists.clear();
  }
}

export function attentionDefines(mode: 0 | 1 | 2, headDim: number, kvDType: KvDType, tiles: AttentionTiles, split = false, compute: AttentionCompute = 'f32', rescaleStats = false): Record<string, number> {
  const sg = compute === 'sgmatrix';
  // Tensor-core path: TX = 32 lanes x TY = 4 subgroups.
  return {
    HEAD_DIM: headDim,
    MODE: mode,
    KV_F16: kvDType === 'f16' ? 1 : 0,
    SPLIT: split ? 1 : 0,
    SGMAT: sg ? 1 : 0,
    RESCALE_STATS: rescaleStats ? 1 : 0,
    BQ: tiles.bq,
    BK: tiles.bk,
    TX: sg ? 32 : TX,
    TY: sg ? SG_SUBGROUPS : TY,
  };
}

/**
 * Compiles an attention `main` program. The tensor-core variant goes through the matmul module's
 * compileSgmatrix: the reflection parser (wgsl_reflect) cannot read subgroup-matrix types, so its
 * binding layout is reflected from the f32 variant of the same mode, whose bindings are identical.
 */
export function compileAttention(gpu: Gpu, defines: Record<string, number>): Promise<Program> {
  if (defines.SGMAT) return compileSgmatrix(gpu, { shader: 'attention.wgsl', defines }, sgReflectDefines(defines));
  return gpu.compile({ shader: 'attention.wgsl', defines });
}

/**
 * The f32 variant a tensor-core variant's bindings are reflected from (the reflection lists the
 * bindings its entry point uses, so both must use the same ones: test/sg_reflection.test.ts).
 */
export function sgReflectDefines(defines: Record<string, number>): Record<string, number> {
  return { ...defines, SGMAT: 0, BQ: 32, BK: 16, TX, TY };
}

/** Uniform values every mode passes (unused members 0). */
export function baseParams(s: AttentionShape, qPos0: number, kvLen: number, nList: number): Record<string, number> {
  return {
    tq: s.Tq,
    q_pos0: qPos0,
    kv_len: kvLen,
    scap: s.Scap,
    n_heads: s.H,
    n_kv_heads: s.Hkv,
    scale: 1 / Math.sqrt(s.D),
    n_init: 0,
    n_local: 0,
    qblocks: 0,
    max_blocks: 0,
    max_columns: 0,
    split_len: 0,
    n_list: nList,
    n_split: 1,
  };
}

/** Largest f32 element index a binding can hold (vec4 indexing in the shader stays below 2^32). */
export function checkFitsU32(op: string, what: string, elements: number): void {
  if (elements * 4 >= 2 ** 32) throw new TensorTooLargeError(elements * 4, 2 ** 32 - 1, `${op}: ${what}`);
}

export interface DenseEncodeOptions {
  /** Position of query row 0. Default: kvLen - Tq (the queries are the last kvLen positions). */
  qPos0?: number;
  /** Valid keys in k/v. Default: Scap. */
  kvLen?: number;
  /**
   * Partial results of the key split, preallocated for the largest split (splitScratchShapes): the
   * same buffers for every call, so that a replayed recording keeps its bind groups. Default: taken
   * from the pool per call.
   */
  scratch?: { partO: Tensor; partMl: Tensor };
}

/** Shapes of DenseEncodeOptions.scratch for `heads` query heads of Tq rows (any split count fits). */
export function splitScratchShapes(heads: number, Tq: number, D: number): { partO: number[]; partMl: number[] } {
  return { partO: [MAX_SPLITS, heads, Tq, D], partMl: [MAX_SPLITS, heads, Tq, 2] };
}

/** Splitting the keys pays off only when the query blocks alone cannot fill the GPU. */
const SPLIT_MIN_KEYS = 2048;
/** Target number of workgroups for a split dispatch (a few per SM on large GPUs). */
const SPLIT_TARGET_WORKGROUPS = 512;
const MAX_SPLITS = 64;

/** What a kernel's create() settles before compiling: the checked head dim, the K/V type, the path and the tiles. */
export interface KernelBasics {
  headDim: number;
  kvDType: KvDType;
  compute: AttentionCompute;
  tiles: AttentionTiles;
}

export function kernelBasics(gpu: Gpu, op: string, options: AttentionKernelOptions): KernelBasics {
  checkHeadDim(op, options.headDim);
  return { headDim: options.headDim, kvDType: options.kvDType ?? 'f32', compute: options.compute ?? 'f32', tiles: tilesFor(gpu, op, options) };
}

/**
 * What the dense, A-shape and sparse kernels share: the device, the shape contract (head dim, K/V
 * type, path, tiles) and the uploaded head lists.
 */
export abstract class AttentionKernelBase {
  readonly headDim: number;
  readonly kvDType: KvDType;
  readonly compute: AttentionCompute;
  readonly tiles: AttentionTiles;
  protected readonly heads: HeadLists;

  protected constructor(
    protected readonly gpu: Gpu,
    basics: KernelBasics,
  ) {
    this.headDim = basics.headDim;
    this.kvDType = basics.kvDType;
    this.compute = basics.compute;
    this.tiles = basics.tiles;
    this.heads = new HeadLists(gpu);
  }

  /** Checks a call's tensors and head list and sizes its grid (query blocks x listed heads). */
  protected grid(op: string, q: Tensor, k: Tensor, v: Tensor, out: Tensor, heads: Tensor | readonly number[]): { s: AttentionShape; list: { tensor: Tensor; n: number }; qBlocks: number } {
    const s = validateQkvo(op, q, k, v, out, this.headDim, this.kvDType);
    const list = this.heads.get(op, heads, s.H);
    const qBlocks = Math.ceil(s.Tq / this.tiles.bq);
    const max = this.gpu.caps.limits.maxComputeWorkgroupsPerDimension;
    if (qBlocks > max || list.n > max) throw new ShapeError(`${op}: ${qBlocks} query blocks x ${list.n} heads exceed ${max} workgroups per dimension`);
    return { s, list, qBlocks };
  }

  /**
   * The query rows' first position and the valid keys of a call (DenseEncodeOptions), checked:
   * kvLen defaults to `kvLenDefault`, qPos0 to kvLen - Tq (the queries are the last positions).
   */
  protected positions(op: string, s: AttentionShape, at: DenseEncodeOptions, kvLenDefault: number): { kvLen: number; qPos0: number } {
    const kvLen = at.kvLen ?? kvLenDefault;
    const qPos0 = at.qPos0 ?? kvLen - s.Tq;
    if (!Number.isInteger(kvLen) || kvLen < 1 || kvLen > s.Scap) throw new ShapeError(`${op}: kvLen=${kvLen} must be in 1..${s.Scap} (rows of k)`);
    if (!Number.isInteger(qPos0) || qPos0 < 0) throw new ShapeError(`${op}: qPos0=${qPos0} must be a non-negative integer`);
    return { kvLen, qPos0 };
  }

  /** As grid(), for a prefill: the first Tq rows of k and v are the keys. */
  protected prefillGrid(op: string, q: Tensor, k: Tensor, v: Tensor, out: Tensor, heads: Tensor | readonly number[]): { s: AttentionShape; list: { tensor: Tensor; n: number }; qBlocks: number } {
    const g = this.grid(op, q, k, v, out, heads);
    if (g.s.Tq > g.s.Scap) throw new ShapeError(`${op}: prefill of ${g.s.Tq} query rows needs k/v with at least as many rows, got ${k.describe()}`);
    return g;
  }

  destroy(): void {
    this.heads.destroy();
  }
}

export class DenseAttentionKernel extends AttentionKernelBase {
  private constructor(
    gpu: Gpu,
    basics: KernelBasics,
    private readonly program: Program,
    private readonly splitProgram: Program | undefined,
    private readonly combineProgram: Program | undefined,
    private readonly stats: Tensor | undefined,
  ) {
    super(gpu, basics);
  }

  static async create(gpu: Gpu, options: DenseKernelOptions): Promise<DenseAttentionKernel> {
    const basics = kernelBasics(gpu, 'attention.dense', options);
    const { kvDType, compute, tiles } = basics;
    if (options.rescaleStats && compute !== 'sgmatrix') throw new BadInputError("attention.dense: rescaleStats counts the tensor-core kernel's rescales; it needs compute 'sgmatrix'");
    const defines = attentionDefines(0, options.headDim, kvDType, tiles, false, compute, options.rescaleStats === true);
    const splitDefines = attentionDefines(0, options.headDim, kvDType, tiles, true);
    // The key split exists on the f32 path only.
    const split = (options.splitKeys ?? true) && compute === 'f32';
    const [program, splitProgram, combineProgram] = await Promise.all([
      compileAttention(gpu, defines),
      split ? gpu.compile({ shader: 'attention.wgsl', defines: splitDefines }) : undefined,
      split ? gpu.compile({ shader: 'attention.wgsl', defines: splitDefines, entryPoint: 'combine' }) : undefined,
    ]);
    const stats = options.rescaleStats ? gpu.upload(new Uint32Array(2), [2], 'u32', 'attention.rescale_stats') : undefined;
    return new DenseAttentionKernel(gpu, basics, program, splitProgram, combineProgram, stats);
  }

  /** The counts since the last call (rescaleStats kernels only), then zeroes them. */
  async readRescaleStats(): Promise<RescaleStats> {
    if (!this.stats) throw new BadInputError('attention.dense: the kernel was created without rescaleStats');
    const [tiles, rescaled] = await this.gpu.read(this.stats);
    this.gpu.write(this.stats, new Uint32Array(2));
    return { tiles: tiles!, rescaled: rescaled! };
  }

  override destroy(): void {
    if (this.stats) this.gpu.release(this.stats);
    super.destroy();
  }

  /** Number of key splits a call would use (1: no split). */
  splitsFor(Tq: number, nHeads: number, keys: number): number {
    if (!this.splitProgram) return 1;
    const qBlocks = Math.ceil(Tq / this.tiles.bq);
    const wgs = qBlocks * nHeads;
    if (keys < SPLIT_MIN_KEYS || wgs >= SPLIT_TARGET_WORKGROUPS / 2) return 1;
    const want = Math.ceil(SPLIT_TARGET_WORKGROUPS / wgs);
    const maxByKeys = Math.floor(keys / (SPLIT_MIN_KEYS / 2));
    return Math.max(1, Math.min(want, maxByKeys, MAX_SPLITS));
  }

  encode(batch: Encoder, q: Tensor, k: Tensor, v: Tensor, out: Tensor, heads: Tensor | readonly number[], options: DenseEncodeOptions = {}): void {
    const op = 'attention.dense';
    const { s, list, qBlocks } = this.grid(op, q, k, v, out, heads);
    const { kvLen, qPos0 } = this.positions(op, s, options, s.Scap);
    const keys = Math.min(kvLen, qPos0 + s.Tq);
    const splits = this.splitsFor(s.Tq, list.n, keys);
    const params = baseParams(s, qPos0, kvLen, list.n);
    if (splits === 1 || !this.splitProgram || !this.combineProgram) {
      const bindings: Record<string, Tensor> = { q, k, v, heads: list.tensor, out };
      if (this.stats) bindings.rescale_stats = this.stats;
      batch.dispatch({ program: this.program, bindings, params, workgroups: [qBlocks, list.n, 1], label: op });
      return;
    }
    // Flash-decoding: split the keys, then merge the partial softmax states.
    const splitLen = Math.ceil(keys / splits / this.tiles.bk) * this.tiles.bk;
    const n = Math.ceil(keys / splitLen);
    const own = options.scratch;
    if (own && (own.partO.numel < n * list.n * s.Tq * s.D || own.partMl.numel < n * list.n * s.Tq * 2)) {
      throw new ShapeError(`${op}: scratch ${own.partO.describe()} / ${own.partMl.describe()} is too small for ${n} splits of [${list.n}, ${s.Tq}, ${s.D}]`);
    }
    const partO = own?.partO ?? this.gpu.empty([n, list.n, s.Tq, s.D], 'f32', 'attention.part_o');
    const partMl = own?.partMl ?? this.gpu.empty([n, list.n, s.Tq, 2], 'f32', 'attention.part_ml');
    batch.dispatch({
      program: this.splitProgram,
      bindings: { q, k, v, heads: list.tensor, part_o: partO, part_ml: partMl },
      params: { ...params, split_len: splitLen },
      workgroups: [qBlocks, list.n, n],
      label: `${op}.split`,
    });
    const rows = list.n * s.Tq;
    batch.dispatch({
      program: this.combineProgram,
      bindings: { part_o: partO, part_ml: partMl, heads: list.tensor, out },
      params: { ...params, n_split: n },
      workgroups: [rows, 1, 1],
      label: `${op}.combine`,
    });
    // Reusable only after this batch is submitted (pool semantics), by which point it has run.
    if (!own) this.gpu.release(partO, partMl);
  }
}
