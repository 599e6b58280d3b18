/** sparse-prefill: long-context LLM prefill on WebGPU with MInference dynamic sparse attention. */
export { requestGpu, type RequestGpuOptions } from './gpu/device.ts';
export { Gpu, Batch, type Capabilities, type Program, type ProgramDesc, type Dispatch, type Resource, type SubgroupMatrixConfig } from './gpu/gpu.ts';
export * from './gpu/errors.ts';
export { detectRuntime, type RuntimeName } from './gpu/runtime.ts';
export { Tensor, type DType, bytesPerElement, numelOf, byteSizeOf } from './tensor.ts';
