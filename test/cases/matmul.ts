/**
 * Linear layer y = x · Wᵀ (+ b): every path the device has, every weight dtype, bias on and off,
 * ragged shapes (M, N, K not multiples of any tile; odd K with packed weights, so rows start in the
 * high half of a word), and both load flavours (vector loads at K % 8 == 0, element loads otherwise).
 * Names are matmul:<path>:<M>x<N>x<K>:<wdtype>[:bias].
 *
 * Tolerances: f32 paths (f32 tiles, gemv) against the float64 reference with the weights rounded to
 * their storage dtype: TOL_F32. f16-compute paths (f16 tiles, sgmatrix) round x (and W) to f16 while
 * staging; they are compared with a reference on f16-rounded inputs at TOL_F16
 * (relL2 2e-3, per element 2e-3 + 1e-2 |ref|), which only absorbs the accumulation-order differences.
 */
import type { KernelCase } from '../harness/cases.ts';
import { poisoned } from '../harness/cases.ts';
import { Rng } from '../harness/rng.ts';
import { compareArrays, expectThrows, TOL_F16, TOL_F32 } from '../harness/compare.ts';
import { matmulRef, matmulInputsAsF16 } from '../reference/matmul.ts';
import { MatmulKernel, LARGE_TILE, SMALL_TILE, SG_TILE, SG_TILE_ONE, type MatmulVariant, type MatmulWeightDType, type SgTileConfig, type TileConfig } from '../../src/kernels/matmul.ts';
import { roundTo } from '../../src/util/half.ts';
import type { Gpu } from '../../src/gpu/gpu.ts';
import { BadInputError, DTypeError, ShapeError, UnsupportedError } from '../../src/gpu/errors.ts';

type Shape = [number, number, number]; // M, N, K

interface Spec {
  variant: MatmulVariant;
  shape: Shape;
  wdt: MatmulWeightDType;
  bias: boolean;
  tile?: TileConfig;
  sgTile?: SgTileConfig;
  tag?: string;
  quick?: boolean;
}

const DTYPES: MatmulWeightDType[] = ['f32', 'f16', 'bf16'];

async function runSpec(gpu: Gpu, seed: number, s: Spec, name: string): Promise<void> {
  const [M, N, K] = s.shape;
  const rng = new Rng(seed);
  // x scaled by 1/sqrt(K) keeps outputs O(1), so f32 rounding stays far below TOL_F32's atol.
  const x = rng.normals(M * K, 1 / Math.sqrt(K));
  const w = rng.normals(N * K);
  const b = s.bias ? rng.normals(N) : undefined;
  const tx = gpu.upload(x, [M, K], 'f32', 'x');
  const tw = gpu.upload(w, [N, K], s.wdt, 'w');
  const tb = b ? gpu.upload(b, [N], 'f32', 'bias') : undefined;
  const ty = poisoned(gpu, [M, N]);
  const k = await MatmulKernel.create(gpu, { weightDType: s.wdt, bias: s.bias, variant: s.variant, tile: s.tile, sgTile: s.sgTile });
  const batch = gpu.batch();
  k.encode(batch, tx, tw, ty, tb);
  await batch.submit();
  const wSeen = s.wdt === 'f32' ? w : roundTo(s.wdt, w);
  const f16Compute = k.lastPath === 'f16' || k.lastPath === 'sgmatrix';
  const ref = f16Compute ? matmulRef(matmulInputsAsF16(x), matmulInputsAsF16(wSeen), b, M, N, K) : matmulRef(x, wSeen, b, M, N, K);
  compareArrays(name, await gpu.read(ty), ref, f16Compute ? TOL_F16 : TOL_F32);
  gpu.release(tx, tw, tb, ty);
}

function specCase(s: Spec): KernelCase {
  const [M, N, K] = s.shape;
  const name = `matmul:${s.variant}${s.tag ? `-${s.tag}` : ''}:${M}x${N}x${K}:${s.wdt}${s.bias ? ':bias' : ''}`;
  return {
    name,
    quick: s.quick,
    needs: s.variant === 'f16' ? 'f16' : s.variant === 'sgmatrix' ? 'subgroupMatrix' : undefined,
    run(gpu, seed) {
      return runSpec(gpu, seed, s, name);
    },
  };
}

