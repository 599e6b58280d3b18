/**
 * Memory plan of a prefill (+ decode) run, computed on the host before anything is allocated:
 * chunk size, KV-cache capacity, how the whole-prompt query / attention-output tensors are split
 * into head groups so that each fits one storage binding, and every buffer with its size. The
 * executor allocates exactly these buffers once per run and reuses them for every chunk and layer.
 *
 * Whole-prompt tensors (grow with the prompt length T):
 *   residual   [T, C] f32, stored as one [chunk, C] tensor per chunk (the residual stream per chunk)
 *   q, attnOut [H, T, D] f32, split into groups of whole KV-head groups (GQA: H / Hkv query heads
 *              share one KV head) when one tensor would exceed maxStorageBufferBindingSize
 *   kCache, vCache per layer [Hkv, Scap, D] in kvDType, Scap = T + maxNewTokens
 * Chunk tensors (bounded by the chunk size c): normed x [c, C], q/k/v projections, attention output
 * rows [c, H*D], o/down projections [c, C], gate/up/act [c, I].
 * Decode tensors: the token id, its residual row, queries, attention output and key-split scratch.
 * `buffers` is the only list: the executor allocates by walking it.
 */
import { SparsePrefillError } from '../gpu/errors.ts';
import { byteSizeOf, type DType } from '../tensor.ts';
import { formatBytes } from '../util/numbers.ts';
import { decodeScratchShapes } from '../attention/decode.ts';
import type { ModelConfig } from './config.ts';

/** The plan cannot fit the device: names the tensor and the limit it exceeds. */
export class PlanError extends SparsePrefillError {
  constructor(
    message: string,
    /** True when only memoryBudgetBytes was exceeded (a smaller chunk may fit). */
    readonly overBudget = false,
  ) {
    super('TENSOR_TOO_LARGE', message);
  }
}

export interface PlanLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}

export interface PlanInput {
  config: Pick<ModelConfig, 'hiddenSize' | 'intermediateSize' | 'numLayers' | 'numHeads' | 'numKvHeads' | 'headDim' | 'vocabSize'>;
  promptLen: number;
  maxNewTokens: number;
  kvDType: 'f32' | 'f16';
  /** Tokens per chunk; default chosen here (DEFAULT_CHUNK, shrunk to fit the limits). */
  chunkSize?: number;
  limits: PlanLimits;
  /** Total bytes the run may allocate besides the weights (default: unlimited). */
  memoryBudgetBytes?: number;
  /** Force every whole-prompt Q / attention-output group to at most this many KV heads (tests of the split path). */
  maxKvHeadsPerGroup?: number;
  /**
   * Also keep f32 copies of the prompt's K and V with exactly T rows per head group (kWhole, vWhole):
   * the sparse attention API's index estimators read f32 k with S rows, not the [Hkv, Scap, D] cache.
   */
  compactKv?: boolean;
}

/** One group of query heads [headStart, headStart + heads) sharing KV heads [kvStart, kvStart + kvHeads). */
export interface HeadGroup {
  headStart: number;
  heads: number;
  kvStart: number;
  kvHeads: number;
}

export interface PlannedBuffer {
  name: string;
  shape: number[];
  dtype: DType;
  bytes: number;
  /** How many of these the run allocates (e.g. one per layer or per chunk). */
  count: number;
}

export interface MemoryPlan {
  promptLen: number;
  scap: number;
  chunk: number;
  nChunks: number;
  groups: HeadGroup[];
  buffers: PlannedBuffer[];
  totalBytes: number;
}

/**
 * Default chunk: 2048 tokens. Large enough that every projection is a well-shaped GEMM (M >= 2048
 * keeps 128x128 tiles busy on big GPUs), small enough that the chunk activations of an 8B model
 * (about 2048 * (3 * 14336 + 4 * 4096 + ...) * 4 B ~ 0.5 GB) stay far below the KV cache.
 */
export const DEFAULT_CHUNK = 2048;

