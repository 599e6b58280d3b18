/**
 * Decode speed: tokens per second after a prompt of a given length, Llama-3.2-1B shape with random
 * bf16 weights (as the prefill suite makes them), greedy, stop tokens off. Decode attention is
 * dense over the whole KV cache, so the prompt is prefilled with A-shape attention (its cost does
 * not matter here, only the context it leaves). Variants:
 *   replay   decode steps recorded once per run and replayed, one-row decode attention, greedy on the
 *            GPU with two steps in flight (the defaults: each step's token is read back while the
 *            next one runs)
 *   serial   replay, but each step awaited before the next is submitted (submitAhead: 1; before
 *            steps overlapped)
 *   tiles    replayed, decode attention on the prefill kernel's 64-row tiles with a key split
 *            (decodeAttention: 'tiles'; before the one-row kernel)
 *   encode   every step encoded afresh, a bind group per dispatch (replayDecode: false; before replay)
 *   profile  encoded afresh with a timestamp query around every dispatch (each in its own pass, so
 *            slower than encode): GPU time per step summed over dispatches, and the costliest ones
 * Rows: kernel 'decode', shape {model, context}, median_ms per token, tok_per_s, host_ms_per_step
 * (JavaScript encode time per step). Sizes "1b:4k", "1b:128k" (quick: a tiny model at 256), and
 * "only:<variant>" entries to run some variants alone.
 */
import { parseModelConfig } from '../../src/model/config.ts';
import { LlamaRunner } from '../../src/model/executor.ts';
import type { Pattern } from '../../src/attention/types.ts';
import type { RunReport } from '../../src/model/report.ts';
import { median, type BenchContext, type BenchRow, type BenchSuite } from '../harness.ts';
import { MODELS, randomWeights, TINY } from './prefill.ts';

const SIZES = [
  { model: 'llama-3.2-1b', context: 4096, label: '1b:4k' },
  { model: 'llama-3.2-1b', context: 131072, label: '1b:128k' },
];
const QUICK = [{ model: 'tiny', context: 256, label: 'tiny:256' }];
const NEW_TOKENS = 33;

export const decodeSuite: BenchSuite = {
  name: 'decode',
  description: 'decode tokens/s after 4K and 128K tokens of context (Llama-3.2-1B shape): one-row vs tiled decode attention, replayed vs freshly encoded steps',
  async run(ctx: BenchContext): Promise<BenchRow[]> {
    const rows: BenchRow[] = [];
    const sizes = ctx.options.quick ? QUICK : SIZES.filter((s) => ctx.wantSize(s.label));
    // "only:<variant>" entries in --sizes pick variants.
    const only = (ctx.options.sizes ?? []).filter((s) => s.startsWith('only:')).map((s) => s.slice(5));
    if (sizes.length === 0) return rows;
    const model = sizes[0]!.model;
    const config = parseModelConfig(model === 'tiny' ? TINY : { ...MODELS[model], max_position_embeddings: 1 << 20 });
    const weights = await randomWeights(ctx.gpu, config);
    const ashape: Pattern[][] = Array.from({ length: config.numLayers }, () => Array.from({ length: config.numHeads }, (): Pattern => ({ type: 'stream_llm', nInit: 128, nLocal: 1024 })));
    try {
      for (const size of sizes) {
        const ids = new Uint32Array(size.context);
        for (let i = 0; i < ids.length; i++) ids[i] = (Math.imul(i + 1, 2654435761) >>> 0) % config.vocabSize;
        for (const variant of ctx.options.quick ? ['replay', 'serial', 'tiles', 'encode'] : ['replay', 'serial', 'tiles', 'encode', 'profile']) {
          if (variant === 'profile' && !ctx.gpu.caps.timestamps) continue;
          if (only.length && !only.includes(variant)) continue;
          const runner = await LlamaRunner.create(ctx.gpu, {
            config,
            weights,
            kvDType: 'f16',
            attentionConfig: ashape,
            denseBelow: 0,
            replayDecode: variant === 'replay' || variant === 'serial' || variant === 'tiles',
            submitAhead: variant === 'serial' ? 1 : undefined,
            profile: variant === 'profile',
            decodeAttention: variant === 'tiles' ? 'tiles' : 'row',
          });
          try {
            const perToken: number[] = [];
            const host: number[] = [];
            let gpu: RunReport['decodeGpu'];
            for (let r = 0; r < (ctx.options.quick ? 1 : 2); r++) {
              const g = await runner.generate(ids, { maxNewTokens: NEW_TOKENS, stopTokens: [], allowLongPrompt: true });
              perToken.push(g.report.decodeMs / (g.tokens.length - 1));
              host.push(g.report.hostMs?.perDecodeStep ?? 0);
              gpu = g.report.decodeGpu;
            }
            const ms = median(perToken);
            const row: BenchRow = { kernel: 'decode', variant, shape: { model, context: size.context }, median_ms: ms, tok_per_s: 1000 / ms, host_ms_per_step: median(host), new_tokens: NEW_TOKENS, reps: perToken.length };
            if (gpu) Object.assign(row, { gpu_ms_per_step: gpu.gpuMsPerStep, top_dispatches: gpu.top });
            rows.push(row);
            ctx.log.info(`decode ${model} ${size.context} ${variant}: ${(1000 / ms).toFixed(1)} tok/s (host ${median(host).toFixed(2)} ms/step)`);
            if (gpu) ctx.log.info(`  GPU ${gpu.gpuMsPerStep.toFixed(3)} ms/step; ${gpu.top.map((t) => `${t.label}: ${t.msPerStep.toFixed(3)} ms x${t.dispatchesPerStep}`).join('; ')}`);
          } finally {
            runner.destroy();
          }
        }
      }
    } finally {
      weights.destroy();
    }
    return rows;
  },
};
