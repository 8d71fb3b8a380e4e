// CPU references' backward passes vs float64 central finite differences: cross-entropy, AdaMix
// consistency (with its stop-gradient) and the bottleneck adapter with stacked experts; plus the
// closed form of AdamW's first step.
import { describe, expect, test } from 'vitest';
import { expectClose, finiteDiff, randomArray } from '../util/compare';
import {
  consistencyBackwardCpu,
  consistencyCpu,
  crossEntropyBackwardCpu,
  crossEntropyCpu,
} from '../../src/ops/loss';
import { adamwCpu } from '../../src/ops/adamw';
import { adapterBackwardCpu, adapterForwardCpu } from '../../src/ops/adapter';

const f64 = (a: ArrayLike<number>) => Float64Array.from(a);

function labelsFor(batch: number, classes: number, seed: number): Uint32Array {
  return Uint32Array.from(randomArray(batch, seed), (v) => Math.floor(((v + 1) / 2) * classes) % classes);
}

describe('cross-entropy CPU reference', () => {
  for (const [batch, classes] of [[1, 2], [5, 3], [13, 7], [33, 4]] as const) {
    test(`backward equals finite differences of the mean loss (B=${batch}, C=${classes}, scale 0.7)`, () => {
      const logits = f64(randomArray(batch * classes, 11 + batch, 3));
      const labels = labelsFor(batch, classes, 5 + classes);
      const { probs } = crossEntropyCpu(logits, labels, { batch, classes });
      const analytic = crossEntropyBackwardCpu(probs, labels, { batch, classes, scale: 0.7 });
      const numeric = finiteDiff((l) => 0.7 * crossEntropyCpu(l, labels, { batch, classes }).loss, logits);
      expectClose(analytic, numeric, { atol: 1e-8, rtol: 1e-6, label: 'dlogits', shape: [batch, classes] });
    });
  }

  test('loss of uniform logits is log C, and large logits stay finite (log-sum-exp)', () => {
    const { loss } = crossEntropyCpu([0, 0, 0, 0, 0], [2], { batch: 1, classes: 5 });
    expect(loss).toBeCloseTo(Math.log(5), 12);
    const big = crossEntropyCpu([1000, -1000, 999], [2], { batch: 1, classes: 3 });
    expect(big.loss).toBeCloseTo(1 + Math.log(1 + Math.exp(-1)), 10);
  });

  test('a label outside [0, C) makes the loss NaN rather than reading another row', () => {
    expect(crossEntropyCpu([1, 2, 3, 4], [0, 2], { batch: 2, classes: 2 }).loss).toBeNaN();
  });
});

describe('AdaMix consistency CPU reference', () => {
  // The stop-gradient objective seen by each pass: KL(sg(p_other)‖p_self) with p_other frozen.
  function klFrozen(target: Float64Array, logits: Float64Array, batch: number, classes: number, weight: number): number {
    let total = 0;
    for (let r = 0; r < batch; r++) {
      const row = r * classes;
      let mx = -Infinity;
      for (let c = 0; c < classes; c++) mx = Math.max(mx, logits[row + c]);
      let s = 0;
      for (let c = 0; c < classes; c++) s += Math.exp(logits[row + c] - mx);
      const lse = mx + Math.log(s);
      for (let c = 0; c < classes; c++) {
        const a = target[row + c];
        total += a * (Math.log(a) - (logits[row + c] - lse));
      }
    }
    return (weight * total) / batch;
  }

  for (const [batch, classes, weight] of [[1, 2, 1], [7, 5, 1], [33, 3, 0.3], [4, 7, 0]] as const) {
    test(`backward equals finite differences of the stop-gradient objective (B=${batch}, C=${classes}, w=${weight})`, () => {
      const logits1 = f64(randomArray(batch * classes, 100 + batch, 2));
      const logits2 = f64(randomArray(batch * classes, 200 + classes, 2));
      const p1 = crossEntropyCpu(logits1, new Uint32Array(batch), { batch, classes }).probs;
      const p2 = crossEntropyCpu(logits2, new Uint32Array(batch), { batch, classes }).probs;
      const { d1, d2 } = consistencyBackwardCpu(logits1, logits2, { batch, classes, weight });
      const num1 = finiteDiff((l) => klFrozen(p2, l, batch, classes, weight), logits1);
      const num2 = finiteDiff((l) => klFrozen(p1, l, batch, classes, weight), logits2);
      expectClose(d1, num1, { atol: 1e-8, rtol: 1e-6, label: 'd logits1', shape: [batch, classes] });
      expectClose(d2, num2, { atol: 1e-8, rtol: 1e-6, label: 'd logits2', shape: [batch, classes] });
      // and the loss value is the sum of the two frozen KLs
      const loss = consistencyCpu(logits1, logits2, { batch, classes, weight });
      expect(loss).toBeCloseTo(klFrozen(p2, logits1, batch, classes, weight) + klFrozen(p1, logits2, batch, classes, weight), 12);
    });
  }

  test('identical distributions give zero loss and zero gradient; the loss is symmetric', () => {
    const a = f64(randomArray(12, 3, 2));
    const b = f64(randomArray(12, 4, 2));
    const o = { batch: 3, classes: 4, weight: 1 };
    expect(consistencyCpu(a, a, o)).toBeCloseTo(0, 14);
    expect(Math.max(...consistencyBackwardCpu(a, a, o).d1.map(Math.abs))).toBeLessThan(1e-16);
    expect(consistencyCpu(a, b, o)).toBeGreaterThan(0);
    expect(consistencyCpu(a, b, o)).toBeCloseTo(consistencyCpu(b, a, o), 14);
  });
});

