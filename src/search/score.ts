/**
 * Scores every candidate pattern of the search space (space.ts) on the heads of one layer's head
 * group, with the kernels the runtime itself runs: the dense flash-attention kernel for the
 * reference, the A-shape kernel, the GPU index estimators with the sparse-index kernel, and the
 * pattern-recall kernel (pattern_recall.ts) on sampled query rows.
 *
 * Per head group (q [Hg, T, D], k and v [Hkv, T, D], f32, RoPE applied):
 *   1. row statistics of the sampled rows and the dense output of every head;
 *   2. A-shape: its output, kept mass and output error (density exact: it defines the budget);
 *   3. each Vertical-Slash candidate: per head, the sizes are rescaled until the density of the index
 *      the estimator builds is within the cost tolerance of the budget (estimation + entry count
 *      only), then the index of the chosen sizes is built once more and attended, scored, counted;
 *   4. Block-Sparse at the budget's top-k: attended, scored, counted.
 * Recall = mean kept share of the sampled rows' softmax mass; output error = relative L2 error of the
 * pattern's output rows against the dense ones over the sampled rows.
 */
import type { Batch, Gpu } from '../gpu/gpu.ts';
import type { Tensor } from '../tensor.ts';
import type { Pattern } from '../attention/types.ts';
import { DenseAttentionKernel, type AttentionCompute } from '../attention/dense.ts';
import { StreamAttentionKernel } from '../attention/stream.ts';
import { SparseAttentionKernel, releaseIndex } from '../attention/sparse.ts';
import { BlockSparseEstimator, VerticalSlashEstimator, type VerticalSlashParams } from '../attention/estimate.ts';
import { indexBytesPerHead } from '../attention/attention.ts';
import { PatternRecallKernel, uploadRows, type SampledRows } from './pattern_recall.ts';
import { aShapeDensity, candidateName, causalEntries, type SearchSpace } from './space.ts';
import { BadInputError } from '../gpu/errors.ts';
import type { SparseIndex } from '../attention/types.ts';

/** Index bytes per estimation chunk of heads (as the attention API chunks them). */
const INDEX_CHUNK_BYTES = 256 * 1024 * 1024;

/** How a search scores: the rows, the budget and the rules of equal cost (resolved options). */
export interface ScoringPlan {
  promptLen: number;
  /** Sampled query positions (ascending): spread past scoreFrom, and the last 64. */
  rows: readonly number[];
  space: SearchSpace;
  /** The cost budget: the A-shape candidate's density. */
  budget: number;
  /** Block-Sparse's top-k at the budget (<= space.blockSparseTopK). */
  blockSparseTopK: number;
  /** A candidate is within budget when its density <= budget * (1 + costTolerance). */
  costTolerance: number;
  /** Re-estimations allowed when equalising a Vertical-Slash candidate's density to the budget. */
  equalizeSteps: number;
}

export interface CandidateScore {
  /** The candidate as the space names it, e.g. "vertical_and_slash(30, 2048)". */
  name: string;
  /** What was measured on this head (Vertical-Slash: sizes equalised; Block-Sparse: the budget's top-k). */
  scored: Pattern;
  /** What a config made from this candidate runs (Block-Sparse: the space's top-k, a superset). */
  runs: Pattern;
  /** Mean share of the sampled rows' dense softmax mass the scored pattern keeps. */
  recall: number;
  /** Relative L2 error of the scored pattern's output against dense, over the sampled rows. */
  outputError: number;
  /** Causal query-key entries the kernel computed / all of them (whole prompt). */
  density: number;
  /** density <= budget * (1 + costTolerance). */
  withinBudget: boolean;
}

/** A given pattern's score on one head (evaluate). */
export interface PatternScore {
  pattern: Pattern;
  recall: number;
  outputError: number;
  density: number;
}

/** Per head of the group: every candidate's score, in the space's order. */
export type GroupScores = CandidateScore[][];

/** Called as each stage starts: the candidate's name ('dense' for the reference) and its position. */
export type StageCallback = (stage: string, index: number, stages: number) => void;

