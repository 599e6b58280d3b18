/**
 * A Recording: dispatches recorded once (pipelines and bind groups made once) and replayed many
 * times, each time with new parameters. This is how decode runs: the layer kernels encode one
 * token's work into it, and every later token re-runs the same encode code against `update()`,
 * which only repacks the parameters (all of them into one buffer: one write per replay), takes the
 * new workgroup counts, and remakes a bind group only where a binding moved.
 *
 *   const rec = new Recording(gpu, 'decode');
 *   encodeStep(rec, pos);                   // records
 *   const logits = await rec.run(out);      // submits, reads `out` back
 *   rec.update((e) => encodeStep(e, pos + 1));
 *   ...
 *   rec.destroy();
 *
 * run() submits before it returns its promise, so a caller may update and run again while an
 * earlier run is still on the GPU (decode keeps two steps in flight this way): the queue orders
 * the parameter write of the later run after the earlier run's work, and each run in flight reads
 * `out` back through its own staging buffer.
 *
 * The encode code must record the same kernels in the same order every time (it may change
 * parameters, workgroup counts and bindings); update() throws otherwise.
 */
import { Tensor } from '../tensor.ts';
import { BadInputError, GpuOutOfMemoryError, GpuValidationError } from './errors.ts';
import type { BufferRange, Dispatch, Encoder, Gpu, Program, Resource } from './gpu.ts';

interface RecordedDispatch {
  kind: 'dispatch';
  program: Program;
  group: GPUBindGroup;
  /** Identity of the resources bound (buffer, offset, size per binding), to notice a moved binding. */
  bound: string;
  workgroups: [number, number, number];
  /** Byte offset of this dispatch's parameters in the parameter buffer (-1: the shader has none). */
  slot: number;
  size: number;
}

interface RecordedCopy {
  kind: 'copy';
  src: Required<BufferRange>;
  dst: Required<BufferRange>;
  bytes: number;
}

type Step = RecordedDispatch | RecordedCopy;

function range(r: Resource): Required<BufferRange> {
  if (r instanceof Tensor) return { buffer: r.buffer, offset: r.byteOffset, size: r.byteLength };
  return { buffer: r.buffer, offset: r.offset ?? 0, size: r.size ?? r.buffer.size - (r.offset ?? 0) };
}

/** Buffer identity for change detection: GPUBuffer objects get small numbers on first sight. */
const bufferIds = new WeakMap<GPUBuffer, number>();
let nextBufferId = 1;
function bufferId(b: GPUBuffer): number {
  let id = bufferIds.get(b);
  if (id === undefined) bufferIds.set(b, (id = nextBufferId++));
  return id;
}

function boundKey(d: Dispatch): string {
  let key = '';
  for (const name of Object.keys(d.bindings).sort()) {
    const r = range(d.bindings[name]!);
    key += `${name}:${bufferId(r.buffer)}:${r.offset}:${r.size};`;
  }
  return key;
}

export class Recording implements Encoder {
  private steps: Step[] = [];
  /** Host copy of every dispatch's parameters, written to `params` once per run(). */
  private host = new Uint8Array(0);
  private params: GPUBuffer | undefined;
  /** Staging buffers not in use by a run in flight. */
  private staging: GPUBuffer[] = [];
  /** While update() walks the steps: the index of the next one. */
  private cursor = -1;
  private destroyed = false;

  constructor(
    private readonly gpu: Gpu,
    readonly label: string,
  ) {}

  /** Steps recorded. */
  get length(): number {
    return this.steps.length;
  }

  dispatch(d: Dispatch): this {
    const [x, y, z] = this.gpu.checkWorkgroups(d);
    const bytes = this.gpu.uniformBytes(d);
    if (this.cursor >= 0) {
      const s = this.steps[this.cursor++];
      if (!s || s.kind !== 'dispatch' || s.program !== d.program) {
        throw new BadInputError(`${this.label}: replayed step ${this.cursor - 1} is ${d.program.key}, but the recording has ${s ? (s.kind === 'dispatch' ? s.program.key : 'a copy') : 'no more steps'}`);
      }
      s.workgroups = [x, y, z];
      if (s.slot >= 0) this.host.set(bytes, s.slot);
      const bound = boundKey(d);
      if (bound !== s.bound) {
        s.group = this.gpu.bindGroup(d, this.slotRange(s.slot, s.size));
        s.bound = bound;
      }
      return this;
    }
    if (this.params) throw new BadInputError(`${this.label}: the recording was already run; replay it through update()`);
    const align = this.gpu.caps.limits.minUniformBufferOffsetAlignment;
    const slot = bytes.byteLength ? Math.ceil(this.host.byteLength / align) * align : -1;
    if (slot >= 0) {
      const grown = new Uint8Array(slot + bytes.byteLength);
      grown.set(this.host);
      grown.set(bytes, slot);
      this.host = grown;
    }
    // The bind group refers to the parameter buffer, made once recording ends (first run()).
    this.steps.push({ kind: 'dispatch', program: d.program, group: undefined as unknown as GPUBindGroup, bound: boundKey(d), workgroups: [x, y, z], slot, size: bytes.byteLength });
    this.pending.push(d);
    return this;
  }

  /** Dispatches recorded but not yet given bind groups (they need the parameter buffer). */
  private pending: Dispatch[] = [];