describe('adapter CPU reference', () => {
  for (const [n, d, m, E, down, up] of [[1, 5, 3, 1, 0, 0], [3, 7, 4, 4, 2, 1], [5, 6, 2, 4, 3, 0]] as const) {
    test(`backward equals float64 finite differences (n=${n}, d=${d}, m=${m}, E=${E}, experts ${down}/${up}); unrouted experts get exactly zero`, () => {
      const o = { n, d, m };
      const x = f64(randomArray(n * d, 1, 1.5));
      const w = {
        wDown: f64(randomArray(E * m * d, 2, 0.8)),
        bDown: f64(randomArray(E * m, 3, 0.5)),
        wUp: f64(randomArray(E * d * m, 4, 0.8)),
        bUp: f64(randomArray(E * d, 5, 0.5)),
      };
      const dOut = f64(randomArray(n * d, 6));
      const experts = { down, up };
      // scalar objective Σ dOut·out, whose gradient is what backward computes
      const objective = (xx: Float64Array, ww: typeof w) => {
        const { out } = adapterForwardCpu(xx, ww, experts, o);
        let s = 0;
        for (let i = 0; i < out.length; i++) s += out[i] * dOut[i];
        return s;
      };
      const saved = adapterForwardCpu(x, w, experts, o);
      const g = adapterBackwardCpu({ x, pre: saved.pre, h: saved.h }, dOut, w, experts, o);
      expectClose(g.dx, finiteDiff((v) => objective(v, w), x), { atol: 1e-7, rtol: 1e-6, label: 'dx', shape: [n, d] });
      const gradOf = { wDown: g.dwDown, bDown: g.dbDown, wUp: g.dwUp, bUp: g.dbUp };
      for (const key of ['wDown', 'bDown', 'wUp', 'bUp'] as const) {
        const numeric = finiteDiff((v) => objective(x, { ...w, [key]: v }), w[key]);
        expectClose(gradOf[key], numeric, { atol: 1e-7, rtol: 1e-6, label: `d${key}` });
      }
      const slice = (a: Float64Array, e: number, size: number) => Array.from(a.subarray(e * size, (e + 1) * size));
      for (let e = 0; e < E; e++) {
        if (e !== down) expect(slice(g.dwDown, e, m * d).concat(slice(g.dbDown, e, m)).every((v) => v === 0)).toBe(true);
        if (e !== up) expect(slice(g.dwUp, e, d * m).concat(slice(g.dbUp, e, d)).every((v) => v === 0)).toBe(true);
      }
    });
  }
});

describe('AdamW CPU reference', () => {
  test('first step moves each parameter by lr·g/(|g|+eps) after decoupled decay', () => {
    const n = 9;
    const params = f64(randomArray(n, 7));
    const grads = f64(randomArray(n, 8));
    const before = params.slice();
    const h = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step: 1 };
    adamwCpu({ params, grads, m: new Float64Array(n), v: new Float64Array(n) }, h);
    const expected = before.map((p, i) => p * (1 - h.lr * h.weightDecay) - (h.lr * grads[i]) / (Math.abs(grads[i]) + h.eps));
    expectClose(params, expected, { atol: 1e-14, rtol: 1e-12, label: 'params after step 1' });
  });
});
