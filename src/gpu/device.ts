/**
 * requestGpu(): one way to get a configured WebGPU device in a browser, in Deno and in Node (Dawn).
 * It picks the high-performance adapter, requests every feature the kernels can use, raises the
 * limits that matter to the adapter's maxima, and wires device loss and uncaptured errors into
 * typed errors.
 */
import { Gpu, type Capabilities, type SubgroupMatrixConfig } from './gpu.ts';
import { detectRuntime, getGpuEntry, noAdapterAdvice } from './runtime.ts';
import { NoWebGpuError } from './errors.ts';

export interface RequestGpuOptions {
  powerPreference?: GPUPowerPreference;
  /**
   * Opt into experimental features. Under Node this passes Dawn the toggles that expose shader-f16
   * and tensor-core subgroup matrices on NVIDIA (allow_unsafe_apis, vulkan_enable_f16_on_nvidia).
   */
  experimental?: boolean;
  /**
   * false (Node only): ask Dawn to drop bounds checks on buffer accesses and the zeroing of workgroup
   * memory (disable_robustness, disable_workgroup_init), which made tensor-core attention about a
   * quarter faster on an H200. Default true; browsers and Deno always check (asking for false there
   * is a NoWebGpuError). Capabilities.robustness reports which one a device has.
   */
  robustness?: boolean;
  /** Turn features off even where the adapter has them, to exercise fallback paths. */
  disable?: { f16?: boolean; subgroups?: boolean; subgroupMatrix?: boolean; timestamps?: boolean };
  /** Extra Dawn flags (Node only). */
  dawnFlags?: readonly string[];
  label?: string;
  /** Use this WebGPU entry point instead of the host's (a custom Dawn instance, a test double). */
  gpu?: GPU;
}

/** Limits raised to the adapter's maxima: the defaults (128 MiB bindings, 16 KiB workgroup memory) are far too small. */
const RAISED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupsPerDimension',
  'maxUniformBufferBindingSize',
] as const;

const SUBGROUP_MATRIX_FEATURE = 'chromium-experimental-subgroup-matrix';

export async function requestGpu(options: RequestGpuOptions = {}): Promise<Gpu> {
  const { gpu, runtime } = options.gpu ? { gpu: options.gpu, runtime: detectRuntime() } : await getGpuEntry(options);
  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) throw new NoWebGpuError(noAdapterAdvice(runtime));

  const disable = options.disable ?? {};
  const wanted: string[] = [];
  const want = (name: string, on: boolean): boolean => {
    const ok = on && adapter.features.has(name);
    if (ok) wanted.push(name);
    return ok;
  };
  const f16 = want('shader-f16', !disable.f16);
  const subgroups = want('subgroups', !disable.subgroups);
  const timestamps = want('timestamp-query', !disable.timestamps);
  const subgroupMatrix = want(SUBGROUP_MATRIX_FEATURE, !disable.subgroupMatrix && f16);

  const requiredLimits: Record<string, number> = {};
  const adapterLimits = adapter.limits as unknown as Record<string, number | undefined>;
  for (const name of RAISED_LIMITS) {
    const v = adapterLimits[name];
    if (typeof v === 'number') requiredLimits[name] = v;
  }

  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({
      label: options.label ?? 'sparse-prefill',
      requiredFeatures: wanted as GPUFeatureName[],
      requiredLimits,
    });
  } catch (e) {
    throw new NoWebGpuError(`the adapter refused a device with features [${wanted.join(', ')}]: ${(e as Error).message}`);
  }

  const info = adapter.info as GPUAdapterInfo & {
    isFallbackAdapter?: boolean;
    subgroupMinSize?: number;
    subgroupMaxSize?: number;
    subgroupMatrixConfigs?: SubgroupMatrixConfig[];
  };
  const caps: Capabilities = {
    runtime,
    adapter: {
      vendor: info.vendor ?? '',
      architecture: info.architecture ?? '',
      device: info.device ?? '',
      description: info.description ?? '',
    },
    software: info.isFallbackAdapter === true || /swiftshader|llvmpipe|lavapipe|software/i.test(`${info.vendor} ${info.architecture} ${info.description}`),
    f16,
    subgroups,
    subgroupMinSize: info.subgroupMinSize ?? 0,
    subgroupMaxSize: info.subgroupMaxSize ?? 0,
    subgroupMatrix,
    // Dawn keeps these fields on the prototype, so they are read one by one (a spread copies none).
    subgroupMatrixConfigs: subgroupMatrix
      ? [...(info.subgroupMatrixConfigs ?? [])].map((c) => ({ M: c.M, N: c.N, K: c.K, componentType: c.componentType, resultComponentType: c.resultComponentType }))
      : [],
    timestamps,
    // A caller's own entry point (options.gpu) is taken to check bounds: its flags are not ours to know.
    robustness: options.gpu !== undefined || options.robustness !== false,
    limits: {
      maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
      maxBufferSize: device.limits.maxBufferSize,
      maxComputeWorkgroupStorageSize: device.limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: device.limits.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: device.limits.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupsPerDimension: device.limits.maxComputeWorkgroupsPerDimension,
      maxStorageBuffersPerShaderStage: device.limits.maxStorageBuffersPerShaderStage,
      minStorageBufferOffsetAlignment: device.limits.minStorageBufferOffsetAlignment,
      minUniformBufferOffsetAlignment: device.limits.minUniformBufferOffsetAlignment,
    },
  };
  return new Gpu(device, caps);
}
