// MInference pattern configs and CLI pattern strings (src/attention/config.ts); no GPU.
import { describe, expect, it } from 'vitest';
import {
  defaultPatterns,
  loadPatternConfig,
  parsePatternString,
  PatternConfigError,
  MINFERENCE_BLOCK_SPARSE_TOP_K,
} from '../src/attention/config.ts';
import { BadInputError } from '../src/gpu/errors.ts';

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
