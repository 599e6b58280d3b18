/**
 * CLI unit tests: argument parser, pattern parser, safetensors writer/reader, input validation and
 * error reporting (exit codes); and one end-to-end run of the bundled CLI (node dist/cli.mjs) on a
 * small random case, checked against a float64 reference.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { commandHelp, editDistance, parseArgs, programHelp, UsageError, type CommandSpec } from '../src/cli/args.ts';
import { parsePattern, patternText } from '../src/cli/pattern.ts';
import { ATTENTION_COMMAND, attentionInputs, COMMANDS, PROGRAM, reportError, runCli } from '../src/cli/cli.ts';
import { decodeSafetensors, encodeSafetensors, type DecodedTensor } from '../src/io/safetensors_write.ts';
import { packIndexes } from '../src/cli/attention_run.ts';
import { BadInputError, DTypeError, NoWebGpuError, ShapeError } from '../src/gpu/errors.ts';
import { f32ToBf16Bits, f32ToF16Bits } from '../src/util/half.ts';
import { compareArrays, TOL_F32 } from './harness/compare.ts';
import { Rng, runSeed } from './harness/rng.ts';
import { denseRef } from './reference/attention.ts';

const SPEC: CommandSpec = {
  name: 'demo',
  summary: 'a demo command',
  usage: '--in PATH [--fast]',
  options: [
    { name: 'in', short: 'i', kind: 'string', value: 'PATH', required: true, help: 'input' },
    { name: 'size', kind: 'string', help: 'a size' },
    { name: 'tag', kind: 'string', repeat: true, help: 'tags' },
    { name: 'fast', kind: 'flag', help: 'go fast' },
  ],
  positionals: { min: 0, max: 1, names: 'FILE' },
};

function capture(): { io: { out(t: string): void; err(t: string): void }; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (t) => out.push(t), err: (t) => err.push(t) }, out, err };
}

describe('cli argument parser', () => {
  it('parses values, inline values, short options, flags, negated flags, repeats and positionals', () => {
    const a = parseArgs(['--in', 'a.st', '--size=-3', '--fast', '--tag', 'x', '--tag=y', 'pos'], SPEC);
    expect(a.strings).toEqual({ in: 'a.st', size: '-3' });
    expect(a.flags).toEqual({ fast: true });
    expect(a.lists).toEqual({ tag: ['x', 'y'] });
    expect(a.positionals).toEqual(['pos']);
    const b = parseArgs(['-i', 'b.st', '--no-fast', '--', '--in'], SPEC);
    expect(b.strings.in).toBe('b.st');
    expect(b.flags.fast).toBe(false);
    expect(b.positionals).toEqual(['--in']);
  });

  it('keeps JSON values with spaces and brackets intact', () => {
    const a = parseArgs(['--in', '["vertical_and_slash", 1000, 6096]'], SPEC);
    expect(a.strings.in).toBe('["vertical_and_slash", 1000, 6096]');
  });

  it('rejects unknown options with a suggestion, missing values, missing required options, repeats and extra positionals', () => {
    const err = (argv: string[]): string => {
      try {
        parseArgs(argv, SPEC);
      } catch (e) {
        expect(e).toBeInstanceOf(UsageError);
        expect((e as UsageError).code).toBe('BAD_INPUT');
        expect((e as UsageError).command).toBe('demo');
        return (e as Error).message;
      }
      throw new Error(`no error for ${argv.join(' ')}`);
    };
    expect(err(['--inn', 'x'])).toMatch(/unknown option --inn .*did you mean --in\?/);
    expect(err(['--in'])).toMatch(/--in needs a value \(PATH\)/);
    expect(err(['--in', '--fast'])).toMatch(/--in needs a value/);
    expect(err(['--fast'])).toMatch(/"demo" needs --in PATH/);
    expect(err(['--in', 'a', '--in', 'b'])).toMatch(/--in was given twice/);
    expect(err(['--in', 'a', 'p1', 'p2'])).toMatch(/unexpected argument "p2"/);
    expect(err(['--in', 'a', '--fast=1'])).toMatch(/--fast takes no value/);
    expect(err(['--in', 'a', '-z'])).toMatch(/unknown option -z/);
    expect(err(['--in', 'a', '--no-size'])).toMatch(/unknown option --no-size/);
  });

  it('accepts --help without the required options', () => {
    expect(parseArgs(['--help'], SPEC).flags.help).toBe(true);
    expect(parseArgs(['-h'], SPEC).flags.help).toBe(true);
  });

  it('edit distance', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('pattern', 'pattern')).toBe(0);
  });

  it('help texts list every option and command', () => {
    const h = commandHelp(PROGRAM, ATTENTION_COMMAND);
    for (const o of ATTENTION_COMMAND.options) expect(h).toContain(`--${o.defaultOn ? '[no-]' : ''}${o.name}`);
    // Only the flags that are on by default show the [no-] form.
    expect(h.split('[no-]').length - 1).toBe(ATTENTION_COMMAND.options.filter((o) => o.defaultOn).length);
    expect(h).toContain('vertical_and_slash');
    const p = programHelp(PROGRAM, 'summary', COMMANDS);
    for (const c of COMMANDS) expect(p).toContain(c.name);
  });
});

describe('pattern parser', () => {
  it('parses the four patterns', () => {
    expect(parsePattern('dense')).toEqual({ type: 'dense' });
    expect(parsePattern('["dense"]')).toEqual({ type: 'dense' });
    expect(parsePattern(' ["vertical_and_slash", 1000, 6096] ')).toEqual({ type: 'vertical_and_slash', verticalSize: 1000, slashSize: 6096 });
    expect(parsePattern('["stream_llm", 128, 4096]')).toEqual({ type: 'stream_llm', nInit: 128, nLocal: 4096 });
    expect(parsePattern('["block_sparse", 100]')).toEqual({ type: 'block_sparse', topK: 100 });
  });

  it('round-trips through patternText', () => {
    for (const t of ['dense', '["vertical_and_slash",30,50]', '["stream_llm",0,64]', '["block_sparse",2]']) expect(patternText(parsePattern(t))).toBe(t);
  });

  it('rejects malformed patterns with a typed error naming the problem', () => {
    const cases: [string, RegExp][] = [
      ['sparse', /neither "dense" nor a JSON list/],
      ['{"type":"dense"}', /expected a list starting with the pattern type/],
      ['["block_sparse"]', /\["block_sparse", TOP_K\]/],
      ['["block_sparse", 0]', /TOP_K must be a whole number from 1 to 268,435,456, got 0$/],
      ['["stream_llm", 1.5, 10]', /N_INIT must be a whole number from 0 to 268,435,456, got 1\.5$/],
      ['["vertical_and_slash", -1, 10]', /V \(vertical_size\) must be a whole number from 0 to 268,435,456, got -1$/],
      ['["vertical_and_slash", 10]', /\["vertical_and_slash", V, S\]/],
      ['["vertical_and_slash", 10, "x"]', /S \(slash_size\) must be a whole number from 0 to 268,435,456, got "x"$/],
      ['["stream_llm", 0, 0]', /N_INIT \+ N_LOCAL must be at least 1/],
      ['["a_shape", 1, 2]', /unknown type "a_shape"/],
      ['["dense", 1]', /expected/],
    ];
    for (const [text, re] of cases) {
      expect(() => parsePattern(text), text).toThrow(BadInputError);
      expect(() => parsePattern(text), text).toThrow(re);
    }
  });
});

/** An independent parse of a safetensors file with DataView: header length, JSON, raw bytes. */
function rawParse(bytes: Uint8Array): { n: number; header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>; data: Uint8Array } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = dv.getUint32(0, true);
  const hi = dv.getUint32(4, true);
  expect(hi).toBe(0);
  const n = lo;
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  return { n, header: JSON.parse(text), data: bytes.subarray(8 + n) };
}

