/**
 * Linear layer y = x · Wᵀ (+ b) in nn.Linear layout (shaders/matmul.wgsl): x [..., K] f32,
 * W [N, K] f32 / f16 / bf16 (halves packed two per u32), bias [N] f32, y [..., N] f32.
 *
 * One kernel family, several compute paths, chosen per call by `select()` ('auto': gemv for M <= 8,
 * else the f32 tiles, the fastest measured; see select() for why the others are explicit-only):
 *  - 'f32'      register-blocked f32 tiles in workgroup memory; runs everywhere (fits 256
 *               invocations and 16 KiB of workgroup memory, so SwiftShader, lavapipe, browsers).
 *  - 'f16'      the same tiles stored as f16 in workgroup memory, f32 accumulation (needs shader-f16).
 *  - 'sgmatrix' tensor cores through subgroup matrices (f16 16x16x16, f32 accumulate): x and W are
 *               rounded to f16 while staged, so it carries f16 input precision (TOL_F16).
 *  - 'gemv'     matrix-vector for M <= 8 rows (decode), bandwidth bound on W.
 * Every path has a vector-load flavour (K % 4 == 0 for f32 weights, K % 8 == 0 for packed) and an
 * element-load flavour for any K; both are compiled in create() so encode() stays synchronous.
 */
import type { Encoder, Gpu, Program, ProgramDesc } from '../gpu/gpu.ts';
import { BadInputError, DTypeError, KernelCompileError, ShapeError, UnsupportedError } from '../gpu/errors.ts';
import type { Tensor } from '../tensor.ts';
import { ceilDiv, foldGrid } from './grid.ts';

export type MatmulWeightDType = 'f32' | 'f16' | 'bf16';
export type MatmulVariant = 'auto' | 'f32' | 'f16' | 'sgmatrix' | 'gemv';
export type MatmulPath = Exclude<MatmulVariant, 'auto'>;

/** Register-blocked tile: BM x BN outputs per workgroup, TM x TN per thread, BK k-step. */
export interface TileConfig {
  BM: number;
  BN: number;
  BK: number;
  TM: number;
  TN: number;
  /** Vector-load programs fetch the next k-slice into registers while multiplying the current one. */
  prefetch: boolean;
  /**
   * 8x8 and 4x4 thread blocks: the inner product written out with constant register indices. Neutral
   * under Dawn; 12x faster under Deno (wgpu does not unroll loops, so loop-indexed accumulators
   * live in local memory).
   */
  unroll?: boolean;
}

/** Subgroup-matrix tile: SG_M x SG_N subgroups, each SG_TM x SG_TN 16x16 matrices, SBK k-step. */
export interface SgTileConfig {
  SG_M: number;
  SG_N: number;
  SG_TM: number;
  SG_TN: number;
  SBK: number;
  prefetch: boolean;
  /**
   * Operand loads, multiplies and result stores written out with constant indices (SG_TM, SG_TN at
   * most 4; lib/sg_mma.wgsl): in loops, NVIDIA's compiler kept 4x4 accumulators in local memory.
   */
  unroll?: boolean;
}

export interface MatmulOptions {
  weightDType: MatmulWeightDType;
  bias?: boolean;
  variant?: MatmulVariant;
  /** Tuning overrides (benchmarks). Defaults are the measured best; see bench/suites/matmul.ts. */
  tile?: Partial<TileConfig>;
  sgTile?: Partial<SgTileConfig>;
  /**
   * Compile only the vector-load flavour: every K this kernel will see takes vector loads
   * (canVectorize). One pipeline fewer per path, which matters where compiling is slow (software
   * adapters: about 2 s of a small model's load); a K that does not vectorize is then refused.
   */
  vectorOnly?: boolean;
}

/**
 * 128x128 outputs per workgroup, 8x8 per thread (16x16 = 256 threads), k-step 8, register prefetch:
 * 2 buffers * 2 tiles * 8 * 128 * 4 B = 16 KiB of workgroup memory; 64 FMAs per 4 shared vec4 reads.
 * H100 (Dawn), 4096³: 37 TFLOP/s vs 25 at k-step 16 with prefetch (bench/suites/matmul.ts).
 */