export class GroupScorer {
  private constructor(
    private readonly gpu: Gpu,
    private readonly recall: PatternRecallKernel,
    private readonly dense: DenseAttentionKernel,
    private readonly stream: StreamAttentionKernel,
    private readonly sparse: SparseAttentionKernel,
    private readonly vsEst: VerticalSlashEstimator,
    private readonly bsEst: BlockSparseEstimator,
  ) {}

  /** Compiles every kernel the scoring runs (once per search; programs are cached per device). */
  static async create(gpu: Gpu, headDim: number, compute: AttentionCompute): Promise<GroupScorer> {
    const kopts = { headDim, kvDType: 'f32' as const, compute };
    const [recall, dense, stream, sparse, vsEst, bsEst] = await Promise.all([
      PatternRecallKernel.create(gpu, { headDim }),
      DenseAttentionKernel.create(gpu, { ...kopts, splitKeys: false }),
      StreamAttentionKernel.create(gpu, kopts),
      SparseAttentionKernel.create(gpu, kopts),
      VerticalSlashEstimator.create(gpu, { headDim }),
      BlockSparseEstimator.create(gpu, { headDim }),
    ]);
    return new GroupScorer(gpu, recall, dense, stream, sparse, vsEst, bsEst);
  }

  destroy(): void {
    this.recall.destroy();
    this.dense.destroy();
    this.stream.destroy();
    this.sparse.destroy();
  }

  /**
   * Allocates the scoring buffers of a head group and encodes what every pattern is compared with:
   * the sampled rows' statistics and the dense output of every head. `run` gets them; they are
   * freed when it returns.
   */
  private async withReference<T>(q: Tensor, k: Tensor, v: Tensor, rowPositions: readonly number[], run: (io: ScoreIo) => Promise<T>): Promise<T> {
    const gpu = this.gpu;
    const [Hg, T, D] = q.shape as [number, number, number];
    const heads = Array.from({ length: Hg }, (_, h) => h);
    const R = rowPositions.length;
    const rows = uploadRows(gpu, rowPositions, T);
    const own: Tensor[] = [rows.tensor];
    const mk = (shape: number[], label: string): Tensor => {
      const t = gpu.empty(shape, 'f32', label);
      own.push(t);
      return t;
    };
    try {
      const io: ScoreIo = { q, k, v, rows, stats: mk([Hg, R, 2], 'search.stats'), kept: mk([Hg, R], 'search.kept'), err: mk([Hg, R, 2], 'search.err'), denseOut: mk([Hg, T, D], 'search.dense'), out: mk([Hg, T, D], 'search.out') };
      const b = gpu.batch({ label: 'search.dense' });
      this.recall.encodeStats(b, q, k, rows, heads, io.stats);
      this.dense.encode(b, q, k, v, io.denseOut, heads, { qPos0: 0, kvLen: T });
      await b.submit();
      return await run(io);
    } finally {
      gpu.release(...own);
    }
  }

  /** A-shape on the listed heads: attended and scored (its density is exact). */
  private async scoreAShape(io: ScoreIo, heads: readonly number[], a: { nInit: number; nLocal: number }): Promise<{ recall: number[]; error: number[]; density: number }> {
    const T = io.q.shape[1]!;
    const b = this.gpu.batch({ label: 'search.a_shape' });
    this.stream.encode(b, io.q, io.k, io.v, io.out, heads, a);
    this.recall.encodeKept(b, io.q, io.k, io.rows, heads, io.stats, io.kept, a);
    this.recall.encodeError(b, io.out, io.denseOut, io.rows, heads, io.err);
    await b.submit();
    return { ...(await this.readRows(io)), density: aShapeDensity(T, a.nInit, a.nLocal) };
  }

