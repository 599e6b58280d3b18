// The tensor-core attention variants cannot be read by the reflection parser (wgsl_reflect), so their
// bind group layout is reflected from an f32 variant (src/attention/dense.ts sgReflectDefines), and
// they never compile on the software adapters. This checks, without a GPU, that every binding a
// tensor-core variant's entry point uses is in that layout: the variant's text is reflected with the
// subgroup-matrix types and template arguments replaced by plain ones, which keeps its call graph.
import { describe, expect, it } from 'vitest';
import { preprocess } from '../src/shaders/preprocess.ts';
import { reflectEntry } from '../src/gpu/reflect.ts';
import { WGSL_SOURCES } from '../src/shaders/sources.generated.ts';
import { attentionDefines, sgReflectDefines, type KvDType } from '../src/attention/dense.ts';

const lookup = (name: string): string | undefined => WGSL_SOURCES[name];

function bindingsOf(defines: Record<string, number>, readable: boolean): string[] {
  let code = preprocess('attention.wgsl', lookup, defines).code;
  if (readable) {
    code = code
      .replace(/^(enable|diagnostic)[^\n]*$/gm, '')
      .replace(/subgroup_matrix_(left|right|result)<[^>]*>/g, 'f32')
      .replace(/(subgroupMatrix\w+)<\w+>\(/g, '$1(');
  }
  return reflectEntry(code, 'main').bindings.map((b) => `${b.binding}:${b.name}:${b.kind}`);
}

describe('tensor-core attention layouts', () => {
  const cases: { mode: 0 | 1 | 2; D: number; kv: KvDType; stats: boolean }[] = [];
  for (const mode of [0, 1, 2] as const) for (const D of [64, 96, 128]) for (const kv of ['f32', 'f16'] as const) for (const stats of [false, true]) cases.push({ mode, D, kv, stats });
  it.each(cases)('mode $mode, D $D, kv $kv, rescale stats $stats: the reflected layout lists exactly the bindings main uses', ({ mode, D, kv, stats }) => {
    const defines = attentionDefines(mode, D, kv, { bq: 64, bk: 32 }, false, 'sgmatrix', stats);
    const used = bindingsOf(defines, true);
    expect(used.length).toBeGreaterThan(4);
    expect(bindingsOf(sgReflectDefines(defines), false)).toEqual(used);
    if (stats) expect(used.some((b) => b.includes('rescale_stats'))).toBe(true);
  });
});