export const LARGE_TILE: TileConfig = { BM: 128, BN: 128, BK: 8, TM: 8, TN: 8, prefetch: true, unroll: true };
/** 64x64 per workgroup, 4x4 per thread (256 threads), 8 KiB: for small M*N, where 128 tiles idle the GPU. */
export const SMALL_TILE: TileConfig = { BM: 64, BN: 64, BK: 16, TM: 4, TN: 4, prefetch: false, unroll: true };
/**
 * 2x2 subgroups of 64x64 (4x4 matrices of 16x16 each, written out with constant indices): 128
 * threads, 128x128 outputs, k-step 32, no prefetch: (128 + 128) * 40 * 2 B + 4 KiB = 24 KiB of
 * workgroup memory. H200 (Dawn), 4096x14336x4096 bf16: 93.0 TFLOP/s, against 32 for the best tile
 * with loops and 31 for the f32 tiles (bench/suites/matmul.ts, BENCHMARKS.md session 4).
 */
export const SG_TILE: SgTileConfig = { SG_M: 2, SG_N: 2, SG_TM: 4, SG_TN: 4, SBK: 32, prefetch: false, unroll: true };
/**
 * One subgroup of 64x64 per workgroup (32 threads): every subgroup-matrix offset is then
 * workgroup-uniform, which compilers that insist on uniform subgroupMatrixStore offsets accept.
 */
export const SG_TILE_ONE: SgTileConfig = { SG_M: 1, SG_N: 1, SG_TM: 4, SG_TN: 4, SBK: 32, prefetch: true, unroll: true };
/** Rows of x the gemv path accepts (shaders/matmul.wgsl GEMV_MAX_M: its accumulation is written out for 8 rows). */
export const GEMV_MAX_M = 8;
/**
 * gemv's workgroup: on GPUs 8 rows of W x 32 lanes (a workgroup reduction sums the lanes); on
 * software adapters 64 rows x 1 lane, no reduction: their invocations run one after another on CPU
 * threads, where barriers cost most and one lane streaming a whole row is cache-friendly
 * (SwiftShader, needle-reader decode: 4.4 s per token with 64x64 tiles, see BENCHMARKS.md).
 */
export function gemvShape(gpu: Gpu): { GEMV_WG: number; GEMV_LANES: number } {
  return gpu.caps.software ? { GEMV_WG: 64, GEMV_LANES: 1 } : { GEMV_WG: 256, GEMV_LANES: 32 };
}
/** Use the large tile when it still yields at least this many workgroups (about one wave on big GPUs). */
const LARGE_TILE_MIN_WORKGROUPS = 96;
const WDT = { f32: 0, f16: 1, bf16: 2 } as const;
const VARIANT_CODE = { f32: 0, f16: 1, sgmatrix: 2, gemv: 3 } as const;
const SG_SIZE = 32;

export interface MatmulShape {
  M: number;
  N: number;
  K: number;
}

/** Why a path can or cannot run: capabilities and workgroup-memory fit (shape-independent). */
export function pathAvailable(gpu: Gpu, path: MatmulPath, opts: { tile?: TileConfig; sgTile?: SgTileConfig } = {}): string | null {
  const caps = gpu.caps;
  const lim = caps.limits;
  const tile = opts.tile ?? LARGE_TILE;
  const tiledThreads = (tile.BM / tile.TM) * (tile.BN / tile.TN);
  switch (path) {
    case 'f32':
    case 'f16': {
      if (path === 'f16' && !caps.f16) return 'the device has no shader-f16';
      const bytes = tile.BK * (tile.BM + tile.BN) * (path === 'f16' ? 2 : 4) * (tile.prefetch ? 2 : 1);
      if (bytes > lim.maxComputeWorkgroupStorageSize) return `tile needs ${bytes} B of workgroup memory, device allows ${lim.maxComputeWorkgroupStorageSize}`;
      if (tiledThreads > lim.maxComputeInvocationsPerWorkgroup) return `tile needs ${tiledThreads} invocations, device allows ${lim.maxComputeInvocationsPerWorkgroup}`;
      return null;
    }
    case 'sgmatrix': {
      if (!caps.f16) return 'the device has no shader-f16';
      if (!caps.subgroupMatrix) return 'the device has no chromium-experimental-subgroup-matrix (requestGpu({ experimental: true }) on supported GPUs)';
      // src/gpu/device.ts copies the configs field by field (Dawn keeps them on the prototype). A
      // list without readable fields (another implementation's objects) is taken as the feature's
      // standard set (NVIDIA: f16 16x16x16 and 16x8x16 with f32 results); a readable list must
      // contain f16 16x16x16 -> f32.
      const configs = caps.subgroupMatrixConfigs;
      const readable = configs.filter((c) => c.M !== undefined && c.componentType !== undefined);
      const ok = readable.length === 0 || readable.some((c) => c.M === 16 && c.N === 16 && c.K === 16 && c.componentType === 'f16' && c.resultComponentType === 'f32');
      if (!ok) return 'no subgroup-matrix config f16 16x16x16 with f32 results';
      if (caps.subgroupMinSize !== SG_SIZE || caps.subgroupMaxSize !== SG_SIZE) return `subgroup size must be exactly ${SG_SIZE} (device: ${caps.subgroupMinSize}..${caps.subgroupMaxSize})`;
      const sg = opts.sgTile ?? SG_TILE;
      const BM = sg.SG_M * sg.SG_TM * 16;
      const BN = sg.SG_N * sg.SG_TN * 16;
      const bytes = (BM + BN) * (sg.SBK + 8) * 2 * (sg.prefetch ? 2 : 1) + sg.SG_M * sg.SG_N * 256 * 4;
      if (bytes > lim.maxComputeWorkgroupStorageSize) return `sgmatrix tile needs ${bytes} B of workgroup memory, device allows ${lim.maxComputeWorkgroupStorageSize}`;
      const threads = sg.SG_M * sg.SG_N * SG_SIZE;
      if (threads > lim.maxComputeInvocationsPerWorkgroup) return `sgmatrix tile needs ${threads} invocations`;
      return null;
    }
    case 'gemv': {
      const { GEMV_WG, GEMV_LANES } = gemvShape(gpu);
      const bytes = GEMV_LANES > 1 ? GEMV_MAX_M * GEMV_WG * 4 : 0;
      if (bytes > lim.maxComputeWorkgroupStorageSize || GEMV_WG > lim.maxComputeInvocationsPerWorkgroup) return 'gemv workgroup does not fit the device';
      return null;
    }
  }
}

