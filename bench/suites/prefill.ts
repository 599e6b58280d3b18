/**
 * End-to-end prefill of random-weight models with real shapes (bf16 weights made on the GPU by
 * src/kernels/fill_random.ts, so no gigabytes cross the bus): a Llama-3.2-1B shape and a Llama-3-8B
 * shape, dense against sparse attention through the executor (src/model/executor.ts).
 *
 * Variants:
 *   dense          every head dense (flash attention).
 *   sparse         MInference's default config: Vertical-Slash (1000, 6096) on every head, estimated
 *                  online from the last 64 queries (denseBelow 0, so it runs at every length).
 *   sparse-ashape  A-shape (128 sink + 4096 local) on every head: a data-independent sparse pattern.
 *   dense-serial   dense, each chunk pass awaited before the next is encoded (submitAhead: 1; before
 *                  the host encoded ahead of the GPU), for the host's share of a prefill
 *   dense-f32attn  dense with f32 attention arithmetic, where the others run on tensor cores
 *                  (attentionCompute 'auto' resolves to 'sgmatrix' when the device has subgroup
 *                  matrices; rows carry `attention_compute`).
 * Caveat stated in every row: on random weights attention has no structure, so Vertical-Slash's top
 * diagonals are spread over the whole sequence and its index covers nearly every block (density in
 * the attention suite's random-data rows is ~1); real checkpoints concentrate attention near the
 * diagonal and on a few columns, which is where MInference's speedup comes from.
 *
 * Sizes are labelled "<model>:<tokens>" (e.g. --sizes 1b:8k,1b:32k,8b:8k); `only:<variant>` entries
 * (e.g. --sizes 8b:128k,only:dense) restrict the variants, so that a long size can be split over runs. Each size runs once for
 * warm-up and 3 timed times (a prefill takes seconds; the harness's 20-repetition rule is for kernels);
 * prompts of 64K+ tokens (32K+ for the 8B shape) run once (minutes each), without the profiled run.
 */
import type { Gpu } from '../../src/gpu/gpu.ts';
import { parseModelConfig, type ModelConfig } from '../../src/model/config.ts';
import { expectedTensors, type LayerRole, type LayerWeights, type ModelWeights } from '../../src/model/weights.ts';
import { LlamaRunner } from '../../src/model/executor.ts';
import { FillRandomKernel } from '../../src/kernels/fill_random.ts';
import type { Pattern } from '../../src/attention/types.ts';
import { defaultPatterns } from '../../src/attention/config.ts';
import { median, minOf, type BenchContext, type BenchRow, type BenchSuite } from '../harness.ts';
import type { Tensor } from '../../src/tensor.ts';

/** Published Llama 3.2 1B and Llama 3 8B shapes (config.json fields as Hugging Face writes them). */
export const MODELS: Record<string, Record<string, unknown>> = {
  'llama-3.2-1b': {
    architectures: ['LlamaForCausalLM'], hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: 16,
    num_attention_heads: 32, num_key_value_heads: 8, head_dim: 64, vocab_size: 128256, rms_norm_eps: 1e-5,
    rope_theta: 500000, max_position_embeddings: 131072, tie_word_embeddings: true, torch_dtype: 'bfloat16',
    rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    bos_token_id: 128000, eos_token_id: 128001,
  },
  'llama-3-8b': {
    architectures: ['LlamaForCausalLM'], hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32,
    num_attention_heads: 32, num_key_value_heads: 8, vocab_size: 128256, rms_norm_eps: 1e-5, rope_theta: 500000,
    max_position_embeddings: 8192, tie_word_embeddings: false, torch_dtype: 'bfloat16', bos_token_id: 128000, eos_token_id: 128001,
  },
};

