// Comparison helpers that fail loudly: the max error, where it occurred, and both values there.

export interface CloseReport {
  maxAbs: number;
  maxRel: number;
  at: number;
  actual: number;
  expected: number;
}

export function compareArrays(actual: ArrayLike<number>, expected: ArrayLike<number>): CloseReport {
  if (actual.length !== expected.length) {
    throw new Error(`length mismatch: actual ${actual.length}, expected ${expected.length}`);
  }
  let maxAbs = 0, maxRel = 0, at = -1;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    const d = Math.abs(a - e);
    if (!Number.isFinite(a) && a !== e) return { maxAbs: Infinity, maxRel: Infinity, at: i, actual: a, expected: e };
    if (d > maxAbs || at < 0) {
      if (d > maxAbs) { maxAbs = d; at = i; }
      else if (at < 0) at = i;
    }
    const r = d / Math.max(Math.abs(e), 1e-30);
    if (r > maxRel) maxRel = r;
  }
  return { maxAbs, maxRel, at, actual: actual[at] ?? NaN, expected: expected[at] ?? NaN };
}

/**
 * Assert |actual − expected| ≤ atol + rtol·|expected| elementwise; on failure throw with the
 * worst element's index (and its multi-index when `shape` is given).
 */
export function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  opts: { atol?: number; rtol?: number; label?: string; shape?: readonly number[] } = {},
): CloseReport {
  const { atol = 1e-5, rtol = 1e-4, label = '', shape } = opts;
  const rep = compareArrays(actual, expected);
  let worst = -1, worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const lim = atol + rtol * Math.abs(expected[i]);
    const d = Math.abs(actual[i] - expected[i]);
    const excess = Number.isNaN(d) ? Infinity : d - lim;
    if (excess > worstExcess || (Number.isNaN(actual[i]) && worst < 0)) {
      worstExcess = excess;
      worst = i;
    }
  }
  if (worst >= 0) {
    const where = shape ? ` (index [${unravel(worst, shape).join(',')}])` : '';
    throw new Error(
      `${label}: mismatch at ${worst}${where}: actual ${actual[worst]}, expected ${expected[worst]}; ` +
        `max abs error ${rep.maxAbs.toExponential(3)} at ${rep.at}; tolerance atol ${atol} rtol ${rtol}`,
    );
  }
  return rep;
}

export function unravel(i: number, shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    out[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return out;
}

/** Deterministic random float32 array in [-scale, scale). */
export function randomArray(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

/**
 * Central finite differences in float64 of a scalar function f at x, for the indices given
 * (all when omitted). Used to check every backward pass.
 */
export function finiteDiff(f: (x: Float64Array) => number, x: Float64Array, eps = 1e-6, indices?: number[]): Float64Array {
  const g = new Float64Array(x.length);
  const idx = indices ?? Array.from({ length: x.length }, (_, i) => i);
  for (const i of idx) {
    const old = x[i];
    x[i] = old + eps;
    const fp = f(x);
    x[i] = old - eps;
    const fm = f(x);
    x[i] = old;
    g[i] = (fp - fm) / (2 * eps);
  }
  return g;
}
