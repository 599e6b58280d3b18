/**
 * Gpu: a configured device plus what every kernel needs: compiled-program cache, tensors and their
 * buffer pool, uniform buffers, batched dispatch with optional timestamp profiling, and typed
 * errors for compile failures, validation errors and device loss.
 */
import { preprocess, definesKey, ShaderPreprocessError, type Defines } from '../shaders/preprocess.ts';
import { WGSL_SOURCES } from '../shaders/sources.generated.ts';
import { reflectEntry, packUniform, type EntryReflection, type UniformValues } from './reflect.ts';
import { BufferPool } from './pool.ts';
import { Tensor, byteSizeOf, checkShape, numelOf, type DType } from '../tensor.ts';
import { packHalves, unpackHalves } from '../util/half.ts';
import {
  BadInputError,
  DeviceLostError,
  GpuOutOfMemoryError,
  GpuValidationError,
  KernelCompileError,
  ShapeError,
  TensorTooLargeError,
  DTypeError,
  type CompileMessage,
} from './errors.ts';
import type { RuntimeName } from './runtime.ts';

export interface SubgroupMatrixConfig {
  M: number;
  N: number;
  K: number;
  componentType: string;
  resultComponentType: string;
}

export interface Capabilities {
  runtime: RuntimeName;
  adapter: { vendor: string; architecture: string; device: string; description: string };
  /** A CPU (software) adapter such as SwiftShader or llvmpipe: many small workgroups are costly there. */
  software: boolean;
  f16: boolean;
  subgroups: boolean;
  subgroupMinSize: number;
  subgroupMaxSize: number;
  subgroupMatrix: boolean;
  subgroupMatrixConfigs: SubgroupMatrixConfig[];
  timestamps: boolean;
  /** Buffer accesses are bounds-checked and workgroup memory zeroed (false: requestGpu({ robustness: false }) in Node). */
  robustness: boolean;
  limits: {
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
    maxComputeWorkgroupStorageSize: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupSizeX: number;
    maxComputeWorkgroupsPerDimension: number;
    maxStorageBuffersPerShaderStage: number;
    minStorageBufferOffsetAlignment: number;
    minUniformBufferOffsetAlignment: number;
  };
}

/** What identifies a compiled program: shader file, entry point, defines and override constants. */
export interface ProgramDesc {
  shader: string; // file name under shaders/, e.g. 'matmul.wgsl'
  entryPoint?: string; // default 'main'
  defines?: Defines;
  overrides?: Readonly<Record<string, number>>;
  /**
   * Reflect the bindings from the shader preprocessed with these defines instead of `defines`: for
   * variants whose text wgsl_reflect cannot parse (subgroup-matrix types) but whose bindings are
   * declared exactly as in a plainer variant. Not part of the program's identity.
   */
  reflectDefines?: Defines;
}

export interface Program {
  readonly key: string;
  readonly shader: string;
  readonly pipeline: GPUComputePipeline;
  readonly layout: EntryReflection;
  readonly bindGroupLayout: GPUBindGroupLayout;
}

export interface BufferRange {
  buffer: GPUBuffer;
  offset?: number;
  size?: number;
}
export type Resource = Tensor | BufferRange;

export interface Dispatch {
  program: Program;
  bindings: Readonly<Record<string, Resource>>;
  params?: UniformValues;
  workgroups: readonly [number, number?, number?];
  /** Name under which a profiled batch reports this dispatch's time. */
  label?: string;
}

export type HostArray = Float32Array | Int32Array | Uint32Array;

/**
 * Where kernels record their work: a Batch (one command buffer, submitted once) or a Recording
 * (src/gpu/recording.ts: bind groups made once, replayed with new parameters).
 */
export interface Encoder {
  dispatch(d: Dispatch): unknown;
  /** Copies between buffers. */
  copy(src: Resource, dst: Resource, bytes: number): unknown;
}

const STORAGE = (): number => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const UNIFORM_CACHE_LIMIT = 4096;

