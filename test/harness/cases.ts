/**
 * Kernel test cases as plain data, independent of the test runner: the same list runs under vitest
 * (Node + Dawn), `deno test` and in headless Chromium (e2e/). A case throws on failure; its name
 * carries the shape (`add:n=1000`) and the seed is printed on failure.
 */
import type { Gpu } from '../../src/gpu/gpu.ts';
import { Tensor, type DType } from '../../src/tensor.ts';
import { runSeed } from './rng.ts';

export interface KernelCase {
  name: string;
  /** Small enough for the software adapters' quick browser run as well. */
  quick?: boolean;
  /** Needs a device capability; the runner skips the case when it is missing. */
  needs?: 'f16' | 'subgroups' | 'subgroupMatrix';
  run(gpu: Gpu, seed: number): Promise<void>;
}

export const NAN_WORD = 0x7fc00000;

/** An output tensor poisoned with NaN, so that any element the kernel fails to write shows up. */
export function poisoned(gpu: Gpu, shape: readonly number[], dtype: DType = 'f32', label = 'out'): Tensor {
  const t = gpu.empty(shape, dtype, label);
  gpu.fillWords(t, dtype === 'f16' ? 0x7e007e00 : dtype === 'bf16' ? 0x7fc07fc0 : NAN_WORD);
  return t;
}

export function hasCapability(gpu: Gpu, need: KernelCase['needs']): boolean {
  if (!need) return true;
  if (need === 'f16') return gpu.caps.f16;
  if (need === 'subgroups') return gpu.caps.subgroups;
  return gpu.caps.subgroupMatrix;
}

/**
 * Runs one case with a fresh seed (or KERNEL_SEED); a failure's message gains the seed and how to
 * rerun it. Shared by the three runners.
 */
export async function runCase(gpu: Gpu, c: KernelCase): Promise<void> {
  const seed = runSeed();
  try {
    await c.run(gpu, seed);
  } catch (e) {
    (e as Error).message += ` [seed ${seed}; rerun with KERNEL_SEED=${seed}]`;
    throw e;
  }
}
