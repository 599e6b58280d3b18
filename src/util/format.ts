/**
 * Values quoted in error messages. Model files are untrusted: a config field may hold an array
 * nested 5000 deep (JSON.stringify and Array.join recurse and overflow the stack on it), a 16 MB
 * string, or an object with a million keys. Every message that quotes a value from a file goes
 * through formatValue, which looks at no more than MAX_DEPTH levels, MAX_ITEMS entries per level
 * and a bounded number of characters, and never throws, so building an error cannot fail.
 */

/** Nesting levels shown; deeper arrays and objects print as [...] and {...}. */
const MAX_DEPTH = 3;
/** Entries shown per array or object. */
const MAX_ITEMS = 8;
/** Default length of a formatted value, in UTF-16 code units. */
export const MAX_VALUE_CHARS = 80;

/** JSON-like text of `value` of at most `maxChars` characters (ending in "..." when cut). Never throws. */
export function formatValue(value: unknown, maxChars = MAX_VALUE_CHARS): string {
  let text: string;
  try {
    text = format(value, MAX_DEPTH, maxChars + 1);
  } catch {
    // A Proxy or an object whose getters throw: not something a JSON file can produce.
    return '<unprintable value>';
  }
  return clip(text, maxChars);
}

/** A name from a file (tensor, file or key) cut to `maxChars`, unquoted. */
export function formatName(name: string, maxChars = 200): string {
  return clip(String(name), maxChars);
}

function clip(text: string, maxChars: number): string {
  return text.length > maxChars ? `${text.slice(0, Math.max(0, maxChars - 3))}...` : text;
}

/** `budget`: characters still wanted; the caller cuts the result, this only stops early. */
function format(v: unknown, depth: number, budget: number): string {
  switch (typeof v) {
    case 'string':
      // Cut before quoting, so a 16 MB string is never copied whole.
      return JSON.stringify(v.length > budget ? v.slice(0, budget) : v) + (v.length > budget ? `... (${v.length} characters)` : '');
    case 'number':
      return Object.is(v, -0) ? '-0' : String(v); // Infinity and NaN by name (JSON.stringify says null)
    case 'bigint':
      return `${v}n`;
    case 'undefined':
    case 'boolean':
      return String(v);
    case 'symbol':
      return 'a symbol';
    case 'function':
      return 'a function';
  }
  if (v === null) return 'null';
  const isArray = Array.isArray(v);
  if (depth <= 0) return isArray ? '[...]' : '{...}';
  const parts: string[] = [];
  let used = 2;
  let shown = 0;
  let total = 0;
  if (isArray) {
    const list = v as unknown[];
    total = list.length;
    for (; shown < Math.min(total, MAX_ITEMS) && used < budget; shown++) {
      const s = format(list[shown], depth - 1, budget - used);
      parts.push(s);
      used += s.length + 2;
    }
  } else {
    for (const key in v as Record<string, unknown>) {
      if (!Object.prototype.hasOwnProperty.call(v, key)) continue;
      total++;
      if (shown >= MAX_ITEMS || used >= budget) continue;
      const k = format(key, 0, budget - used);
      const s = `${k}: ${format((v as Record<string, unknown>)[key], depth - 1, budget - used - k.length)}`;
      parts.push(s);
      used += s.length + 2;
      shown++;
      if (total > 4 * MAX_ITEMS) break; // counting the rest of a huge object is not worth it
    }
  }
  if (shown < total) parts.push(isArray ? `... ${total - shown} more` : '...');
  return isArray ? `[${parts.join(', ')}]` : `{${parts.join(', ')}}`;
}
