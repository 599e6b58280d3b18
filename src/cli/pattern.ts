/**
 * Attention patterns on the command line: `dense`, or MInference's JSON form
 * `["vertical_and_slash", vertical_size, slash_size]`, `["stream_llm", n_init, n_local]`,
 * `["block_sparse", top_k]`. Parsing is the attention layer's (src/attention/config.ts
 * parsePatternString), so the CLI and the library accept exactly the same strings.
 */
import { parsePatternString } from '../attention/config.ts';
import type { Pattern } from '../attention/types.ts';

/** Parses a pattern string; throws PatternConfigError (a BadInputError) naming the problem. */
export function parsePattern(text: string): Pattern {
  return parsePatternString(text);
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
