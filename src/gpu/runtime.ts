/**
 * The only module that knows which host it runs in: browser, Deno or Node (Dawn).
 * Everything else receives a GPU object and an adapter from here.
 */
import { NoWebGpuError } from './errors.ts';

export type RuntimeName = 'browser' | 'deno' | 'node-dawn';

interface HostGlobals {
  Deno?: { version?: { deno?: string }; build?: { os?: string } };
  process?: { versions?: { node?: string }; platform?: string };
  navigator?: { gpu?: GPU };
  window?: unknown;
}

const host = globalThis as unknown as HostGlobals;

export function detectRuntime(): RuntimeName {
  if (host.Deno?.version?.deno) return 'deno';
  if (host.process?.versions?.node && typeof host.window === 'undefined') return 'node-dawn';
  return 'browser';
}

export interface GpuEntry {
  gpu: GPU;
  runtime: RuntimeName;
}

/** Dawn toggles that expose shader-f16 and tensor-core subgroup matrices on NVIDIA Vulkan drivers. */
export const DAWN_EXPERIMENTAL_TOGGLES = 'enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia';
/**
 * Dawn rounds GPU timestamps to 65.5 us by default (a browser anti-fingerprinting measure), which
 * makes short kernels read 0 ms; a native runtime has no reason to keep it.
 */
export const DAWN_PRECISE_TIMESTAMPS = 'disable-dawn-features=timestamp_quantization';

interface DawnModule {
  create(flags: string[]): GPU;
  globals: Record<string, unknown>;
}

let dawnCache: { key: string; gpu: GPU } | undefined;

/**
 * Finds the WebGPU entry point of this host. Under Node the npm package `webgpu` (Dawn) is loaded
 * by a dynamic import whose specifier is hidden from bundlers, so browser bundles never include it.
 */
export async function getGpuEntry(options: { experimental?: boolean; dawnFlags?: readonly string[] } = {}): Promise<GpuEntry> {
  const runtime = detectRuntime();
  if (runtime === 'node-dawn') {
    const flags = [
      ...(host.process?.platform === 'linux' ? ['backend=vulkan'] : []),
      DAWN_PRECISE_TIMESTAMPS,
      ...(options.experimental ? [DAWN_EXPERIMENTAL_TOGGLES] : []),
      ...(options.dawnFlags ?? []).filter((f) => f !== DAWN_PRECISE_TIMESTAMPS),
    ];
    const key = flags.join(' ');
    if (dawnCache?.key === key) return { gpu: dawnCache.gpu, runtime };
    let dawn: DawnModule;
    try {
      const specifier = 'webgpu';
      dawn = (await import(/* @vite-ignore */ specifier)) as DawnModule;
    } catch (e) {
      throw new NoWebGpuError(
        `WebGPU is not available in Node: the npm package "webgpu" (Dawn) could not be loaded (${(e as Error).message}). ` +
          'Install it with `npm install webgpu`.',
      );
    }
    // Dawn's node binding needs the WebGPU constants (GPUBufferUsage, ...) as globals.
    for (const [name, value] of Object.entries(dawn.globals)) {
      if (!(name in globalThis)) (globalThis as Record<string, unknown>)[name] = value;
    }
    const gpu = dawn.create(flags);
    dawnCache = { key, gpu };
    return { gpu, runtime };
  }
  const gpu = host.navigator?.gpu;
  if (!gpu) {
    throw new NoWebGpuError(
      runtime === 'deno'
        ? 'navigator.gpu is missing in Deno: run with a Deno build that has WebGPU (2.x) and the --unstable-webgpu flag where required.'
        : 'This browser has no WebGPU (navigator.gpu is missing): use a current Chromium, Edge or Safari, or enable WebGPU in its flags.',
    );
  }
  return { gpu, runtime };
}

/** Advice for when an adapter request returns null: what to install on this host. */
export function noAdapterAdvice(runtime: RuntimeName): string {
  switch (runtime) {
    case 'node-dawn':
      return (
        'Dawn found no GPU adapter. Install a Vulkan driver for your GPU; on Linux without a GPU, install Debian\'s ' +
        '`chromium` package and set VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json to use SwiftShader.'
      );
    case 'deno':
      return 'Deno found no GPU adapter. Install a Vulkan driver for your GPU; on Linux without a GPU, install `mesa-vulkan-drivers` (lavapipe).';
    default:
      return 'The browser exposes WebGPU but gave no adapter: check that hardware acceleration is on and the GPU is not blocklisted.';
  }
}