const SIZES: { model: string; tokens: number; label: string }[] = [
  { model: 'llama-3.2-1b', tokens: 1024, label: '1b:1k' },
  { model: 'llama-3.2-1b', tokens: 4096, label: '1b:4k' },
  { model: 'llama-3.2-1b', tokens: 8192, label: '1b:8k' },
  { model: 'llama-3.2-1b', tokens: 32768, label: '1b:32k' },
  { model: 'llama-3.2-1b', tokens: 131072, label: '1b:128k' },
  { model: 'llama-3.2-1b', tokens: 262144, label: '1b:256k' },
  { model: 'llama-3-8b', tokens: 4096, label: '8b:4k' },
  { model: 'llama-3-8b', tokens: 8192, label: '8b:8k' },
  { model: 'llama-3-8b', tokens: 32768, label: '8b:32k' },
  { model: 'llama-3-8b', tokens: 131072, label: '8b:128k' },
];
const QUICK_SIZES = [{ model: 'tiny', tokens: 96, label: 'tiny:96' }];

export const TINY = {
  architectures: ['LlamaForCausalLM'], hidden_size: 128, intermediate_size: 256, num_hidden_layers: 2, num_attention_heads: 2,
  num_key_value_heads: 1, head_dim: 64, vocab_size: 512, rms_norm_eps: 1e-5, rope_theta: 10000, max_position_embeddings: 4096,
  tie_word_embeddings: true, torch_dtype: 'bfloat16', bos_token_id: 1, eos_token_id: 2,
};

/** Random bf16 weights of the config's shapes, std 1/sqrt(fan_in) for projections, norms near 1. */
export async function randomWeights(gpu: Gpu, config: ModelConfig): Promise<ModelWeights> {
  const fill = await FillRandomKernel.create(gpu);
  const tensors: Tensor[] = [];
  const layers: Partial<LayerWeights>[] = Array.from({ length: config.numLayers }, () => ({}));
  let embed: Tensor | undefined;
  let finalNorm: Tensor | undefined;
  let lmHead: Tensor | undefined;
  let seed = 1;
  for (const e of expectedTensors(config)) {
    const t = gpu.empty(e.shape, 'bf16', e.name);
    tensors.push(t);
    const isNorm = e.shape.length === 1 && !e.name.endsWith('bias');
    // Uniform in [-a, a] has std a/sqrt(3): a = sqrt(3 / fan_in) gives std 1/sqrt(fan_in).
    const fanIn = e.shape.length === 2 ? e.shape[1]! : 1;
    const scale = isNorm ? 0.1 : e.role === 'embed' ? 1 : Math.sqrt(3 / fanIn);
    const b = gpu.batch({ label: 'fill' });
    fill.encode(b, t, { seed: seed++, scale, offset: isNorm ? 1 : 0 });
    await b.submit();
    if (e.role === 'embed') embed = t;
    else if (e.role === 'finalNorm') finalNorm = t;
    else if (e.role === 'lmHead') lmHead = t;
    else layers[e.layer!]![e.role as LayerRole] = t; // the bench's Llama shapes have no fused (Phi-3) tensors
  }
  const bytes = tensors.reduce((s, t) => s + t.byteLength, 0);
  return {
    embed: embed!,
    layers: layers as LayerWeights[],
    finalNorm: finalNorm!,
    lmHead: lmHead ?? embed!,
    bytes,
    destroy: () => gpu.release(...tensors),
  };
}

function patternsFor(variant: string, config: ModelConfig): Pattern[][] | undefined {
  if (variant === 'dense' || variant === 'dense-f32attn' || variant === 'dense-serial') return undefined;
  if (variant === 'sparse') return defaultPatterns({ layers: config.numLayers, heads: config.numHeads });
  return Array.from({ length: config.numLayers }, () => Array.from({ length: config.numHeads }, (): Pattern => ({ type: 'stream_llm', nInit: 128, nLocal: 4096 })));
}