  /** Scores every candidate on every head of q (head h reads kv head floor(h * Hkv / Hg)). */
  async score(q: Tensor, k: Tensor, v: Tensor, plan: ScoringPlan, onStage?: StageCallback): Promise<GroupScores> {
    const Hg = q.shape[0]!;
    const heads = Array.from({ length: Hg }, (_, h) => h);
    const stages = 2 + plan.space.verticalSlash.length + 1;
    onStage?.('dense', 0, stages);
    return this.withReference(q, k, v, plan.rows, async (io) => {
      const scores: GroupScores = heads.map(() => []);
      const push = (h: number, c: Omit<CandidateScore, 'withinBudget'>): void => {
        scores[h]!.push({ ...c, withinBudget: c.density <= plan.budget * (1 + plan.costTolerance) });
      };

      // A-shape: static, its density is the budget.
      const a = plan.space.aShape;
      const aPattern: Pattern = { type: 'stream_llm', nInit: a.nInit, nLocal: a.nLocal };
      onStage?.(candidateName(aPattern), 1, stages);
      const aGot = await this.scoreAShape(io, heads, a);
      for (const h of heads) push(h, { name: candidateName(aPattern), scored: aPattern, runs: aPattern, recall: aGot.recall[h]!, outputError: aGot.error[h]!, density: aGot.density });

      // Vertical-Slash: equalised per head, then attended and scored.
      for (const [ci, nominal] of plan.space.verticalSlash.entries()) {
        const name = candidateName({ type: 'vertical_and_slash', ...nominal });
        onStage?.(name, 2 + ci, stages);
        const sizes = await this.equalize(q, k, nominal, plan);
        const patterns = sizes.map((s): Pattern => ({ type: 'vertical_and_slash', ...s }));
        const got = await this.attendEstimated(io, heads, patterns, (batch, chunk) => this.vsEst.encode(batch, q, k, chunk, chunk.map((h) => sizes[h]!)));
        for (const h of heads) push(h, { name, scored: patterns[h]!, runs: patterns[h]!, recall: got.recall[h]!, outputError: got.error[h]!, density: got.density[h]! });
      }

      // Block-Sparse at the budget's top-k; the config runs the space's top-k (a superset).
      const runs: Pattern = { type: 'block_sparse', topK: plan.space.blockSparseTopK };
      const scored: Pattern = { type: 'block_sparse', topK: plan.blockSparseTopK };
      onStage?.(candidateName(runs), stages - 1, stages);
      const bs = await this.attendEstimated(io, heads, heads.map(() => scored), (batch, chunk) => this.bsEst.encode(batch, q, k, chunk, { topK: plan.blockSparseTopK }));
      for (const h of heads) push(h, { name: candidateName(runs), scored, runs, recall: bs.recall[h]!, outputError: bs.error[h]!, density: bs.density[h]! });
      return scores;
    });
  }

  /**
   * Scores given patterns, one per head of q, on the sampled rows: recall, output error and density
   * per head (dense heads: 1, 0, 1 without running anything).
   */
  async evaluate(q: Tensor, k: Tensor, v: Tensor, rowPositions: readonly number[], patterns: readonly Pattern[]): Promise<PatternScore[]> {
    const Hg = q.shape[0]!;
    const out: PatternScore[] = patterns.map((pattern) => ({ pattern, recall: 1, outputError: 0, density: 1 }));
    if (patterns.length !== Hg) throw new BadInputError(`evaluate: ${patterns.length} patterns for ${Hg} heads`);
    const groups = new Map<string, number[]>();
    patterns.forEach((p, h) => {
      if (p.type === 'dense') return;
      // Vertical-Slash heads of any sizes share one estimation (per-head sizes); the others group by pattern.
      const key = p.type === 'vertical_and_slash' ? p.type : candidateName(p);
      groups.set(key, [...(groups.get(key) ?? []), h]);
    });
    if (groups.size === 0) return out;
    await this.withReference(q, k, v, rowPositions, async (io) => {
      for (const heads of groups.values()) {
        const p = patterns[heads[0]!]!;
        let got: { recall: number[]; error: number[]; density: number | number[] };
        if (p.type === 'stream_llm') got = await this.scoreAShape(io, heads, p);
        else if (p.type === 'block_sparse') got = await this.attendEstimated(io, heads, patterns, (batch, chunk) => this.bsEst.encode(batch, q, k, chunk, { topK: p.topK }));
        else got = await this.attendEstimated(io, heads, patterns, (batch, chunk) => this.vsEst.encode(batch, q, k, chunk, chunk.map((h) => patterns[h] as VerticalSlashParams)));
        for (const h of heads) out[h] = { pattern: patterns[h]!, recall: got.recall[h]!, outputError: got.error[h]!, density: typeof got.density === 'number' ? got.density : got.density[h]! };
      }
    });
    return out;
  }

