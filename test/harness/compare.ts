/**
 * Comparison of a GPU result against a float64 reference: per element |got - ref| <= atol + rtol*|ref|,
 * a relative L2 error bound, and NaN/Inf parity. Unwritten (still NaN-poisoned) outputs fail here.
 */
export interface Tolerance {
  /** Bound on ||got - ref|| / ||ref||. */
  relL2: number;
  /** Per-element bound: |got - ref| <= atol + rtol * |ref|. */
  atol: number;
  rtol: number;
}

export class MismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MismatchError';
  }
}

export function compareArrays(name: string, got: ArrayLike<number>, ref: ArrayLike<number>, tol: Tolerance): { relL2: number; maxAbs: number } {
  if (got.length !== ref.length) throw new MismatchError(`${name}: length ${got.length}, reference ${ref.length}`);
  let num = 0;
  let den = 0;
  let bad = 0;
  let nanBad = 0;
  let worst = -1;
  let worstErr = -1;
  let maxAbs = 0;
  for (let i = 0; i < ref.length; i++) {
    const g = got[i]!;
    const r = ref[i]!;
    if (!Number.isFinite(r) || !Number.isFinite(g)) {
      const same = (Number.isNaN(r) && Number.isNaN(g)) || g === r;
      if (!same) {
        nanBad++;
        if (worst < 0 || Number.isFinite(got[worst]!)) worst = i;
      }
      continue;
    }
    const d = Math.abs(g - r);
    num += d * d;
    den += r * r;
    maxAbs = Math.max(maxAbs, d);
    if (d > tol.atol + tol.rtol * Math.abs(r)) {
      bad++;
      const excess = d - (tol.atol + tol.rtol * Math.abs(r));
      if (excess > worstErr && (worst < 0 || Number.isFinite(got[worst]!))) {
        worstErr = excess;
        worst = i;
      }
    }
  }
  const relL2 = Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30);
  if (nanBad || bad || relL2 > tol.relL2) {
    const w = worst >= 0 ? ` worst at [${worst}]: got ${got[worst]}, ref ${ref[worst]}.` : '';
    throw new MismatchError(
      `${name}: ${nanBad} non-finite mismatches (unwritten or NaN outputs), ${bad}/${ref.length} elements outside atol=${tol.atol} rtol=${tol.rtol}; ` +
        `rel L2 ${relL2.toExponential(3)} (bound ${tol.relL2}).${w}`,
    );
  }
  return { relL2, maxAbs };
}

export function expectEqualInts(name: string, got: ArrayLike<number>, ref: ArrayLike<number>): void {
  if (got.length !== ref.length) throw new MismatchError(`${name}: length ${got.length}, reference ${ref.length}`);
  for (let i = 0; i < ref.length; i++) {
    if (got[i] !== ref[i]) throw new MismatchError(`${name}: first difference at [${i}]: got ${got[i]}, ref ${ref[i]}`);
  }
}

/** Tolerances used across kernel tests, by compute path. */
export const TOL_F32: Tolerance = { relL2: 1e-5, atol: 1e-5, rtol: 1e-4 };
export const TOL_F16: Tolerance = { relL2: 2e-3, atol: 2e-3, rtol: 1e-2 };

/**
 * Runs fn (sync or async) and requires it to throw an instance of `cls`: a MismatchError naming
 * `what` otherwise (another error, or none).
 */
export async function expectThrows(what: string, cls: new (...a: never[]) => Error, fn: () => unknown): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof cls) return;
    throw new MismatchError(`${what}: expected ${cls.name}, got ${(e as Error).name}: ${(e as Error).message}`);
  }
  throw new MismatchError(`${what}: expected ${cls.name}, nothing was thrown`);
}
