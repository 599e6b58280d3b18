/**
 * Float64 CPU reference forward of a Llama-family decoder (Llama, Qwen2, Mistral), read through the
 * project's own model modules (ModelSource -> Checkpoint -> config). Naive loops, one function per
 * block, written to be read next to the Hugging Face modeling code:
 *
 *   x = embed[ids]                                        [T, H]
 *   per layer:
 *     h = rms_norm(x, input_layernorm)                    [T, H]
 *     q = h Wq^T (+ bq)  [T, nH*D]   k = h Wk^T (+ bk), v = h Wv^T (+ bv)  [T, nKv*D]
 *     q, k = rope(q), rope(k)                             rotate-half pairs (i, i + D/2), position = row
 *     a = causal_gqa_attention(q, k, v)                   query head h reads kv head floor(h / (nH / nKv))
 *     x = x + a Wo^T
 *     x = x + down(silu(gate(rms_norm(x))) * up(rms_norm(x)))
 *   logits = rms_norm(x[T-1], norm) lm_head^T            [vocab] (lm_head = embed when tied)
 *
 * Weights are decoded from their stored dtype (f32/f16/bf16) to float64; everything after that is
 * float64. Embedding rows and lm_head rows are streamed from the checkpoint, never held whole.
 */
import { parseModelConfig, type ModelConfig } from '../../src/model/config.ts';
import { Checkpoint, decodeTensorBytes } from '../../src/model/safetensors.ts';
import { openLocalModel, readJson, type ModelSource } from '../../src/model/source.ts';

export interface RefLayer {
  inputNorm: Float64Array;
  q: Float64Array;
  k: Float64Array;
  v: Float64Array;
  qBias?: Float64Array;
  kBias?: Float64Array;
  vBias?: Float64Array;
  o: Float64Array;
  postNorm: Float64Array;
  gate: Float64Array;
  up: Float64Array;
  down: Float64Array;
}

export interface RefModel {
  config: ModelConfig;
  checkpoint: Checkpoint;
  layers: RefLayer[];
  finalNorm: Float64Array;
  embedName: string;
  lmHeadName: string;
}

/** Per-head attention mask on top of causality: true = query `q` may attend key `k` (k <= q). */
export type AttentionMask = (layer: number, head: number, q: number, k: number) => boolean;

export interface ReferenceOptions {
  mask?: AttentionMask;
}

export interface ReferenceResult {
  /** Logits of the last position, [vocab]. */
  logits: Float64Array;
  /** Residual stream: hidden[0] = embeddings, hidden[l + 1] = output of layer l; each [T, H]. */
  hidden: Float64Array[];
  /** After the final norm, [T, H]. */
  finalHidden: Float64Array;
}

async function readF64(ckpt: Checkpoint, name: string): Promise<Float64Array> {
  return Float64Array.from(await ckpt.readFloat32(name));
}

