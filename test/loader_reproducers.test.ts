// One plain test per loader bug found by the seeded fuzz of issue 13 (test/loader_fuzz.test.ts runs
// the fuzz itself): silent wrong weights from safetensors files whose parts do not add up, hangs and
// crashes from config values used before they were checked, error messages that overflowed the
// stack, nonsense values that loaded, NaN/Inf weights.
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultPatterns, loadPatternConfig, parsePatternString, PatternConfigError } from '../src/attention/config.ts';
import { BadInputError, DTypeError, NonFiniteWeightsError, ShapeError, SparsePrefillError } from '../src/gpu/errors.ts';
import { decodeSafetensors } from '../src/io/safetensors_write.ts';
import { parseModelConfig } from '../src/model/config.ts';
import { Checkpoint, encodeSafetensors } from '../src/model/safetensors.ts';
import { openModel } from '../src/model/session.ts';
import { openHttpModel, openLocalModel, readJson, type FetchLike } from '../src/model/source.ts';
import { checkCheckpoint, expectedTensors, loadWeights } from '../src/model/weights.ts';
import { formatValue } from '../src/util/format.ts';
import { f32ToBf16Bits } from '../src/util/half.ts';
import { testGpu } from './harness/gpu.ts';
import { headerLengthOf, memorySource, rawSafetensors, tinyModel, TINY_CONFIG, withHeaderLength } from './harness/loader_model.ts';

const tiny = tinyModel();
const deep = (depth: number, leaf: unknown = 1): unknown => {
  let v: unknown = leaf;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
};
const DEEP_TEXT = `${'['.repeat(5000)}1${']'.repeat(5000)}`;

function open(file: Uint8Array): Promise<Checkpoint> {
  return Checkpoint.open(memorySource({ 'model.safetensors': file }));
}

function config(patch: Record<string, unknown>): Record<string, unknown> {
  return { ...structuredClone(TINY_CONFIG), ...patch };
}

