// MInference pattern configs and CLI pattern strings (src/attention/config.ts); no GPU.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import { describe, expect, it } from 'vitest';
import {
  defaultPatterns,
  entryFromPattern,
  formatPatternConfig,
  patternConfigFromTable,
  loadPatternConfig,
  parsePatternString,
  PatternConfigError,
  MINFERENCE_BLOCK_SPARSE_TOP_K,
} from '../src/attention/config.ts';
import { BadInputError } from '../src/gpu/errors.ts';
import type { Pattern } from '../src/attention/types.ts';

// A 2-layer, 3-head config written exactly as MInference's *_best_pattern.json files are.
const CONFIG = `[{"0": ["vertical_and_slash", 1000, 6096, 336], "1": ["stream_llm", 100, 800, 0.96484375], "2": ["vertical_and_slash", 3500, 100, 0.5]},
 {"2": ["block_sparse", 30, 800, 0.1], "0": ["vertical_and_slash", 30, 800, 12], "1": ["vertical_and_slash", 9192, 14288, 0.6920984983444214]}]`;

function problemOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(PatternConfigError);
    expect(e).toBeInstanceOf(BadInputError);
    return (e as PatternConfigError).problem;
  }
  throw new Error('expected a PatternConfigError');
}

describe('loadPatternConfig', () => {
  it('maps every MInference type per layer and head', () => {
    const p = loadPatternConfig(CONFIG, { layers: 2, heads: 3 });
    expect(p).toEqual([
      [
        { type: 'vertical_and_slash', verticalSize: 1000, slashSize: 6096 },
        { type: 'stream_llm', nInit: 100, nLocal: 800 },
        { type: 'vertical_and_slash', verticalSize: 3500, slashSize: 100 },
      ],
      [
        { type: 'vertical_and_slash', verticalSize: 30, slashSize: 800 },
        { type: 'vertical_and_slash', verticalSize: 9192, slashSize: 14288 },
        { type: 'block_sparse', topK: MINFERENCE_BLOCK_SPARSE_TOP_K },
      ],
    ]);
    // Parsed JSON works the same as text.
    expect(loadPatternConfig(JSON.parse(CONFIG), { layers: 2, heads: 3 })).toEqual(p);
  });

  it('rejects unknown types', () => {
    expect(problemOf(() => loadPatternConfig('[{"0": ["triangle", 1, 2, 0]}]', { layers: 1, heads: 1 }))).toBe('unknown_type');
  });

  it('rejects layer and head counts that differ from the model', () => {
    expect(problemOf(() => loadPatternConfig(CONFIG, { layers: 3, heads: 3 }))).toBe('layer_count');
    expect(problemOf(() => loadPatternConfig(CONFIG, { layers: 2, heads: 2 }))).toBe('head_count'); // head 2 out of range
    expect(problemOf(() => loadPatternConfig(CONFIG, { layers: 2, heads: 4 }))).toBe('head_count'); // head 3 missing
    const filled = loadPatternConfig(CONFIG, { layers: 2, heads: 4 }, { allowMissingHeads: true });
    expect(filled[0]![3]).toEqual({ type: 'vertical_and_slash', verticalSize: 1000, slashSize: 6096 });
  });

  it('rejects malformed entries', () => {
    const m = { layers: 1, heads: 1 };
    for (const bad of [
      'not json',
      '{"0": ["vertical_and_slash", 1, 2, 3]}',
      '[["vertical_and_slash", 1, 2, 3]]',
      '[{"0": "vertical_and_slash"}]',
      '[{"0": ["vertical_and_slash", 1]}]',
      '[{"0": ["vertical_and_slash", -1, 2, 0]}]',
      '[{"0": ["vertical_and_slash", 1.5, 2, 0]}]',
      '[{"0": ["vertical_and_slash", 1, 2, "x"]}]',
      '[{"0": [7, 1, 2, 0]}]',
      '[{"x": ["vertical_and_slash", 1, 2, 0]}]',
      '[{"00": ["vertical_and_slash", 1, 2, 0]}]',
    ]) {
      expect(problemOf(() => loadPatternConfig(bad, m)), bad).toBe('malformed');
    }
  });

  it('default is Vertical-Slash (1000, 6096) everywhere', () => {
    const d = defaultPatterns({ layers: 2, heads: 2 });
    expect(d.flat()).toHaveLength(4);
    for (const p of d.flat()) expect(p).toEqual({ type: 'vertical_and_slash', verticalSize: 1000, slashSize: 6096 });
  });
});

