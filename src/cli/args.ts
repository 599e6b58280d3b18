/**
 * Command-line argument parsing for the sparse-prefill CLI: declarative option specs, GNU-style
 * `--name value`, `--name=value`, `--flag`, `--no-flag`, `--` ending options, and help texts
 * generated from the same specs. Errors are UsageError (exit code 2, one line).
 */
import { SparsePrefillError } from '../gpu/errors.ts';

/** Wrong command line: unknown option, missing value or required option, bad value. */
export class UsageError extends SparsePrefillError {
  constructor(
    message: string,
    /** The command whose usage to suggest (`sparse-prefill <command> --help`). */
    readonly command?: string,
  ) {
    super('BAD_INPUT', message);
  }
}

export interface OptionSpec {
  name: string; // long name without dashes, e.g. "in"
  /** 'string' takes a value; 'flag' is boolean (and accepts --no-<name>). */
  kind: 'string' | 'flag';
  /** A flag that is on by default: help shows it as --[no-]<name>. */
  defaultOn?: boolean;
  help: string;
  /** Placeholder in help, e.g. PATH. */
  value?: string;
  required?: boolean;
  short?: string; // one letter, e.g. "o"
  /** May be given more than once; values collect into an array. */
  repeat?: boolean;
}

export interface CommandSpec {
  name: string;
  summary: string;
  /** Usage line after the program and command name, e.g. "--in PATH --pattern P --out PATH". */
  usage: string;
  /** Extra paragraphs after the option list. */
  details?: string;
  options: OptionSpec[];
  /** Positional arguments allowed (default 0). */
  positionals?: { min: number; max: number; names: string };
}

export interface ParsedArgs {
  strings: Record<string, string | undefined>;
  lists: Record<string, string[]>;
  flags: Record<string, boolean | undefined>;
  positionals: string[];
}

export const HELP_OPTION: OptionSpec = { name: 'help', short: 'h', kind: 'flag', help: 'show this help' };

function find(spec: CommandSpec, name: string): OptionSpec | undefined {
  return spec.options.find((o) => o.name === name) ?? (name === 'help' ? HELP_OPTION : undefined);
}

function findShort(spec: CommandSpec, letter: string): OptionSpec | undefined {
  return spec.options.find((o) => o.short === letter) ?? (letter === 'h' ? HELP_OPTION : undefined);
}

/**
 * Parses argv against a command spec. `--help` anywhere makes parsing lenient about required
 * options (the caller prints help instead).
 */
export function parseArgs(argv: readonly string[], spec: CommandSpec): ParsedArgs {
  const out: ParsedArgs = { strings: {}, lists: {}, flags: {}, positionals: [] };
  const cmd = spec.name;
  let onlyPositionals = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (onlyPositionals || arg === '-' || !arg.startsWith('-')) {
      out.positionals.push(arg);
      continue;
    }
    if (arg === '--') {
      onlyPositionals = true;
      continue;
    }
    let opt: OptionSpec | undefined;
    let inline: string | undefined;
    let negated = false;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
      opt = find(spec, name);
      if (!opt && name.startsWith('no-')) {
        const base = find(spec, name.slice(3));
        if (base?.kind === 'flag') {
          opt = base;
          negated = true;
        }
      }
      if (!opt) throw new UsageError(`unknown option --${name} for "${cmd}"${suggest(spec, name)}`, cmd);
    } else {
      if (arg.length !== 2) throw new UsageError(`unknown option ${arg} for "${cmd}" (short options take one letter)`, cmd);
      opt = findShort(spec, arg[1]!);
      if (!opt) throw new UsageError(`unknown option ${arg} for "${cmd}"`, cmd);
    }
    if (opt.kind === 'flag') {
      if (inline !== undefined) throw new UsageError(`option --${opt.name} takes no value`, cmd);
      out.flags[opt.name] = !negated;
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = argv[i + 1];
      // A value may start with '-' only when it is not itself an option (e.g. negative numbers).
      if (next === undefined || (next.startsWith('--') && next.length > 2) || (/^-[a-zA-Z]$/.test(next))) {
        throw new UsageError(`option --${opt.name} needs a value${opt.value ? ` (${opt.value})` : ''}`, cmd);
      }
      value = next;
      i++;
    }
    if (opt.repeat) (out.lists[opt.name] ??= []).push(value);
    else {
      if (out.strings[opt.name] !== undefined) throw new UsageError(`option --${opt.name} was given twice`, cmd);
      out.strings[opt.name] = value;
    }
  }
  if (out.flags.help) return out;
  for (const o of spec.options) {
    if (o.required && out.strings[o.name] === undefined && !out.lists[o.name]?.length) {
      throw new UsageError(`"${cmd}" needs --${o.name}${o.value ? ` ${o.value}` : ''}`, cmd);
    }
  }
  const pos = spec.positionals ?? { min: 0, max: 0, names: '' };
  if (out.positionals.length < pos.min) throw new UsageError(`"${cmd}" needs ${pos.names}`, cmd);
  if (out.positionals.length > pos.max) throw new UsageError(`unexpected argument "${out.positionals[pos.max]}" for "${cmd}"`, cmd);
  return out;
}

/** " (did you mean --x?)" for a near miss: same prefix or edit distance <= 2. */
function suggest(spec: CommandSpec, name: string): string {
  let best: string | undefined;
  let bestD = 3;
  for (const o of spec.options) {
    const d = o.name.startsWith(name) || name.startsWith(o.name) ? 1 : editDistance(o.name, name);
    if (d < bestD) {
      bestD = d;
      best = o.name;
    }
  }
  return best ? ` (did you mean --${best}?)` : '';
}

export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

/** Help text of one command, from its spec. */
export function commandHelp(program: string, spec: CommandSpec): string {
  const opts = [...spec.options, HELP_OPTION];
  const left = opts.map((o) => `${o.short ? `-${o.short}, ` : '    '}--${o.defaultOn ? `[no-]${o.name}` : o.name}${o.value ? ` ${o.value}` : ''}`);
  const width = Math.max(...left.map((l) => l.length)) + 2;
  const lines = opts.map((o, i) => `  ${left[i]!.padEnd(width)}${o.help}${o.required ? ' (required)' : ''}`);
  return [`usage: ${program} ${spec.name} ${spec.usage}`, '', spec.summary, '', 'options:', ...lines, ...(spec.details ? ['', spec.details] : [])].join('\n');
}

/** Top-level help: the command list. */
export function programHelp(program: string, summary: string, commands: readonly CommandSpec[]): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  return [
    `usage: ${program} <command> [options]`,
    '',
    summary,
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    `Run "${program} <command> --help" for a command's options.`,
  ].join('\n');
}
