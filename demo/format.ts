/** Number and error formatting for the demo page (pure functions, no DOM); the people-number helpers are src/util/numbers.ts's. */
export { formatCount, formatMs, formatPercent, formatRate, plural } from '../src/util/numbers.ts';

export { formatBytes } from '../src/util/numbers.ts';

export function countWords(text: string): number {
  let n = 0;
  for (const w of text.split(/\s+/)) if (w) n++;
  return n;
}

/**
 * A readable message for anything thrown: typed errors (SparsePrefillError and subclasses) give
 * their name, code and message; other Errors their name and message; anything else its string.
 */
export function describeError(e: unknown): { title: string; detail: string } {
  if (e instanceof Error) {
    const code = (e as Error & { code?: unknown }).code;
    const title = typeof code === 'string' ? `${e.name} (${code})` : e.name || 'Error';
    let detail = e.message || String(e);
    const cause = (e as Error & { cause?: unknown }).cause;
    if (cause instanceof Error && cause.message && !detail.includes(cause.message)) detail += `\ncaused by: ${cause.message}`;
    return { title, detail };
  }
  return { title: 'Error', detail: String(e) };
}
