// shaders/bench_mma.wgsl, the benchmarks' tensor-core throughput probe (bench/suites/mma.ts): every
// subgroup's accumulators must equal iters * (sum over the k-blocks used of left x right), exactly
// (small integer inputs), for both operand sources and several matrix counts.
import type { KernelCase } from '../harness/cases.ts';
import { poisoned } from '../harness/cases.ts';
import { expectEqualInts } from '../harness/compare.ts';
import { Rng } from '../harness/rng.ts';
import { compileMmaProbe, mmaProbeSizes, type MmaProbe } from '../../bench/mma-probe.ts';
import { mmaProbeReference } from '../reference/bench_mma.ts';

const PROBES: MmaProbe[] = [
  { SG_TM: 2, SG_TN: 3, BK: 32, source: 'regs', SGS: 2, unroll: false },
  { SG_TM: 2, SG_TN: 3, BK: 32, source: 'shared', SGS: 2, unroll: false },
  { SG_TM: 1, SG_TN: 1, BK: 48, source: 'shared', SGS: 1, unroll: false },
  { SG_TM: 3, SG_TN: 2, BK: 32, source: 'regs', SGS: 2, unroll: true },
  { SG_TM: 4, SG_TN: 4, BK: 16, source: 'shared', SGS: 4, unroll: true },
  { SG_TM: 2, SG_TN: 4, BK: 48, source: 'shared', SGS: 1, unroll: true },
];

export const benchMmaCases: KernelCase[] = PROBES.map((p) => ({
  name: `bench_mma:${p.source}${p.unroll ? '-unrolled' : ''},${p.SG_TM}x${p.SG_TN},BK=${p.BK},SGS=${p.SGS}`,
  needs: 'subgroupMatrix',
  async run(gpu, seed) {
    const rng = new Rng(seed);
    const workgroups = 3;
    const iters = 5;
    const sizes = mmaProbeSizes(p, workgroups);
    const data = new Float32Array(sizes.src);
    for (let i = 0; i < data.length; i++) data[i] = rng.int(-2, 3);
    const src = gpu.upload(data, [sizes.src], 'f32', 'src');
    const dst = poisoned(gpu, [sizes.dst], 'f32', 'dst');
    const program = await compileMmaProbe(gpu, p);
    await gpu.run({ program, bindings: { src, dst }, params: { iters }, workgroups: [workgroups, 1] });
    expectEqualInts(this.name, await gpu.read(dst), mmaProbeReference(p, data, workgroups, iters));
    gpu.release(src, dst);
  },
}));
