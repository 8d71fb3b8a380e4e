// The nn CPU references' backward passes against central finite differences in float64 of the
// scalar loss L = Σ w·y (random w): GELU, LayerNorm (dx, dgamma, dbeta), masked softmax,
// dropout, head split/merge, embedding. The GPU kernels are checked against these references
// in tests/gpu/nn-ops.test.ts, so together they pin the kernels' gradients to the math.
import { describe, expect, test } from 'vitest';
import { dropoutBackwardCpu, dropoutMaskCpu } from '../../src/ops/dropout';
import { embeddingBackwardCpu, embeddingForwardCpu, groupTokensById } from '../../src/ops/embedding';
import { erf64, geluBackwardCpu, geluCpu } from '../../src/ops/gelu';
import { mergeHeadsCpu, splitHeadsCpu } from '../../src/ops/heads';
import { layerNormBackwardCpu, layerNormForwardCpu } from '../../src/ops/layernorm';
import { maskedSoftmaxBackwardCpu, maskedSoftmaxForwardCpu } from '../../src/ops/softmax';
import { expectClose, finiteDiff, randomArray } from '../util/compare';

function random64(n: number, seed: number, scale = 1, offset = 0): Float64Array {
  return Float64Array.from(randomArray(n, seed, scale), (v) => v + offset);
}

function weightedSum(w: ArrayLike<number>, y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += w[i] * y[i];
  return s;
}

const GRAD_TOL = { atol: 1e-7, rtol: 1e-6 };

describe('erf64', () => {
  // values from CPython's math.erf / math.erfc (C library, correctly rounded to ~1 ulp)
  const table: [number, number][] = [
    [0.1, 0.1124629160182849], [0.5, 0.5204998778130465], [1, 0.8427007929497149], [1.5, 0.9661051464753108],
    [2, 0.9953222650189527], [2.5, 0.999593047982555], [3, 0.9999779095030014], [3.5, 0.9999992569016276],
    [5, 0.9999999999984626], [-1, -0.8427007929497149], [0, 0],
  ];
  test.each(table)('erf64(%f) matches the C library to 2e-15', (x, want) => {
    expect(Math.abs(erf64(x) - want)).toBeLessThanOrEqual(2e-15);
  });
  test('the tail keeps relative accuracy: 1 − erf64(4) ≈ erfc(4) = 1.541725790028002e-08', () => {
    expect(Math.abs((1 - erf64(4)) / 1.541725790028002e-8 - 1)).toBeLessThan(1e-6);
  });
});

describe('backward of the CPU references = finite differences of L = Σ w·y', () => {
  test('gelu', () => {
    const x = random64(40, 1, 4);
    const w = random64(40, 2);
    const numeric = finiteDiff((v) => weightedSum(w, geluCpu(v)), x);
    expectClose(geluBackwardCpu(x, w), numeric, { ...GRAD_TOL, label: 'gelu dx' });
  });

  test.each([[3, 7, 1e-12], [4, 16, 1e-5], [2, 1, 1e-12]])('layernorm dx, dgamma, dbeta (rows %i, d %i, eps %f)', (rows, d, eps) => {
    const x = random64(rows * d, 3 + d, 2, 1.5);
    const gamma = random64(d, 4, 0.5, 1);
    const beta = random64(d, 5);
    const w = random64(rows * d, 6);
    const { mean, rstd } = layerNormForwardCpu(x, gamma, beta, eps);
    const grads = layerNormBackwardCpu(w, x, mean, rstd, gamma);
    const loss = (xv: Float64Array, gv: Float64Array, bv: Float64Array) => weightedSum(w, layerNormForwardCpu(xv, gv, bv, eps).y);
    expectClose(grads.dx, finiteDiff((v) => loss(v, gamma, beta), x, 1e-6), { ...GRAD_TOL, label: 'dx' });
    expectClose(grads.dgamma, finiteDiff((v) => loss(x, v, beta), gamma.slice()), { ...GRAD_TOL, label: 'dgamma' });
    expectClose(grads.dbeta, finiteDiff((v) => loss(x, gamma, v), beta.slice()), { ...GRAD_TOL, label: 'dbeta' });
  });

  test('masked softmax with padded keys (their gradient is 0)', () => {
    const o = { batch: 2, heads: 2, tq: 3, tk: 5, scale: 0.7 };
    const rows = o.batch * o.heads * o.tq;
    const mask = Float64Array.from([1, 1, 1, 1, 1, 1, 1, 0, 1, 0]);
    const s = random64(rows * o.tk, 7, 3);
    const w = random64(rows * o.tk, 8);
    const probs = maskedSoftmaxForwardCpu(s, mask, o);
    const analytic = maskedSoftmaxBackwardCpu(probs, w, { rows, cols: o.tk, scale: o.scale });
    const numeric = finiteDiff((v) => weightedSum(w, maskedSoftmaxForwardCpu(v, mask, o)), s);
    expectClose(analytic, numeric, { ...GRAD_TOL, label: 'dscores' });
    expect(Math.abs(analytic[o.heads * o.tq * o.tk + 2])).toBe(0); // batch 1, key 2 is padding
  });

  test('dropout (p = 0.3): the gradient is the same mask', () => {
    const n = 64, p = 0.3, seed = 99;
    const mask = Float64Array.from(dropoutMaskCpu(n, p, seed));
    const x = random64(n, 9), w = random64(n, 10);
    const numeric = finiteDiff((v) => weightedSum(w, v.map((xi, i) => xi * mask[i])), x);
    expectClose(dropoutBackwardCpu(Float32Array.from(w), p, seed), numeric, { atol: 1e-6, rtol: 1e-6, label: 'dropout dx' });
  });

  test('splitHeads backward is mergeHeads and vice versa', () => {
    const [batch, t, heads, dh] = [2, 3, 2, 4];
    const x = random64(batch * t * heads * dh, 11), w = random64(x.length, 12);
    expectClose(mergeHeadsCpu(w, batch, t, heads, dh), finiteDiff((v) => weightedSum(w, splitHeadsCpu(v, batch, t, heads, dh)), x), { ...GRAD_TOL, label: 'split' });
    expectClose(splitHeadsCpu(w, batch, t, heads, dh), finiteDiff((v) => weightedSum(w, mergeHeadsCpu(v, batch, t, heads, dh)), x), { ...GRAD_TOL, label: 'merge' });
  });

  test('embedding backward with repeated ids', () => {
    const vocab = 6, d = 3;
    const ids = Uint32Array.from([4, 1, 4, 4, 0, 1, 5]);
    const table = random64(vocab * d, 13), w = random64(ids.length * d, 14);
    const numeric = finiteDiff((v) => weightedSum(w, embeddingForwardCpu(v, ids, d)), table);
    expectClose(embeddingBackwardCpu(w, ids, vocab, d), numeric, { ...GRAD_TOL, label: 'dTable' });
  });
});

describe('embedding grouping (the host side of the deterministic backward)', () => {
  test('distinct ids ascending, starts, and positions sorted by id keeping token order', () => {
    const { grouping, distinct } = groupTokensById(Uint32Array.from([4, 1, 4, 4, 0, 1, 5]), 6);
    expect(distinct).toBe(4);
    expect(Array.from(grouping)).toEqual([0, 1, 4, 5, /* starts */ 0, 1, 3, 6, 7, /* positions */ 4, 1, 5, 0, 2, 3, 6]);
  });
  test('an id outside the table is refused with its position', () => {
    expect(() => groupTokensById(Uint32Array.from([1, 9]), 6)).toThrow(/token 1 has id 9/);
  });
});