/** Smallest chunk the default choice shrinks to when the budget is tight (one 64-token attention block). */
const MIN_AUTO_CHUNK = 64;

/**
 * The plan for a run. Without an explicit chunkSize, the chunk starts at DEFAULT_CHUNK (or what
 * the binding limit allows) and is halved while the plan exceeds memoryBudgetBytes, down to 64.
 */
export function planRun(input: PlanInput): MemoryPlan {
  if (input.chunkSize !== undefined || input.memoryBudgetBytes === undefined) return planOnce(input);
  let chunk = Math.min(DEFAULT_CHUNK, input.promptLen);
  for (;;) {
    try {
      return planOnce({ ...input, chunkSize: undefined, maxChunk: chunk });
    } catch (e) {
      if (!(e instanceof PlanError) || !e.overBudget || chunk <= MIN_AUTO_CHUNK) throw e;
      chunk = Math.max(MIN_AUTO_CHUNK, Math.floor(chunk / 2));
    }
  }
}

function planOnce(input: PlanInput & { maxChunk?: number }): MemoryPlan {
  const { config: c, promptLen: T, maxNewTokens, kvDType, limits } = input;
  if (!Number.isInteger(T) || T <= 0) throw new PlanError(`prompt length must be a positive integer, got ${T}`);
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) throw new PlanError(`maxNewTokens must be an integer >= 0, got ${maxNewTokens}`);
  const C = c.hiddenSize;
  const I = c.intermediateSize;
  const H = c.numHeads;
  const Hkv = c.numKvHeads;
  const D = c.headDim;
  const binding = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  const scap = T + Math.max(1, maxNewTokens);

  // Chunk: the widest chunk row is max(C, H*D, I) f32 values; every chunk tensor must fit one binding.
  const widest = Math.max(C, H * D, I, Hkv * D);
  const maxChunkByBinding = Math.floor(binding / (widest * 4));
  if (maxChunkByBinding < 1) throw new PlanError(`one token's activations (${widest * 4} B) exceed the device's binding limit (${binding} B)`);
  let chunk: number;
  if (input.chunkSize !== undefined) {
    if (!Number.isInteger(input.chunkSize) || input.chunkSize <= 0) throw new PlanError(`chunkSize must be a positive integer, got ${input.chunkSize}`);
    if (input.chunkSize > maxChunkByBinding) {
      throw new PlanError(`chunkSize ${input.chunkSize} needs [${input.chunkSize}, ${widest}] f32 activations (${input.chunkSize * widest * 4} B), more than one binding allows (${binding} B); at most ${maxChunkByBinding}`);
    }
    chunk = input.chunkSize;
  } else {
    chunk = Math.min(input.maxChunk ?? DEFAULT_CHUNK, maxChunkByBinding);
  }
  chunk = Math.min(chunk, T);
  const nChunks = Math.ceil(T / chunk);

  // KV cache per layer must fit one binding (the attention kernels bind a layer's K and V whole).
  const kvBytes = byteSizeOf([Hkv, scap, D], kvDType);
  if (kvBytes > binding) {
    throw new PlanError(`the KV cache of one layer [${Hkv}, ${scap}, ${D}] ${kvDType} needs ${kvBytes} B, more than one binding allows (${binding} B): shorten the prompt or maxNewTokens${kvDType === 'f32' ? ', or use kvDType f16' : ''}`);
  }

  // Head groups for the whole-prompt q / attention output: whole KV-head groups per tensor.
  const perKv = H / Hkv;
  // A KV group's f32 queries (perKv heads) plus, with compactKv, its f32 K or V (1 head) per tensor.
  const bytesPerKvHead = perKv * T * D * 4;
  let kvPerGroup = Math.floor(binding / bytesPerKvHead);
  if (kvPerGroup < 1) {
    throw new PlanError(`the queries of one KV-head group [${perKv}, ${T}, ${D}] f32 need ${bytesPerKvHead} B, more than one binding allows (${binding} B): the prompt is too long for this device`);
  }
  kvPerGroup = Math.min(kvPerGroup, Hkv, input.maxKvHeadsPerGroup ?? Hkv);
  const groups: HeadGroup[] = [];
  for (let kv = 0; kv < Hkv; kv += kvPerGroup) {
    const kvHeads = Math.min(kvPerGroup, Hkv - kv);
    groups.push({ kvStart: kv, kvHeads, headStart: kv * perKv, heads: kvHeads * perKv });
  }

  const buffers: PlannedBuffer[] = [];
  const add = (name: string, shape: number[], dtype: DType, count = 1): void => {
    buffers.push({ name, shape, dtype, bytes: byteSizeOf(shape, dtype), count });
  };
  add('kCache', [Hkv, scap, D], kvDType, c.numLayers);
  add('vCache', [Hkv, scap, D], kvDType, c.numLayers);
  add('residual', [chunk, C], 'f32', nChunks);
  // The prompt's token ids, one tensor per chunk (offsets into one tensor would not be binding-aligned).
  add('ids', [chunk], 'u32', nChunks);
  for (const g of groups) {
    add(`q[${g.headStart}..${g.headStart + g.heads})`, [g.heads, T, D], 'f32');
    add(`attnOut[${g.headStart}..${g.headStart + g.heads})`, [g.heads, T, D], 'f32');
    if (input.compactKv) {
      add(`kWhole[${g.kvStart}..${g.kvStart + g.kvHeads})`, [g.kvHeads, T, D], 'f32');
      add(`vWhole[${g.kvStart}..${g.kvStart + g.kvHeads})`, [g.kvHeads, T, D], 'f32');
    }
  }
  add('normed', [chunk, C], 'f32');
  add('qProj', [chunk, H * D], 'f32');
  add('kProj', [chunk, Hkv * D], 'f32');
  add('vProj', [chunk, Hkv * D], 'f32');
  add('attnRows', [chunk, H * D], 'f32');
  add('proj', [chunk, C], 'f32');
  add('gate', [chunk, I], 'f32');
  add('up', [chunk, I], 'f32');
  add('act', [chunk, I], 'f32');
  add('logits', [1, c.vocabSize], 'f32');
  // Decode: the token id, its residual row, its queries and attention output (head-major), and the
  // decode attention's key-split partial results (src/attention/decode.ts decodeScratchShapes; the
  // same element counts as the dense kernel's splitScratchShapes, its fallback).
  add('decodeId', [1], 'u32');
  // The greedy choice of a decode step, when argmax runs on the GPU (LlamaRunnerOptions.greedyOnGpu).
  add('decodeNext', [1], 'u32');
  add('tok', [1, C], 'f32');
  add('qDecode', [H, 1, D], 'f32');
  add('attnDecode', [H, 1, D], 'f32');
  const scratch = decodeScratchShapes(H, D);
  add('splitO', scratch.partO, 'f32');
  add('splitMl', scratch.partMl, 'f32');
  for (const b of buffers) {
    if (b.bytes > binding) throw new PlanError(`${b.name} [${b.shape.join(', ')}] ${b.dtype} needs ${b.bytes} B, more than one binding allows (${binding} B)`);
  }
  const totalBytes = buffers.reduce((s, b) => s + b.bytes * b.count, 0);
  if (input.memoryBudgetBytes !== undefined && totalBytes > input.memoryBudgetBytes) {
    const top = [...buffers].sort((a, b) => b.bytes * b.count - a.bytes * a.count).slice(0, 3).map((b) => `${b.name} ${formatBytes(b.bytes * b.count)}`);
    throw new PlanError(`the run needs ${formatBytes(totalBytes)} of activations and KV cache (chunk ${chunk}), more than the budget of ${formatBytes(input.memoryBudgetBytes)} (largest: ${top.join(', ')})`, true);
  }
  return { promptLen: T, scap, chunk, nChunks, groups, buffers, totalBytes };
}
