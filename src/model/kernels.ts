/**
 * Every kernel a model's runs need, compiled once when the runner is created: the layer kernels
 * (norms, matmuls per weight dtype, RoPE, SiLU gate, embedding, head scatter), the attention
 * kernels of prefill and decode, and the sparse-attention kernels and index estimators of the
 * patterns in use (through the attention API's own cache, see prepareAttention), so that no run
 * compiles anything and none needs a warm-up.
 */
import type { Gpu } from '../gpu/gpu.ts';
import { BadInputError, UnsupportedError } from '../gpu/errors.ts';
import type { DType, Tensor } from '../tensor.ts';
import type { ModelConfig } from './config.ts';
import type { ModelWeights } from './weights.ts';
import type { Pattern, PatternType } from '../attention/types.ts';
import { prepareAttention } from '../attention/attention.ts';
import { canVectorize, MatmulKernel, SMALL_TILE, type MatmulVariant } from '../kernels/matmul.ts';
import { AddRmsNormKernel, RmsNormKernel, type NormWeightDType } from '../kernels/rms_norm.ts';
import { DenseAttentionKernel, type AttentionCompute } from '../attention/dense.ts';
import { DecodeAttentionKernel, decodeGroupFits } from '../attention/decode.ts';
import { ArgmaxKernel } from '../kernels/argmax.ts';
import { StreamAttentionKernel } from '../attention/stream.ts';
import { RopeKernel } from '../kernels/rope.ts';
import { SiluMulKernel } from '../kernels/silu_mul.ts';
import { EmbeddingKernel } from '../kernels/embedding.ts';
import { HeadsToTokensKernel } from '../kernels/heads_to_tokens.ts';

/**
 * The matmul kernels of one weight dtype, without and with bias, for prefill rows and for decode's
 * one row (the decode ones are the prefill ones unless decode takes another path).
 */
export interface MatmulSet {
  plain?: MatmulKernel;
  bias?: MatmulKernel;
  decodePlain?: MatmulKernel;
  decodeBias?: MatmulKernel;
}

export interface ModelKernels {
  embed: EmbeddingKernel;
  norm: Partial<Record<NormWeightDType, RmsNormKernel>>;
  addNorm: Partial<Record<NormWeightDType, AddRmsNormKernel>>;
  matmul: Partial<Record<NormWeightDType, MatmulSet>>;
  /** Rotates into f32 (Q, and K's compact f32 copy for the sparse estimators). */
  ropeQ: RopeKernel;
  /** f32 scatter of V into its compact copy. */
  copyF32: RopeKernel;
  ropeK: RopeKernel;
  copyV: RopeKernel;
  siluMul: SiluMulKernel;
  headsToTokens: HeadsToTokensKernel;
  /** f32 attention: prefill where `densePrefill` is absent, decode where `decode` is. Compiled only for those. */
  dense?: DenseAttentionKernel;
  /**
   * Decode attention: one query row, K/V read once per kv head (dense and sliding window). Absent only
   * where the model's query heads per kv head need more workgroup memory than the device has.
   */
  decode?: DecodeAttentionKernel;
  /** Prefill attention on tensor cores (attentionCompute 'sgmatrix'). */
  densePrefill?: DenseAttentionKernel;
  /** Sliding-window models (Mistral v0.1, Phi-3, Qwen2 with use_sliding_window): the window as an A-shape without sinks, prefill and decode. */
  window?: StreamAttentionKernel;
  /** The f32 window kernel for decode when prefill runs on tensor cores (and `decode` is absent). */
  windowDecode?: StreamAttentionKernel;
  /** Greedy decode on the GPU: the step's token id read back instead of its logits (KernelSpec.greedyOnGpu). */
  argmax?: ArgmaxKernel;
}

export interface KernelSpec {
  config: ModelConfig;
  weights: ModelWeights;
  kvDType: 'f32' | 'f16';
  matmulVariant: MatmulVariant;
  attentionCompute: AttentionCompute;
  patterns?: Pattern[][];
  /** 'row' (default): the one-row decode kernel where it fits; 'tiles': the dense kernel's key split. */
  decodeAttention?: 'row' | 'tiles';
  /** Compile the argmax kernel for greedy decode steps that read back one token id. */
  greedyOnGpu?: boolean;
}

/** Kernels compiled so far and how many there are. */
export type CompileProgress = (done: number, total: number) => void;

