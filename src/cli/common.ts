/**
 * What every sparse-prefill command shares: the program's name and version, opening the GPU with
 * the advice this host needs, the GPU flags, number options, and reading and writing files with
 * errors that name the path.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import process from 'node:process';
import { requestGpu } from '../gpu/device.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { BadInputError, NoWebGpuError } from '../gpu/errors.ts';
import { detectRuntime } from '../gpu/runtime.ts';
import { UsageError, type CommandSpec } from './args.ts';
import { MODEL_LIMITS } from '../model/limits.ts';
import { formatCount } from '../util/numbers.ts';

export const PROGRAM = 'sparse-prefill';
export const SUMMARY = 'Long-context LLM prefill on WebGPU with MInference dynamic sparse attention.';

/** Replaced at bundle time (scripts/build-cli.mjs) with the package version. */
declare const __SP_VERSION__: string | undefined;
export const VERSION = typeof __SP_VERSION__ === 'string' ? __SP_VERSION__ : 'dev';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

export const GPU_OPTIONS = [
  { name: 'experimental', kind: 'flag', help: "request Dawn's experimental features (shader-f16, subgroup matrices on NVIDIA; Node only)" },
  {
    name: 'bounds-checks',
    kind: 'flag',
    defaultOn: true,
    help: "Dawn's bounds checks on every buffer access (default, as browsers run); --no-bounds-checks drops them and the zeroing of workgroup memory (Node only; a 4K-token prefill of a 1B model ran 1.5x faster on an H200; the kernels' tests check they stay in bounds)",
  },
  { name: 'quiet', short: 'q', kind: 'flag', help: 'no progress lines on stderr' },
] as const satisfies CommandSpec['options'];

/** Device nodes through which a Linux process reaches a GPU (DRM render nodes, NVIDIA's, WSL's). */
function gpuDeviceVisible(): boolean {
  try {
    if (readdirSync('/dev/dri').some((f) => f.startsWith('renderD'))) return true;
  } catch {
    // no /dev/dri
  }
  return readdirSync('/dev').some((f) => /^nvidia\d+$/.test(f) || f === 'dxg');
}

/**
 * requestGpu with the advice this host needs. Under Node on Linux with no GPU device visible and no
 * Vulkan driver named, SwiftShader (Debian's chromium package) is chosen before Dawn loads (`note`
 * says so): Dawn would otherwise try the installed Mesa drivers, print warnings that point into its
 * own CI paths, and find no adapter. Once Dawn has created its instance, VK_ICD_FILENAMES is read,
 * so after a failure the user has to set it.
 */
export async function openGpu(opts: { experimental: boolean; boundsChecks?: boolean; note?: (message: string) => void }): Promise<Gpu> {
  if (detectRuntime() === 'node-dawn' && process.platform === 'linux' && !process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && existsSync(SWIFTSHADER_ICD) && !gpuDeviceVisible()) {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    opts.note?.(`no GPU is visible to this process (no /dev/dri render node, /dev/nvidia* or /dev/dxg): running on SwiftShader, a CPU Vulkan driver (${SWIFTSHADER_ICD})`);
  }
  if (opts.boundsChecks === false && detectRuntime() !== 'node-dawn') {
    throw new UsageError(`--no-bounds-checks needs Node (Dawn): ${detectRuntime() === 'deno' ? 'Deno' : 'a browser'} always checks bounds`);
  }
  try {
    const gpu = await requestGpu({ experimental: opts.experimental, robustness: opts.boundsChecks !== false, label: PROGRAM });
    if (!gpu.caps.robustness) opts.note?.('bounds checks are off (--no-bounds-checks): buffer accesses are not clamped and workgroup memory is not zeroed');
    return gpu;
  } catch (e) {
    if (e instanceof NoWebGpuError && detectRuntime() === 'node-dawn' && !process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) {
      throw new NoWebGpuError(
        `no GPU adapter found. SwiftShader (a CPU Vulkan driver) is installed here; run again with ` +
          `VK_ICD_FILENAMES=${SWIFTSHADER_ICD} set in the environment (Dawn reads it once at startup, so it cannot be switched from inside the process).`,
      );
    }
    throw e;
  }
}

/** Seeds are 32-bit (sampling and document seeds go through mulberry32). */
export const MAX_SEED = 2 ** 32 - 1;

/**
 * A whole-number option in min..max (default max: the largest token count a model may declare,
 * MODEL_LIMITS.positions), or undefined when absent. The message quotes the text as given, so
 * 2^60 reads as typed rather than as the nearest double (1152921504606847000).
 */
export function intOption(v: string | undefined, name: string, min: number, command: string, max: number = MODEL_LIMITS.positions.max): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\s*\+?\d+\s*$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be a whole number from ${formatCount(min)} to ${formatCount(max)}, got "${v}"`, command);
  }
  return n;
}

/** A finite number option, or undefined when absent. */
export function numOption(v: string | undefined, name: string, command: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${v}"`, command);
  return n;
}

export async function readInput(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new BadInputError(`cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
}

export async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new BadInputError(`cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

export async function writeOutput(path: string, bytes: Uint8Array | string): Promise<void> {
  try {
    const dir = dirname(path);
    if (dir && dir !== '.') await mkdir(dir, { recursive: true });
    await writeFile(path, bytes);
  } catch (e) {
    throw new BadInputError(`cannot write ${path}: ${(e as Error).message}`);
  }
}
