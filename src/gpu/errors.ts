/**
 * Typed errors. Every failure the runtime can see ends in one of these, with a message that names
 * the problem; nothing fails silently or hangs.
 */

export type ErrorCode =
  | 'NO_WEBGPU'
  | 'DEVICE_LOST'
  | 'KERNEL_COMPILE'
  | 'GPU_VALIDATION'
  | 'GPU_OUT_OF_MEMORY'
  | 'TENSOR_TOO_LARGE'
  | 'SHAPE'
  | 'DTYPE'
  | 'UNSUPPORTED'
  | 'BAD_INPUT'
  | 'ABORTED';

export class SparsePrefillError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** No WebGPU implementation or no adapter could be found. */
export class NoWebGpuError extends SparsePrefillError {
  constructor(detail: string) {
    super('NO_WEBGPU', detail);
  }
}

/** The GPU device was lost; work in flight is rejected with this. */
export class DeviceLostError extends SparsePrefillError {
  constructor(
    readonly reason: string,
    readonly detail: string,
  ) {
    super('DEVICE_LOST', `GPU device lost (${reason})${detail ? `: ${detail}` : ''}`);
  }
}

export interface CompileMessage {
  type: 'error' | 'warning' | 'info';
  /** The .wgsl file the line belongs to, after mapping through the preprocessor. */
  file: string;
  line: number;
  column: number;
  message: string;
}

/** WGSL failed to compile or the pipeline could not be created. Names the .wgsl file and line. */
export class KernelCompileError extends SparsePrefillError {
  readonly file: string;
  readonly line: number;
  constructor(
    readonly shader: string,
    readonly messages: CompileMessage[],
    detail = '',
  ) {
    const first = messages.find((m) => m.type === 'error') ?? messages[0];
    // The compiler's messages (warnings too), then what failed after them (a pipeline or layout).
    const text = [...messages.map((m) => `shaders/${m.file}:${m.line}:${m.column}: ${m.type}: ${m.message}`), ...(detail ? [detail] : [])].join('\n');
    super('KERNEL_COMPILE', `kernel ${shader} failed to compile:\n${text}`);
    this.file = first?.file ?? shader;
    this.line = first?.line ?? 0;
  }
}

/** A WebGPU validation error surfaced from an error scope or uncaptured-error event. */
export class GpuValidationError extends SparsePrefillError {
  constructor(message: string) {
    super('GPU_VALIDATION', message);
  }
}

export class GpuOutOfMemoryError extends SparsePrefillError {
  constructor(message: string) {
    super('GPU_OUT_OF_MEMORY', message);
  }
}

/** A tensor does not fit the device's binding or buffer limits. */
export class TensorTooLargeError extends SparsePrefillError {
  constructor(
    readonly bytes: number,
    readonly limit: number,
    what: string,
  ) {
    super('TENSOR_TOO_LARGE', `${what} needs ${bytes} bytes, more than the device allows in one binding (${limit} bytes)`);
  }
}

/** Inputs of the wrong shape for an op; thrown before anything is encoded. */
export class ShapeError extends SparsePrefillError {
  constructor(message: string) {
    super('SHAPE', message);
  }
}

export class DTypeError extends SparsePrefillError {
  constructor(message: string) {
    super('DTYPE', message);
  }
}

export class UnsupportedError extends SparsePrefillError {
  constructor(message: string) {
    super('UNSUPPORTED', message);
  }
}

export class BadInputError extends SparsePrefillError {
  constructor(message: string) {
    super('BAD_INPUT', message);
  }
}

export interface NonFiniteTensor {
  /** The checkpoint's tensor name. */
  name: string;
  shape: readonly number[];
  /** Elements that are NaN or +-Inf. */
  count: number;
  /** Row-major index of the first one. */
  firstIndex: number;
}

/** Loaded weights hold NaN or Inf values (a corrupt or badly converted checkpoint); names each tensor. */
export class NonFiniteWeightsError extends BadInputError {
  constructor(readonly tensors: readonly NonFiniteTensor[]) {
    const shown = tensors.slice(0, 4).map((t) => {
      // The first bad element's position as indices into the shape.
      const at: number[] = [];
      let rest = t.firstIndex;
      for (let d = t.shape.length - 1; d >= 0; d--) {
        at.unshift(rest % t.shape[d]!);
        rest = Math.floor(rest / t.shape[d]!);
      }
      const numel = t.shape.reduce((a, b) => a * b, 1);
      return `${t.name} [${t.shape.join(', ')}]: ${t.count} of ${numel} elements, the first at [${at.join(', ')}]`;
    });
    const more = tensors.length > shown.length ? `; and ${tensors.length - shown.length} more tensors` : '';
    super(`weights hold NaN or Inf values: ${shown.join('; ')}${more} (pass checkFinite: false to load them anyway)`);
  }
}

/** A run was cancelled through its AbortSignal; everything it allocated was freed. */
export class AbortedError extends SparsePrefillError {
  constructor(what: string) {
    super('ABORTED', `${what} was aborted`);
  }
}
