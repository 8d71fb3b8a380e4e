// The AdapterFusion attention's CPU backward against float64 central finite differences of
// L = Σ w·out (out = Σ_t softmax_t(q·k_t/T)·v_t + h).
import { describe, expect, test } from 'vitest';
import { fusionBackwardCpu, fusionForwardCpu, type FusionShape } from '../../src/ops/fusion';
import { finiteDiff, randomArray } from '../util/compare';

describe('fusion attention backward (CPU reference)', () => {
  test.each([[1, 1, 1], [3, 5, 2], [4, 7, 3], [2, 16, 5]])('rows %i, d %i, adapters %i, T = 0.7', (rows, d, n) => {
    const o: FusionShape = { rows, d, n, temperature: 0.7 };
    const q = Float64Array.from(randomArray(rows * d, 1 + rows, 1));
    const kz = Float64Array.from(randomArray(n * rows * d, 2 + d, 1));
    const vz = Float64Array.from(randomArray(n * rows * d, 3 + n, 1));
    const h = Float64Array.from(randomArray(rows * d, 4, 1));
    const w = Float64Array.from(randomArray(rows * d, 5, 1));
    const loss = (qq: Float64Array, kk: Float64Array, vv: Float64Array) => {
      const { out } = fusionForwardCpu(qq, kk, vv, h, o);
      return out.reduce((s, x, i) => s + x * w[i], 0);
    };
    const { probs } = fusionForwardCpu(q, kz, vz, h, o);
    const g = fusionBackwardCpu(q, kz, vz, probs, w, o);
    const cases: [string, Float64Array, Float64Array, (x: Float64Array) => number][] = [
      ['dq', g.dq, q, (x) => loss(x, kz, vz)],
      ['dkz', g.dkz, kz, (x) => loss(q, x, vz)],
      ['dvz', g.dvz, vz, (x) => loss(q, kz, x)],
    ];
    for (const [name, analytic, x, f] of cases) {
      const numeric = finiteDiff(f, x, 1e-6);
      for (let i = 0; i < x.length; i++) {
        expect(Math.abs(analytic[i] - numeric[i]), `${name}[${i}]: ${analytic[i]} vs ${numeric[i]}`).toBeLessThan(1e-7 + 1e-6 * Math.abs(numeric[i]));
      }
    }
  });
});
