/**
 * Uploads a checkpoint's weights to the GPU, streaming each tensor in slices (at most 64 MiB per
 * writeBuffer) so no multi-GB file is ever held in memory. Dtypes are kept as stored: f32 as f32,
 * f16/bf16 as packed halves (two per u32, element 2i in the low half, which is exactly the
 * little-endian byte order of the safetensors data, so bytes are copied unchanged).
 *
 * Every tensor's name and shape are checked against the config before anything is uploaded
 * (Hugging Face names, Linear weights stored [out, in]):
 *   model.embed_tokens.weight                          [vocab, hidden]
 *   model.layers.N.input_layernorm.weight              [hidden]
 *   model.layers.N.self_attn.q_proj.weight             [heads * headDim, hidden]   (+ .bias [heads * headDim] on Qwen2)
 *   model.layers.N.self_attn.k_proj.weight / v_proj    [kvHeads * headDim, hidden] (+ .bias [kvHeads * headDim] on Qwen2)
 *   model.layers.N.self_attn.o_proj.weight             [hidden, heads * headDim]
 *   model.layers.N.post_attention_layernorm.weight     [hidden]
 *   model.layers.N.mlp.gate_proj.weight / up_proj      [intermediate, hidden]
 *   model.layers.N.mlp.down_proj.weight                [hidden, intermediate]
 *   model.norm.weight                                  [hidden]
 *   lm_head.weight                                     [vocab, hidden]  (absent/ignored when tied: lmHead === embed)
 * Phi-3 fuses q/k/v and gate/up (split on the GPU after upload, rows in that order):
 *   model.layers.N.self_attn.qkv_proj.weight           [(heads + 2 kvHeads) * headDim, hidden]
 *   model.layers.N.mlp.gate_up_proj.weight             [2 * intermediate, hidden]
 * A checkpoint with layers past num_hidden_layers is refused too (checkCheckpoint), so the config and
 * the tensors agree before anything is allocated. After the upload, one GPU pass counts NaN and Inf
 * values in every weight (shaders/count_nonfinite.wgsl) and a NonFiniteWeightsError names the
 * tensors that hold any, unless the caller passes checkFinite: false.
 * A failure (missing tensor, wrong shape, device error) destroys every buffer created so far.
 */
import type { Gpu } from '../gpu/gpu.ts';
import { BadInputError, GpuOutOfMemoryError, GpuValidationError, NonFiniteWeightsError, ShapeError, TensorTooLargeError, type NonFiniteTensor } from '../gpu/errors.ts';
import { CountNonFiniteKernel, createNonFiniteCounts, readNonFiniteCounts } from '../kernels/count_nonfinite.ts';
import { Tensor, byteSizeOf } from '../tensor.ts';
import { formatName, formatValue } from '../util/format.ts';
import type { ModelConfig } from './config.ts';
import type { Checkpoint, TensorInfo, WeightDType } from './safetensors.ts';

export interface LayerWeights {
  inputNorm: Tensor;
  q: Tensor;
  k: Tensor;
  v: Tensor;
  qBias?: Tensor;
  kBias?: Tensor;
  vBias?: Tensor;
  o: Tensor;
  postNorm: Tensor;
  gate: Tensor;
  up: Tensor;
  down: Tensor;
}

export interface ModelWeights {
  embed: Tensor;
  layers: LayerWeights[];
  finalNorm: Tensor;
  /** The same Tensor as `embed` when the config ties word embeddings. */
  lmHead: Tensor;
  /** Bytes of GPU memory the weights occupy. */
  bytes: number;
  /** Destroys every weight buffer (once). */
  destroy(): void;
}

export type LayerRole = keyof LayerWeights;
/** Phi-3's fused checkpoint tensors, split into q/k/v and gate/up after upload. */
export type FusedRole = 'qkv' | 'gateUp';

export interface ExpectedTensor {
  name: string;
  shape: number[];
  /** Where it goes: 'embed' | 'finalNorm' | 'lmHead', or a layer role (or fused pair) with its layer index. */
  role: 'embed' | 'finalNorm' | 'lmHead' | LayerRole | FusedRole;
  layer?: number;
}

