// Unit tests of what needs no GPU: preprocessor, uniform packing, pool size classes, grid folding, halves.
import { describe, expect, it } from 'vitest';
import { preprocess, ShaderPreprocessError, definesKey } from '../src/shaders/preprocess.ts';
import { reflectEntry, packUniform } from '../src/gpu/reflect.ts';
import { BufferPool, sizeClass } from '../src/gpu/pool.ts';
import { foldGrid } from '../src/kernels/grid.ts';
import { f16BitsToF32, f32ToF16Bits, f32ToBf16Bits, bf16BitsToF32, packHalves, unpackHalves } from '../src/util/half.ts';
import { programKey } from '../src/gpu/gpu.ts';
import { WGSL_SOURCES } from '../src/shaders/sources.generated.ts';

const files: Record<string, string> = {
  'main.wgsl': [
    '#include "lib/a.wgsl"',
    '#ifdef USE_F16',
    'alias T = f16;',
    '#else',
    'alias T = f32;',
    '#endif',
    '#if TILE * 2 >= 64 && defined(WIDE)',
    'const wide = TILE;',
    '#elif TILE == 16',
    'const narrow = TILE; // TILE stays in comments',
    '#endif',
    'var<workgroup> tile: array<T, TILE * TILE>;',
  ].join('\n'),
  'lib/a.wgsl': '#define HELPER 7\nfn helper() -> u32 { return HELPER; }',
};
const lookup = (n: string): string | undefined => files[n];