export async function loadReferenceModel(from: string | ModelSource): Promise<RefModel> {
  const source = typeof from === 'string' ? await openLocalModel(from) : from;
  const config = parseModelConfig(await readJson(source, 'config.json'));
  const checkpoint = await Checkpoint.open(source);
  const layers: RefLayer[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    const p = `model.layers.${l}.`;
    const H = config.hiddenSize;
    const qDim = config.numHeads * config.headDim;
    const kvDim = config.numKvHeads * config.headDim;
    let q: Float64Array, k: Float64Array, v: Float64Array, gate: Float64Array, up: Float64Array;
    if (config.architecture === 'Phi3ForCausalLM') {
      // Phi-3 stores q, k, v as one [qDim + 2 kvDim, H] matrix and gate, up as one [2 I, H] (rows in that order).
      const qkv = await readF64(checkpoint, `${p}self_attn.qkv_proj.weight`);
      q = qkv.slice(0, qDim * H);
      k = qkv.slice(qDim * H, (qDim + kvDim) * H);
      v = qkv.slice((qDim + kvDim) * H);
      const gu = await readF64(checkpoint, `${p}mlp.gate_up_proj.weight`);
      gate = gu.slice(0, config.intermediateSize * H);
      up = gu.slice(config.intermediateSize * H);
    } else {
      q = await readF64(checkpoint, `${p}self_attn.q_proj.weight`);
      k = await readF64(checkpoint, `${p}self_attn.k_proj.weight`);
      v = await readF64(checkpoint, `${p}self_attn.v_proj.weight`);
      gate = await readF64(checkpoint, `${p}mlp.gate_proj.weight`);
      up = await readF64(checkpoint, `${p}mlp.up_proj.weight`);
    }
    const layer: RefLayer = {
      inputNorm: await readF64(checkpoint, `${p}input_layernorm.weight`),
      q,
      k,
      v,
      o: await readF64(checkpoint, `${p}self_attn.o_proj.weight`),
      postNorm: await readF64(checkpoint, `${p}post_attention_layernorm.weight`),
      gate,
      up,
      down: await readF64(checkpoint, `${p}mlp.down_proj.weight`),
    };
    if (config.attentionBias) {
      layer.qBias = await readF64(checkpoint, `${p}self_attn.q_proj.bias`);
      layer.kBias = await readF64(checkpoint, `${p}self_attn.k_proj.bias`);
      layer.vBias = await readF64(checkpoint, `${p}self_attn.v_proj.bias`);
    }
    layers.push(layer);
  }
  return {
    config,
    checkpoint,
    layers,
    finalNorm: await readF64(checkpoint, 'model.norm.weight'),
    embedName: 'model.embed_tokens.weight',
    lmHeadName: config.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight',
  };
}

/** Rows of a [rows, H] matrix in the checkpoint, as float64. */
export async function readRows(ckpt: Checkpoint, name: string, first: number, count: number): Promise<Float64Array> {
  const info = ckpt.info(name);
  const h = info.shape[1]!;
  const bytesPerRow = (info.byteLength / info.numel) * h;
  const bytes = await ckpt.readRange(name, first * bytesPerRow, count * bytesPerRow);
  return Float64Array.from(decodeTensorBytes(info.dtype, bytes));
}

// ------------------------------------------------------------------------------------- blocks

/** x = embed[ids], [T, H]. */
export async function embedding(model: RefModel, ids: readonly number[]): Promise<Float64Array> {
  const H = model.config.hiddenSize;
  const out = new Float64Array(ids.length * H);
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t]!;
    if (!Number.isInteger(id) || id < 0 || id >= model.config.vocabSize) throw new RangeError(`token id ${id} outside the vocabulary (${model.config.vocabSize})`);
    out.set(await readRows(model.checkpoint, model.embedName, id, 1), t * H);
  }
  return out;
}

/** y[t, :] = x[t, :] / sqrt(mean(x[t, :]^2) + eps) * w, rows of length H. */
export function rmsNorm(x: Float64Array, rows: number, H: number, w: Float64Array, eps: number): Float64Array {
  const y = new Float64Array(rows * H);
  for (let t = 0; t < rows; t++) {
    let ss = 0;
    for (let i = 0; i < H; i++) ss += x[t * H + i]! ** 2;
    const inv = 1 / Math.sqrt(ss / H + eps);
    for (let i = 0; i < H; i++) y[t * H + i] = x[t * H + i]! * inv * w[i]!;
  }
  return y;
}

/** y[t, o] = sum_i x[t, i] W[o, i] (+ b[o]); W is [out, in] as Hugging Face stores Linear weights. */
export function linear(x: Float64Array, rows: number, inDim: number, W: Float64Array, outDim: number, b?: Float64Array): Float64Array {
  const y = new Float64Array(rows * outDim);
  for (let t = 0; t < rows; t++) {
    for (let o = 0; o < outDim; o++) {
      let s = b ? b[o]! : 0;
      for (let i = 0; i < inDim; i++) s += x[t * inDim + i]! * W[o * inDim + i]!;
      y[t * outDim + o] = s;
    }
  }
  return y;
}

/**
 * Inverse rotary frequencies theta^(-2i/D), i < D/2, with Llama 3 scaling: wavelengths above
 * original_max / low_freq_factor are divided by `factor`, those below original_max /
 * high_freq_factor are kept, and the band between blends the two linearly in original_max / wavelength.
 * longrope (Phi-3): divided by long_factor[i] when the sequence (seqLen) is longer than
 * original_max, else by short_factor[i].
 */