const SHAPES: Shape[] = [
  [1, 1, 1],
  [1, 64, 64],
  [7, 33, 65],
  [64, 64, 64],
  [65, 129, 47],
  [130, 70, 200],
];

const specs: Spec[] = [];
// Bias follows the dtype (f32 and bf16 with, f16 without), so that the number of distinct pipelines,
// which dominates the time on software adapters, stays small; bias on and off are both covered.
const withBias = (wdt: MatmulWeightDType): boolean => wdt !== 'f16';
// The f32 tiled path (64x64 tile): every shape x every weight dtype.
SHAPES.forEach((shape, i) => DTYPES.forEach((wdt, j) => specs.push({ variant: 'f32', shape, wdt, bias: withBias(wdt), tile: SMALL_TILE, quick: i <= 2 && j === 0 })));
// The 128x128 register tile with prefetch (the default for large M*N): ragged in M, N and K, both load flavours.
specs.push({ variant: 'f32', tag: 'large', shape: [130, 70, 200], wdt: 'f32', bias: true, tile: LARGE_TILE });
specs.push({ variant: 'f32', tag: 'large', shape: [129, 131, 47], wdt: 'f16', bias: false, tile: LARGE_TILE });
specs.push({ variant: 'f32', tag: 'large', shape: [131, 129, 64], wdt: 'f16', bias: false, tile: LARGE_TILE });
// Register prefetch (double-buffered workgroup tiles) on the 64x64 tile, where packed-B chunks are
// fewer than threads, with the inner product as loops (unroll off).
specs.push({ variant: 'f32', tag: 'small-prefetch-loops', shape: [65, 129, 200], wdt: 'bf16', bias: true, tile: { ...SMALL_TILE, prefetch: true, unroll: false } });
// gemv (decode, M <= 8): vector loads (K % 8 == 0) and element loads (odd K).
for (const wdt of DTYPES) {
  specs.push({ variant: 'gemv', shape: [1, 64, 64], wdt, bias: withBias(wdt), quick: wdt === 'f32' });
  specs.push({ variant: 'gemv', shape: [7, 33, 65], wdt, bias: withBias(wdt) });
  specs.push({ variant: 'gemv', shape: [8, 70, 200], wdt, bias: withBias(wdt) });
}
specs.push({ variant: 'gemv', shape: [1, 1, 1], wdt: 'bf16', bias: true });
// K long enough for the 4-chunk unrolled loop plus a remainder (f32: 258 vec4 chunks, packed: 129 chunks of 8).
specs.push({ variant: 'gemv', shape: [2, 20, 1032], wdt: 'f32', bias: true });
specs.push({ variant: 'gemv', shape: [2, 20, 1032], wdt: 'bf16', bias: true });
// auto: gemv, the f32 tiles (small or large by M*N) or sgmatrix, by shape and device.
specs.push({ variant: 'auto', shape: [3, 40, 72], wdt: 'bf16', bias: true });
specs.push({ variant: 'auto', shape: [65, 129, 47], wdt: 'bf16', bias: true });
// f16 tiles and tensor cores: where the device has them.
for (const variant of ['f16', 'sgmatrix'] as const) {
  for (const [i, shape] of ([[1, 1, 1], [7, 33, 65], [64, 64, 64], [65, 129, 47], [130, 70, 200]] as Shape[]).entries()) {
    for (const [j, wdt] of DTYPES.entries()) specs.push({ variant, shape, wdt, bias: (i + j) % 2 === 0 });
  }
}