/**
 * On software adapters (SwiftShader, lavapipe) compiling is most of a small model's load: SwiftShader
 * JIT-compiles each pipeline on the CPU (needle-reader: 21 pipelines, 34 s one after another, 17.7 s
 * on 2 cores; scratch measurements in the ux branch's report). What the CPU runs gains nothing from
 * the variants that exist for big GPUs, so there the model compiles fewer and smaller ones:
 *  - matmul: the 64x64 tile alone (the 128x128 tile is for filling a GPU's many SMs at M >= 1536;
 *    its two flavours took 5.9 s + 3.0 s to compile against 2.3 s + 2.0 s for the small tile);
 *  - dense attention: query blocks of 32 (bq 64 took 11.4 s to compile, bq 32 2.9 s; prefill
 *    attention time on the 512-token document the same within the noise of a shared machine), and no
 *    key split (flash-decoding splits keys to occupy a GPU's SMs during decode; another 9.6 s).
 */
const SOFTWARE_MATMUL_TILE = SMALL_TILE;
const SOFTWARE_DENSE = { tiles: { bq: 32, bk: 16 }, splitKeys: false } as const;

export function weightDType(d: DType): NormWeightDType {
  if (d !== 'f32' && d !== 'f16' && d !== 'bf16') throw new UnsupportedError(`weights of dtype ${d} are not supported`);
  return d;
}

/** The sparse pattern types of a config (what prepareAttention compiles for). */
export function sparseTypes(patterns: Pattern[][] | undefined): Set<PatternType> {
  const types = new Set<PatternType>();
  for (const layer of patterns ?? []) for (const p of layer) if (p.type !== 'dense') types.add(p.type);
  return types;
}

/** Compiles the sparse kernels and estimators of `patterns` (the executor hands attention() f32 K/V). */
export function prepareSparse(gpu: Gpu, headDim: number, compute: AttentionCompute, patterns: Pattern[][] | undefined): Promise<void> {
  const types = sparseTypes(patterns);
  return types.size ? prepareAttention(gpu, { headDim, kvDType: 'f32', compute, types }) : Promise.resolve();
}