export function ropeInvFreq(config: ModelConfig, seqLen = 0): Float64Array {
  const D = config.rotaryDim ?? config.headDim; // only the first rotaryDim elements rotate (partial rotary)
  const inv = new Float64Array(D / 2);
  const s = config.ropeScaling;
  for (let i = 0; i < D / 2; i++) {
    const base = Math.pow(config.ropeTheta, -(2 * i) / D);
    if (!s) {
      inv[i] = base;
      continue;
    }
    if (s.type === 'longrope') {
      // Phi-3: per-frequency divisors, the long ones for sequences past the original context.
      const ext = seqLen > s.originalMaxPositionEmbeddings ? s.longFactor : s.shortFactor;
      inv[i] = base / ext[i]!;
      continue;
    }
    const wavelen = (2 * Math.PI) / base;
    const ratio = s.originalMaxPositionEmbeddings / wavelen; // how many wavelengths fit the original context
    if (ratio > s.highFreqFactor) inv[i] = base;
    else if (ratio < s.lowFreqFactor) inv[i] = base / s.factor;
    else {
      const smooth = (ratio - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      inv[i] = (1 - smooth) * (base / s.factor) + smooth * base;
    }
  }
  return inv;
}

/**
 * Rotates, in place, every head of x [T, heads * D] at position t (the row):
 *   x'[i]       = x[i] cos(t f_i) - x[i + D/2] sin(t f_i)
 *   x'[i + D/2] = x[i + D/2] cos(t f_i) + x[i] sin(t f_i)        for i < D/2,
 * with cos and sin multiplied by `scale` (longrope's attention factor; 1 otherwise). With partial
 * rotary, D/2 above is R/2 = invFreq.length: elements R.. of each head are left as they are.
 */
export function rope(x: Float64Array, T: number, heads: number, D: number, invFreq: Float64Array, positions?: readonly number[], scale = 1): void {
  const half = invFreq.length;
  for (let t = 0; t < T; t++) {
    const pos = positions ? positions[t]! : t;
    for (let h = 0; h < heads; h++) {
      const base = t * heads * D + h * D;
      for (let i = 0; i < half; i++) {
        const angle = pos * invFreq[i]!;
        const c = Math.cos(angle) * scale;
        const s = Math.sin(angle) * scale;
        const a = x[base + i]!;
        const b = x[base + i + half]!;
        x[base + i] = a * c - b * s;
        x[base + i + half] = b * c + a * s;
      }
    }
  }
}

/**
 * Softmax(q k^T / sqrt(D)) v over keys k <= q (and mask(layer, head, q, k) when given), per query
 * head; query head h reads kv head floor(h / (nH / nKv)). A row with every key masked gives zeros.
 * q [T, nH*D], k and v [T, nKv*D] -> [T, nH*D].
 */
export function causalAttention(
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  T: number,
  nH: number,
  nKv: number,
  D: number,
  mask?: (head: number, qi: number, ki: number) => boolean,
): Float64Array {
  const out = new Float64Array(T * nH * D);
  const group = nH / nKv;
  const scale = 1 / Math.sqrt(D);
  const scores = new Float64Array(T);
  for (let h = 0; h < nH; h++) {
    const kvh = Math.floor(h / group);
    for (let i = 0; i < T; i++) {
      let max = -Infinity;
      for (let j = 0; j <= i; j++) {
        if (mask && !mask(h, i, j)) {
          scores[j] = -Infinity;
          continue;
        }
        let s = 0;
        for (let d = 0; d < D; d++) s += q[i * nH * D + h * D + d]! * k[j * nKv * D + kvh * D + d]!;
        scores[j] = s * scale;
        if (scores[j]! > max) max = scores[j]!;
      }
      if (max === -Infinity) continue; // everything masked: zeros
      let sum = 0;
      for (let j = 0; j <= i; j++) {
        const p = scores[j] === -Infinity ? 0 : Math.exp(scores[j]! - max);
        scores[j] = p;
        sum += p;
      }
      for (let j = 0; j <= i; j++) {
        const p = scores[j]! / sum;
        if (p === 0) continue;
        for (let d = 0; d < D; d++) out[i * nH * D + h * D + d] += p * v[j * nKv * D + kvh * D + d]!;
      }
    }
  }
  return out;
}

export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/** down(silu(x gate^T) * (x up^T)): x [T, H] -> [T, H]. */
export function swigluMlp(x: Float64Array, T: number, H: number, I: number, gate: Float64Array, up: Float64Array, down: Float64Array): Float64Array {
  const g = linear(x, T, H, gate, I);
  const u = linear(x, T, H, up, I);
  for (let i = 0; i < g.length; i++) g[i] = silu(g[i]!) * u[i]!;
  return linear(g, T, I, down, H);
}

/** One decoder layer on the residual stream x [T, H]; returns the new residual stream. */
export function decoderLayer(model: RefModel, l: number, x: Float64Array, T: number, invFreq: Float64Array, options: ReferenceOptions = {}): Float64Array {
  const c = model.config;
  const w = model.layers[l]!;
  const H = c.hiddenSize;
  const D = c.headDim;
  const h = rmsNorm(x, T, H, w.inputNorm, c.rmsNormEps);
  const q = linear(h, T, H, w.q, c.numHeads * D, w.qBias);
  const k = linear(h, T, H, w.k, c.numKvHeads * D, w.kBias);
  const v = linear(h, T, H, w.v, c.numKvHeads * D, w.vBias);
  const scale = c.ropeScaling?.type === 'longrope' ? c.ropeScaling.attentionFactor : 1;
  rope(q, T, c.numHeads, D, invFreq, undefined, scale);
  rope(k, T, c.numKvHeads, D, invFreq, undefined, scale);
  const mask = options.mask;
  // Sliding window (Mistral v0.1, Phi-3; Qwen2 from max_window_layers on): key ki is visible to
  // query qi only when qi - ki < window.
  const W = l >= (c.slidingWindowFromLayer ?? 0) ? c.slidingWindow : undefined;
  const visible =
    mask || W !== undefined ? (head: number, qi: number, ki: number) => (W === undefined || qi - ki < W) && (!mask || mask(l, head, qi, ki)) : undefined;
  const a = causalAttention(q, k, v, T, c.numHeads, c.numKvHeads, D, visible);
  const attnOut = linear(a, T, c.numHeads * D, w.o, H);
  const x1 = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) x1[i] = x[i]! + attnOut[i]!;
  const m = swigluMlp(rmsNorm(x1, T, H, w.postNorm, c.rmsNormEps), T, H, c.intermediateSize, w.gate, w.up, w.down);
  for (let i = 0; i < x1.length; i++) x1[i] = x1[i]! + m[i]!;
  return x1;
}

