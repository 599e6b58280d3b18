/**
 * A-shape (StreamingLLM) attention (shaders/attention.wgsl, MODE 1), prefill: query i attends key
 * j <= i when j < nInit (attention sinks) or i - j < nLocal (local window). A workgroup visits only
 * the key tiles that intersect the sink or its window, so the cost grows linearly in S.
 */
import type { Encoder, Gpu, Program } from '../gpu/gpu.ts';
import { ShapeError } from '../gpu/errors.ts';
import type { Tensor } from '../tensor.ts';
import {
  AttentionKernelBase,
  kernelBasics,
  attentionDefines,
  compileAttention,
  baseParams,
  type AttentionKernelOptions,
  type KernelBasics,
  type DenseEncodeOptions,
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

export class StreamAttentionKernel extends AttentionKernelBase {
  private constructor(
    gpu: Gpu,
    basics: KernelBasics,
    private readonly program: Program,
  ) {
    super(gpu, basics);
  }

  static async create(gpu: Gpu, options: AttentionKernelOptions): Promise<StreamAttentionKernel> {
    const b = kernelBasics(gpu, 'attention.stream_llm', options);
    const program = await compileAttention(gpu, attentionDefines(1, b.headDim, b.kvDType, b.tiles, false, b.compute));
    return new StreamAttentionKernel(gpu, b, program);
  }

  /**
   * Prefill: q [H, S, D], k/v [Hkv, Scap >= S, D] (the first S rows are the keys). With `at`, the
   * query rows sit at positions qPos0.. over the first kvLen cache rows (decode: Tq = 1, qPos0 =
   * kvLen - 1), as the dense kernel's options: a sliding window (nInit 0, nLocal = window) then
   * serves decode too.
   */
  encode(batch: Encoder, q: Tensor, k: Tensor, v: Tensor, out: Tensor, heads: Tensor | readonly number[], params: StreamParams, at?: DenseEncodeOptions): void {
    const op = 'attention.stream_llm';
    const { s, list, qBlocks } = at ? this.grid(op, q, k, v, out, heads) : this.prefillGrid(op, q, k, v, out, heads);
    checkStreamParams(op, params);
    const { kvLen, qPos0 } = this.positions(op, s, at ?? {}, s.Tq);
    batch.dispatch({
      program: this.program,
      bindings: { q, k, v, heads: list.tensor, out },
      params: { ...baseParams(s, qPos0, kvLen, list.n), n_init: params.nInit, n_local: params.nLocal },
      workgroups: [qBlocks, list.n, 1],
      label: op,
    });
  }
}