/** Whether vector loads are valid: whole vec4 row chunks (x: K % 4, packed W: K % 8 halves). */
export function canVectorize(weightDType: MatmulWeightDType, K: number): boolean {
  return weightDType === 'f32' ? K % 4 === 0 : K % 8 === 0;
}

/**
 * The select() guard: which path serves a shape. Explicit variants are honoured or rejected with the
 * precondition that failed (UnsupportedError); 'auto' takes:
 *   gemv      M <= 8 (decode; bandwidth bound). Software adapters run it with one lane per row
 *             (gemvShape): with 32 lanes and a workgroup reduction it was 5x slower than the
 *             tiles there (SwiftShader, 1x128256x128 bf16: 35 s gemv, 7 s tiled).
 *   sgmatrix  on hardware adapters where its preconditions hold: shader-f16 + subgroup matrix f16
 *             16x16x16 -> f32 + subgroup size 32 + tile fits workgroup memory. H200/Dawn,
 *             4096x14336x4096 bf16: 93 TFLOP/s (written-out tile) against 31 for the f32 tiles;
 *             x is rounded to f16 while staged (f16 input precision, f32 accumulation).
 *   f32       otherwise: the tiles fit every WebGPU device's default limits (16 KiB, 256 invocations).
 * Paths 'auto' does not take:
 *   f16       preconditions: shader-f16 + tile fits. 25 TFLOP/s on H100 against 30 for f32.
 */
export function select(gpu: Gpu, variant: MatmulVariant, shape: MatmulShape, opts: { sgTile?: SgTileConfig } = {}): { path: MatmulPath; reasons: string[] } {
  const reasons: string[] = [];
  if (variant !== 'auto') {
    if (variant === 'gemv' && shape.M > GEMV_MAX_M) throw new UnsupportedError(`matmul: gemv serves M <= ${GEMV_MAX_M} rows, got M=${shape.M}`);
    const why = pathAvailable(gpu, variant, { sgTile: opts.sgTile });
    if (why) throw new UnsupportedError(`matmul: variant '${variant}' unavailable: ${why}`);
    return { path: variant, reasons };
  }
  if (shape.M <= GEMV_MAX_M) return { path: 'gemv', reasons };
  reasons.push(`gemv: M=${shape.M} > ${GEMV_MAX_M}`);
  const why = whyNoAutoSgmatrix(gpu, opts.sgTile);
  if (!why) return { path: 'sgmatrix', reasons };
  reasons.push(`sgmatrix: ${why}`);
  return { path: 'f32', reasons };
}

