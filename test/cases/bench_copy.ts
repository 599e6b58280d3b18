// shaders/bench_copy.wgsl, the benchmarks' streaming-copy bandwidth probe (bench/limits.ts): it must
// copy every 16-byte word exactly, including a ragged tail and a grid of several workgroups.
import type { KernelCase } from '../harness/cases.ts';
import { poisoned } from '../harness/cases.ts';
import { expectEqualInts } from '../harness/compare.ts';
import { Rng } from '../harness/rng.ts';
import { ceilDiv, foldGrid } from '../../src/kernels/grid.ts';

const WG = 256;

export const benchCopyCases: KernelCase[] = [1, 257, 1000].map((words) => ({
  name: `bench_copy:words16=${words}`,
  quick: words <= 257,
  async run(gpu, seed) {
    const rng = new Rng(seed);
    const data = new Uint32Array(words * 4);
    for (let i = 0; i < data.length; i++) data[i] = rng.int(0, 0x7fffffff);
    const src = gpu.upload(data, [words * 4], 'u32', 'src');
    const dst = poisoned(gpu, [words * 4], 'u32', 'dst');
    const program = await gpu.compile({ shader: 'bench_copy.wgsl', overrides: { WG } });
    const [x, y] = foldGrid(ceilDiv(words, WG), gpu.caps.limits.maxComputeWorkgroupsPerDimension);
    await gpu.run({ program, bindings: { src, dst }, params: { n: words }, workgroups: [x, y] });
    expectEqualInts(this.name, await gpu.read(dst), data);
    gpu.release(src, dst);
  },
}));
