/** Number and error formatting for the demo page (pure functions, no DOM). */

export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${((ms - m * 60_000) / 1000).toFixed(0)} s`;
}

export function formatRate(perSecond: number, unit: string): string {
  if (!Number.isFinite(perSecond)) return '–';
  const digits = perSecond >= 100 ? 0 : perSecond >= 10 ? 1 : 2;
  return `${perSecond.toFixed(digits)} ${unit}`;
}

export function formatCount(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–';
}

export { formatBytes } from '../src/util/format.ts';

export function formatPercent(fraction: number): string {
  return Number.isFinite(fraction) ? `${(fraction * 100).toFixed(1)}%` : '–';
}

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
