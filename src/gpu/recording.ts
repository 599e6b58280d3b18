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
  private readback: GPUBuffer | undefined;
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
   * Submits every step (one write of the parameters, one compute pass between copies), waits, and
   * reads `out` back when given (through a staging buffer kept between runs).
   */
  async run(out?: Tensor): Promise<ArrayBuffer | undefined> {
    if (this.destroyed) throw new BadInputError(`${this.label}: the recording was destroyed`);
    const gpu = this.gpu;
    gpu.check();
    const device = gpu.device;
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    let scopes: Promise<(GPUError | null)[]>;
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
        if (!this.readback || this.readback.size < out.byteLength) {
          this.readback?.destroy();
          this.readback = device.createBuffer({ size: out.byteLength, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: `${this.label}.readback` });
        }
        enc.copyBufferToBuffer(out.buffer, out.byteOffset, this.readback, 0, out.byteLength);
      }
      device.queue.submit([enc.finish()]);
      gpu.pool.afterSubmit();
    } finally {
      scopes = Promise.all([device.popErrorScope(), device.popErrorScope()]);
    }
    const errors = await gpu.guard(scopes);
    const e = errors.find((x) => x !== null);
    if (e) throw e instanceof GPUOutOfMemoryError ? new GpuOutOfMemoryError(e.message) : new GpuValidationError(e.message);
    if (!out) {
      await gpu.sync();
      return undefined;
    }
    const rb = this.readback!;
    await gpu.guard(rb.mapAsync(GPUMapMode.READ, 0, out.byteLength));
    const copy = rb.getMappedRange(0, out.byteLength).slice(0);
    rb.unmap();
    gpu.check();
    return copy;
  }

  destroy(): void {
    this.destroyed = true;
    this.params?.destroy();
    this.readback?.destroy();
    this.params = undefined;
    this.readback = undefined;
    this.steps = [];
  }
}
