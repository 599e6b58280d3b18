/**
 * The WGSL preprocessor: the one place where shader text is specialised before compilation.
 *
 * Directives (a `#` as the first non-blank character of a line):
 *   #include "lib/packing.wgsl"   paste another file from shaders/ (each file is included once)
 *   #define NAME value             define inside a shader (value optional, default 1)
 *   #ifdef NAME / #ifndef NAME
 *   #if EXPR / #elif EXPR          EXPR: integers, defined names, defined(NAME), ! && || == != < <= > >= + - * / ( )
 *   #else / #endif
 *   #for NAME in EXPR..EXPR        repeat the lines up to the matching #endfor once per integer NAME in
 *   #endfor                        [first, last), NAME defined to it (writes code out with constant
 *                                  indices, e.g. `acc[I]` for I in 0..SG_TM, where a WGSL loop would
 *                                  index arrays dynamically; NAME must not be a caller's define)
 *
 * Outside directives, every whole-word identifier that is defined is replaced by its value, so
 * `var<workgroup> tile: array<f32, TILE * TILE>;` becomes a fixed-size array. Defines are for what
 * changes control flow, array sizes or types (head dim, tiles, dtype); `override` constants and
 * uniforms carry the rest, so that one pipeline serves many shapes.
 *
 * The output keeps a line map (output line -> file and line) so that compiler messages name the
 * .wgsl file and line the author wrote.
 */

export type DefineValue = string | number | boolean;
export type Defines = Readonly<Record<string, DefineValue>>;

export interface SourceLocation {
  file: string;
  line: number; // 1-based
}

export interface PreprocessedShader {
  code: string;
  /** lineMap[i] is where output line i+1 came from. */
  lineMap: SourceLocation[];
}

export class ShaderPreprocessError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    detail: string,
  ) {
    super(`${file}:${line}: ${detail}`);
    this.name = 'ShaderPreprocessError';
  }
}

type SourceLookup = (name: string) => string | undefined;

interface Frame {
  /** Whether lines in this branch are emitted. */
  active: boolean;
  /** Whether some branch of this #if chain was already taken. */
  taken: boolean;
  /** Whether the enclosing region is active. */
  parentActive: boolean;
  sawElse: boolean;
}

const IDENT = /[A-Za-z_][A-Za-z0-9_]*/g;