describe('patternConfigFromTable / formatPatternConfig (the search writes MInference configs)', () => {
  const table: Pattern[][] = [
    [
      { type: 'vertical_and_slash', verticalSize: 66, slashSize: 4506 },
      { type: 'stream_llm', nInit: 1024, nLocal: 4096 },
      { type: 'block_sparse', topK: 100 },
    ],
    [
      { type: 'block_sparse', topK: 100 },
      { type: 'vertical_and_slash', verticalSize: 3000, slashSize: 200 },
      { type: 'vertical_and_slash', verticalSize: 30, slashSize: 2048 },
    ],
  ];

  it('writes four-value entries under string head keys, and loads back unchanged', () => {
    const scores = [
      [0.91, 0.5, 0.75],
      [1, 0.25, 0.125],
    ];
    const json = patternConfigFromTable(table, scores);
    expect(json[0]!['1']).toEqual(['stream_llm', 1024, 4096, 0.5]);
    expect(json[1]!['0']).toEqual(['block_sparse', 100, 0, 1]);
    for (const layer of json) for (const entry of Object.values(layer)) expect(entry).toHaveLength(4);
    const text = formatPatternConfig(json);
    expect(JSON.parse(text)).toEqual(json);
    expect(loadPatternConfig(text, { layers: 2, heads: 3 })).toEqual(table);
  });

  it('block_sparse entries run top-100 (MInference), or the top_k the caller names', () => {
    const small: Pattern[][] = [[{ type: 'block_sparse', topK: 3 }, { type: 'stream_llm', nInit: 32, nLocal: 256 }]];
    const text = formatPatternConfig(patternConfigFromTable(small));
    expect(loadPatternConfig(text, { layers: 1, heads: 2 })[0]![0]).toEqual({ type: 'block_sparse', topK: MINFERENCE_BLOCK_SPARSE_TOP_K });
    expect(loadPatternConfig(text, { layers: 1, heads: 2 }, { blockSparseTopK: 3 })).toEqual(small);
    expect(problemOf(() => loadPatternConfig(text, { layers: 1, heads: 2 }, { blockSparseTopK: 0 }))).toBe('malformed');
  });

  it('refuses what the format cannot hold', () => {
    expect(problemOf(() => entryFromPattern({ type: 'dense' }))).toBe('unknown_type');
    expect(problemOf(() => entryFromPattern({ type: 'block_sparse', topK: 4 }, NaN))).toBe('malformed');
  });
});

/**
 * MInference's published configs (minference/configs/*.json of github.com/microsoft/MInference),
 * when MINFERENCE_CONFIGS names a folder holding them: each must load for its model's shape. The
 * files are not copied into this repository.
 */
describe('MInference published configs', () => {
  const dir = process.env.MINFERENCE_CONFIGS;
  // layers x query heads of the models the files are for (their config.json).
  const SHAPES: [RegExp, number, number][] = [
    [/^GLM_4_9B/, 40, 32],
    [/^Llama_3\.1_70B|^Llama_3_70B/, 80, 64],
    [/^Llama_3\.1_8B|^Llama_3_8B/, 32, 32],
    [/^Phi_3_mini/, 32, 32],
    [/^Qwen2\.5_14B/, 48, 40],
    [/^Qwen2\.5_32B/, 64, 40],
    [/^Qwen2\.5_72B/, 80, 64],
    [/^Qwen2\.5_7B|^Qwen2_7B/, 28, 28],
    [/^Yi_9B/, 48, 32],
  ];
  it.skipIf(!dir || !existsSync(dir))('every file loads for its model shape', () => {
    const files = readdirSync(dir!).filter((f) => f.endsWith('.json'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const shape = SHAPES.find(([re]) => re.test(f));
      expect(shape, `no model shape known for ${f}`).toBeDefined();
      const [, layers, heads] = shape!;
      const patterns = loadPatternConfig(readFileSync(join(dir!, f), 'utf8'), { layers, heads });
      expect(patterns.flat()).toHaveLength(layers * heads);
      // Written back by our writer, each loads to the same patterns.
      expect(loadPatternConfig(formatPatternConfig(patternConfigFromTable(patterns)), { layers, heads }), f).toEqual(patterns);
    }
  });
});

describe('parsePatternString', () => {
  it('parses each form', () => {
    expect(parsePatternString('dense')).toEqual({ type: 'dense' });
    expect(parsePatternString(' ["vertical_and_slash", 1000, 6096] ')).toEqual({ type: 'vertical_and_slash', verticalSize: 1000, slashSize: 6096 });
    expect(parsePatternString('["stream_llm", 64, 1024]')).toEqual({ type: 'stream_llm', nInit: 64, nLocal: 1024 });
    expect(parsePatternString('["block_sparse", 32]')).toEqual({ type: 'block_sparse', topK: 32 });
  });

  it('rejects bad strings with typed errors', () => {
    expect(problemOf(() => parsePatternString('["a_shape", 1, 2]'))).toBe('unknown_type');
    for (const bad of ['sparse', '[]', '["block_sparse"]', '["block_sparse", 0]', '["block_sparse", 1, 2]', '["stream_llm", 1]', '["vertical_and_slash", 1, -2]', '["vertical_and_slash", 0, 0]', '[1, 2]']) {
      expect(problemOf(() => parsePatternString(bad)), bad).toBe('malformed');
    }
  });
});
