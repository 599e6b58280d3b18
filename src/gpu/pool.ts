/**
 * Reuses storage buffers by size class. A released buffer goes back into the pool only after the
 * next submit, so work already recorded against it still sees its contents.
 */

/** Size classes: powers of two up to 1 MiB, then steps of a sixteenth of the next power of two. */
export function sizeClass(bytes: number): number {
  const min = 256;
  if (bytes <= min) return min;
  const p = 2 ** Math.ceil(Math.log2(bytes));
  if (p <= 1 << 20) return p;
  const step = p / 16;
  return Math.ceil(bytes / step) * step;
}

export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  private pending: GPUBuffer[] = [];
  /** Buffers handed out and not yet released: a second release, or one of a buffer the pool did not
   * hand out, is ignored (queuing a buffer twice would give two later tensors the same memory). */
  private handedOut = new Set<GPUBuffer>();
  private live = 0;
  /** Bytes currently handed out (peak is tracked for benchmark reports). */
  allocatedBytes = 0;
  peakBytes = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly usage: () => number,
  ) {}

  acquire(bytes: number, label: string): GPUBuffer {
    const size = sizeClass(bytes);
    const list = this.free.get(size);
    const buf = list?.pop() ?? this.device.createBuffer({ size, usage: this.usage(), label });
    if (buf.label !== label) buf.label = label;
    this.handedOut.add(buf);
    this.live++;
    this.allocatedBytes += size;
    this.peakBytes = Math.max(this.peakBytes, this.allocatedBytes);
    return buf;
  }

  /** Queues a buffer for reuse after the next submit. */
  release(buf: GPUBuffer): void {
    if (!this.handedOut.delete(buf)) return;
    this.pending.push(buf);
  }

  /** Called after each queue submit: pending releases become reusable. */
  afterSubmit(): void {
    for (const buf of this.pending) {
      this.live--;
      this.allocatedBytes -= buf.size;
      const list = this.free.get(buf.size) ?? [];
      list.push(buf);
      this.free.set(buf.size, list);
    }
    this.pending = [];
  }

  /** Destroys every pooled (not handed out) buffer. */
  trim(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
  }

  get liveCount(): number {
    return this.live;
  }
}