export function preprocess(file: string, lookup: SourceLookup, defines: Defines = {}): PreprocessedShader {
  const table = new Map<string, string>();
  for (const [name, value] of Object.entries(defines)) {
    if (value === false) continue; // false means "not defined"
    table.set(name, value === true ? '1' : String(value));
  }
  const out: string[] = [];
  const lineMap: SourceLocation[] = [];
  const included = new Set<string>();

  const emitFile = (name: string, from?: SourceLocation): void => {
    if (included.has(name)) return;
    included.add(name);
    const text = lookup(name);
    if (text === undefined) {
      const where = from ? `${from.file}:${from.line}: ` : '';
      throw new ShaderPreprocessError(from?.file ?? name, from?.line ?? 0, `${where}no shader named "${name}"`);
    }
    const stack: Frame[] = [];
    const active = (): boolean => stack.length === 0 || stack[stack.length - 1]!.active;
    // #for blocks are spliced in place as copies of their body between `#define NAME k` and `#undef NAME`.
    const lines = text.split('\n').map((raw, i) => ({ raw, lineNo: i + 1 }));
    for (let i = 0; i < lines.length; i++) {
      const { raw, lineNo } = lines[i]!;
      const trimmed = raw.trim();
      const fail = (detail: string): never => {
        throw new ShaderPreprocessError(name, lineNo, detail);
      };
      if (trimmed.startsWith('#')) {
        const m = /^#\s*(\w+)\s*(.*)$/.exec(trimmed);
        if (!m) fail(`malformed directive: ${trimmed}`);
        const directive = m![1]!;
        const rest = stripComment(m![2]!);
        switch (directive) {
          case 'include': {
            if (!active()) break;
            const inc = /^"([^"]+)"$/.exec(rest);
            if (!inc) fail(`#include wants a quoted file name, got: ${rest}`);
            emitFile(inc![1]!, { file: name, line: lineNo });
            break;
          }
          case 'define': {
            if (!active()) break;
            const d = /^([A-Za-z_]\w*)\s*(.*)$/.exec(rest);
            if (!d) fail(`#define wants a name: ${rest}`);
            // Defines given by the caller win over defaults written in the shader.
            if (!Object.prototype.hasOwnProperty.call(defines, d![1]!)) table.set(d![1]!, d![2]!.length ? d![2]! : '1');
            break;
          }
          case 'undef':
            if (active()) table.delete(rest);
            break;
          case 'ifdef':
          case 'ifndef':
          case 'if': {
            const parentActive = active();
            let cond: boolean;
            if (directive === 'if') cond = parentActive ? evaluate(rest, table, fail) !== 0 : false;
            else cond = table.has(rest) === (directive === 'ifdef');
            stack.push({ active: parentActive && cond, taken: cond, parentActive, sawElse: false });
            break;
          }
          case 'elif': {
            const top = stack[stack.length - 1] ?? fail('#elif without #if');
            if (top.sawElse) fail('#elif after #else');
            const cond = !top.taken && top.parentActive && evaluate(rest, table, fail) !== 0;
            top.active = top.parentActive && cond;
            top.taken = top.taken || cond;
            break;
          }
          case 'else': {
            const top = stack[stack.length - 1] ?? fail('#else without #if');
            if (top.sawElse) fail('second #else');
            top.sawElse = true;
            top.active = top.parentActive && !top.taken;
            top.taken = true;
            break;
          }
          case 'endif':
            if (!stack.pop()) fail('#endif without #if');
            break;
          case 'error':
            if (active()) fail(`#error ${rest}`);
            break;
          case 'for': {
            // Inactive: the body is skipped line by line and its #endfor ignored.
            if (!active()) break;
            const f = /^([A-Za-z_]\w*)\s+in\s+(.+?)\.\.(.+)$/.exec(rest);
            if (!f) fail(`#for wants NAME in FIRST..LAST, got: ${rest}`);
            const [, loopVar, from, to] = f!;
            if (Object.prototype.hasOwnProperty.call(defines, loopVar!)) fail(`#for variable ${loopVar} is also a define given by the caller`);
            // A name #if reads as 0 when undefined would silently empty the loop here (a WGSL const, say).
            for (const id of `${from} ${to}`.match(IDENT) ?? []) if (id !== 'defined' && !table.has(id)) fail(`#for bound names ${id}, which is not defined`);
            let depth = 0;
            let end = i + 1;
            for (; end < lines.length; end++) {
              const d = /^\s*#\s*(\w+)/.exec(lines[end]!.raw)?.[1];
              if (d === 'for') depth++;
              else if (d === 'endfor' && depth-- === 0) break;
            }
            if (end === lines.length) fail('#for without #endfor');
            const body = lines.slice(i + 1, end);
            const copies: { raw: string; lineNo: number }[] = [];
            for (let k = evaluate(from!, table, fail), last = evaluate(to!, table, fail); k < last; k++) {
              copies.push({ raw: `#define ${loopVar} ${k}`, lineNo }, ...body, { raw: `#undef ${loopVar}`, lineNo });
            }
            lines.splice(i + 1, end - i, ...copies);
            break;
          }
          case 'endfor':
            if (active()) fail('#endfor without #for');
            break;
          default:
            fail(`unknown directive #${directive}`);
        }
        continue;
      }
      if (!active()) continue;
      out.push(substitute(raw, table));
      lineMap.push({ file: name, line: lineNo });
    }
    if (stack.length) throw new ShaderPreprocessError(name, lines.length, 'unterminated #if');
  };

  emitFile(file);
  return { code: out.join('\n'), lineMap };
}

function stripComment(s: string): string {
  const i = s.indexOf('//');
  return (i >= 0 ? s.slice(0, i) : s).trim();
}