/** Runs fn and returns what it threw (or undefined). */
async function thrown(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

// ----------------------------------------------------------------------------- silent wrong weights

describe('safetensors: the parts of the file must add up', () => {
  const onePair = (): Uint8Array => rawSafetensors(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}     `, new Uint8Array(new Float32Array([1.5, -2.25]).buffer));

  it('header length reduced by up to the trailing spaces (read back as [2.95e-39, 5.85e-39] before)', async () => {
    const file = onePair();
    expect([...(await (await open(file)).readFloat32('a'))]).toEqual([1.5, -2.25]);
    for (let k = 1; k <= 5; k++) {
      const err = await thrown(() => open(withHeaderLength(file, headerLengthOf(file) - k)));
      expect(err, `k=${k}`).toBeInstanceOf(BadInputError);
      expect((err as Error).message).toMatch(/the tensors cover 8 bytes but the data buffer has (9|1\d)/);
    }
  });

  it('bytes inserted into the data section', async () => {
    const f = tiny.file;
    const at = f.byteLength - 1000;
    const grown = new Uint8Array(f.byteLength + 4);
    grown.set(f.subarray(0, at));
    grown.set(f.subarray(at), at + 4);
    await expect(open(grown)).rejects.toThrow(/cover \d+ bytes but the data buffer has \d+/);
  });

  it('a file extended with garbage, also to 8 GiB of sparse zeros on disk', async () => {
    const f = tiny.file;
    const grown = new Uint8Array(f.byteLength + 16).fill(0xab);
    grown.set(f);
    await expect(open(grown)).rejects.toThrow(BadInputError);
    const dir = await mkdtemp(join(tmpdir(), 'sparse-prefill-'));
    try {
      const path = join(dir, 'model.safetensors');
      await writeFile(path, f);
      await truncate(path, 8 * 2 ** 30);
      const t0 = performance.now();
      await expect(Checkpoint.open(await openLocalModel(dir))).rejects.toThrow(/file size 8589934592/);
      expect(performance.now() - t0).toBeLessThan(2000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a UTF-8 BOM or whitespace before the header JSON', async () => {
    const body = `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`;
    const data = new Uint8Array(8);
    await expect(open(rawSafetensors(`\uFEFF${body}`, data))).rejects.toThrow(/header starts with a UTF-8 byte-order mark/);
    await expect(open(rawSafetensors(` ${body}`, data))).rejects.toThrow(/must start with '\{'/);
    expect(() => decodeSafetensors(rawSafetensors(`\uFEFF${body}`, data))).toThrow(BadInputError);
  });

  it('counts and offsets that are not safe integers, and shapes whose element count overflows', async () => {
    const data = new Uint8Array(8);
    const cases: [string, RegExp][] = [
      [`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,9007199254740993]}}`, /invalid data_offsets/],
      [`{"a":{"dtype":"F32","shape":[9007199254740993],"data_offsets":[0,8]}}`, /shape must be a list of non-negative integers/],
      [`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}`, /more elements than the 8-byte data buffer holds/],
      [`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, /gap or overlap/],
      [`{"__metadata__":{"x":1},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, /__metadata__.x must be a string/],
    ];
    for (const [text, re] of cases) await expect(open(rawSafetensors(text, data)), text).rejects.toThrow(re);
  });

  it('sharded: each shard checked the same way, and the index names only files inside the folder', async () => {
    const s1 = encodeSafetensors([{ name: 'a', dtype: 'F32', shape: [2], data: new Uint8Array(8) }]);
    const grown = new Uint8Array(s1.byteLength + 4);
    grown.set(s1);
    const index = (map: Record<string, string>): string => JSON.stringify({ weight_map: map });
    await expect(Checkpoint.open(memorySource({ 'model.safetensors.index.json': index({ a: 's1.safetensors' }), 's1.safetensors': grown }))).rejects.toThrow(/s1.safetensors: the tensors cover 8 bytes/);
    await expect(Checkpoint.open(memorySource({ 'model.safetensors.index.json': index({ a: '../s1.safetensors' }) }))).rejects.toThrow(/invalid model file name/);
    await expect(Checkpoint.open(memorySource({ 'model.safetensors.index.json': index({}) }))).rejects.toThrow(/lists no tensors/);
    await expect(Checkpoint.open(memorySource({ 'model.safetensors.index.json': DEEP_TEXT }))).rejects.toThrow(/expected a JSON object with a "weight_map", got \[\[\[\[...\]\]\]\]/);
  });

  it('HTTP: sizes the server reports are checked, not trusted', async () => {
    const file = tiny.file;
    const serve = (lie: (a: number, b: number, total: number) => { range?: string; body?: Uint8Array<ArrayBuffer>; status?: number }): FetchLike => {
      let calls = 0;
      return async (_url, init) => {
        const m = /bytes=(\d+)-(\d+)/.exec(init?.headers?.Range ?? '');
        if (!m) return new Response(file, { status: 200 });
        const a = Number(m[1]);
        const b = Math.min(Number(m[2]), file.length - 1);
        const honest = { range: `bytes ${a}-${b}/${file.length}`, body: file.slice(a, b + 1), status: 206 };
        const l = calls++ === 0 ? {} : lie(a, b, file.length);
        return new Response(l.body ?? honest.body, { status: l.status ?? 206, headers: { 'content-range': l.range ?? honest.range } });
      };
    };
    const lies: [string, (a: number, b: number, total: number) => { range?: string; body?: Uint8Array<ArrayBuffer>; status?: number }, RegExp][] = [
      ['total changes', (a, b, t) => ({ range: `bytes ${a}-${b}/${t + 8}` }), /server answered Content-Range "bytes 0-7\/\d+"/],
      ['other bytes', (a, b, t) => ({ range: `bytes ${a + 1}-${b + 1}/${t}` }), /asked for bytes 0-7/],
      ['longer body', (a, b) => ({ body: file.slice(a, b + 9) }), /sent more than the 8 bytes expected/],
      ['shorter body', (a, b) => ({ body: file.slice(a, b) }), /asked for 8 bytes at 0, got 7/],
      ['no Content-Range', () => ({ range: '' }), /Content-Range ""/],
    ];
    for (const [what, lie, re] of lies) await expect(Checkpoint.open(openHttpModel('http://x.test/m', serve(lie))), what).rejects.toThrow(re);
    const huge: FetchLike = async () => new Response(new Uint8Array(1), { status: 206, headers: { 'content-range': 'bytes 0-0/99999999999999999999' } });
    await expect(Checkpoint.open(openHttpModel('http://x.test/m', huge))).rejects.toThrow(/did not report the file size as a number/);
    const honest = await Checkpoint.open(openHttpModel('http://x.test/m', serve(() => ({}))));
    expect(await honest.read('lm_head.weight')).toEqual(tiny.tensors.at(-1)!.data);
  });
});

// ----------------------------------------------------------------------- hangs and crashes

describe('config values bounded before anything loops or allocates on them', () => {
  it('num_hidden_layers 1e9, num_attention_heads 2^31, num_hidden_layers 2^53 - 1 fail at once', async () => {
    for (const patch of [{ num_hidden_layers: 1e9 }, { num_attention_heads: 2147483648, num_key_value_heads: 2147483648 }, { num_hidden_layers: 9007199254740991 }]) {
      const t0 = performance.now();
      expect(() => parseModelConfig(config(patch)), JSON.stringify(patch)).toThrow(/must be an integer in 1\.\.1024/);
      expect(performance.now() - t0).toBeLessThan(50);
    }
    for (const model of [{ layers: 1e9, heads: 2 }, { layers: 2, heads: 2147483648 }, { layers: 9007199254740991, heads: 1 }]) {
      expect(() => defaultPatterns(model)).toThrow(PatternConfigError);
      expect(() => loadPatternConfig('[]', model)).toThrow(PatternConfigError);
    }
  });

  it('a config with fewer layers than the checkpoint: refused before the tokenizer or patterns are built', async () => {
    const src = memorySource({ 'config.json': JSON.stringify(config({ num_hidden_layers: 1 })), 'model.safetensors': tiny.file });
    const err = await thrown(async () => openModel(await testGpu(), src));
    expect(err).toBeInstanceOf(ShapeError);
    expect((err as Error).message).toMatch(/model.layers.1.input_layernorm.weight: the checkpoint has layer 1 but the config has 1 layers/);
    const ckpt = await open(tiny.file);
    expect(() => checkCheckpoint(ckpt, parseModelConfig(config({ intermediate_size: 255 })))).toThrow(/gate_proj.weight: checkpoint shape \[256, 128\] does not match the config, which implies \[255, 128\]/);
  });
});

// --------------------------------------------------------------------- messages that cannot fail

describe('error messages quote values through one bounded formatter', () => {
  it('arrays nested 5000 deep in a config field, a tensor shape, a pattern entry', async () => {
    const cfg = await thrown(() => parseModelConfig(config({ hidden_size: deep(5000) })));
    expect(cfg).toBeInstanceOf(BadInputError);
    expect((cfg as Error).message).toBe('config.json: "hidden_size" must be an integer in 1..65536, got [[[[...]]]]');
    const shape = await thrown(() => open(rawSafetensors(`{"a":{"dtype":"F32","shape":${DEEP_TEXT},"data_offsets":[0,8]}}`, new Uint8Array(8))));
    expect(shape).toBeInstanceOf(BadInputError);
    expect((shape as Error).message).toMatch(/shape must be a list of non-negative integers, got \[\[\[\[...\]\]\]\]$/);
    const pattern = await thrown(() => loadPatternConfig([{ 0: ['vertical_and_slash', deep(5000), 1] }], { layers: 1, heads: 1 }));
    expect(pattern).toBeInstanceOf(PatternConfigError);
    expect(() => loadPatternConfig(DEEP_TEXT, { layers: 1, heads: 1 })).toThrow(PatternConfigError);
    expect(() => parsePatternString(`["vertical_and_slash", ${DEEP_TEXT}, 1]`)).toThrow(PatternConfigError);
  });

  it('a 16 MB dtype string is not copied into the message', async () => {
    const big = 'X'.repeat(16 * 2 ** 20);
    const err = await thrown(() => open(rawSafetensors(`{"a":{"dtype":"${big}","shape":[2],"data_offsets":[0,8]}}`, new Uint8Array(8))));
    expect(err).toBeInstanceOf(DTypeError);
    expect((err as Error).message.length).toBeLessThan(200);
    for (const patch of [{ architectures: [big] }, { torch_dtype: big }, { rope_scaling: { rope_type: big } }, { hidden_act: big }]) {
      const e = await thrown(() => parseModelConfig(config(patch)));
      expect(e).toBeInstanceOf(SparsePrefillError);
      expect((e as Error).message.length, Object.keys(patch)[0]).toBeLessThan(300);
    }
  });

  it('formatValue: bounded, and never throws', () => {
    expect(formatValue(deep(100000))).toBe('[[[[...]]]]');
    expect(formatValue([1, -0, Number.NaN, Infinity, -Infinity, 2n, undefined, null, true, 'x'])).toBe('[1, -0, NaN, Infinity, -Infinity, 2n, undefined, null, ... 2 more]');
    expect(formatValue('y'.repeat(1e6)).length).toBeLessThanOrEqual(80);
    expect(formatValue(Object.fromEntries(Array.from({ length: 1e5 }, (_, i) => [`k${i}`, i])))).toMatch(/^\{"k0": 0, "k1": 1, .*\.\.\.\}$/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(formatValue(cyclic)).toBe('{"self": {"self": {"self": {...}}}}');
    const hostile = new Proxy({}, { ownKeys: () => { throw new Error('no'); } });
    expect(formatValue(hostile)).toBe('<unprintable value>');
  });
});

// ------------------------------------------------------------------------- nonsense that loaded

describe('nonsense config and pattern values are refused, naming the field', () => {
  it('rope, epsilon, factors, token ids, partial rotary', async () => {
    const longrope = { rope_type: 'longrope', short_factor: Array(32).fill(1), long_factor: Array(32).fill(2), original_max_position_embeddings: 1024 };
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ rope_scaling: { ...(TINY_CONFIG.rope_scaling as object), original_max_position_embeddings: 0.5 } }, /rope_scaling: "original_max_position_embeddings" must be an integer/],
      [{ rope_theta: 0.5 }, /"rope_theta" must be a number in \[2, 1000000000000\], got 0.5/],
      [{ rope_theta: 1e-300 }, /"rope_theta" must be a number/],
      [{ rms_norm_eps: 1e-320 }, /"rms_norm_eps" must be a number in \[1.1754943508222875e-38, 1\], got 1e-320/],
      [{ rope_scaling: { ...(TINY_CONFIG.rope_scaling as object), factor: 1e300 } }, /rope_scaling: "factor" must be a number in \[1, 10000\], got 1e\+300/],
      [{ rope_scaling: { ...longrope, attention_factor: 1e300 } }, /"attention_factor" must be a number in \[0.01, 100\]/],
      [{ bos_token_id: 600 }, /"bos_token_id" must be a token id below the vocabulary size 512/],
      [{ bos_token_id: 1e20 }, /"bos_token_id" must be a token id below/],
      [{ eos_token_id: [1e15] }, /"eos_token_id" must be a token id below the vocabulary size 512 or a list of them, got \[1000000000000000\]/],
      [{ partial_rotary_factor: 1e-9 }, /partial_rotary_factor 1e-9 rotates none of the 64 elements/],
      [{ max_position_embeddings: 2 ** 29 }, /"max_position_embeddings" must be an integer in 1\.\.268435456/],
    ];
    for (const [patch, re] of cases) {
      expect(() => parseModelConfig(config(patch)), JSON.stringify(patch)).toThrow(BadInputError);
      expect(() => parseModelConfig(config(patch)), JSON.stringify(patch)).toThrow(re);
    }
     // Found by the fuzz: head_dim 2 rotated 2 elements, which the rope kernel refuses after the upload.
    expect(() => parseModelConfig(config({ head_dim: 2 }))).toThrow(/head_dim 2 is not a multiple of 4/);
  });

  it('hidden_size 1e309 in config.json is reported as Infinity, not "got null"', async () => {
    const text = JSON.stringify(config({})).replace('"hidden_size":128', '"hidden_size":1e309');
    const json = await readJson(memorySource({ 'config.json': text }), 'config.json');
    expect(() => parseModelConfig(json)).toThrow(/"hidden_size" must be an integer in 1\.\.65536, got Infinity/);
  });

  it('generation_config.json ids are checked against the vocabulary too', async () => {
    const src = memorySource({ 'config.json': JSON.stringify(config({})), 'model.safetensors': tiny.file, 'generation_config.json': '{"eos_token_id": [2, 600]}' });
    const { loadGenerationConfig } = await import('../src/model/config.ts');
    await expect(loadGenerationConfig(src, 512)).rejects.toThrow(/"eos_token_id" must be a token id below the vocabulary size 512/);
  });

  it('pattern sizes 1e300, 1e21, 2^53 + 1', () => {
    for (const size of ['1e300', '1e21', '9007199254740993', '268435457']) {
      const text = `[{"0": ["vertical_and_slash", ${size}, 100, 0.9]}]`;
      expect(() => loadPatternConfig(text, { layers: 1, heads: 1 }), size).toThrow(/must be integers in 0\.\.268435456/);
      expect(() => parsePatternString(`["stream_llm", 4, ${size}]`), size).toThrow(PatternConfigError);
    }
  });
});

// ------------------------------------------------------------------------------ NaN / Inf weights

describe('NaN and Inf weights', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('are reported naming the tensor and the first position; checkFinite: false loads them', async () => {
    const gpu = await testGpu();
    const cfg = parseModelConfig(config({}));
    const tensors = tiny.tensors.map((t) => ({ ...t, data: t.data.slice() }));
    const up = tensors.find((t) => t.name === 'model.layers.1.mlp.up_proj.weight')!;
    const bits = new Uint16Array(up.data.buffer);
    bits[5 * 128 + 17] = f32ToBf16Bits(Number.NaN);
    bits[200 * 128 + 3] = f32ToBf16Bits(-Infinity);
    const norm = tensors.find((t) => t.name === 'model.norm.weight')!;
    new Uint16Array(norm.data.buffer)[127] = f32ToBf16Bits(Infinity);
    const dir = await mkdtemp(join(tmpdir(), 'sparse-prefill-'));
    dirs.push(dir);
    await writeFile(join(dir, 'model.safetensors'), encodeSafetensors(tensors));
    const ckpt = await Checkpoint.open(await openLocalModel(dir));
    const err = await thrown(() => loadWeights(gpu, ckpt, cfg));
    expect(err).toBeInstanceOf(NonFiniteWeightsError);
    expect((err as NonFiniteWeightsError).tensors.map((t) => [t.name, t.count, t.firstIndex])).toEqual([
      ['model.layers.1.mlp.up_proj.weight', 2, 5 * 128 + 17],
      ['model.norm.weight', 1, 127],
    ]);
    expect((err as Error).message).toMatch(/model.layers.1.mlp.up_proj.weight \[256, 128\]: 2 of 32768 elements, the first at \[5, 17\]; model.norm.weight \[128\]: 1 of 128 elements, the first at \[127\]/);
    const w = await loadWeights(gpu, ckpt, cfg, { checkFinite: false });
    try {
      expect(Number.isNaN((await gpu.readF32(w.layers[1]!.up))[5 * 128 + 17])).toBe(true);
    } finally {
      w.destroy();
    }
    expect(expectedTensors(cfg).length).toBe(tensors.length);
  });
});