/** The Hugging Face tensor names and shapes a config implies, in load order. */
export function expectedTensors(config: ModelConfig): ExpectedTensor[] {
  const { hiddenSize: h, intermediateSize: inter, numHeads, numKvHeads, headDim, vocabSize } = config;
  const qDim = numHeads * headDim;
  const kvDim = numKvHeads * headDim;
  const out: ExpectedTensor[] = [{ name: 'model.embed_tokens.weight', shape: [vocabSize, h], role: 'embed' }];
  for (let l = 0; l < config.numLayers; l++) {
    const p = `model.layers.${l}.`;
    const add = (suffix: string, shape: number[], role: LayerRole | FusedRole): void => {
      out.push({ name: p + suffix, shape, role, layer: l });
    };
    const fused = config.architecture === 'Phi3ForCausalLM';
    add('input_layernorm.weight', [h], 'inputNorm');
    if (fused) {
      add('self_attn.qkv_proj.weight', [qDim + 2 * kvDim, h], 'qkv');
    } else {
      add('self_attn.q_proj.weight', [qDim, h], 'q');
      add('self_attn.k_proj.weight', [kvDim, h], 'k');
      add('self_attn.v_proj.weight', [kvDim, h], 'v');
    }
    if (config.attentionBias) {
      add('self_attn.q_proj.bias', [qDim], 'qBias');
      add('self_attn.k_proj.bias', [kvDim], 'kBias');
      add('self_attn.v_proj.bias', [kvDim], 'vBias');
    }
    add('self_attn.o_proj.weight', [h, qDim], 'o');
    add('post_attention_layernorm.weight', [h], 'postNorm');
    if (fused) {
      add('mlp.gate_up_proj.weight', [2 * inter, h], 'gateUp');
    } else {
      add('mlp.gate_proj.weight', [inter, h], 'gate');
      add('mlp.up_proj.weight', [inter, h], 'up');
    }
    add('mlp.down_proj.weight', [h, inter], 'down');
  }
  out.push({ name: 'model.norm.weight', shape: [h], role: 'finalNorm' });
  if (!config.tieWordEmbeddings) out.push({ name: 'lm_head.weight', shape: [vocabSize, h], role: 'lmHead' });
  return out;
}

/** GPU bytes of all weights if stored in `dtype` (tied embeddings counted once); for memory planning. */
export function weightsBytes(config: ModelConfig, dtype: WeightDType): number {
  let total = 0;
  for (const t of expectedTensors(config)) total += byteSizeOf(t.shape, dtype);
  return total;
}

/** Largest slice handed to one writeBuffer (and held in host memory at once). */
export const UPLOAD_SLICE_BYTES = 64 * 1024 * 1024;
/** Slices read ahead of the upload: host memory holds at most this many + 1 slices. */
const PREFETCH_SLICES = 2;
/** Waits for the queue after this many uploaded bytes, so staging memory stays bounded. */
const FLUSH_EVERY_BYTES = 256 * 1024 * 1024;

export interface LoadProgress {
  loadedBytes: number;
  totalBytes: number;
  /** The tensor being uploaded. */
  tensor: string;
}

export interface LoadWeightsOptions {
  onProgress?: (p: LoadProgress) => void;
  /** Slice size for streaming (multiple of 4, at most UPLOAD_SLICE_BYTES); tests use small ones. */
  sliceBytes?: number;
  /** Count NaN and Inf values on the GPU after the upload and refuse weights that hold any (NonFiniteWeightsError). Default true. */
  checkFinite?: boolean;
}

export interface CheckedTensor {
  expected: ExpectedTensor;
  info: TensorInfo;
}

const LAYER_NAME = /^model\.layers\.(\d+)\./;

/**
 * Checks a checkpoint against a config without touching the GPU: every tensor the config implies
 * is there with that shape (ShapeError or BadInputError naming it), and no tensor belongs to a
 * layer past num_hidden_layers (a config that undercounts the layers would otherwise load a
 * truncated model). The config's numbers are bounded by parseModelConfig, so the loops are too.
 */
export function checkCheckpoint(checkpoint: Checkpoint, config: ModelConfig): CheckedTensor[] {
  for (const name of checkpoint.names()) {
    const m = LAYER_NAME.exec(name);
    if (m && Number(m[1]) >= config.numLayers) {
      throw new ShapeError(`${formatName(name)}: the checkpoint has layer ${formatName(m[1]!, 20)} but the config has ${config.numLayers} layers (num_hidden_layers)`);
    }
  }
  return expectedTensors(config).map((e) => {
    const info = checkpoint.info(e.name);
    if (!sameShape(info.shape, e.shape)) {
      throw new ShapeError(`${e.name}: checkpoint shape ${formatValue(info.shape)} does not match the config, which implies [${e.shape.join(', ')}]`);
    }
    return { expected: e, info };
  });
}

/**
 * A weight buffer (storage, copy source and destination), recorded in `created` (freed on failure);
 * out-of-memory and validation errors become typed errors naming the tensor.
 */