export async function compileModelKernels(gpu: Gpu, spec: KernelSpec, onProgress?: CompileProgress): Promise<ModelKernels> {
  const { config: c, weights: w, kvDType, matmulVariant: variant, attentionCompute: attnCompute } = spec;
  const software = gpu.caps.software;
  let total = 0;
  let done = 0;
  // Every compile is registered before the first can finish, so `total` is final when reported.
  const track = <T>(p: Promise<T>): Promise<T> => {
    total++;
    return p.then((v) => {
      onProgress?.(++done, total);
      return v;
    });
  };
  const normTypes = new Set<NormWeightDType>([weightDType(w.finalNorm.dtype)]);
  const plainTypes = new Set<NormWeightDType>([weightDType(w.lmHead.dtype)]);
  const biasTypes = new Set<NormWeightDType>();
  // Whether every matmul of a weight dtype takes vector loads (then its element-load flavour is not compiled).
  const allVector = new Map<NormWeightDType, boolean>();
  const note = (t: Tensor): void => {
    const d = weightDType(t.dtype);
    allVector.set(d, (allVector.get(d) ?? true) && canVectorize(d, t.shape[t.shape.length - 1]!));
  };
  note(w.lmHead);
  for (const L of w.layers) {
    normTypes.add(weightDType(L.inputNorm.dtype));
    normTypes.add(weightDType(L.postNorm.dtype));
    for (const t of [L.q, L.k, L.v]) (c.attentionBias ? biasTypes : plainTypes).add(weightDType(t.dtype));
    for (const t of [L.o, L.gate, L.up, L.down]) plainTypes.add(weightDType(t.dtype));
    for (const t of [L.q, L.k, L.v, L.o, L.gate, L.up, L.down]) note(t);
  }
  const norm: ModelKernels['norm'] = {};
  const addNorm: ModelKernels['addNorm'] = {};
  const matmul: ModelKernels['matmul'] = {};
  const jobs: Promise<unknown>[] = [];
  for (const d of normTypes) {
    jobs.push(track(RmsNormKernel.create(gpu, { weightDType: d })).then((k) => (norm[d] = k)));
    jobs.push(track(AddRmsNormKernel.create(gpu, { weightDType: d })).then((k) => (addNorm[d] = k)));
  }
  // Decode multiplies one row: tensor-core tiles (sgmatrix, f16) waste all but one row there, so
  // decode keeps 'auto' (gemv) unless a plain f32 path was asked for.
  const decodeVariant: MatmulVariant = variant === 'sgmatrix' || variant === 'f16' ? 'auto' : variant;
  for (const d of new Set([...plainTypes, ...biasTypes])) {
    const set: MatmulSet = (matmul[d] = {});
    // Software adapters: the small f32 tile alone (see SOFTWARE_MATMUL_TILE).
    const tile = software ? SOFTWARE_MATMUL_TILE : undefined;
    const vectorOnly = allVector.get(d) === true;
    const make = (bias: boolean, v: MatmulVariant): Promise<MatmulKernel> =>
      track(MatmulKernel.create(gpu, { weightDType: d, bias, variant: v, tile: v === 'auto' || v === 'f32' ? tile : undefined, vectorOnly }));
    for (const bias of [false, true]) {
      if (!(bias ? biasTypes : plainTypes).has(d)) continue;
      jobs.push(
        make(bias, variant).then((k) => {
          set[bias ? 'bias' : 'plain'] = k;
          if (decodeVariant === variant) set[bias ? 'decodeBias' : 'decodePlain'] = k;
        }),
      );
      if (decodeVariant !== variant) jobs.push(make(bias, decodeVariant).then((k) => (set[bias ? 'decodeBias' : 'decodePlain'] = k)));
    }
  }
  const D = c.headDim;
  const windowed = c.slidingWindow !== undefined;
  const group = c.numHeads / c.numKvHeads;
  if (spec.decodeAttention !== undefined && spec.decodeAttention !== 'row' && spec.decodeAttention !== 'tiles') {
    throw new BadInputError(`decodeAttention must be 'row' or 'tiles', got ${String(spec.decodeAttention)}`);
  }
  const oneRowDecode = spec.decodeAttention !== 'tiles' && decodeGroupFits(gpu, D, group);
  // The f32 dense kernel serves prefill unless it runs on tensor cores, and decode (with its key split,
  // flash-decoding) only where the one-row kernel cannot.
  const needDense = attnCompute !== 'sgmatrix' || !oneRowDecode;
  const denseOptions = { ...(software ? SOFTWARE_DENSE : {}), ...(oneRowDecode ? { splitKeys: false } : {}) };
  const [embed, ropeQ, copyF32, ropeK, copyV, siluMul, headsToTokens, dense, densePrefill, window, windowDecode, decode, argmax] = await Promise.all([
    track(EmbeddingKernel.create(gpu, { weightDType: weightDType(w.embed.dtype) })),
    track(RopeKernel.create(gpu, { headDim: D, rotaryDim: c.rotaryDim, rotate: true, outDType: 'f32' })),
    track(RopeKernel.create(gpu, { headDim: D, rotate: false, outDType: 'f32' })),
    track(RopeKernel.create(gpu, { headDim: D, rotaryDim: c.rotaryDim, rotate: true, outDType: kvDType })),
    track(RopeKernel.create(gpu, { headDim: D, rotate: false, outDType: kvDType })),
    track(SiluMulKernel.create(gpu)),
    track(HeadsToTokensKernel.create(gpu)),
    needDense ? track(DenseAttentionKernel.create(gpu, { headDim: D, kvDType, ...denseOptions })) : undefined,
    attnCompute === 'sgmatrix' ? track(DenseAttentionKernel.create(gpu, { headDim: D, kvDType, compute: 'sgmatrix', splitKeys: false })) : undefined,
    windowed ? track(StreamAttentionKernel.create(gpu, { headDim: D, kvDType, compute: attnCompute })) : undefined,
    windowed && attnCompute !== 'f32' && !oneRowDecode ? track(StreamAttentionKernel.create(gpu, { headDim: D, kvDType })) : undefined,
    oneRowDecode ? track(DecodeAttentionKernel.create(gpu, { headDim: D, kvDType, group })) : undefined,
    spec.greedyOnGpu === true ? track(ArgmaxKernel.create(gpu)) : undefined,
    Promise.all(jobs),
    track(prepareSparse(gpu, D, attnCompute, spec.patterns)),
  ]);
  return { embed, norm, addNorm, matmul, ropeQ, copyF32, ropeK, copyV, siluMul, headsToTokens, dense, densePrefill, window, windowDecode, decode, argmax };
}

/** The matmul kernel for a weight: its dtype's set, with or without bias, prefill rows or decode's one. */
export function matmulFor(k: ModelKernels, w: Tensor, bias: boolean, decode: boolean): MatmulKernel {
  const set = k.matmul[w.dtype as NormWeightDType];
  const kernel = set?.[decode ? (bias ? 'decodeBias' : 'decodePlain') : bias ? 'bias' : 'plain'];
  if (!kernel) throw new UnsupportedError(`no matmul kernel was compiled for ${w.describe()}${bias ? ' with bias' : ''}`);
  return kernel;
}
