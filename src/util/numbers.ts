/**
 * Numbers formatted for people, shared by the CLI's report and messages and the demo page: counts
 * with thousands separators ("1,152,921,504,606,846,976", never "1152921504606847000"), times in
 * the unit that reads best, rates, shares, plurals ("1 layer", "2 layers") and bytes.
 */

/** 40960 -> "40,960". Integers beyond 2^53 given as text keep every digit. */
export function formatCount(n: number | bigint | string): string {
  if (typeof n === 'string') return /^-?\d+$/.test(n) ? BigInt(n).toLocaleString('en-US') : n;
  if (typeof n === 'bigint') return n.toLocaleString('en-US');
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–';
}

/** "0.50 ms", "12 ms", "1.53 s", "2 min 5 s", "6 h 20 min". */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  const m = Math.round(ms / 60_000);
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** "1,235 tok/s", "12.3 tok/s", "1.98 tok/s". */
export function formatRate(perSecond: number, unit: string): string {
  if (!Number.isFinite(perSecond)) return '–';
  const text = perSecond >= 100 ? formatCount(perSecond) : perSecond.toFixed(perSecond >= 10 ? 1 : 2);
  return `${text} ${unit}`;
}

/** 0.4012 -> "40.1%". */
export function formatPercent(fraction: number): string {
  return Number.isFinite(fraction) ? `${(fraction * 100).toFixed(1)}%` : '–';
}

/** "1 token", "2 tokens", "40,960 tokens" (plural: the word's plural when it is not word + 's'). */
export function plural(n: number, word: string, pluralWord = `${word}s`): string {
  return `${formatCount(n)} ${n === 1 ? word : pluralWord}`;
}

/** Bytes for people: "512 B", "3.25 KiB", "32.7 MiB", "1.50 GiB" ("–" for a non-number). */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '–';
  if (n < 1024) return `${Math.round(n)} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}