async function createWeightBuffer(gpu: Gpu, size: number, label: string, created: GPUBuffer[]): Promise<GPUBuffer> {
  gpu.check();
  const device = gpu.device;
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  const buffer = device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC, label });
  const validation = device.popErrorScope();
  const oom = device.popErrorScope();
  created.push(buffer);
  const [vErr, oErr] = await gpu.guard(Promise.all([validation, oom]));
  if (oErr) throw new GpuOutOfMemoryError(`out of GPU memory allocating ${label} (${size} bytes): ${oErr.message}`);
  if (vErr) throw new GpuValidationError(`allocating ${label} (${size} bytes): ${vErr.message}`);
  return buffer;
}

/**
 * Splits Phi-3's fused per-layer tensors (qkv -> q, k, v; gateUp -> gate, up) into tensors of
 * their own by copying row ranges on the GPU, then frees the fused buffers. `created` tracks every
 * live weight buffer (for cleanup on failure).
 */
async function splitFused(gpu: Gpu, config: ModelConfig, byRole: Map<string, Tensor>, created: GPUBuffer[]): Promise<void> {
  const device = gpu.device;
  const qDim = config.numHeads * config.headDim;
  const kvDim = config.numKvHeads * config.headDim;
  const inter = config.intermediateSize;
  for (let l = 0; l < config.numLayers; l++) {
    for (const [fusedRole, parts] of [
      ['qkv', [['q', qDim], ['k', kvDim], ['v', kvDim]]],
      ['gateUp', [['gate', inter], ['up', inter]]],
    ] as const) {
      const src = byRole.get(`${l}.${fusedRole}`)!;
      const rowBytes = src.byteLength / src.shape[0]!;
      if (!Number.isInteger(rowBytes) || rowBytes % 4 !== 0) {
        throw new ShapeError(`${src.label}: rows of ${src.shape[1]} ${src.dtype} values are not whole 4-byte words; fused Phi-3 weights need an even hidden_size`);
      }
      const enc = device.createCommandEncoder({ label: `split ${src.label}` });
      let row = 0;
      for (const [role, rows] of parts) {
        const buffer = await createWeightBuffer(gpu, rows * rowBytes, `${src.label}:${role}`, created);
        enc.copyBufferToBuffer(src.buffer, row * rowBytes, buffer, 0, rows * rowBytes);
        byRole.set(`${l}.${role}`, new Tensor(buffer, [rows, src.shape[1]!], src.dtype, 0, `${src.label}:${role}`));
        row += rows;
      }
      device.queue.submit([enc.finish()]);
      await gpu.sync();
      created.splice(created.indexOf(src.buffer), 1);
      src.buffer.destroy();
      byRole.delete(`${l}.${fusedRole}`);
    }
  }
}

/**
 * NaN / Inf counts of uploaded weights: one dispatch per tensor into its own slot of one counts
 * buffer, one submit, one readback of 8 bytes per tensor. Returns the tensors that hold any.
 */
async function findNonFinite(gpu: Gpu, tensors: readonly Tensor[]): Promise<NonFiniteTensor[]> {
  const kernels = new Map<string, CountNonFiniteKernel>();
  for (const t of tensors) {
    if (!kernels.has(t.dtype)) kernels.set(t.dtype, await CountNonFiniteKernel.create(gpu, t.dtype as WeightDType));
  }
  const counts = createNonFiniteCounts(gpu, tensors.length);
  try {
    const batch = gpu.batch({ label: 'weights: NaN/Inf check' });
    tensors.forEach((t, slot) => kernels.get(t.dtype)!.encode(batch, t, counts, slot));
    await batch.submit();
    const found = readNonFiniteCounts(await gpu.read(counts));
    return tensors.flatMap((t, i) => (found[i]!.count > 0 ? [{ name: t.label, shape: t.shape, count: found[i]!.count, firstIndex: found[i]!.first }] : []));
  } finally {
    gpu.release(counts);
  }
}

