/**
 * The only module that knows which host it runs in: browser, Deno or Node (Dawn).
 * Everything else receives a GPU object and an adapter from here.
 */
import { NoWebGpuError } from './errors.ts';

export type RuntimeName = 'browser' | 'deno' | 'node-dawn';

interface HostGlobals {
  Deno?: { version?: { deno?: string }; build?: { os?: string }; env?: { get(name: string): string | undefined; set(name: string, value: string): void } };
  process?: { versions?: { node?: string }; platform?: string; env?: Record<string, string | undefined> };
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
export const DAWN_EXPERIMENTAL_TOGGLES = ['allow_unsafe_apis', 'vulkan_enable_f16_on_nvidia'] as const;
/**
 * Dawn toggles that drop the bounds clamping of every buffer access (robustness) and the zeroing of
 * workgroup memory: measured on an H200, tensor-core attention went from 13.5 to 16.9 TFLOP/s. Only
 * for kernels that never access out of bounds (ours are tested so on the software adapters with
 * these toggles on); browsers always keep robustness.
 */
export const DAWN_UNCHECKED_TOGGLES = ['disable_robustness', 'disable_workgroup_init'] as const;
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
 * Vulkan drivers load libwayland for their window-system code, and libwayland prints "error:
 * XDG_RUNTIME_DIR is invalid or not set in the environment." (twice per process, SwiftShader under
 * Dawn and lavapipe under Deno alike) when the variable is unset, as on servers, in containers and
 * in CI. Compute never opens a window, so before a driver loads an unset variable is pointed at the
 * temporary directory (no socket there: the connection fails quietly). A value the host set is kept.
 */
export function quietVulkanWindowSystem(): void {
  const dir = '/tmp';
  const env = host.process?.env;
  if (env && host.process?.platform === 'linux' && !host.Deno) {
    if (!env.XDG_RUNTIME_DIR) env.XDG_RUNTIME_DIR = env.TMPDIR || dir;
    return;
  }
  const denoEnv = host.Deno?.env;
  if (denoEnv && host.Deno?.build?.os === 'linux') {
    try {
      if (!denoEnv.get('XDG_RUNTIME_DIR')) denoEnv.set('XDG_RUNTIME_DIR', dir);
    } catch {
      // No --allow-env: the message stays; nothing else depends on it.
    }
  }
}

/** Directories the Vulkan loader searches for drivers (ICD manifests) on Linux when no variable names them. */
const VULKAN_ICD_DIRS = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d', '/usr/local/etc/vulkan/icd.d'];

/**
 * Why Dawn would find no Vulkan driver on this Linux host, or null when one may be there. Checked
 * before Dawn loads: when it finds none, the Vulkan loader and Dawn print warnings on stderr from
 * native code (one pointing into Dawn's own CI paths) that a process cannot catch, so the common
 * causes are named here instead, in the NoWebGpuError.
 */
async function missingVulkanDriver(env: Record<string, string | undefined>): Promise<string | null> {
  const fsName = 'node:fs';
  const fs = (await import(/* @vite-ignore */ fsName)) as typeof import('node:fs');
  for (const name of ['VK_DRIVER_FILES', 'VK_ICD_FILENAMES']) {
    const list = env[name];
    if (!list) continue;
    const missing = list.split(':').filter((p) => p && !fs.existsSync(p));
    if (missing.length) return `${name} names ${missing.join(', ')}, which ${missing.length === 1 ? 'does' : 'do'} not exist.`;
    return null;
  }
  const dirs = [...VULKAN_ICD_DIRS, ...(env.XDG_DATA_DIRS ?? '').split(':').filter(Boolean).map((d) => `${d}/vulkan/icd.d`)];
  if (env.HOME) dirs.push(`${env.HOME}/.local/share/vulkan/icd.d`);
  const found = dirs.some((d) => {
    try {
      return fs.readdirSync(d).some((f) => f.endsWith('.json'));
    } catch {
      return false;
    }
  });
  return found ? null : `no Vulkan driver is installed (no driver manifest in ${VULKAN_ICD_DIRS.join(', ')}).`;
}

/**
 * Finds the WebGPU entry point of this host. Under Node the npm package `webgpu` (Dawn) is loaded
 * by a dynamic import whose specifier is hidden from bundlers, so browser bundles never include it.
 */
export async function getGpuEntry(options: { experimental?: boolean; robustness?: boolean; dawnFlags?: readonly string[] } = {}): Promise<GpuEntry> {
  const runtime = detectRuntime();
  if (options.robustness === false && runtime !== 'node-dawn') {
    throw new NoWebGpuError(`robustness: false needs Node's Dawn (a ${runtime === 'deno' ? 'Deno' : 'browser'} WebGPU always checks bounds)`);
  }
  if (runtime === 'node-dawn') {
    // Dawn reads one enable-dawn-features flag: every toggle goes into it.
    const toggles = [...(options.experimental ? DAWN_EXPERIMENTAL_TOGGLES : []), ...(options.robustness === false ? DAWN_UNCHECKED_TOGGLES : [])];
    const flags = [
      ...(host.process?.platform === 'linux' ? ['backend=vulkan'] : []),
      DAWN_PRECISE_TIMESTAMPS,
      ...(toggles.length ? [`enable-dawn-features=${toggles.join(',')}`] : []),
      ...(options.dawnFlags ?? []).filter((f) => f !== DAWN_PRECISE_TIMESTAMPS),
    ];
    const key = flags.join(' ');
    if (dawnCache?.key === key) return { gpu: dawnCache.gpu, runtime };
    quietVulkanWindowSystem();
    const env = host.process?.env;
    if (env && host.process?.platform === 'linux') {
      const why = await missingVulkanDriver(env);
      if (why) throw new NoWebGpuError(`Dawn cannot find a GPU adapter: ${why} ${noAdapterAdvice('node-dawn').replace(/^Dawn found no GPU adapter\. /, '')}`);
    }
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
  if (runtime === 'deno') quietVulkanWindowSystem();
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
