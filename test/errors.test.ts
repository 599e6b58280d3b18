// Typed errors of the device layer: no adapter, WGSL compile errors naming file and line, a tensor
// too large for a binding, device loss, and bad dispatch arguments.
import { describe, expect, it } from 'vitest';
import { requestGpu } from '../src/gpu/device.ts';
import { DeviceLostError, GpuValidationError, KernelCompileError, NoWebGpuError, ShapeError, TensorTooLargeError, DTypeError } from '../src/gpu/errors.ts';
import { AddKernel } from '../src/kernels/add.ts';
import { testGpu } from './harness/gpu.ts';
import { errorLine } from '../bench/harness.ts';

describe('device errors', () => {
  it('no adapter: says what to install', async () => {
    const fake = { requestAdapter: async () => null } as unknown as GPU;
    const err = await requestGpu({ gpu: fake }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoWebGpuError);
    expect((err as Error).message).toMatch(/Vulkan driver/);
    expect((err as Error).message).toMatch(/vk_swiftshader_icd\.json|mesa-vulkan-drivers|hardware acceleration/);
  });

  it('WGSL compile error names the .wgsl file and its line (through #include)', async () => {
    const gpu = await testGpu();
    gpu.registerShader(
      'broken_test.wgsl',
      ['// a test kernel with a type error on line 6', '#include "lib/grid.wgsl"', '@group(0) @binding(0) var<storage, read_write> y: array<f32>;', '@compute @workgroup_size(1)', 'fn main() {', '  let bad: u32 = 1.5f;', '  y[0] = f32(bad);', '}'].join('\n'),
    );
    const err = await gpu.compile({ shader: 'broken_test.wgsl' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KernelCompileError);
    const e = err as KernelCompileError;
    expect(e.file).toBe('broken_test.wgsl');
    expect(e.line).toBe(6);
    expect(e.message).toMatch(/shaders\/broken_test\.wgsl:6:/);
  });

  it('a preprocessor error is a compile error naming the line', async () => {
    const gpu = await testGpu();
    gpu.registerShader('bad_directive_test.wgsl', 'fn main() {}\n#if\n#endif');
    const err = await gpu.compile({ shader: 'bad_directive_test.wgsl' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KernelCompileError);
    expect((err as KernelCompileError).line).toBe(2);
  });

  it('a compile error after warnings keeps what failed (a pipeline or layout), not only the warnings', () => {
    const e = new KernelCompileError('k.wgsl', [{ type: 'warning', file: 'k.wgsl', line: 3, column: 5, message: 'use of deprecated builtin' }], 'pipeline creation failed: binding 14 is not in the layout');
    expect(e.message).toContain('shaders/k.wgsl:3:5: warning: use of deprecated builtin');
    expect(e.message).toContain('pipeline creation failed: binding 14 is not in the layout');
    expect(new KernelCompileError('k.wgsl', [], 'reflection failed: x').message).toBe('kernel k.wgsl failed to compile:\nreflection failed: x');
    // The bench's one-line form (device check, suites) shows the failure, not 60 warnings.
    const many = Array.from({ length: 60 }, (_, i) => ({ type: 'warning' as const, file: 'k.wgsl', line: i + 1, column: 1, message: 'use of deprecated builtin' }));
    expect(errorLine(new KernelCompileError('k.wgsl', many, 'pipeline creation failed: binding 14 is not in the layout'))).toBe(
      'kernel k.wgsl failed to compile: | pipeline creation failed: binding 14 is not in the layout',
    );
  });

  it('a tensor larger than one binding is refused before allocation', async () => {
    const gpu = await testGpu();
    const limit = gpu.caps.limits.maxStorageBufferBindingSize;
    const n = Math.floor(limit / 4) + 1;
    expect(() => gpu.empty([n], 'f32', 'huge')).toThrow(TensorTooLargeError);
    expect(() => gpu.empty([n], 'f32', 'huge')).toThrow(/huge\[\d+\] f32 needs \d+ bytes/);
  });

  it('bad shapes, dtypes and dispatch sizes are refused before encoding', async () => {
    const gpu = await testGpu();
    expect(() => gpu.empty([3, 0], 'f32')).toThrow(ShapeError);
    expect(() => gpu.upload(new Float32Array(3), [4], 'f32')).toThrow(/3 values for 4 elements/);
    expect(() => gpu.upload(new Int32Array(4), [4], 'f32')).toThrow(DTypeError);
    const k = await AddKernel.create(gpu);
    const a = gpu.upload(new Float32Array(4), [4], 'f32');
    const b = gpu.upload(new Float32Array(5), [5], 'f32');
    expect(() => k.encode(gpu.batch(), a, b, a)).toThrow(/add: element counts differ/);
    const program = await gpu.compile({ shader: 'add.wgsl', overrides: { WG: 256 } });
    expect(() => gpu.batch().dispatch({ program, bindings: { a, b: a, out: a }, params: { n: 4 }, workgroups: [70000] })).toThrow(/workgroup count/);
    expect(() => gpu.batch().dispatch({ program, bindings: { a, out: a }, params: { n: 4 }, workgroups: [1] })).toThrow(/binding "b" was not given/);
    gpu.release(a, b);
  });

  it('a WebGPU validation error while recording becomes a GpuValidationError at submit', async () => {
    const gpu = await testGpu();
    const program = await gpu.compile({ shader: 'add.wgsl', overrides: { WG: 256 } });
    const buf = gpu.device.createBuffer({ size: 4096, usage: GPUBufferUsage.STORAGE });
    // Offset 4 breaks minStorageBufferOffsetAlignment (256): the bind group, and so the encoder, is invalid.
    const batch = gpu.batch();
    batch.dispatch({ program, bindings: { a: { buffer: buf, offset: 4, size: 16 }, b: { buffer: buf, size: 16 }, out: { buffer: buf, offset: 256, size: 16 } }, params: { n: 4 }, workgroups: [1] });
    const err = await batch.submit().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GpuValidationError);
    await gpu.sync().catch(() => undefined);
    try {
      gpu.check();
    } catch {
      // the uncaptured bind-group error may surface once; later work is unaffected
    }
    buf.destroy();
    const k = await AddKernel.create(gpu);
    const a = gpu.upload(new Float32Array([1, 2]), [2], 'f32');
    const out = gpu.empty([2], 'f32');
    const ok = gpu.batch();
    k.encode(ok, a, a, out);
    await ok.submit();
    expect(Array.from(await gpu.read(out))).toEqual([2, 4]);
    gpu.release(a, out);
  });

  it('device loss rejects work in flight and later calls with DeviceLostError', async () => {
    const gpu = await requestGpu({ label: 'doomed' });
    const t = gpu.upload(new Float32Array([1, 2, 3]), [3], 'f32');
    const pending = gpu.read(t);
    gpu.device.destroy();
    const err = await pending.then(
      () => undefined,
      (e: unknown) => e,
    );
    // A read that completed before the loss is fine; anything after must fail typed.
    if (err !== undefined) expect(err).toBeInstanceOf(DeviceLostError);
    await gpu.sync().catch(() => undefined);
    await new Promise((r) => setTimeout(r, 50));
    expect(gpu.lost).toBeInstanceOf(DeviceLostError);
    await expect(gpu.read(t)).rejects.toBeInstanceOf(DeviceLostError);
    await expect(gpu.compile({ shader: 'add.wgsl', defines: { FRESH: 1 } })).rejects.toBeInstanceOf(DeviceLostError);
    expect(() => gpu.empty([4], 'f32')).toThrow(DeviceLostError);
  });
});