  copy(src: Resource, dst: Resource, bytes: number): this {
    if (this.cursor >= 0) {
      const s = this.steps[this.cursor++];
      if (!s || s.kind !== 'copy') throw new BadInputError(`${this.label}: replayed step ${this.cursor - 1} is a copy, but the recording has another step there`);
      s.src = range(src);
      s.dst = range(dst);
      s.bytes = bytes;
      return this;
    }
    this.steps.push({ kind: 'copy', src: range(src), dst: range(dst), bytes });
    return this;
  }

  /** Re-runs the encode code against the recording: new parameters, workgroups and moved bindings. */
  update(encode: (e: Encoder) => void): void {
    this.cursor = 0;
    try {
      encode(this);
      if (this.cursor !== this.steps.length) throw new BadInputError(`${this.label}: the replay recorded ${this.cursor} steps, the recording has ${this.steps.length}`);
    } finally {
      this.cursor = -1;
    }
  }

  private slotRange(slot: number, size: number): BufferRange | undefined {
    return slot >= 0 ? { buffer: this.params!, offset: slot, size } : undefined;
  }

  /** Makes the parameter buffer and the bind groups still missing (after the first recording). */
  private finishRecording(): void {
    if (this.params) return;
    this.params = this.gpu.device.createBuffer({ size: Math.max(256, this.host.byteLength), usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: `${this.label}.params` });
    let i = 0;
    for (const s of this.steps) {
      if (s.kind !== 'dispatch') continue;
      s.group = this.gpu.bindGroup(this.pending[i++]!, this.slotRange(s.slot, s.size));
    }
    this.pending = [];
  }

  /**
   * Submits every step (one write of the parameters, one compute pass between copies) before it
   * returns, then waits for the GPU and reads `out` back when given (through a staging buffer of
   * its own, reused by later runs).
   */
  run(out?: Tensor): Promise<ArrayBuffer | undefined> {
    if (this.destroyed) return Promise.reject(new BadInputError(`${this.label}: the recording was destroyed`));
    try {
      this.gpu.check();
    } catch (e) {
      return Promise.reject(e);
    }
    const device = this.gpu.device;
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    let scopes: Promise<(GPUError | null)[]>;
    let rb: GPUBuffer | undefined;
    let done: Promise<void> | undefined;
    try {
      this.finishRecording();
      if (this.host.byteLength) device.queue.writeBuffer(this.params!, 0, this.host.buffer, this.host.byteOffset, this.host.byteLength);
      const enc = device.createCommandEncoder({ label: this.label });
      let pass: GPUComputePassEncoder | undefined;
      for (const s of this.steps) {
        if (s.kind === 'copy') {
          pass?.end();
          pass = undefined;
          enc.copyBufferToBuffer(s.src.buffer, s.src.offset, s.dst.buffer, s.dst.offset, s.bytes);
          continue;
        }
        const [x, y, z] = s.workgroups;
        if (x * y * z === 0) continue;
        pass ??= enc.beginComputePass({ label: this.label });
        pass.setPipeline(s.program.pipeline);
        pass.setBindGroup(0, s.group);
        pass.dispatchWorkgroups(x, y, z);
      }
      pass?.end();
      if (out) {
        rb = this.takeStaging(out.byteLength);
        enc.copyBufferToBuffer(out.buffer, out.byteOffset, rb, 0, out.byteLength);
      }
      device.queue.submit([enc.finish()]);
      // Without a readback (whose mapping waits for this run), the run's end is asked for now, so
      // that it covers this run and not runs submitted while this one is on the GPU.
      if (!out) done = device.queue.onSubmittedWorkDone();
      this.gpu.pool.afterSubmit();
    } catch (e) {
      rb?.destroy();
      return Promise.reject(e);
    } finally {
      scopes = Promise.all([device.popErrorScope(), device.popErrorScope()]);
    }
    return this.finish(scopes, done, out, rb);
  }

  /** A staging buffer of at least `bytes` for one run's readback (a free one, or a new one). */
  private takeStaging(bytes: number): GPUBuffer {
    const i = this.staging.findIndex((b) => b.size >= bytes);
    if (i >= 0) return this.staging.splice(i, 1)[0]!;
    return this.gpu.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: `${this.label}.readback` });
  }

  /** The asynchronous half of run(): errors of the submit, then the readback. */
  private async finish(scopes: Promise<(GPUError | null)[]>, done: Promise<void> | undefined, out: Tensor | undefined, rb: GPUBuffer | undefined): Promise<ArrayBuffer | undefined> {
    const gpu = this.gpu;
    try {
      const errors = await gpu.guard(scopes);
      const e = errors.find((x) => x !== null);
      if (e) throw e instanceof GPUOutOfMemoryError ? new GpuOutOfMemoryError(e.message) : new GpuValidationError(e.message);
      if (!out || !rb) {
        if (done) await gpu.guard(done);
        gpu.check();
        return undefined;
      }
      await gpu.guard(rb.mapAsync(GPUMapMode.READ, 0, out.byteLength));
      const copy = rb.getMappedRange(0, out.byteLength).slice(0);
      rb.unmap();
      gpu.check();
      return copy;
    } catch (e) {
      rb?.destroy();
      rb = undefined;
      throw e;
    } finally {
      // Back to the free list, unless the recording was destroyed meanwhile.
      if (rb) {
        if (this.destroyed) rb.destroy();
        else this.staging.push(rb);
      }
    }
  }

  destroy(): void {
    this.destroyed = true;
    this.params?.destroy();
    for (const b of this.staging) b.destroy();
    this.params = undefined;
    this.staging = [];
    this.steps = [];
  }
}
