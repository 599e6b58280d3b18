/** sparse-prefill: long-context LLM prefill on WebGPU with MInference dynamic sparse attention. */
export { requestGpu, type RequestGpuOptions } from './gpu/device.ts';
export { Gpu, Batch, type Capabilities, type Program, type ProgramDesc, type Dispatch, type Resource, type SubgroupMatrixConfig } from './gpu/gpu.ts';
export * from './gpu/errors.ts';
export { detectRuntime, type RuntimeName } from './gpu/runtime.ts';
export { Tensor, type DType, bytesPerElement, numelOf, byteSizeOf } from './tensor.ts';
export { parseModelConfig, checkPromptLength, ropeInvFrequencies, loadGenerationConfig, SUPPORTED_ARCHITECTURES, type ModelConfig, type GenerationDefaults, type Architecture, type Llama3RopeScaling } from './model/config.ts';
export { openLocalModel, openFileListModel, openHttpModel, readJson, type ModelSource, type FetchLike } from './model/source.ts';
export { Checkpoint, encodeSafetensors, type TensorInfo, type WeightDType, type StoredDType, type TensorToWrite } from './model/safetensors.ts';
export { loadWeights, weightsBytes, expectedTensors, type ModelWeights, type LayerWeights, type LoadProgress, type LoadWeightsOptions } from './model/weights.ts';
export { loadTokenizer, type ModelTokenizer, type ChatMessage, type ChatTemplateOptions } from './model/tokenizer.ts';
export { RmsNormKernel, AddRmsNormKernel, type RmsNormOptions, type NormWeightDType } from './kernels/rms_norm.ts';
export { RopeKernel, RopeTable, ropeInvFreq, ROPE_DEFAULT_MAX_POSITIONS, type RopeConfig, type RopeOptions, type RopeParams } from './kernels/rope.ts';
export { SiluMulKernel } from './kernels/silu_mul.ts';
export { EmbeddingKernel, validateIds, type EmbeddingOptions, type EmbeddingTableDType } from './kernels/embedding.ts';
export { SoftmaxKernel, type SoftmaxOptions } from './kernels/softmax.ts';
export { HeadsToTokensKernel, type HeadsToTokensParams } from './kernels/heads_to_tokens.ts';
export { ArgmaxKernel, ARGMAX_NONE, type ArgmaxOptions } from './kernels/argmax.ts';
export { type ReduceVariant } from './kernels/reduce.ts';