describe('preprocess', () => {
  it('includes, substitutes whole identifiers and selects branches', () => {
    const out = preprocess('main.wgsl', lookup, { TILE: 32, WIDE: true });
    expect(out.code).toBe(['fn helper() -> u32 { return 7; }', 'alias T = f32;', 'const wide = 32;', 'var<workgroup> tile: array<T, 32 * 32>;'].join('\n'));
    expect(out.lineMap.map((l) => `${l.file}:${l.line}`)).toEqual(['lib/a.wgsl:2', 'main.wgsl:5', 'main.wgsl:8', 'main.wgsl:12']);
  });
  it('takes #elif and keeps comments untouched', () => {
    const out = preprocess('main.wgsl', lookup, { TILE: 16, USE_F16: true });
    expect(out.code).toContain('alias f16 = f16;'.replace('alias f16', 'alias T'));
    expect(out.code).toContain('const narrow = 16; // TILE stays in comments');
  });
  it('false means undefined', () => {
    expect(preprocess('main.wgsl', lookup, { TILE: 8, USE_F16: false }).code).toContain('alias T = f32;');
  });
  it('reports errors with file and line', () => {
    const bad = { 'x.wgsl': 'a\n#if FOO\nb\n' };
    expect(() => preprocess('x.wgsl', (n) => bad[n as 'x.wgsl'])).toThrow(/x.wgsl:4: unterminated #if/);
    const inc = { 'y.wgsl': 'fn f() {}\n#include "nope.wgsl"' };
    expect(() => preprocess('y.wgsl', (n) => inc[n as 'y.wgsl'])).toThrow(ShaderPreprocessError);
    expect(() => preprocess('y.wgsl', (n) => inc[n as 'y.wgsl'])).toThrow(/y.wgsl:2/);
    const unknown = { 'z.wgsl': '#pragma once' };
    expect(() => preprocess('z.wgsl', (n) => unknown[n as 'z.wgsl'])).toThrow(/unknown directive #pragma/);
  });
  it('#for repeats its body per value, nested, with #if on the variable, keeping line numbers', () => {
    const src = {
      'f.wgsl': ['#for I in 0..N', '#for J in 1..N', 'a[I * N + J] = b[I] * c[J];', '#endfor', '#if I > 0', 'd[I] = d[I - 1];', '#endif', '#endfor', 'done;'].join('\n'),
    };
    const out = preprocess('f.wgsl', (n) => src[n as 'f.wgsl'], { N: 3 });
    expect(out.code).toBe(
      ['a[0 * 3 + 1] = b[0] * c[1];', 'a[0 * 3 + 2] = b[0] * c[2];', 'a[1 * 3 + 1] = b[1] * c[1];', 'a[1 * 3 + 2] = b[1] * c[2];', 'd[1] = d[1 - 1];', 'a[2 * 3 + 1] = b[2] * c[1];', 'a[2 * 3 + 2] = b[2] * c[2];', 'd[2] = d[2 - 1];', 'done;'].join('\n'),
    );
    expect(out.lineMap.map((l) => l.line)).toEqual([3, 3, 3, 3, 6, 3, 3, 6, 9]);
    // The variable is undefined after the loop; an empty range emits nothing.
    expect(preprocess('f.wgsl', (n) => src[n as 'f.wgsl'], { N: 0 }).code).toBe('done;');
    // Inside an inactive branch the loop is skipped, #endfor included.
    const off = { 'g.wgsl': '#if 0\n#for I in 0..2\nx;\n#endfor\n#endif\ny;' };
    expect(preprocess('g.wgsl', (n) => off[n as 'g.wgsl']).code).toBe('y;');
  });
  it('#for refuses a bound it cannot resolve, a caller define as its variable, and a missing #endfor', () => {
    const run = (text: string, defines = {}): string => preprocess('h.wgsl', () => text, defines).code;
    expect(() => run('#for I in 0..DB\nx;\n#endfor')).toThrow(/h.wgsl:1: #for bound names DB, which is not defined/);
    expect(() => run('#for N in 0..2\nx;\n#endfor', { N: 2 })).toThrow(/#for variable N is also a define given by the caller/);
    expect(() => run('#for I in 0..2\nx;')).toThrow(/h.wgsl:1: #for without #endfor/);
    expect(() => run('x;\n#endfor')).toThrow(/h.wgsl:2: #endfor without #for/);
    expect(() => run('#for I 0..2\nx;\n#endfor')).toThrow(/#for wants NAME in FIRST..LAST/);
  });
  it('keys are stable and order-free', () => {
    expect(definesKey({ B: 2, A: true, C: false })).toBe('A=true,B=2');
    expect(programKey({ shader: 's.wgsl', defines: { B: 2, A: 1 }, overrides: { Y: 1, X: 2 } })).toBe(programKey({ shader: 's.wgsl', defines: { A: 1, B: 2 }, overrides: { X: 2, Y: 1 } }));
  });
});

describe('reflection and uniforms', () => {
  const code = `
struct Params { n: u32, scale: f32, off: vec2<i32>, eps: f32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<uniform> params: Params;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x < params.n) { y[g.x] = x[g.x] * params.scale + f32(params.off.x) + params.eps; }
}`;
  it('reads bindings, kinds and the Params layout from WGSL', () => {
    const r = reflectEntry(code, 'main');
    expect(r.bindings).toEqual([
      { name: 'x', binding: 0, kind: 'read-only-storage' },
      { name: 'params', binding: 1, kind: 'uniform' },
      { name: 'y', binding: 2, kind: 'storage' },
    ]);
    expect(r.uniform!.members.map((m) => [m.name, m.offset])).toEqual([['n', 0], ['scale', 4], ['off', 8], ['eps', 16]]);
    expect(r.uniform!.size).toBe(32);
  });
  it('packs values by name, little-endian, and rejects missing, unknown and ill-typed ones', () => {
    const layout = reflectEntry(code, 'main').uniform!;
    const bytes = packUniform(layout, { n: 5, scale: 0.5, off: [-1, 2], eps: 1e-6 }, 'k');
    const v = new DataView(bytes.buffer);
    expect([v.getUint32(0, true), v.getFloat32(4, true), v.getInt32(8, true), v.getInt32(12, true)]).toEqual([5, 0.5, -1, 2]);
    expect(() => packUniform(layout, { n: 5, scale: 1, off: [0, 0] }, 'k')).toThrow(/eps was not given/);
    expect(() => packUniform(layout, { n: 5, scale: 1, off: [0, 0], eps: 0, bogus: 1 }, 'k')).toThrow(/no member "bogus"/);
    expect(() => packUniform(layout, { n: 1.5, scale: 1, off: [0, 0], eps: 0 }, 'k')).toThrow(/must be an integer/);
    expect(() => packUniform(layout, { n: -1, scale: 1, off: [0, 0], eps: 0 }, 'k')).toThrow(/does not fit u32/);
    expect(() => packUniform(layout, { n: 1, scale: 1, off: [0], eps: 0 }, 'k')).toThrow(/wants 2 values/);
  });
  it('every embedded shader with a main entry reflects', () => {
    for (const [name, text] of Object.entries(WGSL_SOURCES)) {
      if (name.startsWith('lib/') || !/fn main\s*\(/.test(text) || /#include|#if|#define/.test(text)) continue;
      expect(() => reflectEntry(text, 'main'), name).not.toThrow();
    }
  });
});

describe('pool, grid, halves', () => {
  it('size classes round up and stay within 1/16 above 1 MiB', () => {
    expect(sizeClass(1)).toBe(256);
    expect(sizeClass(257)).toBe(512);
    expect(sizeClass(1 << 20)).toBe(1 << 20);
    const big = 100_000_001;
    expect(sizeClass(big)).toBeGreaterThanOrEqual(big);
    expect(sizeClass(big) / big).toBeLessThan(1 + 1 / 8);
  });
  it('folds long grids into two dimensions', () => {
    expect(foldGrid(10, 65535)).toEqual([10, 1]);
    const [x, y] = foldGrid(200_000, 65535);
    expect(x).toBeLessThanOrEqual(65535);
    expect(x * y).toBeGreaterThanOrEqual(200_000);
    expect(() => foldGrid(65535 * 65535 + 1, 65535)).toThrow(RangeError);
  });
  it('converts f16 and bf16 with round-to-nearest-even', () => {
    for (const v of [0, 1, -2.5, 65504, 6.1e-5, 5.96e-8, 1 / 3]) expect(Math.abs(f16BitsToF32(f32ToF16Bits(v)) - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11 + 2 ** -25);
    expect(f32ToF16Bits(1e6)).toBe(0x7c00);
    expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN)))).toBe(true);
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie -> even
    expect(bf16BitsToF32(f32ToBf16Bits(3.140625))).toBe(3.140625);
    const vals = [1, -2, 0.5, 3.25, 7];
    expect(Array.from(unpackHalves('bf16', packHalves('bf16', vals), 5))).toEqual(vals);
    expect(Array.from(unpackHalves('f16', packHalves('f16', vals), 5))).toEqual(vals);
  });
});

describe('buffer pool', () => {
  // A stand-in device: the pool only calls createBuffer.
  const fakeDevice = (): GPUDevice => {
    let n = 0;
    return { createBuffer: ({ size, label }: GPUBufferDescriptor) => ({ size, label, id: n++ }) } as unknown as GPUDevice;
  };
  it('reuses a released buffer only after the next submit, and never hands one buffer out twice', () => {
    const pool = new BufferPool(fakeDevice(), () => 0);
    const a = pool.acquire(1000, 'a');
    pool.release(a);
    expect(pool.acquire(1000, 'b')).not.toBe(a); // not before a submit
    pool.afterSubmit();
    const c = pool.acquire(1000, 'c');
    expect(c).toBe(a);
    pool.release(c);
    pool.release(c); // double release: ignored
    pool.afterSubmit();
    const d = pool.acquire(1000, 'd');
    const e = pool.acquire(1000, 'e');
    expect(d).toBe(a);
    expect(e).not.toBe(a);
  });
});
