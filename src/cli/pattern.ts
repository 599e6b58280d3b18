/**
 * Parses an attention pattern as given on the command line: `dense`, or MInference's JSON form
 * `["vertical_and_slash", vertical_size, slash_size]`, `["stream_llm", n_init, n_local]`,
 * `["block_sparse", top_k]` (also `["dense"]`).
 */
import { BadInputError } from '../gpu/errors.ts';
import type { Pattern } from '../attention/types.ts';

const FORMS = 'dense | ["vertical_and_slash", V, S] | ["stream_llm", N_INIT, N_LOCAL] | ["block_sparse", TOP_K]';

function int(x: unknown, what: string, min: number): number {
  if (typeof x !== 'number' || !Number.isInteger(x) || x < min) throw new BadInputError(`pattern: ${what} must be an integer >= ${min}, got ${JSON.stringify(x)}`);
  return x;
}

export function parsePattern(text: string): Pattern {
  const t = text.trim();
  if (t === 'dense') return { type: 'dense' };
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch {
    throw new BadInputError(`pattern: cannot parse ${JSON.stringify(text)}; expected ${FORMS}`);
  }
  if (v === 'dense') return { type: 'dense' };
  if (!Array.isArray(v) || typeof v[0] !== 'string') throw new BadInputError(`pattern: expected ${FORMS}, got ${JSON.stringify(v)}`);
  const [name, ...rest] = v as [string, ...unknown[]];
  const arity = (n: number): void => {
    if (rest.length !== n) throw new BadInputError(`pattern: "${name}" takes ${n} number${n === 1 ? '' : 's'}, got ${rest.length}`);
  };
  switch (name) {
    case 'dense':
      arity(0);
      return { type: 'dense' };
    case 'vertical_and_slash':
      arity(2);
      return { type: 'vertical_and_slash', verticalSize: int(rest[0], 'vertical_size', 1), slashSize: int(rest[1], 'slash_size', 1) };
    case 'stream_llm':
      arity(2);
      return { type: 'stream_llm', nInit: int(rest[0], 'n_init', 0), nLocal: int(rest[1], 'n_local', 1) };
    case 'block_sparse':
      arity(1);
      return { type: 'block_sparse', topK: int(rest[0], 'top_k', 1) };
    default:
      throw new BadInputError(`pattern: unknown pattern "${name}"; expected ${FORMS}`);
  }
}

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