/** Why 'auto' does not take the tensor-core tile for M > 8 on this device (null: it does). */
function whyNoAutoSgmatrix(gpu: Gpu, sgTile?: SgTileConfig): string | null {
  return gpu.caps.software ? 'a software adapter (the f32 tiles compile and run faster there)' : pathAvailable(gpu, 'sgmatrix', { sgTile });
}

function tileDefines(t: TileConfig): Record<string, number | boolean> {
  return { BM: t.BM, BN: t.BN, BK: t.BK, TM: t.TM, TN: t.TN, NT: (t.BM / t.TM) * (t.BN / t.TN), PREFETCH: t.prefetch, UNROLL: t.unroll === true };
}

function sgDefines(t: SgTileConfig): Record<string, number | boolean> {
  return {
    SG_M: t.SG_M,
    SG_N: t.SG_N,
    SG_COUNT: t.SG_M * t.SG_N,
    SG_TM: t.SG_TM,
    SG_TN: t.SG_TN,
    BM: t.SG_M * t.SG_TM * 16,
    BN: t.SG_N * t.SG_TN * 16,
    BK: t.SBK,
    NT: t.SG_M * t.SG_N * SG_SIZE,
    PREFETCH: t.prefetch,
    UNROLL: t.unroll === true,
  };
}

/**
 * The program a tiled path compiles to (exported for benchmark probes, which add defines such as
 * PROBE_COMPUTE_ONLY). `vec` selects vector loads.
 */
export function tiledProgramDesc(weightDType: MatmulWeightDType, bias: boolean, tile: TileConfig, f16Tiles: boolean, vec: boolean, extra: Record<string, number | boolean> = {}): ProgramDesc {
  return {
    shader: 'matmul.wgsl',
    defines: { WDT: WDT[weightDType], HAS_BIAS: bias, VARIANT: f16Tiles ? 1 : 0, ...tileDefines(tile), VEC: vec ? 1 : 0, ...extra },
    overrides: { WG_X: tile.BN / tile.TN, WG_Y: tile.BM / tile.TM },
  };
}

function checkTile(t: TileConfig): void {
  const ok =
    [t.BM, t.BN, t.BK, t.TM, t.TN].every((v) => Number.isInteger(v) && v > 0) &&
    t.TM % 4 === 0 &&
    t.TN % 4 === 0 &&
    t.BM % t.TM === 0 &&
    t.BN % t.TN === 0 &&
    t.BK % 8 === 0;
  if (!ok) throw new BadInputError(`matmul: invalid tile ${JSON.stringify(t)} (TM, TN multiples of 4 dividing BM, BN; BK a multiple of 8)`);
}

function checkSgTile(t: SgTileConfig): void {
  const ok = [t.SG_M, t.SG_N, t.SG_TM, t.SG_TN, t.SBK].every((v) => Number.isInteger(v) && v > 0) && t.SBK % 16 === 0 && (t.unroll !== true || (t.SG_TM <= 4 && t.SG_TN <= 4));
  if (!ok) throw new BadInputError(`matmul: invalid subgroup-matrix tile ${JSON.stringify(t)} (SBK a multiple of 16; unrolled: SG_TM, SG_TN at most 4)`);
}

/**
 * Compiles a subgroup-matrix program through gpu.compile. wgsl_reflect cannot parse subgroup-matrix
 * types or templated builtin calls; the bindings of every matmul variant are the same declarations,
 * so they are reflected from the tiled variant with the same WDT / HAS_BIAS / VEC defines.
 */
export function compileSgmatrix(gpu: Gpu, desc: ProgramDesc, reflectDefines: Record<string, number | boolean>): Promise<Program> {
  return gpu.compile({ ...desc, reflectDefines });
}

interface PathPrograms {
  /** Element loads (absent with vectorOnly). */
  scalar?: Program;
  vec: Program;
}

export class MatmulKernel {
  private constructor(
    private readonly gpu: Gpu,
    readonly options: Readonly<Required<Pick<MatmulOptions, 'weightDType' | 'bias' | 'variant'>>>,
    private readonly programs: Partial<Record<MatmulPath | 'f32-small', PathPrograms>>,
    private readonly tile: TileConfig,
    private readonly sgTile: SgTileConfig,
  ) {}

  /** The path encode() last used (for benchmarks and tests). */
  lastPath: MatmulPath | undefined;

  /** The subgroup-matrix tile this kernel compiled (the default may fall back to SG_TILE_ONE). */
  get sgmatrixTile(): SgTileConfig {
    return this.sgTile;
  }