describe('safetensors writer', () => {
  it('writes header length, JSON, 8-byte-aligned data start and contiguous little-endian data', () => {
    const a = new Float32Array([1, -2.5, 3.25, Math.PI, 0, -0, 1e-30, 65504, 7, 8, 9, 10]);
    const ix = new Uint32Array([0, 1, 0xffffffff]);
    const neg = new Int32Array([-1, 2 ** 31 - 1, -(2 ** 31)]);
    const bytes = encodeSafetensors({ a: { shape: [3, 4], data: a }, ix: { shape: [3], data: ix }, neg: { shape: [1, 3], data: neg } }, { format: 'pt' });
    const { n, header, data } = rawParse(bytes);
    expect((8 + n) % 8).toBe(0);
    expect(header.__metadata__).toEqual({ format: 'pt' });
    expect(header.a).toEqual({ dtype: 'F32', shape: [3, 4], data_offsets: [0, 48] });
    expect(header.ix).toEqual({ dtype: 'U32', shape: [3], data_offsets: [48, 60] });
    expect(header.neg).toEqual({ dtype: 'I32', shape: [1, 3], data_offsets: [60, 72] });
    expect(data.byteLength).toBe(72);
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    for (let i = 0; i < a.length; i++) expect(Object.is(dv.getFloat32(4 * i, true), a[i])).toBe(true);
    expect(dv.getUint32(48 + 8, true)).toBe(0xffffffff);
    expect(dv.getInt32(60 + 8, true)).toBe(-(2 ** 31));
    // Padding of the header is spaces only.
    const tail = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(tail.trimEnd()).toBe(JSON.stringify(JSON.parse(tail)));
  });

  it('pads the header to 8 bytes for every header length', () => {
    for (let len = 1; len <= 9; len++) {
      const bytes = encodeSafetensors({ ['t'.repeat(len)]: { shape: [1], data: new Float32Array([len]) } });
      const { n } = rawParse(bytes);
      expect((8 + n) % 8).toBe(0);
      expect(decodeSafetensors(bytes).tensors.get('t'.repeat(len))!.data[0]).toBe(len);
    }
  });

  it('writes scalars and empty tensors', () => {
    const bytes = encodeSafetensors({ s: { shape: [], data: new Float32Array([42]) }, e: { shape: [0, 5], data: new Float32Array(0) } });
    const d = decodeSafetensors(bytes);
    expect(d.tensors.get('s')).toMatchObject({ dtype: 'F32', shape: [] });
    expect(d.tensors.get('s')!.data[0]).toBe(42);
    expect(d.tensors.get('e')!.data.length).toBe(0);
  });

  it('round-trips through the reader, including views into larger buffers', () => {
    const big = new Float32Array(100).map((_, i) => i * 0.5);
    const view = big.subarray(10, 22);
    const d = decodeSafetensors(encodeSafetensors({ v: { shape: [2, 6], data: view } }, { k: 'v' }));
    expect(d.metadata).toEqual({ k: 'v' });
    const t = d.tensors.get('v') as DecodedTensor;
    expect(t.dtype).toBe('F32');
    expect(t.shape).toEqual([2, 6]);
    expect(Array.from(t.data)).toEqual(Array.from(view));
  });

  it('reads from a Node Buffer that views a larger memory block (as readFile may return)', () => {
    const file = encodeSafetensors({ a: { shape: [3], data: new Float32Array([1, 2, 3]) }, b: { shape: [2], data: new Int32Array([-4, 5]) } });
    const block = new Uint8Array(file.byteLength + 100);
    block.set(file, 37);
    const buf = Buffer.from(block.buffer, 37, file.byteLength);
    const d = decodeSafetensors(buf);
    expect(Array.from(d.tensors.get('a')!.data)).toEqual([1, 2, 3]);
    expect(Array.from(d.tensors.get('b')!.data)).toEqual([-4, 5]);
  });

  it('rejects data that does not match the shape, and reserved names', () => {
    expect(() => encodeSafetensors({ a: { shape: [2, 2], data: new Float32Array(3) } })).toThrow(ShapeError);
    expect(() => encodeSafetensors({ a: { shape: [2, -1], data: new Float32Array(0) } })).toThrow(ShapeError);
    expect(() => encodeSafetensors({ __metadata__: { shape: [1], data: new Float32Array(1) } })).toThrow(BadInputError);
  });
});

