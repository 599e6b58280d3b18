import type { KernelCase } from '../harness/cases.ts';
import { Rng } from '../harness/rng.ts';
import { expectEqualInts } from '../harness/compare.ts';
import { countNonFiniteRef } from '../reference/count_nonfinite.ts';
import { CountNonFiniteKernel, createNonFiniteCounts, MAX_WORKGROUPS, NONFINITE_NONE } from '../../src/kernels/count_nonfinite.ts';
import { expectTypedError } from './ops_common.ts';

type Dt = 'f32' | 'f16' | 'bf16';

/** Bit patterns per dtype: the non-finite ones and finite near misses (largest finite, -0, a subnormal, one exponent bit short). */
const BITS: Record<Dt, { nonfinite: number[]; edge: number[]; width: number }> = {
  f32: { nonfinite: [0x7fc00000, 0xffc00001, 0x7f800001, 0x7f800000, 0xff800000], edge: [0x7f7fffff, 0xff7fffff, 0x80000000, 0x00000001, 0x7f000000], width: 32 },
  bf16: { nonfinite: [0x7fc0, 0xffc1, 0x7f81, 0x7f80, 0xff80], edge: [0x7f7f, 0xff7f, 0x8000, 0x0001, 0x7f00], width: 16 },
  f16: { nonfinite: [0x7e00, 0xfe01, 0x7c01, 0x7c00, 0xfc00], edge: [0x7bff, 0xfbff, 0x8000, 0x0001, 0x7800], width: 16 },
};

/**
 * Raw words of an n-element tensor: random finite values, `nonfinite` poisoned positions (always
 * including the last element when `last`), edge values sprinkled, and for odd-length halves a NaN
 * in the padding half, which must not be counted.
 */
function tensorWords(rng: Rng, dtype: Dt, n: number, nonfinite: number, last: boolean): Uint32Array {
  const b = BITS[dtype];
  const words = new Uint32Array(dtype === 'f32' ? n : Math.ceil(n / 2));
  const set = (i: number, bits: number): void => {
    if (b.width === 32) words[i] = bits >>> 0;
    else words[i >> 1] = ((words[i >> 1]! & ~(0xffff << (16 * (i & 1)))) | (bits << (16 * (i & 1)))) >>> 0;
  };
  const pick = (list: number[]): number => list[rng.int(0, list.length)]!;
  for (let i = 0; i < n; i++) set(i, b.width === 32 ? (rng.int(0, 0x7f000000) | (rng.next() < 0.5 ? 0x80000000 : 0)) >>> 0 : rng.int(0, 0x7f00) | (rng.next() < 0.5 ? 0x8000 : 0));
  for (let k = 0; k < Math.min(8, n); k++) set(rng.int(0, n), pick(b.edge));
  for (let k = 0; k < nonfinite; k++) set(rng.int(0, n), pick(b.nonfinite));
  if (last) set(n - 1, pick(b.nonfinite));
  if (dtype !== 'f32' && n % 2 === 1) words[words.length - 1] = (words[words.length - 1]! | (b.nonfinite[0]! << 16)) >>> 0;
  return words;
}

/**
 * Several tensors of one dtype, each into its own slot of one counts buffer (slot 1 left unused:
 * it must stay (0, none)), compared with the float64 reference.
 */
function countCase(dtype: Dt, sizes: number[], quick = true): KernelCase {
  return {
    name: `count_nonfinite:${dtype},n=${sizes.join('|')}`,
    quick,
    async run(gpu, seed) {
      const rng = new Rng(seed);
      const k = await CountNonFiniteKernel.create(gpu, dtype);
      const slots = sizes.length + 1;
      const counts = createNonFiniteCounts(gpu, slots);
      const want = new Uint32Array(2 * slots);
      want[3] = NONFINITE_NONE;
      const batch = gpu.batch();
      const tensors = sizes.map((n, i) => {
        const slot = i === 0 ? 0 : i + 1;
        // The first tensor is clean, the others hold 1 to 20 non-finite values (the last also at its end).
        const words = tensorWords(rng, dtype, n, i === 0 ? 0 : rng.int(1, 21), i === sizes.length - 1);
        const x = gpu.upload(dtype === 'f32' ? new Float32Array(words.buffer) : words, [n], dtype, `x${i}`);
        k.encode(batch, x, counts, slot);
        const r = countNonFiniteRef(words, n, dtype);
        want[2 * slot] = r.count;
        want[2 * slot + 1] = r.first;
        return x;
      });
      await batch.submit();
      expectEqualInts(this.name, await gpu.read(counts), want);
      gpu.release(counts, ...tensors);
    },
  };
}

export const countNonFiniteCases: KernelCase[] = [
  countCase('f32', [1, 1000, 4097]),
  countCase('bf16', [1, 7, 2001]),
  countCase('f16', [2, 513, 9]),
  // More words than MAX_WORKGROUPS * 256 * 4 threads: every thread strides over several words.
  countCase('bf16', [1000, 2 * MAX_WORKGROUPS * 256 * 4 + 3], false),
  countCase('f32', [MAX_WORKGROUPS * 256 * 4 + 5, 17], false),
  {
    name: 'count_nonfinite:typed errors',
    quick: true,
    async run(gpu) {
      const k = await CountNonFiniteKernel.create(gpu, 'bf16');
      const x = gpu.empty([4], 'f32', 'x');
      const h = gpu.empty([4], 'bf16', 'h');
      const counts = createNonFiniteCounts(gpu, 2);
      const b = gpu.batch();
      await expectTypedError('dtype', 'DTYPE', 'must be bf16', () => k.encode(b, x, counts, 0));
      await expectTypedError('slot', 'SHAPE', 'slot 2 is outside 0..1', () => k.encode(b, h, counts, 2));
      await expectTypedError('counts', 'SHAPE', 'must be [slots, 2] u32', () => k.encode(b, h, x, 0));
      await b.submit();
      gpu.release(x, h, counts);
    },
  },
];