  /** Per head: mean kept share and relative output error over the sampled rows. */
  private async readRows(io: ScoreIo): Promise<{ recall: number[]; error: number[] }> {
    const Hg = io.q.shape[0]!;
    const R = io.rows.positions.length;
    const [kept, err] = (await Promise.all([this.gpu.read(io.kept), this.gpu.read(io.err)])) as Float32Array[];
    const recall: number[] = [];
    const error: number[] = [];
    for (let h = 0; h < Hg; h++) {
      let s = 0;
      let e = 0;
      let n = 0;
      for (let r = 0; r < R; r++) {
        s += kept![h * R + r]!;
        e += err![2 * (h * R + r)]!;
        n += err![2 * (h * R + r) + 1]!;
      }
      recall.push(s / R);
      error.push(n > 0 ? Math.sqrt(e / n) : Math.sqrt(e));
    }
    return { recall, error };
  }

  /** The listed heads in chunks whose estimated indexes fit one chunk's bytes (patterns indexed by head). */
  private chunks(heads: readonly number[], patterns: readonly (Pattern | undefined)[], T: number): number[][] {
    const limit = Math.min(this.gpu.caps.limits.maxStorageBufferBindingSize, INDEX_CHUNK_BYTES);
    const out: number[][] = [];
    let cur: number[] = [];
    let bytes = 0;
    for (const h of heads) {
      const b = Math.max(indexBytesPerHead(patterns[h]!, T), 1);
      if (cur.length && bytes + b > limit) {
        out.push(cur);
        cur = [];
        bytes = 0;
      }
      cur.push(h);
      bytes += b;
    }
    if (cur.length) out.push(cur);
    return out;
  }

  /**
   * Per chunk of the listed heads (patterns indexed by head): estimates the chunk's index (slot i =
   * chunk[i]), lets `then` encode work that reads it (attention, scoring), counts the causal entries
   * it covers, submits and frees it. Returns the density per head (0 for heads not listed).
   */
  private async perIndexChunk(heads: readonly number[], patterns: readonly (Pattern | undefined)[], T: number, estimate: (batch: Batch, chunk: number[]) => SparseIndex, then?: (batch: Batch, chunk: number[], index: SparseIndex) => void): Promise<number[]> {
    const density = new Array<number>(patterns.length).fill(0);
    for (const chunk of this.chunks(heads, patterns, T)) {
      const b = this.gpu.batch({ label: 'search.sparse' });
      const index = estimate(b, chunk);
      const counts = this.gpu.empty([chunk.length, index.queryBlocks], 'u32', 'search.counts');
      try {
        then?.(b, chunk, index);
        this.sparse.encodeCount(b, index, counts);
        await b.submit();
        const got = (await this.gpu.read(counts)) as Uint32Array;
        chunk.forEach((h, i) => {
          let n = 0;
          for (let m = 0; m < index.queryBlocks; m++) n += got[i * index.queryBlocks + m]!;
          density[h] = n / causalEntries(T);
        });
      } finally {
        releaseIndex(this.gpu, index);
        this.gpu.release(counts);
      }
    }
    return density;
  }

