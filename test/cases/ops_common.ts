/** Helpers shared by the small-op case lists (rms_norm, rope, silu_mul, embedding, softmax, heads_to_tokens, argmax). */
import type { Gpu } from '../../src/gpu/gpu.ts';
import type { SparsePrefillError, ErrorCode } from '../../src/gpu/errors.ts';
import type { ReduceVariant } from '../../src/kernels/reduce.ts';
import type { KernelCase } from '../harness/cases.ts';
import { MismatchError } from '../harness/compare.ts';

/** Runs fn and requires a typed error with this code whose message contains `includes`. */
export async function expectTypedError(what: string, code: ErrorCode, includes: string, fn: () => unknown): Promise<void> {
  try {
    await fn();
  } catch (e) {
    const err = e as SparsePrefillError;
    if (err.code !== code || !err.message.includes(includes)) {
      throw new MismatchError(`${what}: expected a ${code} error mentioning "${includes}", got ${err.name}: ${err.message}`);
    }
    return;
  }
  throw new MismatchError(`${what}: expected a ${code} error, but nothing was thrown`);
}

/** The reduction variants a case list covers: default, forced fallback, forced subgroups (skipped without them). */
export const VARIANTS: { variant: ReduceVariant; needs?: KernelCase['needs'] }[] = [
  { variant: 'auto' },
  { variant: 'workgroup' },
  { variant: 'subgroups', needs: 'subgroups' },
];

/** A finite poison word (≈ 1.23e7): for outputs where NaN is a legitimate value to check. */
export const SENTINEL_WORD = 0x4b3c614e;

export function fillSentinel(gpu: Gpu, shape: readonly number[], label = 'out') {
  const t = gpu.empty(shape, 'f32', label);
  gpu.fillWords(t, SENTINEL_WORD);
  return t;
}

/**
 * The same case with maxComputeWorkgroupsPerDimension lowered while it runs, so that grid.ts folds
 * its grid into 2D (x * y >= workgroups, the spare ones must exit) at a size SwiftShader can run:
 * the real limit (65535) needs far more workgroups than a software adapter gets through quickly.
 * Cases run one at a time in every runner, so the temporary change is not seen by others.
 */
export function folded(c: KernelCase, maxPerDim: number): KernelCase {
  return {
    name: `${c.name},grid folded at ${maxPerDim}`,
    needs: c.needs,
    async run(gpu, seed) {
      const limits = gpu.caps.limits;
      const saved = limits.maxComputeWorkgroupsPerDimension;
      limits.maxComputeWorkgroupsPerDimension = maxPerDim;
      try {
        await c.run.call(c, gpu, seed);
      } finally {
        limits.maxComputeWorkgroupsPerDimension = saved;
      }
    },
  };
}
