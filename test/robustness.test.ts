/**
 * Dawn without bounds checks (requestGpu({ robustness: false }): disable_robustness and
 * disable_workgroup_init, Node only). First a probe shows the toggles are in force: a write past
 * its binding's range lands in the buffer's next bytes, where with bounds checks it is dropped.
 * Then the quick kernel cases run on that device: with nothing clamped, a kernel that read past a
 * binding would pick up the NaN-poisoned rows beyond the valid data, and one that relied on zeroed
 * workgroup memory would see garbage, so these cases are what lets the GPU bench turn checks off.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestGpu } from '../src/gpu/device.ts';
import type { Gpu } from '../src/gpu/gpu.ts';
import { NoWebGpuError } from '../src/gpu/errors.ts';
import { allCases } from './cases/index.ts';
import { hasCapability, runCase } from './harness/cases.ts';

/** Runs a 128-thread write of 7s into a 64-word binding at byte 256 of a 1 KiB buffer; returns how many 7s landed past the binding. */
async function writesPastBinding(gpu: Gpu): Promise<number> {
  const d = gpu.device;
  const module = d.createShaderModule({
    code: `
@group(0) @binding(0) var<storage, read_write> a: array<u32>;
@group(0) @binding(1) var<uniform> n: vec4<u32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x < n.x) { a[g.x] = 7u; }
}`,
  });
  const pipeline = d.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const buf = d.createBuffer({ size: 1024, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const uni = d.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  const read = d.createBuffer({ size: 1024, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    d.queue.writeBuffer(uni, 0, new Uint32Array([128, 0, 0, 0]));
    const group = d.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: buf, offset: 256, size: 256 } },
        { binding: 1, resource: { buffer: uni } },
      ],
    });
    const e = d.createCommandEncoder();
    const pass = e.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(2);
    pass.end();
    e.copyBufferToBuffer(buf, 0, read, 0, 1024);
    d.queue.submit([e.finish()]);
    await read.mapAsync(GPUMapMode.READ);
    const words = new Uint32Array(read.getMappedRange().slice(0));
    read.unmap();
    expect(words.subarray(64, 128).every((w) => w === 7), 'the binding itself is written').toBe(true);
    return words.subarray(128).filter((w) => w === 7).length;
  } finally {
    for (const b of [buf, uni, read]) b.destroy();
  }
}

describe('bounds checks on and off (node-dawn)', () => {
  let checked: Gpu;
  let unchecked: Gpu;
  beforeAll(async () => {
    checked = await requestGpu({ label: 'checked' });
    unchecked = await requestGpu({ label: 'unchecked', robustness: false });
  });
  afterAll(() => {
    checked?.destroy();
    unchecked?.destroy();
  });

  it('robustness: false really drops the checks (a write past its binding lands), and caps say so', async () => {
    expect(checked.caps.robustness).toBe(true);
    expect(unchecked.caps.robustness).toBe(false);
    expect(await writesPastBinding(checked)).toBe(0);
    expect(await writesPastBinding(unchecked)).toBe(64);
  });

  it('is refused by name where the host always checks', async () => {
    const deno = globalThis as { Deno?: unknown };
    deno.Deno = { version: { deno: '2.0.0' } };
    try {
      await expect(requestGpu({ robustness: false })).rejects.toThrow(NoWebGpuError);
      await expect(requestGpu({ robustness: false })).rejects.toThrow(/robustness: false needs Node's Dawn/);
    } finally {
      delete deno.Deno;
    }
  });

  for (const c of allCases.filter((x) => x.quick)) {
    it(`without bounds checks: ${c.name}`, async (ctx) => {
      if (!hasCapability(unchecked, c.needs)) ctx.skip();
      await runCase(unchecked, c);
    });
  }
});