export const prefillSuite: BenchSuite = {
  name: 'prefill',
  description: 'end-to-end prefill of random-weight Llama-3.2-1B / Llama-3-8B shapes, dense vs sparse',
  async run(ctx: BenchContext): Promise<BenchRow[]> {
    const rows: BenchRow[] = [];
    const sizes = ctx.options.quick ? QUICK_SIZES : SIZES.filter((s) => ctx.wantSize(s.label));
    const byModel = new Map<string, typeof sizes>();
    for (const s of sizes) byModel.set(s.model, [...(byModel.get(s.model) ?? []), s]);
    for (const [model, list] of byModel) {
      const config = parseModelConfig(model === 'tiny' ? TINY : { ...MODELS[model], max_position_embeddings: 1 << 20 });
      ctx.log.info(`prefill: making random ${model} weights`);
      const weights = await randomWeights(ctx.gpu, config);
      try {
        for (const size of list) {
          const ids = new Uint32Array(size.tokens);
          for (let i = 0; i < ids.length; i++) ids[i] = (Math.imul(i + 1, 2654435761) >>> 0) % config.vocabSize;
          let denseMs: number | undefined;
          let denseCompute: string | undefined;
          const only = (ctx.options.sizes ?? []).filter((t) => t.startsWith('only:')).map((t) => t.slice(5));
          for (const variant of ['dense', 'sparse', 'sparse-ashape', 'dense-f32attn', 'dense-serial']) {
            if (only.length && !only.includes(variant)) continue;
            const attentionCompute = variant === 'dense-f32attn' ? 'f32' : 'auto';
            const submitAhead = variant === 'dense-serial' ? 1 : undefined;
            const runner = await LlamaRunner.create(ctx.gpu, {
              config, weights, kvDType: 'f16', attentionConfig: patternsFor(variant, config), denseBelow: 0, profile: false, attentionCompute, submitAhead,
            });
            // Without tensor cores 'auto' is f32 already: the f32 row would repeat the dense one.
            if (variant === 'dense-f32attn' && denseCompute === 'f32') {
              runner.destroy();
              continue;
            }
            if (variant === 'dense') denseCompute = runner.attentionCompute;
            // Long prompts (>= 64K tokens; >= 32K for the 8B shape) run once, untimed warm-up and profiled run skipped: a dense
            // 128K prefill takes minutes, and every pipeline is already compiled by create().
            const long = size.tokens >= 65536 || (model === 'llama-3-8b' && size.tokens >= 32768);
            const reps = ctx.options.quick ? 2 : long ? 1 : 3;
            const times: number[] = [];
            for (let r = long ? 1 : 0; r < 1 + reps; r++) {
              const t0 = performance.now();
              await runner.prefill(ids, { allowLongPrompt: true });
              if (r > 0) times.push(performance.now() - t0);
            }
            const report = runner.report;
            runner.destroy();
            let share: Record<string, number> | undefined;
            if (!long && variant !== 'dense-serial') {
              // One profiled run for the time shares (timestamps add a pass per dispatch).
              const profiled = await LlamaRunner.create(ctx.gpu, {
                config, weights, kvDType: 'f16', attentionConfig: patternsFor(variant, config), denseBelow: 0, profile: true, attentionCompute,
              });
              await profiled.prefill(ids, { allowLongPrompt: true });
              share = profiled.report?.gpuShare;
              profiled.destroy();
            }
            const ms = median(times);
            if (variant === 'dense') denseMs = ms;
            rows.push({
              kernel: 'prefill',
              variant,
              attention_compute: report?.attentionCompute,
              shape: { model, tokens: size.tokens },
              median_ms: ms,
              min_ms: minOf(times),
              tok_per_s: size.tokens / (ms / 1000),
              reps,
              speedup_vs_dense: denseMs !== undefined ? denseMs / ms : undefined,
              attention_share: share ? share.attention : undefined,
              estimation_share: share ? share.estimation : undefined,
              matmul_share: share ? share.matmul : undefined,
              peak_gpu_bytes: report?.peakGpuBytes,
              weight_bytes: weights.bytes,
              // JavaScript time encoding the GPU work (src/model/report.ts hostMs), of the last run.
              host_ms_per_chunk_pass: report?.hostMs?.perChunkPass,
              host_ms_prefill: report?.hostMs?.prefillEncode,
              note: 'random weights: attention has no structure, so Vertical-Slash indexes are near-dense',
            });
            ctx.log.info(`prefill ${model} ${size.tokens} ${variant}: ${ms.toFixed(1)} ms (host encode ${report?.hostMs?.prefillEncode.toFixed(1) ?? '?'} ms, ${report?.hostMs?.perChunkPass.toFixed(2) ?? '?'} ms per chunk pass)`);
          }
        }
      } finally {
        weights.destroy();
      }
    }
    return rows;
  },
};
