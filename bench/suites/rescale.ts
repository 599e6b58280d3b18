/**
 * How often the tensor-core attention kernel's lazy rescale fires (shaders/attention.wgsl, SGMAT:
 * one walk over the keys with a possibly stale row max; O is rescaled only when some row of a
 * 64-row query block passes its max by more than 2^8). Counted by the kernel itself
 * (DenseKernelOptions.rescaleStats) on real attention: the trained model (models/needle-reader)
 * prefills held-out text, and before each layer's attention (PrefillOptions.onLayer) the counting
 * kernel runs dense causal attention over that layer's whole-prompt q, k and v. The attention suite
 * reports the same fraction on its synthetic data.
 *
 * Rows: kernel 'attention.rescale', variant the model's name, shape {tokens}, tiles (key tiles
 * walked, all layers and heads), rescaled, fraction, per_layer (fraction per layer). Sizes: "4k",
 * "32k" (default both; quick: 1k). Needs subgroup matrices (else no rows). Environment: NIAH_MODEL,
 * NIAH_HAYSTACK as the niah suite.
 */
import process from 'node:process';
import { readFile } from 'node:fs/promises';
import { openLocalModel } from '../../src/model/source.ts';
import { openModel } from '../../src/model/session.ts';
import { DenseAttentionKernel, resolveAttentionCompute } from '../../src/attention/dense.ts';
import { Tensor } from '../../src/tensor.ts';
import type { BenchRow, BenchSuite } from '../harness.ts';

const LENGTHS: [string, number][] = [['4k', 4096], ['32k', 32768]];

export const rescaleSuite: BenchSuite = {
  name: 'rescale',
  description: "how often the tensor-core attention's lazy rescale fires on the trained model's real attention",
  async run(ctx) {
    const rows: BenchRow[] = [];
    const modelDir = process.env.NIAH_MODEL ?? 'models/needle-reader';
    const model = await openModel(ctx.gpu, await openLocalModel(modelDir), { attentionConfig: 'dense' });
    try {
      const D = model.config.headDim;
      if (resolveAttentionCompute(ctx.gpu, 'auto', D) !== 'sgmatrix') {
        ctx.log.warn('rescale: the device has no tensor-core attention path; no rows');
        return rows;
      }
      const name = modelDir.replace(/\/+$/, '').replace(/^.*\//, '');
      const text = await readFile(process.env.NIAH_HAYSTACK ?? 'demo/assets/brown-heldout.txt', 'utf8');
      const all = model.tokenizer.encode(text);
      const kernel = await DenseAttentionKernel.create(ctx.gpu, { headDim: D, compute: 'sgmatrix', rescaleStats: true });
      try {
        const lengths = (ctx.options.quick ? [['1k', 1024] as [string, number]] : LENGTHS).filter(([label]) => ctx.wantSize(label));
        for (const [label, n] of lengths) {
          // The held-out text repeated as needed, cut to n tokens.
          const ids = Uint32Array.from({ length: n }, (_, i) => all[i % all.length]!);
          const perLayer: number[] = [];
          let tiles = 0;
          let rescaled = 0;
          const out = ctx.gpu.empty([model.config.numHeads, n, D], 'f32', 'rescale.out');
          try {
            await kernel.readRescaleStats();
            await model.runner.prefill(ids, {
              allowLongPrompt: true,
              onLayer: async (layer) => {
                const b = ctx.gpu.batch({ label: 'rescale' });
                layer.groups.forEach((g, gi) => {
                  const heads = Array.from({ length: g.heads }, (_, h) => h);
                  // The output is only a sink: the group's first heads of one scratch tensor.
                  const o = new Tensor(out.buffer, [g.heads, n, D], 'f32', out.byteOffset, 'rescale.out');
                  kernel.encode(b, layer.q[gi]!, layer.k[gi]!, layer.v[gi]!, o, heads, { qPos0: 0, kvLen: n });
                });
                await b.submit();
                const st = await kernel.readRescaleStats();
                tiles += st.tiles;
                rescaled += st.rescaled;
                perLayer.push(st.tiles ? st.rescaled / st.tiles : 0);
              },
            });
          } finally {
            ctx.gpu.release(out);
          }
          rows.push({ kernel: 'attention.rescale', variant: name, shape: { tokens: n }, median_ms: NaN, tiles, rescaled, fraction: tiles ? rescaled / tiles : 0, per_layer: perLayer });
          ctx.log.info(`rescale ${name} ${label}: ${rescaled} of ${tiles} key tiles rescaled (${((100 * rescaled) / Math.max(1, tiles)).toFixed(3)}%); per layer ${perLayer.map((f) => (100 * f).toFixed(2)).join(' / ')} %`);
        }
      } finally {
        kernel.destroy();
      }
    } finally {
      model.close();
    }
    return rows;
  },
};
