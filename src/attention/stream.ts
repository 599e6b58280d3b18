/**
 * A-shape (StreamingLLM) attention (shaders/attention.wgsl, MODE 1), prefill: query i attends key
 * j <= i when j < nInit (attention sinks) or i - j < nLocal (local window). A workgroup visits only
 * the key tiles that intersect the sink or its window, so the cost grows linearly in S.
 */
import type { Batch, Gpu, Program } from '../gpu/gpu.ts';
import { ShapeError } from '../gpu/errors.ts';
import type { Tensor } from '../tensor.ts';
import {
  attentionDefines,
  compileAttention,
  baseParams,
  checkHeadDim,
  tilesFor,
  HeadLists,
  validateQkvo,
  type AttentionKernelOptions,
  type AttentionTiles,
  type KvDType,
} from './dense.ts';

export interface StreamParams {
  nInit: number;
  nLocal: number;
}

export function checkStreamParams(op: string, p: StreamParams): void {
  if (!Number.isInteger(p.nInit) || p.nInit < 0) throw new ShapeError(`${op}: nInit=${p.nInit} must be a non-negative integer`);
  if (!Number.isInteger(p.nLocal) || p.nLocal < 1) throw new ShapeError(`${op}: nLocal=${p.nLocal} must be a positive integer`);
}

/** Causal entries an A-shape mask keeps for one head at sequence length S (exact, for density). */
export function streamEntries(S: number, nInit: number, nLocal: number): number {
  let n = 0;
  for (let i = 0; i < S; i++) {
    const sink = Math.min(nInit, i + 1);
    const winLo = Math.max(0, i - nLocal + 1);
    const win = i + 1 - winLo;
    const overlap = Math.max(0, sink - winLo);
    n += sink + win - overlap;
  }
  return n;
}

export class StreamAttentionKernel {
  private readonly heads: HeadLists;

  private constructor(
    private readonly gpu: Gpu,
    readonly headDim: number,
    readonly kvDType: KvDType,
    readonly tiles: AttentionTiles,
    private readonly program: Program,
  ) {
    this.heads = new HeadLists(gpu);
  }

  static async create(gpu: Gpu, options: AttentionKernelOptions): Promise<StreamAttentionKernel> {
    checkHeadDim('attention.stream_llm', options.headDim);
    const kvDType = options.kvDType ?? 'f32';
    const tiles = tilesFor(gpu, 'attention.stream_llm', options);
    const program = await compileAttention(gpu, attentionDefines(1, options.headDim, kvDType, tiles, false, options.compute ?? 'f32'));
    return new StreamAttentionKernel(gpu, options.headDim, kvDType, tiles, program);
  }

  /** Prefill: q [H, S, D], k/v [Hkv, Scap >= S, D] (the first S rows are the keys). */
  encode(batch: Batch, q: Tensor, k: Tensor, v: Tensor, out: Tensor, heads: Tensor | readonly number[], params: StreamParams): void {
    const op = 'attention.stream_llm';
    const s = validateQkvo(op, q, k, v, out, this.headDim, this.kvDType);
    if (s.Tq > s.Scap) throw new ShapeError(`${op}: prefill of ${s.Tq} query rows needs k/v with at least as many rows, got ${k.describe()}`);
    checkStreamParams(op, params);
    const list = this.heads.get(op, heads, s.H);
    const qBlocks = Math.ceil(s.Tq / this.tiles.bq);
    const max = this.gpu.caps.limits.maxComputeWorkgroupsPerDimension;
    if (qBlocks > max || list.n > max) throw new ShapeError(`${op}: ${qBlocks} query blocks x ${list.n} heads exceed ${max} workgroups per dimension`);
    batch.dispatch({
      program: this.program,
      bindings: { q, k, v, heads: list.tensor, out },
      params: { ...baseParams(s, 0, s.Tq, list.n), n_init: params.nInit, n_local: params.nLocal },
      workgroups: [qBlocks, list.n, 1],
      label: op,
    });
  }

  destroy(): void {
    this.heads.destroy();
  }
}
