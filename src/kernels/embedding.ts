/**
 * Embedding gather (shaders/embedding.wgsl): out[t, :] = table[ids[t], :] as f32.
 * ids [T] u32, table [V, C] f32 / f16 / bf16 (packed halves), out [T, C] f32.
 * Ids >= V are not clamped: their rows come out NaN (validate ids on the host; see validateIds).
 */
import type { Encoder, Gpu, Program } from '../gpu/gpu.ts';
import { BadInputError, DTypeError, ShapeError, UnsupportedError } from '../gpu/errors.ts';
import type { Tensor } from '../tensor.ts';
import { ceilDiv, foldGrid } from './grid.ts';

const WG = 256;
export type EmbeddingTableDType = 'f32' | 'f16' | 'bf16';
const TDT = { f32: 0, f16: 1, bf16: 2 } as const;

/** `weightDType` is accepted as an alias of `tableDType`. */
export type EmbeddingOptions = { tableDType: EmbeddingTableDType } | { weightDType: EmbeddingTableDType };

/** Host check for token ids before upload: every id must be an integer in [0, V). */
export function validateIds(ids: ArrayLike<number>, V: number): void {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (!Number.isInteger(id) || id < 0 || id >= V) throw new BadInputError(`embedding: token id ${id} at position ${i} is outside the vocabulary [0, ${V})`);
  }
}

export class EmbeddingKernel {
  private constructor(
    private readonly gpu: Gpu,
    private readonly program: Program,
    readonly tableDType: EmbeddingTableDType,
  ) {}

  static async create(gpu: Gpu, options: EmbeddingOptions): Promise<EmbeddingKernel> {
    const d = 'tableDType' in options ? options.tableDType : options.weightDType;
    if (!(d in TDT)) throw new UnsupportedError(`embedding: tableDType must be f32, f16 or bf16, got "${String(d)}"`);
    return new EmbeddingKernel(gpu, await gpu.compile({ shader: 'embedding.wgsl', defines: { TDT: TDT[d] }, overrides: { WG } }), d);
  }

  encode(batch: Encoder, ids: Tensor, table: Tensor, out: Tensor): void {
    if (ids.dtype !== 'u32') throw new DTypeError(`embedding: ids ${ids.describe()} must be u32`);
    if (table.dtype !== this.tableDType) throw new DTypeError(`embedding: table ${table.describe()} must be ${this.tableDType} (the kernel was created for it)`);
    if (out.dtype !== 'f32') throw new DTypeError(`embedding: out ${out.describe()} must be f32`);
    if (ids.shape.length !== 1) throw new ShapeError(`embedding: ids must be [T], got ${ids.describe()}`);
    if (table.shape.length !== 2) throw new ShapeError(`embedding: table must be [V, C], got ${table.describe()}`);
    const T = ids.shape[0]!;
    const [V, C] = table.shape as [number, number];
    if (out.shape.length !== 2 || out.shape[0] !== T || out.shape[1] !== C) throw new ShapeError(`embedding: out ${out.describe()} must be [${T}, ${C}] for ids ${ids.describe()} and table ${table.describe()}`);
    if (out.buffer === ids.buffer || out.buffer === table.buffer) throw new ShapeError('embedding: out must not share a buffer with ids or table');
    if (V * C > 2 ** 32 - 1) throw new UnsupportedError(`embedding: table ${table.describe()} has more than 2^32 - 1 elements`);
    const [x, y] = foldGrid(ceilDiv(T * C, WG), this.gpu.caps.limits.maxComputeWorkgroupsPerDimension);
    batch.dispatch({ program: this.program, bindings: { ids, table, out }, params: { T, C, V }, workgroups: [x, y], label: 'embedding' });
  }
}
