/**
 * MInference's per-layer, per-head pattern configs (e.g. minference/configs/*_best_pattern.json),
 * loaded unchanged, and the one-pattern CLI syntax.
 *
 * File format (a JSON list over layers): [{"<head>": [type, vertical_size, slash_size, score]}, ...]
 * How MInference interprets each entry (minference/modules/minference_forward.py):
 *  - "vertical_and_slash": vertical_and_slash_kernel(q, k, v, vertical_size, slash_size); the sizes are
 *    clamped at run time (the estimator does that, not the loader).
 *  - "stream_llm": streaming_forward(q, k, v, vertical_size, slash_size), i.e. n_init = vertical_size,
 *    n_local = slash_size, unclamped.
 *  - "block_sparse": block_sparse_kernel(q, k, v, vertical_size, slash_size) ignores both numbers and
 *    calls block_sparse_attention with a hard-coded top_k = 100. We reproduce that: topK = 100
 *    (MINFERENCE_BLOCK_SPARSE_TOP_K) whatever the entry's numbers are.
 *  - the 4th number (the search score) is informational; it is optional here.
 * MInference's loader unpacks exactly four values per entry, so the writer here
 * (patternConfigFromTable / formatPatternConfig, used by the pattern search) always writes four.
 * MInference falls back to ("vertical_and_slash", 1000, 6096) for a head missing from the file; we are
 * stricter: every layer must list exactly heads 0..H-1 of the model (a missing or extra head is a
 * config/model mismatch worth reporting), unless `allowMissingHeads` is set.
 */
import { BadInputError } from '../gpu/errors.ts';
import { MODEL_LIMITS } from '../model/limits.ts';
import { formatName, formatValue } from '../util/format.ts';
import type { Pattern, PatternType } from './types.ts';

/** top_k that MInference's block_sparse_kernel passes to block_sparse_attention. */
export const MINFERENCE_BLOCK_SPARSE_TOP_K = 100;
/** MInference's default pattern for a head without a config entry. */
export const DEFAULT_VERTICAL_SIZE = 1000;
export const DEFAULT_SLASH_SIZE = 6096;

export type PatternConfigProblem = 'unknown_type' | 'layer_count' | 'head_count' | 'malformed';

/** A pattern config or pattern string that cannot be used; `problem` says which rule it broke. */
export class PatternConfigError extends BadInputError {
  constructor(
    readonly problem: PatternConfigProblem,
    message: string,
  ) {
    super(message);
  }
}

export interface ModelShape {
  layers: number;
  /** Query heads per layer. */
  heads: number;
}

export interface LoadConfigOptions {
  /** Fill heads missing from a layer with the default pattern (as MInference does). Default false. */
  allowMissingHeads?: boolean;
  /**
   * top_k of block_sparse entries. Default MINFERENCE_BLOCK_SPARSE_TOP_K (100): what MInference runs
   * whatever numbers the entry holds. A config searched over a space with another Block-Sparse top-k
   * (SearchSpace.blockSparseTopK, e.g. a test's scaled-down space) is read back with that one.
   */
  blockSparseTopK?: number;
}

const TYPES: readonly PatternType[] = ['dense', 'stream_llm', 'vertical_and_slash', 'block_sparse'];

/** The default pattern: Vertical-Slash (1000, 6096), as MInference uses for heads with no entry. */
export function defaultPattern(): Pattern {
  return { type: 'vertical_and_slash', verticalSize: DEFAULT_VERTICAL_SIZE, slashSize: DEFAULT_SLASH_SIZE };
}

/** The default pattern for every head of the model. */
export function defaultPatterns(model: ModelShape): Pattern[][] {
  checkModel(model);
  return Array.from({ length: model.layers }, () => Array.from({ length: model.heads }, defaultPattern));
}

/** The model's layer and head counts, bounded as config.json's are (src/model/limits.ts) before any table is built. */
function checkModel(model: ModelShape): void {
  for (const [name, v, range] of [
    ['layers', model.layers, MODEL_LIMITS.layers],
    ['heads', model.heads, MODEL_LIMITS.heads],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < range.min || v > range.max) {
      throw new PatternConfigError('malformed', `model ${name} must be an integer in ${range.min}..${range.max}, got ${formatValue(v)}`);
    }
  }
}

/**
 * A size in a pattern (vertical_size, slash_size, n_init, n_local, top_k): a token count, so at most
 * MODEL_LIMITS.positions (MInference's configs use up to a few thousand).
 */
function isSize(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 && x <= MODEL_LIMITS.positions.max;
}

const describe = formatValue;