export function programKey(desc: ProgramDesc): string {
  const overrides = Object.entries(desc.overrides ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return `${desc.shader}#${desc.entryPoint ?? 'main'}[${definesKey(desc.defines ?? {})}]{${overrides}}`;
}

export class Gpu {
  readonly pool: BufferPool;
  private programs = new Map<string, Promise<Program>>();
  /** WGSL registered at run time (user kernels, tests); looked up before the embedded shaders/. */
  private extraSources = new Map<string, string>();
  private uniforms = new Map<string, GPUBuffer>();
  private lostError: DeviceLostError | undefined;
  private lostWaiters = new Set<(e: DeviceLostError) => void>();
  private uncaptured: Error[] = [];
  private destroyed = false;

  constructor(
    readonly device: GPUDevice,
    readonly caps: Capabilities,
  ) {
    this.pool = new BufferPool(device, STORAGE);
    void device.lost.then((info) => {
      if (this.destroyed) return;
      this.lostError = new DeviceLostError(info.reason ?? 'unknown', info.message ?? '');
      for (const w of this.lostWaiters) w(this.lostError);
      this.lostWaiters.clear();
    });
    device.onuncapturederror = (ev: GPUUncapturedErrorEvent) => {
      const e = ev.error;
      this.uncaptured.push(e instanceof GPUOutOfMemoryError ? new GpuOutOfMemoryError(e.message) : new GpuValidationError(e.message));
    };
  }

  get lost(): DeviceLostError | undefined {
    return this.lostError;
  }

  /** Throws if the device is lost or an uncaptured error was reported since the last check. */
  check(): void {
    if (this.lostError) throw this.lostError;
    const e = this.uncaptured.shift();
    if (e) {
      this.uncaptured = [];
      throw e;
    }
  }

  /** Races a promise against device loss, so no caller ever waits on a dead device. */
  guard<T>(p: Promise<T>): Promise<T> {
    if (this.lostError) return Promise.reject(this.lostError);
    return new Promise<T>((resolve, reject) => {
      const onLost = (e: DeviceLostError): void => reject(e);
      this.lostWaiters.add(onLost);
      p.then(
        (v) => {
          this.lostWaiters.delete(onLost);
          resolve(v);
        },
        (e: unknown) => {
          this.lostWaiters.delete(onLost);
          reject(this.lostError ?? e);
        },
      );
    });
  }

  // ---------------------------------------------------------------- programs

  /** Registers WGSL under a file name (it may #include the embedded shaders/lib files). */
  registerShader(name: string, code: string): void {
    if (WGSL_SOURCES[name] !== undefined) throw new BadInputError(`a shader named ${name} is already embedded: register it under another name`);
    this.extraSources.set(name, code);
    for (const key of [...this.programs.keys()]) if (key.startsWith(`${name}#`)) this.programs.delete(key);
  }

  /** Compiles (once) a program: preprocess, compile, reflect bindings, create the pipeline. */
  compile(desc: ProgramDesc): Promise<Program> {
    const key = programKey(desc);
    let p = this.programs.get(key);
    if (!p) {
      p = this.build(desc, key);
      this.programs.set(key, p);
      p.catch(() => {
        if (this.programs.get(key) === p) this.programs.delete(key);
      });
    }
    return p;
  }

  private async build(desc: ProgramDesc, key: string): Promise<Program> {
    this.check();
    const entryPoint = desc.entryPoint ?? 'main';
    let pre;
    let reflectText: string;
    try {
      const lookup = (n: string): string | undefined => this.extraSources.get(n) ?? WGSL_SOURCES[n];
      pre = preprocess(desc.shader, lookup, desc.defines ?? {});
      reflectText = desc.reflectDefines ? preprocess(desc.shader, lookup, desc.reflectDefines).code : pre.code;
    } catch (e) {
      if (e instanceof ShaderPreprocessError) {
        throw new KernelCompileError(desc.shader, [{ type: 'error', file: e.file, line: e.line, column: 1, message: e.message }]);
      }
      throw e;
    }
    const device = this.device;
    // Error scopes are pushed and popped synchronously around each call, so that concurrent
    // async work can never interleave with them.
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ code: pre.code, label: key });
    const moduleScope = device.popErrorScope();
    const info = await this.guard(module.getCompilationInfo());
    const scopeError = await this.guard(moduleScope);
    const messages: CompileMessage[] = info.messages.map((m) => {
      const loc = pre.lineMap[m.lineNum - 1];
      return { type: m.type, file: loc?.file ?? desc.shader, line: loc?.line ?? m.lineNum, column: m.linePos, message: m.message };
    });
    if (messages.some((m) => m.type === 'error') || scopeError) {
      throw new KernelCompileError(desc.shader, messages, scopeError?.message ?? '');
    }
    let layout: EntryReflection;
    try {
      layout = reflectEntry(reflectText, entryPoint);
    } catch (e) {
      throw new KernelCompileError(desc.shader, [], `reflection failed: ${(e as Error).message}`);
    }
    device.pushErrorScope('validation');
    const bindGroupLayout = device.createBindGroupLayout({
      label: key,
      entries: layout.bindings.map((b) => ({
        binding: b.binding,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: b.kind },
      })),
    });
    const pipelineLayout = device.createPipelineLayout({ label: key, bindGroupLayouts: [bindGroupLayout] });
    const layoutScope = device.popErrorScope();
    const layoutError = await this.guard(layoutScope);
    if (layoutError) throw new KernelCompileError(desc.shader, messages, `bind group layout rejected: ${layoutError.message}`);
    let pipeline: GPUComputePipeline;
    try {
      pipeline = await this.guard(
        device.createComputePipelineAsync({
          label: key,
          layout: pipelineLayout,
          compute: { module, entryPoint, constants: desc.overrides ? { ...desc.overrides } : undefined },
        }),
      );
    } catch (e) {
      if (e instanceof DeviceLostError) throw e;
      throw new KernelCompileError(desc.shader, messages, `pipeline creation failed: ${(e as Error).message}`);
    }
    return { key, shader: desc.shader, pipeline, layout, bindGroupLayout };
  }

  // ---------------------------------------------------------------- tensors

  private checkFits(bytes: number, what: string): void {
    const limit = this.caps.limits.maxStorageBufferBindingSize;
    if (bytes > limit) throw new TensorTooLargeError(bytes, limit, what);
  }

  /** An uninitialised tensor from the pool. */
  empty(shape: readonly number[], dtype: DType, label = 'tensor'): Tensor {
    this.check();
    checkShape(shape, label);
    const bytes = byteSizeOf(shape, dtype);
    this.checkFits(bytes, `${label}[${shape.join(', ')}] ${dtype}`);
    return new Tensor(this.pool.acquire(bytes, label), shape, dtype, 0, label);
  }

  /**
   * Uploads host data. For f16/bf16, `data` holds the values as floats (converted and packed here)
   * or the already-packed u32 words.
   */
  upload(data: HostArray, shape: readonly number[], dtype: DType, label = 'tensor'): Tensor {
    const n = numelOf(shape);
    const words = this.encodeHost(data, n, dtype, label);
    const t = this.empty(shape, dtype, label);
    this.device.queue.writeBuffer(t.buffer, t.byteOffset, words.buffer, words.byteOffset, t.byteLength);
    return t;
  }

  /** Overwrites a tensor's contents from the host. */
  write(t: Tensor, data: HostArray): void {
    const words = this.encodeHost(data, t.numel, t.dtype, t.label);
    this.device.queue.writeBuffer(t.buffer, t.byteOffset, words.buffer, words.byteOffset, t.byteLength);
  }

  private encodeHost(data: HostArray, n: number, dtype: DType, label: string): Uint8Array {
    if (dtype === 'f16' || dtype === 'bf16') {
      if (data instanceof Float32Array) {
        if (data.length !== n) throw new ShapeError(`${label}: ${data.length} values for ${n} elements`);
        const packed = packHalves(dtype, data);
        return new Uint8Array(packed.buffer);
      }
      if (data instanceof Uint32Array && data.length === Math.ceil(n / 2)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      throw new DTypeError(`${label}: ${dtype} data must be a Float32Array of values or a Uint32Array of packed pairs`);
    }
    const want = dtype === 'f32' ? Float32Array : dtype === 'i32' ? Int32Array : Uint32Array;
    if (!(data instanceof want)) throw new DTypeError(`${label}: ${dtype} data must be a ${want.name}, got ${data.constructor.name}`);
    if (data.length !== n) throw new ShapeError(`${label}: ${data.length} values for ${n} elements`);
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (bytes.byteLength % 4 === 0) return bytes;
    const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
    padded.set(bytes);
    return padded;
  }

  /** Fills a tensor with one 32-bit pattern (e.g. NaN poison: 0x7fc00000). */
  fillWords(t: Tensor, word: number): void {
    const words = new Uint32Array(t.byteLength / 4).fill(word >>> 0);
    this.device.queue.writeBuffer(t.buffer, t.byteOffset, words);
  }

  /** Reads a tensor back: f32/f16/bf16 as Float32Array, i32 as Int32Array, u32 as Uint32Array. */
  async read(t: Tensor): Promise<HostArray> {
    const bytes = await this.readBytes(t.buffer, t.byteOffset, t.byteLength);
    const words = new Uint32Array(bytes);
    switch (t.dtype) {
      case 'f32':
        return new Float32Array(bytes, 0, t.numel);
      case 'i32':
        return new Int32Array(bytes, 0, t.numel);
      case 'u32':
        return words.subarray(0, t.numel);
      default:
        return unpackHalves(t.dtype, words, t.numel);
    }
  }

  async readF32(t: Tensor): Promise<Float32Array> {
    const v = await this.read(t);
    return v instanceof Float32Array ? v : Float32Array.from(v);
  }

  async readBytes(buffer: GPUBuffer, offset: number, size: number): Promise<ArrayBuffer> {
    this.check();
    const staging = this.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'readback' });
    try {
      const enc = this.device.createCommandEncoder({ label: 'readback' });
      enc.copyBufferToBuffer(buffer, offset, staging, 0, size);
      this.submit([enc.finish()]);
      await this.guard(staging.mapAsync(GPUMapMode.READ));
      const copy = staging.getMappedRange().slice(0);
      staging.unmap();
      this.check();
      return copy;
    } finally {
      staging.destroy();
    }
  }

  /** Returns a tensor's buffer to the pool (reusable after the next submit). */
  release(...tensors: (Tensor | undefined)[]): void {
    for (const t of tensors) if (t) this.pool.release(t.buffer);
  }

  // ---------------------------------------------------------------- dispatch

  uniformBuffer(bytes: Uint8Array): GPUBuffer {
    let key = '';
    for (let i = 0; i < bytes.length; i++) key += String.fromCharCode(bytes[i]!);
    let buf = this.uniforms.get(key);
    if (buf) {
      // Refresh its place in the LRU order.
      this.uniforms.delete(key);
      this.uniforms.set(key, buf);
      return buf;
    }
    if (this.uniforms.size >= UNIFORM_CACHE_LIMIT) {
      const oldest = this.uniforms.keys().next().value as string;
      // Not destroyed: work still queued may reference it; dropping it lets it be collected.
      this.uniforms.delete(oldest);
    }
    buf = this.device.createBuffer({ size: bytes.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, mappedAtCreation: true, label: 'params' });
    new Uint8Array(buf.getMappedRange()).set(bytes);
    buf.unmap();
    this.uniforms.set(key, buf);
    return buf;
  }

  /** The dispatch's parameters packed as its Params uniform (empty when the shader has none). */
  uniformBytes(d: Dispatch): Uint8Array {
    const layout = d.program.layout.uniform;
    return layout ? packUniform(layout, d.params ?? {}, d.program.key) : new Uint8Array(0);
  }

  /**
   * The dispatch's bind group. Its Params uniform is a cached buffer holding exactly these bytes, or
   * `uniform` when given (a slot of a Recording's parameter buffer).
   */
  bindGroup(d: Dispatch, uniform?: BufferRange): GPUBindGroup {
    const { program } = d;
    const entries: GPUBindGroupEntry[] = [];
    const given = new Set(Object.keys(d.bindings));
    for (const b of program.layout.bindings) {
      if (b.kind === 'uniform') {
        entries.push({ binding: b.binding, resource: uniform ?? { buffer: this.uniformBuffer(this.uniformBytes(d)) } });
        continue;
      }
      const r = d.bindings[b.name];
      if (!r) throw new ShapeError(`${program.key}: binding "${b.name}" was not given`);
      given.delete(b.name);
      if (r instanceof Tensor) {
        this.checkFits(r.byteLength, `${program.shader} binding ${b.name} (${r.describe()})`);
        entries.push({ binding: b.binding, resource: { buffer: r.buffer, offset: r.byteOffset, size: r.byteLength } });
      } else {
        const size = r.size ?? r.buffer.size - (r.offset ?? 0);
        this.checkFits(size, `${program.shader} binding ${b.name}`);
        entries.push({ binding: b.binding, resource: { buffer: r.buffer, offset: r.offset ?? 0, size } });
      }
    }
    if (given.size) throw new ShapeError(`${program.key}: the shader has no binding named ${[...given].join(', ')}`);
    return this.device.createBindGroup({ layout: program.bindGroupLayout, entries, label: program.key });
  }

  checkWorkgroups(d: Dispatch): [number, number, number] {
    const [x, y = 1, z = 1] = d.workgroups;
    const max = this.caps.limits.maxComputeWorkgroupsPerDimension;
    for (const n of [x, y, z]) {
      if (!Number.isInteger(n) || n < 0 || n > max) {
        throw new ShapeError(`${d.program.key}: workgroup count [${x}, ${y}, ${z}] is outside 0..${max} per dimension`);
      }
    }
    return [x, y, z];
  }

  /** A batch of dispatches recorded into one command buffer. */
  batch(options: { label?: string; profile?: boolean } = {}): Batch {
    return new Batch(this, options.label ?? 'batch', options.profile === true && this.caps.timestamps);
  }

  /** Compiles nothing: runs already-compiled dispatches in one submit and waits for completion. */
  async run(...dispatches: Dispatch[]): Promise<void> {
    const b = this.batch();
    for (const d of dispatches) b.dispatch(d);
    await b.submit();
  }

  submit(buffers: GPUCommandBuffer[]): void {
    this.check();
    this.device.queue.submit(buffers);
    this.pool.afterSubmit();
  }

  /** Waits for all submitted work; rejects with DeviceLostError if the device dies meanwhile. */
  async sync(): Promise<void> {
    await this.guard(this.device.queue.onSubmittedWorkDone());
    this.check();
  }

  destroy(): void {
    this.destroyed = true;
    this.pool.trim();
    this.device.destroy();
  }
}

