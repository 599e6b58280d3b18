/**
 * Attention patterns on the command line: `dense`, or MInference's JSON form
 * `["vertical_and_slash", vertical_size, slash_size]`, `["stream_llm", n_init, n_local]`,
 * `["block_sparse", top_k]`. Parsing is the attention layer's (src/attention/config.ts
 * parsePatternString), so the CLI and the library accept exactly the same strings; a bad number is
 * named here first, by its place in the pattern and the range it must be in.
 */
import { parsePatternString, PatternConfigError } from '../attention/config.ts';
import type { Pattern } from '../attention/types.ts';
import { MODEL_LIMITS } from '../model/limits.ts';
import { formatValue } from '../util/format.ts';
import { formatCount } from '../util/numbers.ts';

/** The numbers each pattern type takes: their names and the least value each may hold alone. */
const FIELDS: Record<string, readonly { name: string; min: number }[]> = {
  vertical_and_slash: [
    { name: 'V (vertical_size)', min: 0 },
    { name: 'S (slash_size)', min: 0 },
  ],
  stream_llm: [
    { name: 'N_INIT', min: 0 },
    { name: 'N_LOCAL', min: 0 },
  ],
  block_sparse: [{ name: 'TOP_K', min: 1 }],
};

/** Parses a pattern string; throws PatternConfigError (a BadInputError) naming the problem. */
export function parsePattern(text: string): Pattern {
  checkNumbers(text);
  return parsePatternString(text);
}

/** "pattern [...]: V (vertical_size) must be a whole number from 0 to 268,435,456, got -1". */
function checkNumbers(text: string): void {
  let v: unknown;
  try {
    v = JSON.parse(text.trim());
  } catch {
    return; // parsePatternString names malformed text
  }
  if (!Array.isArray(v) || typeof v[0] !== 'string') return;
  const fields = FIELDS[v[0]];
  if (!fields || v.length !== fields.length + 1) return;
  const max = MODEL_LIMITS.positions.max;
  fields.forEach((f, i) => {
    const x = v[i + 1];
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < f.min || x > max) {
      throw new PatternConfigError('malformed', `pattern ${formatValue(v, 80)}: ${f.name} must be a whole number from ${formatCount(f.min)} to ${formatCount(max)}, got ${formatValue(x)}`);
    }
  });
}

/** The canonical command-line form of a pattern (parsePattern(patternText(p)) equals p). */
export function patternText(p: Pattern): string {
  switch (p.type) {
    case 'dense':
      return 'dense';
    case 'vertical_and_slash':
      return JSON.stringify([p.type, p.verticalSize, p.slashSize]);
    case 'stream_llm':
      return JSON.stringify([p.type, p.nInit, p.nLocal]);
    case 'block_sparse':
      return JSON.stringify([p.type, p.topK]);
  }
}