/**
 * One config entry [type, vertical_size, slash_size(, score)] to a Pattern. `where` names it in
 * errors; block_sparse entries get `blockSparseTopK` (LoadConfigOptions).
 */
export function patternFromEntry(entry: unknown, where: string, blockSparseTopK: number = MINFERENCE_BLOCK_SPARSE_TOP_K): Pattern {
  if (!Array.isArray(entry) || entry.length < 3 || entry.length > 4) {
    throw new PatternConfigError('malformed', `${where}: expected [type, vertical_size, slash_size, score], got ${describe(entry)}`);
  }
  const [type, a, b, score] = entry as unknown[];
  if (typeof type !== 'string') throw new PatternConfigError('malformed', `${where}: pattern type must be a string, got ${describe(type)}`);
  if (!isSize(a) || !isSize(b)) {
    throw new PatternConfigError('malformed', `${where}: vertical_size and slash_size must be integers in 0..${MODEL_LIMITS.positions.max}, got ${describe(a)}, ${describe(b)}`);
  }
  if (entry.length === 4 && (typeof score !== 'number' || !Number.isFinite(score))) {
    throw new PatternConfigError('malformed', `${where}: score must be a finite number, got ${describe(score)}`);
  }
  switch (type) {
    case 'vertical_and_slash':
      if (a === 0 && b === 0) throw new PatternConfigError('malformed', `${where}: vertical_and_slash with both sizes 0`);
      return { type, verticalSize: a, slashSize: b };
    case 'stream_llm':
      if (a === 0 && b === 0) throw new PatternConfigError('malformed', `${where}: stream_llm with n_init = n_local = 0 attends nothing`);
      return { type, nInit: a, nLocal: b };
    case 'block_sparse':
      return { type, topK: blockSparseTopK };
    default:
      throw new PatternConfigError('unknown_type', `${where}: unknown pattern type ${describe(type)} (expected vertical_and_slash, stream_llm or block_sparse)`);
  }
}

/**
 * Loads a MInference pattern config (JSON text or the parsed value) for a model: Pattern[layer][head].
 * Throws PatternConfigError on unknown types, layer/head counts that differ from the model, or
 * malformed entries.
 */
export function loadPatternConfig(config: string | unknown, model: ModelShape, options: LoadConfigOptions = {}): Pattern[][] {
  checkModel(model);
  const topK = options.blockSparseTopK ?? MINFERENCE_BLOCK_SPARSE_TOP_K;
  if (!isSize(topK) || topK < 1) throw new PatternConfigError('malformed', `blockSparseTopK must be an integer in 1..${MODEL_LIMITS.positions.max}, got ${describe(topK)}`);
  let data: unknown = config;
  if (typeof config === 'string') {
    try {
      data = JSON.parse(config);
    } catch (e) {
      throw new PatternConfigError('malformed', `pattern config is not valid JSON: ${formatName(String((e as Error).message))}`);
    }
  }
  if (!Array.isArray(data)) throw new PatternConfigError('malformed', `pattern config must be a JSON list over layers, got ${describe(data)}`);
  if (data.length !== model.layers) {
    throw new PatternConfigError('layer_count', `pattern config has ${data.length} layers, the model has ${model.layers}`);
  }
  return data.map((layer: unknown, l) => {
    if (typeof layer !== 'object' || layer === null || Array.isArray(layer)) {
      throw new PatternConfigError('malformed', `layer ${l}: expected an object {"<head>": entry}, got ${describe(layer)}`);
    }
    const out: (Pattern | undefined)[] = new Array<Pattern | undefined>(model.heads).fill(undefined);
    for (const [key, entry] of Object.entries(layer as Record<string, unknown>)) {
      if (!/^(0|[1-9][0-9]*)$/.test(key)) throw new PatternConfigError('malformed', `layer ${l}: head key ${describe(key)} is not a head number`);
      const h = Number(key);
      if (h >= model.heads) {
        throw new PatternConfigError('head_count', `layer ${l}: head ${formatName(key, 40)} is out of range, the model has ${model.heads} heads`);
      }
      out[h] = patternFromEntry(entry, `layer ${l} head ${h}`, topK);
    }
    const missing = out.flatMap((p, h) => (p ? [] : [h]));
    if (missing.length && !options.allowMissingHeads) {
      throw new PatternConfigError(
        'head_count',
        `layer ${l}: lists ${model.heads - missing.length} of the model's ${model.heads} heads (missing ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ', ...' : ''})`,
      );
    }
    return out.map((p) => p ?? defaultPattern());
  });
}