// The one-subgroup tensor-core tile (the fallback where multi-subgroup stores are rejected).
for (const [shape, wdt] of [[[7, 33, 65], 'f16'], [[65, 129, 47], 'bf16'], [[130, 70, 200], 'f32']] as [Shape, MatmulWeightDType][]) {
  specs.push({ variant: 'sgmatrix', tag: 'one-subgroup', shape, wdt, bias: true, sgTile: SG_TILE_ONE });
}
// Tensor-core tiles written out with constant indices (lib/sg_mma.wgsl): the default 2x2 subgroups of
// 4x4 matrices with and without prefetch, and uneven per-subgroup blocks, at ragged shapes.
const UNROLLED: [string, SgTileConfig][] = [
  ['unrolled', { ...SG_TILE, unroll: true }],
  ['unrolled-noprefetch', { ...SG_TILE, prefetch: false, unroll: true }],
  ['unrolled-2x4sg-4x2m', { SG_M: 2, SG_N: 4, SG_TM: 4, SG_TN: 2, SBK: 32, prefetch: true, unroll: true }],
  ['unrolled-4x2sg-3x1m', { SG_M: 4, SG_N: 2, SG_TM: 3, SG_TN: 1, SBK: 16, prefetch: false, unroll: true }],
];
for (const [i, [tag, sgTile]] of UNROLLED.entries()) {
  for (const [shape, wdt] of [[[7, 33, 65], 'f16'], [[130, 70, 200], 'bf16'], [[257, 300, 72], 'f32']] as [Shape, MatmulWeightDType][]) {
    specs.push({ variant: 'sgmatrix', tag, shape, wdt, bias: i % 2 === 0, sgTile });
  }
}

const errorCase: KernelCase = {
  name: 'matmul:errors (typed validation before dispatch)',
  quick: true,
  async run(gpu) {
    // Same pipelines as the shape cases above (64x64 tile), so this case compiles nothing new.
    const k = await MatmulKernel.create(gpu, { weightDType: 'f16', variant: 'f32', tile: SMALL_TILE });
    const kb = await MatmulKernel.create(gpu, { weightDType: 'f32', bias: true, variant: 'f32', tile: SMALL_TILE });
    const x = gpu.empty([3, 8], 'f32', 'x');
    const w = gpu.empty([5, 8], 'f16', 'w');
    const w32 = gpu.empty([5, 8], 'f32', 'w32');
    const y = gpu.empty([3, 5], 'f32', 'y');
    const yBad = gpu.empty([3, 6], 'f32', 'y');
    const xBad = gpu.empty([3, 7], 'f32', 'x');
    const b = gpu.empty([5], 'f32', 'bias');
    const b4 = gpu.empty([4], 'f32', 'bias');
    const batch = gpu.batch();
    await expectThrows('wrong weight dtype', DTypeError, () => k.encode(batch, x, w32, y));
    await expectThrows('x K mismatch', ShapeError, () => k.encode(batch, xBad, w, y));
    await expectThrows('y N mismatch', ShapeError, () => k.encode(batch, x, w, yBad));
    await expectThrows('bias given to a kernel without bias', BadInputError, () => k.encode(batch, x, w, y, b));
    await expectThrows('bias missing', BadInputError, () => kb.encode(batch, x, w32, y));
    await expectThrows('bias length', ShapeError, () => kb.encode(batch, x, w32, y, b4));
    const sq = gpu.empty([3, 5], 'f32', 'xy');
    const w55 = gpu.empty([5, 5], 'f32', 'w55');
    await expectThrows('y aliases x', BadInputError, () => kb.encode(batch, sq, w55, sq, b));
    await expectThrows('unknown dtype', DTypeError, () => MatmulKernel.create(gpu, { weightDType: 'i8' as never }));
    const x9 = gpu.empty([9, 8], 'f32', 'x9');
    const y9 = gpu.empty([9, 5], 'f32', 'y9');
    const g = await MatmulKernel.create(gpu, { weightDType: 'f32', bias: true, variant: 'gemv' });
    await expectThrows('gemv with M > 8', UnsupportedError, () => g.encode(batch, x9, w32, y9, b));
    if (!gpu.caps.subgroupMatrix) {
      await expectThrows('sgmatrix without the feature', UnsupportedError, () => MatmulKernel.create(gpu, { weightDType: 'f32', variant: 'sgmatrix' }));
    }
    await batch.submit();
    gpu.release(x, w, w32, y, yBad, xBad, b, b4, sq, w55, x9, y9);
  },
};

export const matmulCases: KernelCase[] = [...specs.map(specCase), errorCase];