/**
 * Dispatches recorded into one command encoder. Without profiling they share one compute pass;
 * with profiling each gets its own pass with timestamp writes, and submit() reports times.
 */
export class Batch implements Encoder {
  private encoder: GPUCommandEncoder;
  private pass: GPUComputePassEncoder | undefined;
  private labels: string[] = [];
  private querySet: GPUQuerySet | undefined;
  private readonly maxQueries = 4096;
  /** Error scopes popped around each recording call; awaited in submit(). */
  private scopes: Promise<GPUError | null>[] = [];
  /** Tensors released into this batch: pooled again once it is submitted. */
  private releases: Tensor[] = [];

  constructor(
    private readonly gpu: Gpu,
    label: string,
    private readonly profile: boolean,
  ) {
    gpu.check();
    this.encoder = gpu.device.createCommandEncoder({ label });
    if (profile) this.querySet = gpu.device.createQuerySet({ type: 'timestamp', count: this.maxQueries });
  }

  dispatch(d: Dispatch): this {
    const [x, y, z] = this.gpu.checkWorkgroups(d);
    if (x * y * z === 0) return this;
    // No error scope per dispatch (it cost more host time than the dispatch itself in decode): an
    // invalid bind group also invalidates the encoder, which the scope around finish() reports.
    const group = this.gpu.bindGroup(d);
    let pass: GPUComputePassEncoder;
    if (this.profile && this.labels.length * 2 + 2 <= this.maxQueries) {
      const i = this.labels.length;
      this.labels.push(d.label ?? d.program.key);
      pass = this.encoder.beginComputePass({
        label: d.program.key,
        timestampWrites: { querySet: this.querySet!, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
      });
    } else {
      pass = this.pass ??= this.encoder.beginComputePass({ label: 'kernels' });
    }
    pass.setPipeline(d.program.pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(x, y, z);
    if (pass !== this.pass) pass.end();
    return this;
  }

  /**
   * Returns tensors to the pool once this batch is submitted: for scratch that dispatches recorded
   * here still read or write. (gpu.release() frees at the next submit of any work, which may come
   * before this batch's.)
   */
  release(...tensors: (Tensor | undefined)[]): void {
    for (const t of tensors) if (t) this.releases.push(t);
  }

  /** Copies between buffers (ends the shared compute pass first). */
  copy(src: Resource, dst: Resource, bytes: number): this {
    this.endPass();
    const s = src instanceof Tensor ? { buffer: src.buffer, offset: src.byteOffset } : src;
    const t = dst instanceof Tensor ? { buffer: dst.buffer, offset: dst.byteOffset } : dst;
    this.encoder.copyBufferToBuffer(s.buffer, s.offset ?? 0, t.buffer, t.offset ?? 0, bytes);
    return this;
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = undefined;
  }

  /**
   * Submits the batch (before the returned promise, so that batches may overlap on the queue) and
   * resolves when the GPU is done with it. Validation and out-of-memory errors raised while recording
   * become typed errors here. Profiled batches resolve to per-dispatch times in ms.
   */
  async submit(): Promise<{ label: string; ms: number }[]> {
    this.endPass();
    let resolveBuf: GPUBuffer | undefined;
    if (this.profile && this.labels.length) {
      const n = this.labels.length * 2;
      resolveBuf = this.gpu.device.createBuffer({ size: n * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
      this.encoder.resolveQuerySet(this.querySet!, 0, n, resolveBuf, 0);
    }
    const device = this.gpu.device;
    try {
      // Checked before the scopes are pushed, so a throw here cannot leave them open.
      this.gpu.check();
      device.pushErrorScope('out-of-memory');
      device.pushErrorScope('validation');
      const cmd = this.encoder.finish();
      device.queue.submit([cmd]);
      // Asked now, so that it covers this batch and not batches submitted while this one runs.
      const done = device.queue.onSubmittedWorkDone();
      this.scopes.push(device.popErrorScope(), device.popErrorScope());
      this.gpu.pool.afterSubmit();
      for (const t of this.releases.splice(0)) this.gpu.pool.release(t.buffer);
      await this.popScopes();
      await this.gpu.guard(done);
      this.gpu.check();
      if (!resolveBuf) return [];
      const raw = new BigInt64Array(await this.gpu.readBytes(resolveBuf, 0, resolveBuf.size));
      return this.labels.map((label, i) => ({ label, ms: Number(raw[2 * i + 1]! - raw[2 * i]!) / 1e6 }));
    } finally {
      resolveBuf?.destroy();
      this.querySet?.destroy();
    }
  }

  private async popScopes(): Promise<void> {
    const errors = await this.gpu.guard(Promise.all(this.scopes));
    this.scopes = [];
    const e = errors.find((x) => x !== null);
    if (e) throw e instanceof GPUOutOfMemoryError ? new GpuOutOfMemoryError(e.message) : new GpuValidationError(e.message);
  }
}