function substitute(line: string, table: Map<string, string>): string {
  if (table.size === 0) return line;
  const comment = line.indexOf('//');
  const code = comment >= 0 ? line.slice(0, comment) : line;
  const tail = comment >= 0 ? line.slice(comment) : '';
  // Repeat so that a define whose value names another define resolves (bounded to catch cycles).
  let s = code;
  for (let pass = 0; pass < 8; pass++) {
    let changed = false;
    s = s.replace(IDENT, (id) => {
      const v = table.get(id);
      if (v === undefined) return id;
      changed = true;
      return v;
    });
    if (!changed) break;
  }
  return s + tail;
}

/** Evaluates an #if expression over integers. */
function evaluate(expr: string, table: Map<string, string>, fail: (d: string) => never): number {
  const tokens = expr.match(/\s*(\d+|[A-Za-z_]\w*|&&|\|\||==|!=|<=|>=|[-+*/%()<>!])\s*/g);
  if (!tokens || tokens.join('').replace(/\s/g, '') !== expr.replace(/\s/g, '')) fail(`cannot parse #if expression: ${expr}`);
  const toks = tokens!.map((t) => t.trim());
  let pos = 0;
  const peek = (): string | undefined => toks[pos];
  const next = (): string => toks[pos++] ?? fail(`unexpected end of #if expression: ${expr}`);
  const resolveName = (name: string, depth: number): number => {
    const v = table.get(name);
    if (v === undefined) return 0;
    if (/^-?\d+$/.test(v)) return parseInt(v, 10);
    if (depth > 8) fail(`define ${name} does not resolve to an integer`);
    if (/^[A-Za-z_]\w*$/.test(v)) return resolveName(v, depth + 1);
    fail(`define ${name}=${v} is not an integer`);
    return 0;
  };
  const primary = (): number => {
    const t = next();
    if (t === '(') {
      const v = or();
      if (next() !== ')') fail(`missing ) in #if ${expr}`);
      return v;
    }
    if (t === '!') return primary() === 0 ? 1 : 0;
    if (t === '-') return -primary();
    if (t === 'defined') {
      const paren = peek() === '(';
      if (paren) next();
      const name = next();
      if (paren && next() !== ')') fail(`missing ) in defined() in #if ${expr}`);
      return table.has(name) ? 1 : 0;
    }
    if (/^\d+$/.test(t)) return parseInt(t, 10);
    if (/^[A-Za-z_]\w*$/.test(t)) return resolveName(t, 0);
    return fail(`unexpected token ${t} in #if ${expr}`);
  };
  const binary = (ops: string[], sub: () => number, apply: (op: string, a: number, b: number) => number) => (): number => {
    let v = sub();
    while (ops.includes(peek() ?? '')) {
      const op = next();
      v = apply(op, v, sub());
    }
    return v;
  };
  const mul = binary(['*', '/', '%'], primary, (op, a, b) => (op === '*' ? a * b : op === '/' ? Math.trunc(a / b) : a % b));
  const add = binary(['+', '-'], mul, (op, a, b) => (op === '+' ? a + b : a - b));
  const rel = binary(['<', '<=', '>', '>='], add, (op, a, b) => Number(op === '<' ? a < b : op === '<=' ? a <= b : op === '>' ? a > b : a >= b));
  const eq = binary(['==', '!='], rel, (op, a, b) => Number(op === '==' ? a === b : a !== b));
  const and = binary(['&&'], eq, (_op, a, b) => Number(a !== 0 && b !== 0));
  const or = binary(['||'], and, (_op, a, b) => Number(a !== 0 || b !== 0));
  const v = or();
  if (pos !== toks.length) fail(`trailing tokens in #if ${expr}`);
  return v;
}

/** A stable text form of a define set, for pipeline cache keys and labels. */
export function definesKey(defines: Defines): string {
  return Object.keys(defines)
    .sort()
    .filter((k) => defines[k] !== false)
    .map((k) => `${k}=${String(defines[k])}`)
    .join(',');
}