  static async create(gpu: Gpu, options: MatmulOptions): Promise<MatmulKernel> {
    const weightDType = options.weightDType;
    if (!(weightDType in WDT)) throw new DTypeError(`matmul: weight dtype must be f32, f16 or bf16, got ${String(weightDType)}`);
    const variant = options.variant ?? 'auto';
    if (!(variant === 'auto' || variant in VARIANT_CODE)) throw new BadInputError(`matmul: unknown variant '${String(variant)}'`);
    const bias = options.bias === true;
    const tile = { ...LARGE_TILE, ...options.tile };
    const sgTile = { ...SG_TILE, ...options.sgTile };
    checkTile(tile);
    checkSgTile(sgTile);

    // Which paths this kernel may take: an explicit variant must be available now.
    const paths: MatmulPath[] = [];
    if (variant === 'auto') {
      // As select() chooses: gemv for M <= 8, else the tensor-core tile where it can run, else f32.
      paths.push('gemv', whyNoAutoSgmatrix(gpu, sgTile) ? 'f32' : 'sgmatrix');
    } else {
      const why = pathAvailable(gpu, variant, { tile, sgTile });
      if (why) throw new UnsupportedError(`matmul: variant '${variant}' unavailable: ${why}`);
      paths.push(variant);
    }

    const base = { WDT: WDT[weightDType], HAS_BIAS: bias };
    const vectorOnly = options.vectorOnly === true;
    const pair = async (compile: (vec: boolean) => Promise<Program>): Promise<PathPrograms> => {
      const [scalar, vec] = await Promise.all([vectorOnly ? undefined : compile(false), compile(true)]);
      return { scalar, vec };
    };
    const compilePair = (defines: Record<string, number | boolean>, overrides: Record<string, number>): Promise<PathPrograms> =>
      pair((vec) => gpu.compile({ shader: 'matmul.wgsl', defines: { ...base, ...defines, VEC: vec ? 1 : 0 }, overrides }));
    const tiled = (t: TileConfig, code: number): Promise<PathPrograms> => pair((vec) => gpu.compile(tiledProgramDesc(weightDType, bias, t, code === 1, vec)));

    const programs: Partial<Record<MatmulPath | 'f32-small', PathPrograms>> = {};
    let sgChosen = sgTile;
    const jobs: Promise<void>[] = [];
    for (const p of paths) {
      if (p === 'f32') {
        jobs.push(tiled(tile, 0).then((r) => void (programs.f32 = r)));
        // The small tile serves shapes with few 128-tiles; only when no tile was given explicitly.
        if (!options.tile) jobs.push(tiled(SMALL_TILE, 0).then((r) => void (programs['f32-small'] = r)));
      } else if (p === 'f16') {
        jobs.push(tiled(tile, 1).then((r) => void (programs.f16 = r)));
      } else if (p === 'sgmatrix') {
        // The default multi-subgroup tile needs the compiler to accept subgroup-uniform store offsets
        // (shaders/matmul.wgsl; Dawn does once its diagnostic is off); where a compiler does not, the
        // one-subgroup tile is compiled instead.
        const candidates = options.sgTile ? [sgTile] : [sgTile, SG_TILE_ONE];
        jobs.push(
          (async () => {
            let lastError: unknown;
            for (const t of candidates) {
              try {
                const desc = (vec: number): ProgramDesc => ({ shader: 'matmul.wgsl', defines: { ...base, VARIANT: 2, ...sgDefines(t), VEC: vec }, overrides: { WG_X: t.SG_M * t.SG_N * SG_SIZE } });
                const reflectAs = (vec: number): Record<string, number | boolean> => ({ ...base, VARIANT: 0, ...tileDefines(SMALL_TILE), VEC: vec });
                programs.sgmatrix = await pair((vec) => compileSgmatrix(gpu, desc(vec ? 1 : 0), reflectAs(vec ? 1 : 0)));
                sgChosen = t;
                return;
              } catch (e) {
                if (!(e instanceof KernelCompileError)) throw e;
                lastError = e;
              }
            }
            // 'auto' falls back to the f32 tiles where no tensor-core tile compiles.
            if (variant !== 'auto') throw lastError;
            programs.f32 = await tiled(tile, 0);
            if (!options.tile) programs['f32-small'] = await tiled(SMALL_TILE, 0);
          })(),
        );
      } else {
        jobs.push(compilePair({ VARIANT: 3, ...gemvShape(gpu) }, {}).then((r) => void (programs.gemv = r)));
      }
    }
    await Promise.all(jobs);
    return new MatmulKernel(gpu, { weightDType, bias, variant }, programs, tile, sgChosen);
  }