  /** Estimates each chunk's index, attends with it, counts its entries and scores it on the rows. */
  private async attendEstimated(io: ScoreIo, heads: readonly number[], patterns: readonly Pattern[], estimate: (batch: Batch, chunk: number[]) => SparseIndex): Promise<{ recall: number[]; error: number[]; density: number[] }> {
    const T = io.q.shape[1]!;
    const density = await this.perIndexChunk(heads, patterns, T, estimate, (b, chunk, index) => {
      this.sparse.encode(b, io.q, io.k, io.v, io.out, chunk, index);
      this.recall.encodeKept(b, io.q, io.k, io.rows, chunk, io.stats, io.kept, { index });
      this.recall.encodeError(b, io.out, io.denseOut, io.rows, chunk, io.err);
    });
    return { ...(await this.readRows(io)), density };
  }

  /**
   * Per head, Vertical-Slash sizes (nominal x one factor f) whose estimated index's density is within
   * the cost tolerance of the budget. Density grows with f in steps (a diagonal or column enters
   * the kept lists and brings a whole 64-key range), so the factor is searched, not solved for: f
   * moves by budget / density until the cap (budget * (1 + costTolerance)) is bracketed, then the
   * bracket is halved (in log f) towards the largest f within the cap, until the density is within
   * the tolerance of the budget, no sizes are left between the bracket's ends, or the steps run out.
   * Result: the largest f measured within the cap (else the cheapest sizes measured).
   */
  private async equalize(q: Tensor, k: Tensor, nominal: VerticalSlashParams, plan: ScoringPlan): Promise<VerticalSlashParams[]> {
    const [Hg, T] = q.shape as [number, number, number];
    const sizesAt = (f: number): VerticalSlashParams => ({
      verticalSize: Math.min(T, Math.max(1, Math.round(nominal.verticalSize * f))),
      slashSize: Math.min(T, Math.max(1, Math.round(nominal.slashSize * f))),
    });
    const cap = plan.budget * (1 + plan.costTolerance);
    const floor = plan.budget / (1 + plan.costTolerance);
    const tried: { factor: number; density: number }[][] = Array.from({ length: Hg }, () => []);
    const next = new Array<number>(Hg).fill(1);
    let pending = Array.from({ length: Hg }, (_, h) => h);
    for (let step = 0; step <= plan.equalizeSteps && pending.length; step++) {
      const sizes: VerticalSlashParams[] = [];
      for (const h of pending) sizes[h] = sizesAt(next[h]!);
      const patterns = sizes.map((s): Pattern => ({ type: 'vertical_and_slash', ...s }));
      const d = await this.perIndexChunk(pending, patterns, T, (b, chunk) => this.vsEst.encode(b, q, k, chunk, chunk.map((h) => sizes[h]!)));
      const still: number[] = [];
      pending.forEach((h) => {
        const t = tried[h]!;
        const density = d[h]!;
        t.push({ factor: next[h]!, density });
        if (density >= floor && density <= cap) return;
        const lo = Math.max(0, ...t.filter((x) => x.density <= cap).map((x) => x.factor));
        const hi = Math.min(Infinity, ...t.filter((x) => x.density > cap).map((x) => x.factor));
        const f = lo > 0 && hi < Infinity ? Math.sqrt(lo * hi) : next[h]! * Math.min(16, Math.max(1 / 16, plan.budget / Math.max(density, 1e-9)));
        // Sizes measured already (rounding, clamps, a closed bracket): nothing new to learn.
        const s = sizesAt(f);
        if (t.some((x) => sameSizes(sizesAt(x.factor), s))) return;
        next[h] = f;
        still.push(h);
      });
      pending = still;
    }
    return tried.map((t) => {
      const within = t.filter((x) => x.density <= cap);
      const best = within.length ? within.reduce((a, b) => (b.factor > a.factor ? b : a)) : t.reduce((a, b) => (b.density < a.density ? b : a));
      return sizesAt(best.factor);
    });
  }
}

function sameSizes(a: VerticalSlashParams, b: VerticalSlashParams): boolean {
  return a.verticalSize === b.verticalSize && a.slashSize === b.slashSize;
}

interface ScoreIo {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  rows: SampledRows;
  stats: Tensor;
  kept: Tensor;
  err: Tensor;
  denseOut: Tensor;
  out: Tensor;
}