/** logits[v] = hidden . lm_head[v, :], lm_head streamed in row blocks. */
export async function lmHeadLogits(model: RefModel, hidden: Float64Array): Promise<Float64Array> {
  const { vocabSize: V, hiddenSize: H } = model.config;
  const logits = new Float64Array(V);
  const block = 8192; // rows per read: 8192 * H * 4 bytes at most, a few MB
  for (let r0 = 0; r0 < V; r0 += block) {
    const n = Math.min(block, V - r0);
    const rows = await readRows(model.checkpoint, model.lmHeadName, r0, n);
    for (let r = 0; r < n; r++) {
      let s = 0;
      for (let i = 0; i < H; i++) s += hidden[i]! * rows[r * H + i]!;
      logits[r0 + r] = s;
    }
  }
  return logits;
}

/** The whole forward over `ids` (positions 0..T-1). */
export async function referenceForward(model: RefModel, ids: readonly number[], options: ReferenceOptions = {}): Promise<ReferenceResult> {
  const c = model.config;
  const T = ids.length;
  const H = c.hiddenSize;
  if (T === 0) throw new RangeError('referenceForward: no tokens');
  const invFreq = ropeInvFreq(c, T);
  let x = await embedding(model, ids);
  const hidden = [x];
  for (let l = 0; l < c.numLayers; l++) {
    x = decoderLayer(model, l, x, T, invFreq, options);
    hidden.push(x);
  }
  const finalHidden = rmsNorm(x, T, H, model.finalNorm, c.rmsNormEps);
  const logits = await lmHeadLogits(model, finalHidden.subarray((T - 1) * H, T * H));
  return { logits, hidden, finalHidden };
}