/** Where an uploaded tensor is kept until the layers are assembled: 'embed', or '3.q' for layer 3's q. */
function roleKey(e: ExpectedTensor): string {
  return e.layer === undefined ? e.role : `${e.layer}.${e.role}`;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export async function loadWeights(gpu: Gpu, checkpoint: Checkpoint, config: ModelConfig, options: LoadWeightsOptions = {}): Promise<ModelWeights> {
  const slice = options.sliceBytes ?? UPLOAD_SLICE_BYTES;
  if (!Number.isInteger(slice) || slice <= 0 || slice % 4 !== 0 || slice > UPLOAD_SLICE_BYTES) {
    throw new BadInputError(`loadWeights: sliceBytes must be a positive multiple of 4 up to ${UPLOAD_SLICE_BYTES}, got ${slice}`);
  }
  // Check names, shapes and sizes of everything before uploading anything.
  const limit = Math.min(gpu.caps.limits.maxStorageBufferBindingSize, gpu.caps.limits.maxBufferSize);
  const plan = checkCheckpoint(checkpoint, config).map(({ expected: e, info }) => {
    const bytes = byteSizeOf(e.shape, info.dtype);
    if (bytes > limit) throw new TensorTooLargeError(bytes, limit, `weight ${e.name} [${e.shape.join(', ')}] ${info.dtype}`);
    return { e, info, bytes };
  });
  const totalBytes = plan.reduce((a, p) => a + p.info.byteLength, 0);

  const device = gpu.device;
  const created: GPUBuffer[] = [];
  const destroyAll = (): void => {
    for (const b of created) b.destroy();
    created.length = 0;
  };
  let loadedBytes = 0;
  let sinceFlush = 0;
  const byRole = new Map<string, Tensor>();
  // Every slice of every tensor, in order; reads run up to PREFETCH_SLICES ahead of the uploads so
  // disk or network time overlaps with writeBuffer.
  const jobs: { p: (typeof plan)[number]; off: number; len: number }[] = [];
  for (const p of plan) for (let off = 0; off < p.info.byteLength; off += slice) jobs.push({ p, off, len: Math.min(slice, p.info.byteLength - off) });
  const inflight: Promise<Uint8Array>[] = [];
  let nextRead = 0;
  const issueReads = (): void => {
    while (inflight.length < PREFETCH_SLICES && nextRead < jobs.length) {
      const j = jobs[nextRead++]!;
      const read = checkpoint.readRange(j.p.e.name, j.off, j.len);
      read.catch(() => undefined); // observed when awaited; this only silences reads abandoned by a failure
      inflight.push(read);
    }
  };
  try {
    let buffer: GPUBuffer | undefined;
    for (const { p, off, len } of jobs) {
      const { e, info, bytes } = p;
      issueReads();
      if (off === 0) {
        buffer = await createWeightBuffer(gpu, bytes, e.name, created);
        byRole.set(roleKey(e), new Tensor(buffer, e.shape, info.dtype, 0, e.name));
      }
      let data = await inflight.shift()!;
      if (data.byteLength !== len) throw new BadInputError(`${e.name}: read ${data.byteLength} bytes at ${off}, expected ${len}`);
      if (len % 4 !== 0) {
        // Only the last slice of an odd-length half tensor: pad to whole u32 words.
        const padded = new Uint8Array(Math.ceil(len / 4) * 4);
        padded.set(data);
        data = padded;
      }
      device.queue.writeBuffer(buffer!, off, data.buffer, data.byteOffset, data.byteLength);
      loadedBytes += len;
      sinceFlush += len;
      options.onProgress?.({ loadedBytes, totalBytes, tensor: e.name });
      if (sinceFlush >= FLUSH_EVERY_BYTES) {
        sinceFlush = 0;
        await gpu.sync();
      }
    }
    await gpu.sync();
    if (options.checkFinite !== false) {
      const bad = await findNonFinite(gpu, plan.map((p) => byRole.get(roleKey(p.e))!));
      if (bad.length) throw new NonFiniteWeightsError(bad);
    }
    if (config.architecture === 'Phi3ForCausalLM') await splitFused(gpu, config, byRole, created);
  } catch (err) {
    destroyAll();
    throw err;
  }

  const get = (key: string): Tensor => byRole.get(key)!;
  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    const w: LayerWeights = {
      inputNorm: get(`${l}.inputNorm`),
      q: get(`${l}.q`),
      k: get(`${l}.k`),
      v: get(`${l}.v`),
      o: get(`${l}.o`),
      postNorm: get(`${l}.postNorm`),
      gate: get(`${l}.gate`),
      up: get(`${l}.up`),
      down: get(`${l}.down`),
    };
    if (config.attentionBias) {
      w.qBias = get(`${l}.qBias`);
      w.kBias = get(`${l}.kBias`);
      w.vBias = get(`${l}.vBias`);
    }
    layers.push(w);
  }
  const embed = get('embed');
  const bytes = created.reduce((a, b) => a + b.size, 0);
  return {
    embed,
    layers,
    finalNorm: get('finalNorm'),
    lmHead: config.tieWordEmbeddings ? embed : get('lmHead'),
    bytes,
    destroy: destroyAll,
  };
}
