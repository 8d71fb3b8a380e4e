// Fused adapter kernels with stacked experts (Houlsby/Pfeiffer E = 1, AdaMix E = 4) vs the CPU
// reference (whose backward is checked against finite differences in tests/unit/loss-grad.test.ts).
import { describe, expect, test } from 'vitest';
import { expectClose, randomArray } from '../util/compare';
import { getGpu, noGpuErrors } from './gpu';
import {
  adapterBackward,
  adapterBackwardCpu,
  adapterDownForward,
  adapterForwardCpu,
  adapterUpForward,
} from '../../src/ops/adapter';

function stackedWeights(E: number, d: number, m: number, seed: number) {
  // scales that put W_down·x in GELU's curved region (|pre| up to ~2)
  return {
    wDown: randomArray(E * m * d, seed, 2 / Math.sqrt(d)),
    bDown: randomArray(E * m, seed + 1, 0.5),
    wUp: randomArray(E * d * m, seed + 2, 1 / Math.sqrt(m)),
    bUp: randomArray(E * d, seed + 3, 0.5),
  };
}

// [n, d, m, E, down expert, up expert]
const CASES: [number, number, number, number, number, number][] = [
  [1, 16, 8, 1, 0, 0],
  [7, 16, 8, 4, 3, 0],
  [1, 128, 48, 4, 0, 3],
  [7, 128, 48, 4, 2, 1],
  [128, 16, 8, 4, 1, 2],
  [128, 128, 48, 4, 3, 3],
];