/**
 * Parses one pattern given on the command line: `dense`, `["vertical_and_slash", V, S]`,
 * `["stream_llm", N_INIT, N_LOCAL]` or `["block_sparse", TOP_K]`.
 */
export function parsePatternString(text: string): Pattern {
  const s = text.trim();
  const shown = formatName(text, 80);
  if (s === 'dense' || s === '"dense"' || s === '["dense"]') return { type: 'dense' };
  let v: unknown;
  try {
    v = JSON.parse(s);
  } catch {
    throw new PatternConfigError('malformed', `pattern "${shown}" is neither "dense" nor a JSON list like ["vertical_and_slash", 1000, 6096]`);
  }
  if (!Array.isArray(v) || v.length === 0 || typeof v[0] !== 'string') {
    throw new PatternConfigError('malformed', `pattern "${shown}": expected a list starting with the pattern type`);
  }
  const [type, ...nums] = v as [string, ...unknown[]];
  if (!(TYPES as readonly string[]).includes(type)) {
    throw new PatternConfigError('unknown_type', `pattern "${shown}": unknown type "${formatName(type, 40)}" (expected ${TYPES.join(', ')})`);
  }
  const want = type === 'dense' ? 0 : type === 'block_sparse' ? 1 : 2;
  if (nums.length !== want || !nums.every(isSize)) {
    const form = type === 'block_sparse' ? '["block_sparse", TOP_K]' : type === 'stream_llm' ? '["stream_llm", N_INIT, N_LOCAL]' : '["vertical_and_slash", V, S]';
    throw new PatternConfigError('malformed', `pattern "${shown}": expected ${form} with non-negative integers`);
  }
  const n = nums as number[];
  switch (type) {
    case 'dense':
      return { type };
    case 'block_sparse':
      if (n[0]! < 1) throw new PatternConfigError('malformed', `pattern "${shown}": TOP_K must be at least 1`);
      return { type, topK: n[0]! };
    case 'stream_llm':
      if (n[0]! + n[1]! < 1) throw new PatternConfigError('malformed', `pattern "${shown}": N_INIT + N_LOCAL must be at least 1`);
      return { type, nInit: n[0]!, nLocal: n[1]! };
    default:
      if (n[0]! + n[1]! < 1) throw new PatternConfigError('malformed', `pattern "${shown}": V + S must be at least 1`);
      return { type: 'vertical_and_slash', verticalSize: n[0]!, slashSize: n[1]! };
  }
}

/** An entry as MInference's config files hold it: [type, vertical_size, slash_size, score]. */
export type PatternEntry = [type: Exclude<PatternType, 'dense'>, verticalSize: number, slashSize: number, score: number];

/** MInference's config: a list over layers of {"<head>": entry}. */
export type PatternConfigJson = Record<string, PatternEntry>[];

/**
 * The entry MInference loads for a pattern, with `score` as its 4th number (informational; the
 * search writes the head's recall). block_sparse is written as [type, topK, 0, score]: MInference and
 * loadPatternConfig ignore both numbers (top_k is 100 unless LoadConfigOptions.blockSparseTopK says
 * otherwise). Dense has no entry in MInference's format: it is a PatternConfigError.
 */
export function entryFromPattern(p: Pattern, score = 0): PatternEntry {
  if (!Number.isFinite(score)) throw new PatternConfigError('malformed', `score must be a finite number, got ${describe(score)}`);
  switch (p.type) {
    case 'vertical_and_slash':
      return [p.type, p.verticalSize, p.slashSize, score];
    case 'stream_llm':
      return [p.type, p.nInit, p.nLocal, score];
    case 'block_sparse':
      return [p.type, p.topK, 0, score];
    default:
      throw new PatternConfigError('unknown_type', `pattern type ${describe(p.type)} has no entry in MInference's config format (vertical_and_slash, stream_llm, block_sparse)`);
  }
}

/** MInference's JSON value for Pattern[layer][head], with scores[layer][head] as the 4th numbers (default 0). */
export function patternConfigFromTable(patterns: readonly (readonly Pattern[])[], scores?: readonly (readonly number[])[]): PatternConfigJson {
  return patterns.map((layer, l) => {
    const out: Record<string, PatternEntry> = {};
    layer.forEach((p, h) => {
      out[String(h)] = entryFromPattern(p, scores?.[l]?.[h] ?? 0);
    });
    return out;
  });
}

/** The config as JSON text, one layer per line (MInference's own files are single-line JSON; both load). */
export function formatPatternConfig(config: PatternConfigJson): string {
  return `[\n${config.map((layer) => JSON.stringify(layer)).join(',\n')}\n]\n`;
}
