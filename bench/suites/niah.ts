/**
 * The trained model on real attention (models/needle-reader): needle-in-a-haystack accuracy over
 * prompt lengths x needle depths for dense attention and MInference's patterns on every head, and
 * from the same runs the end-to-end prefill time, decode speed and the density Vertical-Slash kept.
 *
 * Grids, in this order (each one's results are written as soon as it finishes):
 *   dense    every head dense
 *   vs       MInference's default, Vertical-Slash (1000, 6096)
 *   ashape   A-shape (128 sink + 4096 local)
 *   bs       Block-Sparse, top-100 blocks
 *   searched the model folder's minference_config.json (the pattern search's per-head choice)
 * Sparse patterns run at every length (denseBelow 0). Sizes: lengths ("4k", "128k", ...; default
 * 4k,8k,16k,32k,64k,128k) and "only:<grid>" entries. Environment: NIAH_MODEL (default
 * models/needle-reader), NIAH_HAYSTACK (default demo/assets/brown-heldout.txt), NIAH_DEPTHS (default
 * 11), BENCH_ARTIFACTS (a folder for niah-<grid>.json and niah.svg).
 *
 * Rows: kernel 'niah' (accuracy per length), 'prefill' (variant dense / sparse / sparse-ashape /
 * sparse-bs, shape {model, tokens}: median prefill over the depths), 'decode' (shape {model,
 * context}: tok_per_s), 'density' (Vertical-Slash: mean and spread over layers and heads).
 */
import process from 'node:process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openLocalModel } from '../../src/model/source.ts';
import { openModel, type AttentionConfigInput } from '../../src/model/session.ts';
import { evenDepths, formatNiahTable, modelTokenCounter, runNiah, type NiahGrid } from '../../src/eval/niah.ts';
import { NeedleDocumentBuilder } from '../../src/eval/needle.ts';
import { niahHeatmapsSvg } from '../../src/eval/heatmap.ts';
import { median, type BenchRow, type BenchSuite } from '../harness.ts';

/** `config: 'searched'` is the model folder's minference_config.json (its searched per-head patterns). */
const GRIDS: { name: string; variant: string; label: string; config: AttentionConfigInput | 'searched' }[] = [
  { name: 'dense', variant: 'dense', label: 'dense', config: 'dense' },
  { name: 'vs', variant: 'sparse', label: 'vertical_and_slash (1000, 6096)', config: { type: 'vertical_and_slash', verticalSize: 1000, slashSize: 6096 } },
  { name: 'ashape', variant: 'sparse-ashape', label: 'A-shape (128, 4096)', config: { type: 'stream_llm', nInit: 128, nLocal: 4096 } },
  { name: 'bs', variant: 'sparse-bs', label: 'block_sparse (100)', config: { type: 'block_sparse', topK: 100 } },
  { name: 'searched', variant: 'sparse-searched', label: 'searched config (minference_config.json)', config: 'searched' },
];
const LENGTHS: [string, number][] = [['4k', 4096], ['8k', 8192], ['16k', 16384], ['32k', 32768], ['64k', 65536], ['128k', 131072]];

/** Mean, 10th and 90th percentile, min and max of a list. */
function spread(xs: number[]): Record<string, number> {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { mean: s.reduce((a, b) => a + b, 0) / s.length, p10: at(0.1), p90: at(0.9), min: s[0]!, max: s[s.length - 1]! };
}

export const niahSuite: BenchSuite = {
  name: 'niah',
  description: 'trained model: needle accuracy per length and depth, dense vs sparse; prefill, decode and density from the same runs',
  async run(ctx) {
    const modelDir = process.env.NIAH_MODEL ?? 'models/needle-reader';
    const haystack = await readFile(process.env.NIAH_HAYSTACK ?? 'demo/assets/brown-heldout.txt', 'utf8');
    const artifacts = process.env.BENCH_ARTIFACTS;
    const depths = evenDepths(Number(process.env.NIAH_DEPTHS ?? (ctx.options.quick ? 2 : 11)));
    const lengths = (ctx.options.quick ? [['1k', 1024] as [string, number]] : LENGTHS).filter(([label]) => ctx.wantSize(label)).map(([, n]) => n);
    const only = (ctx.options.sizes ?? []).filter((s) => s.startsWith('only:')).map((s) => s.slice(5));
    const grids = GRIDS.filter((g) => only.length === 0 || only.includes(g.name));
    const model = await openModel(ctx.gpu, await openLocalModel(modelDir), { attentionConfig: 'dense' });
    const name = modelDir.replace(/\/+$/, '').replace(/^.*\//, '');
    const builder = new NeedleDocumentBuilder(haystack, modelTokenCounter(model));
    const rows: BenchRow[] = [];
    const done: NiahGrid[] = [];
    if (artifacts) await mkdir(artifacts, { recursive: true });
    try {
      for (const g of grids) {
        model.setAttention(g.config === 'searched' ? await readFile(join(modelDir, 'minference_config.json'), 'utf8') : g.config, 0);
        const grid = await runNiah(model, haystack, {
          lengths,
          depths,
          label: g.label,
          builder,
          maxNewTokens: 24,
          onCase: (c, n, total) =>
            ctx.log.info(`niah ${g.name} ${n}/${total}: ${c.length} tokens depth ${Math.round(c.depth * 100)}% ${c.correct ? 'right' : 'WRONG'} prefill ${c.prefillMs.toFixed(0)} ms kept ${(c.density * 100).toFixed(1)}%`),
        });
        done.push(grid);
        for (const L of lengths) {
          const cases = grid.cases.filter((c) => c.length === L);
          const prefill = median(cases.map((c) => c.prefillMs));
          const decoded = cases.filter((c) => c.generatedTokens > 1 && c.decodeMs > 0);
          rows.push({ kernel: 'niah', variant: g.variant, shape: { model: name, tokens: L }, median_ms: prefill, accuracy: grid.accuracy[L], depths: depths.length, pattern: g.label, mean_density: spread(cases.map((c) => c.density)).mean });
          rows.push({ kernel: 'prefill', variant: g.variant, shape: { model: name, tokens: L }, median_ms: prefill, min_ms: Math.min(...cases.map((c) => c.prefillMs)), tok_s: (L / prefill) * 1000, pattern: g.label, reps: cases.length });
          if (decoded.length) {
            // The first answer token comes from the prefill logits: decode steps = tokens - 1.
            const perToken = median(decoded.map((c) => c.decodeMs / (c.generatedTokens - 1)));
            rows.push({ kernel: 'decode', variant: g.variant, shape: { model: name, context: L }, median_ms: perToken, tok_per_s: 1000 / perToken, reps: decoded.length });
          }
          if (g.name === 'vs') {
            const heads = cases.flatMap((c) => c.densityPerHead?.flat() ?? []);
            if (heads.length) rows.push({ kernel: 'density', variant: g.variant, shape: { model: name, tokens: L }, median_ms: NaN, ...spread(heads), per_layer: cases[0]?.densityPerHead?.map((l) => spread(l).mean) });
          }
        }
        if (artifacts) {
          await writeFile(join(artifacts, `niah-${g.name}.json`), JSON.stringify(grid, null, 1));
          await writeFile(join(artifacts, 'niah.svg'), niahHeatmapsSvg(done));
        }
      }
    } finally {
      model.close();
    }
    if (done.length) ctx.log.info(`\n${formatNiahTable(done)}`);
    return rows;
  },
};