describe('fused adapter kernels on the GPU', () => {
  test('down (+bias, GELU, saved pre-activation) and up (+bias, +residual) forward match the CPU reference for every routed expert pair', async () => {
    const gpu = await getGpu();
    for (const [n, d, m, E, down, up] of CASES) {
      const o = { n, d, m };
      const w = stackedWeights(E, d, m, n + d + m);
      const x = randomArray(n * d, 77 + n);
      const gw = { wDown: gpu.upload(w.wDown), bDown: gpu.upload(w.bDown), wUp: gpu.upload(w.wUp), bUp: gpu.upload(w.bUp) };
      const gx = gpu.upload(x, [n, d]);
      const { pre, h, out } = await noGpuErrors(gpu, () => {
        const { pre, h } = adapterDownForward(gpu, gx, gw.wDown, gw.bDown, down, o);
        return { pre, h, out: adapterUpForward(gpu, h, gw.wUp, gw.bUp, gx, up, o) };
      });
      const ref = adapterForwardCpu(x, w, { down, up }, o);
      const label = `n=${n} d=${d} m=${m} experts ${down}/${up}`;
      expectClose(await gpu.read(pre), ref.pre, { atol: 2e-5, rtol: 1e-4, label: `${label} pre`, shape: [n, m] });
      expectClose(await gpu.read(h), ref.h, { atol: 2e-5, rtol: 1e-4, label: `${label} h`, shape: [n, m] });
      expectClose(await gpu.read(out), ref.out, { atol: 2e-5, rtol: 1e-4, label: `${label} out`, shape: [n, d] });
      for (const t of [gx, pre, h, out, ...Object.values(gw)]) gpu.release(t);
    }
  });

  test('up projection in place (out === residual) equals the out-of-place result', async () => {
    const gpu = await getGpu();
    const [n, d, m, E, down, up] = [7, 16, 8, 4, 1, 2];
    const o = { n, d, m };
    const w = stackedWeights(E, d, m, 13);
    const x = randomArray(n * d, 14);
    const gw = { wDown: gpu.upload(w.wDown), bDown: gpu.upload(w.bDown), wUp: gpu.upload(w.wUp), bUp: gpu.upload(w.bUp) };
    const gx = gpu.upload(x, [n, d]);
    const inPlace = await noGpuErrors(gpu, () => {
      const { h } = adapterDownForward(gpu, gx, gw.wDown, gw.bDown, down, o);
      return adapterUpForward(gpu, h, gw.wUp, gw.bUp, gx, up, o, gx);
    });
    expect(inPlace).toBe(gx);
    const ref = adapterForwardCpu(x, w, { down, up }, o);
    expectClose(await gpu.read(gx), ref.out, { atol: 2e-5, rtol: 1e-4, label: 'in-place out', shape: [n, d] });
  });

  test('re-routing to another expert changes the result and allocates nothing; an expert past the stack throws', async () => {
    const gpu = await getGpu();
    const [n, d, m, E] = [7, 16, 8, 4];
    const w = stackedWeights(E, d, m, 5);
    const x = gpu.upload(randomArray(n * d, 6), [n, d]);
    const gw = { wDown: gpu.upload(w.wDown), bDown: gpu.upload(w.bDown), wUp: gpu.upload(w.wUp), bUp: gpu.upload(w.bUp) };
    const pre = gpu.empty([n, m]);
    const h = gpu.empty([n, m]);
    adapterDownForward(gpu, x, gw.wDown, gw.bDown, 0, { n, d, m }, { pre, h });
    const first = await gpu.read(h);
    const created = gpu.pool.created;
    adapterDownForward(gpu, x, gw.wDown, gw.bDown, 2, { n, d, m }, { pre, h });
    const second = await gpu.read(h);
    expect(gpu.pool.created).toBe(created); // re-routing allocates nothing
    expect(first).not.toEqual(second);
    expect(() => adapterDownForward(gpu, x, gw.wDown, gw.bDown, 4, { n, d, m }, { pre, h })).toThrow(/expert 4/);
  });

  test('backward accumulates into dx and only the routed slices of the stacked gradients', async () => {
    const gpu = await getGpu();
    for (const [n, d, m, E, down, up] of CASES) {
      const o = { n, d, m };
      const w = stackedWeights(E, d, m, 3 * n + d);
      const x = randomArray(n * d, 11 + n);
      const dOut = randomArray(n * d, 12 + d);
      // gradients already hold values (another layer, or the other AdaMix pass): backward adds
      const prior = {
        dx: randomArray(n * d, 21),
        dwDown: randomArray(E * m * d, 22),
        dbDown: randomArray(E * m, 23),
        dwUp: randomArray(E * d * m, 24),
        dbUp: randomArray(E * d, 25),
      };
      const gw = { wDown: gpu.upload(w.wDown), bDown: gpu.upload(w.bDown), wUp: gpu.upload(w.wUp), bUp: gpu.upload(w.bUp) };
      const gx = gpu.upload(x, [n, d]);
      const gdOut = gpu.upload(dOut, [n, d]);
      const grads = {
        dx: gpu.upload(prior.dx),
        dwDown: gpu.upload(prior.dwDown),
        dbDown: gpu.upload(prior.dbDown),
        dwUp: gpu.upload(prior.dwUp),
        dbUp: gpu.upload(prior.dbUp),
      };
      const { pre, h } = await noGpuErrors(gpu, () => {
        const saved = adapterDownForward(gpu, gx, gw.wDown, gw.bDown, down, o);
        adapterBackward(gpu, { x: gx, ...saved }, gdOut, gw, { down, up }, o, grads);
        return saved;
      });
      const savedCpu = adapterForwardCpu(x, w, { down, up }, o);
      const ref = adapterBackwardCpu({ x, pre: savedCpu.pre, h: savedCpu.h }, dOut, w, { down, up }, o);
      const label = `n=${n} d=${d} m=${m} experts ${down}/${up}`;
      const routed = { dwDown: [down, m * d], dbDown: [down, m], dwUp: [up, d * m], dbUp: [up, d] } as const;
      for (const key of ['dx', 'dwDown', 'dbDown', 'dwUp', 'dbUp'] as const) {
        const actual = await gpu.read(grads[key]);
        const expected = ref[key].map((v, i) => v + prior[key][i]);
        expectClose(actual, expected, { atol: 1e-4, rtol: 1e-4, label: `${label} ${key}` });
        if (key === 'dx') continue;
        // every slice but the routed expert's is bit-identical to what it held before
        const [expert, size] = routed[key];
        for (let e = 0; e < E; e++) {
          if (e === expert) continue;
          expect(actual.subarray(e * size, (e + 1) * size), `${label} ${key} expert ${e} untouched`).toEqual(
            prior[key].subarray(e * size, (e + 1) * size),
          );
        }
      }
      for (const t of [gx, gdOut, pre, h, ...Object.values(gw), ...Object.values(grads)]) gpu.release(t);
    }
  });

  test('backward with only the up-projection gradients requested computes those alone', async () => {
    const gpu = await getGpu();
    const [n, d, m, E, down, up] = [7, 16, 8, 4, 1, 3];
    const o = { n, d, m };
    const w = stackedWeights(E, d, m, 9);
    const x = randomArray(n * d, 10);
    const dOut = randomArray(n * d, 11);
    const gw = { wDown: gpu.upload(w.wDown), bDown: gpu.upload(w.bDown), wUp: gpu.upload(w.wUp), bUp: gpu.upload(w.bUp) };
    const gx = gpu.upload(x, [n, d]);
    const saved = adapterDownForward(gpu, gx, gw.wDown, gw.bDown, down, o);
    const grads = { dwUp: gpu.zeros([E * d * m]), dbUp: gpu.zeros([E * d]) };
    const dispatches = gpu.dispatchCount;
    await noGpuErrors(gpu, () => adapterBackward(gpu, { x: gx, ...saved }, gpu.upload(dOut), gw, { down, up }, o, grads));
    expect(gpu.dispatchCount - dispatches).toBe(2); // colSum + one matmul: nothing for the down path
    const savedCpu = adapterForwardCpu(x, w, { down, up }, o);
    const ref = adapterBackwardCpu({ x, pre: savedCpu.pre, h: savedCpu.h }, dOut, w, { down, up }, o);
    expectClose(await gpu.read(grads.dwUp), ref.dwUp, { atol: 1e-5, rtol: 1e-4, label: 'dwUp' });
    expectClose(await gpu.read(grads.dbUp), ref.dbUp, { atol: 1e-5, rtol: 1e-4, label: 'dbUp' });
  });
});