/** Builds a safetensors file by hand (no writer), to feed the reader malformed headers. */
function handMade(header: unknown, dataBytes: number, pad = 0): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header) + ' '.repeat(pad));
  const out = new Uint8Array(8 + json.byteLength + dataBytes);
  new DataView(out.buffer).setUint32(0, json.byteLength, true);
  out.set(json, 8);
  return out;
}

describe('safetensors reader validation', () => {
  it('reads F16 and BF16 as f32 and unaligned data', () => {
    const h = new Uint16Array([f32ToF16Bits(1.5), f32ToF16Bits(-2)]);
    const b = new Uint16Array([f32ToBf16Bits(3), f32ToBf16Bits(0.5)]);
    // pad 1: the data buffer starts at an odd offset.
    const file = handMade({ h: { dtype: 'F16', shape: [2], data_offsets: [0, 4] }, b: { dtype: 'BF16', shape: [2], data_offsets: [4, 8] } }, 8, 1);
    const start = file.byteLength - 8;
    file.set(new Uint8Array(h.buffer), start);
    file.set(new Uint8Array(b.buffer), start + 4);
    const d = decodeSafetensors(file);
    expect(Array.from(d.tensors.get('h')!.data)).toEqual([1.5, -2]);
    expect(Array.from(d.tensors.get('b')!.data)).toEqual([3, 0.5]);
  });

  it('names each header problem', () => {
    const t = (shape: number[], off: [number, number], dtype = 'F32') => ({ dtype, shape, data_offsets: off });
    const cases: [Uint8Array, RegExp, unknown][] = [
      [new Uint8Array(5), /too short/, BadInputError],
      [(() => { const b = new Uint8Array(16); new DataView(b.buffer).setUint32(0, 1000, true); return b; })(), /header length 1000 does not fit/, BadInputError],
      [(() => { const b = handMade({}, 0); b[8] = 0x5b; return b; })(), /not valid UTF-8 JSON/, BadInputError],
      [handMade([1, 2], 0), /must be a JSON object/, BadInputError],
      [handMade({ a: t([2], [0, 8], 'Q8') }, 8), /dtype Q8; supported/, DTypeError],
      [handMade({ a: t([3], [0, 8]) }, 8), /needs 12 bytes, data_offsets give 8/, BadInputError],
      [handMade({ a: t([2], [0, 8]) }, 4), /runs past the 4-byte data buffer/, BadInputError],
      [handMade({ a: t([1], [4, 8]) }, 8), /starts at byte 4, expected 0/, BadInputError],
      [handMade({ a: t([2], [0, 8]), b: t([1], [4, 8]) }, 8), /gap or overlap/, BadInputError],
      [handMade({ a: t([1], [0, 4]) }, 8), /cover 4 bytes but the data buffer has 8/, BadInputError],
      [handMade({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, 4), /invalid data_offsets/, BadInputError],
      [handMade({ a: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }, 4), /non-negative integers/, BadInputError],
      [handMade({ __metadata__: { n: 1 } }, 0), /__metadata__.n must be a string/, BadInputError],
    ];
    for (const [bytes, re, type] of cases) {
      expect(() => decodeSafetensors(bytes, 'f.st'), String(re)).toThrow(re);
      expect(() => decodeSafetensors(bytes, 'f.st'), String(re)).toThrow(type as typeof Error);
    }
  });
});

describe('attention command input checks', () => {
  const mk = (shapes: Record<string, number[]>, dtype = 'F32'): Map<string, DecodedTensor> =>
    new Map(Object.entries(shapes).map(([k, s]) => [k, { dtype, shape: s, data: new Float32Array(s.reduce((a, b) => a * b, 1)) }]));

  it('accepts GQA shapes and returns the dimensions', () => {
    const x = attentionInputs(mk({ q: [4, 10, 64], k: [2, 10, 64], v: [2, 10, 64] }), 'c.st');
    expect([x.H, x.Hkv, x.S, x.D]).toEqual([4, 2, 10, 64]);
  });

  it('rejects missing tensors, wrong ranks, mismatched shapes, bad head counts and head dims', () => {
    const bad: [Record<string, number[]>, RegExp][] = [
      [{ q: [2, 10, 64], k: [1, 10, 64] }, /no tensor "v" \(has: q, k\)/],
      [{ q: [2, 10, 64, 1], k: [1, 10, 64], v: [1, 10, 64] }, /expected 3 dimensions/],
      [{ q: [2, 10, 64], k: [1, 10, 64], v: [1, 11, 64] }, /differ in shape/],
      [{ q: [2, 10, 64], k: [1, 12, 64], v: [1, 12, 64] }, /must agree in S and D/],
      [{ q: [3, 10, 64], k: [2, 10, 64], v: [2, 10, 64] }, /3 query heads are not a multiple of 2/],
      [{ q: [2, 10, 80], k: [1, 10, 80], v: [1, 10, 80] }, /head dimension 80 is not supported/],
      [{ q: [2, 0, 64], k: [1, 0, 64], v: [1, 0, 64] }, /must be positive/],
    ];
    for (const [shapes, re] of bad) expect(() => attentionInputs(mk(shapes), 'c.st'), String(re)).toThrow(re);
    expect(() => attentionInputs(mk({ q: [1, 1, 64], k: [1, 1, 64], v: [1, 1, 64] }, 'I32'), 'c.st')).toThrow(/is I32; expected F32/);
  });
});

describe('sparse index packing for --indexes', () => {
  it('packs per-head lists into [heads, queryBlocks, max] u32 with counts, zero padding and a 1-wide column axis when empty', () => {
    const p = { type: 'block_sparse', topK: 2 } as const;
    // S = 130: 3 query blocks. Head 1 is dense (no index).
    const ix = packIndexes(
      [
        { pattern: p, blockOffsets: [[0], [0, 64], [64, 128]], columns: [[], [], []] },
        null,
      ],
      130,
    )!;
    expect([ix.heads, ix.queryBlocks, ix.maxBlocks, ix.maxColumns]).toEqual([2, 3, 2, 0]);
    expect(Array.from(ix.blockCount)).toEqual([1, 2, 2, 0, 0, 0]);
    expect(Array.from(ix.blockOffset)).toEqual([0, 0, 0, 64, 64, 128, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(ix.columnCount)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(ix.columnIndex.length).toBe(2 * 3 * 1);
    const vs = { type: 'vertical_and_slash', verticalSize: 3, slashSize: 1 } as const;
    const iy = packIndexes([{ pattern: vs, blockOffsets: [[0]], columns: [[5, 9, 33]] }], 40)!;
    expect([iy.maxBlocks, iy.maxColumns]).toEqual([1, 3]);
    expect(Array.from(iy.columnIndex)).toEqual([5, 9, 33]);
    expect(Array.from(iy.columnCount)).toEqual([3]);
    expect(packIndexes([null, null], 64)).toBeUndefined();
  });
});

describe('cli entry and error reporting', () => {
  it('prints help (exit 0) and the command list without a command (exit 2)', async () => {
    const c = capture();
    expect(await runCli(['attention', '--help'], c.io)).toBe(0);
    expect(c.out.join('\n')).toContain('usage: sparse-prefill attention');
    const d = capture();
    expect(await runCli([], d.io)).toBe(2);
    expect(d.out.join('\n')).toContain('commands:');
    const e = capture();
    expect(await runCli(['help', 'attention'], e.io)).toBe(0);
    expect(e.out.join('\n')).toContain('--pattern');
  });

  it('reports typed errors as one line with exit code 2, before touching the GPU', async () => {
    const cases: [string[], RegExp][] = [
      [['frob'], /^sparse-prefill: unknown command "frob"/],
      [['attention', '--in', 'x.st', '--out', 'y.st'], /needs --pattern PATTERN \(see "sparse-prefill attention --help"\)$/],
      [['attention', '--in', 'x.st', '--pattern', '["foo"]', '--out', 'y.st'], /error \[BAD_INPUT\]: pattern "\["foo"\]": unknown type "foo"/],
      [['attention', '--in', '/nonexistent/x.st', '--pattern', 'dense', '--out', 'y.st'], /error \[BAD_INPUT\]: cannot read \/nonexistent\/x.st: no such file/],
    ];
    for (const [argv, re] of cases) {
      const c = capture();
      expect(await runCli(argv, c.io), argv.join(' ')).toBe(2);
      expect(c.err.length).toBe(1);
      expect(c.err[0]).toMatch(re);
    }
  });

  it('reports unexpected errors with their stack and exit code 1', () => {
    const c = capture();
    expect(reportError(new TypeError('boom'), c.io)).toBe(1);
    expect(c.err[0]).toContain('unexpected error');
    expect(c.err[0]).toContain('TypeError: boom');
    expect(c.err[0]).toMatch(/\n\s+at /);
    const d = capture();
    expect(reportError(new NoWebGpuError('no adapter'), d.io)).toBe(2);
    expect(d.err).toEqual(['sparse-prefill: error [NO_WEBGPU]: no adapter']);
  });
});

describe('cli end to end (node dist/cli.mjs)', () => {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const cli = join(root, 'dist/cli.mjs');
  const swiftshader = '/usr/lib/chromium/vk_swiftshader_icd.json';
  let dir = '';

  beforeAll(() => {
    execFileSync(process.execPath, [join(root, 'scripts/build-cli.mjs')], { cwd: root, stdio: 'pipe' });
    dir = mkdtempSync(join(tmpdir(), 'sp-cli-'));
    return () => rmSync(dir, { recursive: true, force: true });
  });

  // Only where no GPU device node exists: there Dawn found no adapter without VK_ICD_FILENAMES and
  // printed its warnings; the CLI now chooses SwiftShader before Dawn loads.
  it.runIf(existsSync(swiftshader) && !existsSync('/dev/dri') && !existsSync('/dev/nvidia0'))(
    'without VK_ICD_FILENAMES on a GPU-less host: SwiftShader is chosen, nothing but our own lines on stderr',
    () => {
      const inPath = join(dir, 'tiny.safetensors');
      const t = { shape: [1, 1, 64], data: new Float32Array(64) };
      writeFileSync(inPath, encodeSafetensors({ q: t, k: t, v: t }));
      const env = { ...process.env };
      delete env.VK_ICD_FILENAMES;
      delete env.VK_DRIVER_FILES;
      const out = join(dir, 'swiftshader.safetensors');
      const r = spawnSync(process.execPath, [cli, 'attention', '--in', inPath, '--pattern', 'dense', '--out', out], { env, encoding: 'utf8', timeout: 120_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toContain(`running on SwiftShader, a CPU Vulkan driver (${swiftshader})`);
      expect(r.stderr.split('\n').filter((l) => l && !/^\[ *\d+\.\d\ds\] /.test(l))).toEqual([]);
      expect(existsSync(out)).toBe(true);
    },
  );

  it('a VK_ICD_FILENAMES naming no file: one NO_WEBGPU line naming it and SwiftShader, before Dawn loads (no Dawn warnings), exit 2', () => {
    const inPath = join(dir, 'tiny.safetensors');
    const t = { shape: [1, 1, 64], data: new Float32Array(64) };
    writeFileSync(inPath, encodeSafetensors({ q: t, k: t, v: t }));
    const r = spawnSync(process.execPath, [cli, 'attention', '-q', '--in', inPath, '--pattern', 'dense', '--out', join(dir, 'never.safetensors')], {
      env: { ...process.env, VK_ICD_FILENAMES: '/nonexistent/icd.json' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([
      'sparse-prefill: error [NO_WEBGPU]: Dawn cannot find a GPU adapter: VK_ICD_FILENAMES names /nonexistent/icd.json, which does not exist. ' +
        "Install a Vulkan driver for your GPU; on Linux without a GPU, install Debian's `chromium` package and set VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json to use SwiftShader.",
    ]);
    expect(existsSync(join(dir, 'never.safetensors'))).toBe(false);
  });

  /** Writes a seeded random case, runs `cmd args attention --pattern dense`, checks o against float64. */
  function denseCase(name: string, cmd: string, args: string[], extraEnv: Record<string, string> = {}, options: string[] = []): string {
    const [H, S, D, Hkv] = [2, 70, 64, 1];
    const seed = runSeed();
    const rng = new Rng(seed);
    const q = rng.normals(H * S * D);
    const k = rng.normals(Hkv * S * D);
    const v = rng.normals(Hkv * S * D);
    const inPath = join(dir, `${name}-case.safetensors`);
    const outPath = join(dir, `${name}-out.safetensors`);
    writeFileSync(inPath, encodeSafetensors({ q: { shape: [H, S, D], data: q }, k: { shape: [Hkv, S, D], data: k }, v: { shape: [Hkv, S, D], data: v } }));
    const env = { ...process.env, ...extraEnv };
    const r = spawnSync(cmd, [...args, 'attention', '--in', inPath, '--pattern', 'dense', '--out', outPath, ...options], { cwd: root, env, encoding: 'utf8', timeout: 110_000 });
    expect(r.status, `seed ${seed}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(0);
    expect(r.stderr).toContain('wrote');
    const out = decodeSafetensors(readFileSync(outPath), outPath);
    const o = out.tensors.get('o')!;
    expect(o.dtype).toBe('F32');
    expect(o.shape).toEqual([H, S, D]);
    expect(out.metadata.pattern).toBe('dense');
    expect(JSON.parse(out.metadata.density!)).toEqual([1, 1]);
    compareArrays(`${name} cli dense o (seed ${seed})`, o.data, denseRef(q, k, v, { H, Hkv, Tq: S, Scap: S, D }, 0, S), TOL_F32);
    return r.stderr;
  }

  const gpuLess = !existsSync('/dev/dri') && !existsSync('/dev/nvidia0');
  const icd: Record<string, string> = !process.env.VK_ICD_FILENAMES && gpuLess && existsSync(swiftshader) ? { VK_ICD_FILENAMES: swiftshader } : {};

  it('node dist/cli.mjs: dense attention H=2 S=70 D=64 Hkv=1 (S ragged against the 64 tile) matches the float64 reference', () => {
    expect(denseCase('node', process.execPath, [cli], icd)).not.toContain('bounds checks are off');
  });

  it('node dist/cli.mjs --no-bounds-checks: says so, and the same case still matches the float64 reference', () => {
    expect(denseCase('node-unchecked', process.execPath, [cli], icd, ['--no-bounds-checks'])).toContain('bounds checks are off (--no-bounds-checks)');
  });

  const deno = join(root, 'node_modules/.bin/deno');
  it.runIf(existsSync(deno))('deno run src/cli/main.ts: the same dense case matches the float64 reference', () => {
    denseCase('deno', deno, ['run', '-A', 'src/cli/main.ts'], { XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' });
  });

  it.runIf(existsSync(deno))('deno run src/cli/main.ts --no-bounds-checks: one BAD_INPUT line saying it needs Node, exit 2', () => {
    const inPath = join(dir, 'tiny.safetensors');
    const t = { shape: [1, 1, 64], data: new Float32Array(64) };
    writeFileSync(inPath, encodeSafetensors({ q: t, k: t, v: t }));
    const r = spawnSync(deno, ['run', '-A', 'src/cli/main.ts', 'attention', '-q', '--in', inPath, '--pattern', 'dense', '--out', join(dir, 'never.safetensors'), '--no-bounds-checks'], {
      cwd: root,
      env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain('--no-bounds-checks needs Node (Dawn): Deno always checks bounds');
  });
});