  /** Validates x [..., K], w [N, K], y [..., N], bias [N]; returns M, N, K. Throws before anything is encoded. */
  validate(x: Tensor, w: Tensor, y: Tensor, bias?: Tensor): MatmulShape {
    const wd = this.options.weightDType;
    if (x.dtype !== 'f32') throw new DTypeError(`matmul: x ${x.describe()} must be f32`);
    if (y.dtype !== 'f32') throw new DTypeError(`matmul: y ${y.describe()} must be f32`);
    if (w.dtype !== wd) throw new DTypeError(`matmul: w ${w.describe()} must be ${wd} (the kernel was created for ${wd} weights)`);
    if (w.shape.length !== 2) throw new ShapeError(`matmul: w ${w.describe()} must be [N, K]`);
    const [N, K] = w.shape as [number, number];
    if (x.shape.length < 1 || x.shape[x.shape.length - 1] !== K) throw new ShapeError(`matmul: x ${x.describe()} must end in K=${K} (w ${w.describe()})`);
    const M = x.numel / K;
    if (y.shape.length < 1 || y.shape[y.shape.length - 1] !== N || y.numel !== M * N) {
      throw new ShapeError(`matmul: y ${y.describe()} must hold [${M}, ${N}] for x ${x.describe()} and w ${w.describe()}`);
    }
    if (this.options.bias) {
      if (!bias) throw new BadInputError('matmul: the kernel was created with bias: true but no bias was given');
      if (bias.dtype !== 'f32') throw new DTypeError(`matmul: bias ${bias.describe()} must be f32`);
      if (bias.numel !== N || bias.shape.length !== 1) throw new ShapeError(`matmul: bias ${bias.describe()} must be [${N}]`);
    } else if (bias) {
      throw new BadInputError('matmul: a bias was given but the kernel was created without bias (create with bias: true)');
    }
    for (const t of [x, w, bias]) {
      if (t && t.buffer === y.buffer) throw new BadInputError(`matmul: y ${y.describe()} shares its buffer with ${t.describe()}`);
    }
    return { M, N, K };
  }

  /** Records y = x · Wᵀ (+ bias) into the batch. */
  encode(batch: Encoder, x: Tensor, w: Tensor, y: Tensor, bias?: Tensor): void {
    const shape = this.validate(x, w, y, bias);
    const { M, N, K } = shape;
    let { path } = select(this.gpu, this.options.variant, shape, { sgTile: this.sgTile });
    if (path === 'sgmatrix' && !this.programs.sgmatrix && this.options.variant === 'auto') path = 'f32';
    const vec = canVectorize(this.options.weightDType, K);
    const bindings: Record<string, Tensor> = { x, w, y };
    if (bias) bindings.bias = bias;
    const params = { M, N, K };
    let programs: PathPrograms | undefined;
    let workgroups: [number, number];
    if (path === 'gemv') {
      programs = this.programs.gemv;
      const { GEMV_WG, GEMV_LANES } = gemvShape(this.gpu);
      workgroups = foldGrid(ceilDiv(N, GEMV_WG / GEMV_LANES), this.gpu.caps.limits.maxComputeWorkgroupsPerDimension);
    } else if (path === 'sgmatrix') {
      programs = this.programs.sgmatrix;
      const s = this.sgTile;
      workgroups = [ceilDiv(N, s.SG_N * s.SG_TN * 16), ceilDiv(M, s.SG_M * s.SG_TM * 16)];
    } else {
      let t = this.tile;
      programs = this.programs[path];
      const small = this.programs['f32-small'];
      if (path === 'f32' && small && ceilDiv(M, t.BM) * ceilDiv(N, t.BN) < LARGE_TILE_MIN_WORKGROUPS) {
        t = SMALL_TILE;
        programs = small;
      }
      workgroups = [ceilDiv(N, t.BN), ceilDiv(M, t.BM)];
    }
    if (!programs) throw new UnsupportedError(`matmul: path '${path}' was not compiled for this kernel (variant '${this.options.variant}')`);
    this.lastPath = path;
    const program = vec ? programs.vec : programs.scalar;
    if (!program) throw new UnsupportedError(`matmul: K=${K} needs element loads, but the kernel was created with vectorOnly`);
    batch.dispatch({ program, bindings, params, workgroups, label: `matmul-${path} ${K}->${N}` });
  }
}
