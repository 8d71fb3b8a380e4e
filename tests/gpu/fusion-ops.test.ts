// AdapterFusion attention, its identity regulariser and feature concat on WebGPU vs the CPU references.
import { describe, expect, test } from 'vitest';
import {
  concatBackward, concatCpu, concatForward, fusionBackward, fusionBackwardCpu, fusionForward, fusionForwardCpu,
  identityRegBackward, identityRegValue, type FusionShape,
} from '../../src/ops/fusion';
import { expectClose, randomArray } from '../util/compare';
import { getGpu, noGpuErrors } from './gpu';

describe('fusion ops', () => {
  test.each([[1, 1, 1], [7, 16, 3], [130, 33, 4], [64, 128, 2]])('fusion forward and backward (rows %i, d %i, adapters %i)', async (rows, d, n) => {
    const gpu = await getGpu();
    const o: FusionShape = { rows, d, n, temperature: 1.5 };
    const q = randomArray(rows * d, 1, 1), kz = randomArray(n * rows * d, 2, 1), vz = randomArray(n * rows * d, 3, 1);
    const h = randomArray(rows * d, 4, 1), dout = randomArray(rows * d, 5, 1);
    const t = [q, kz, vz, h, dout].map((a) => gpu.upload(a));
    const r = await noGpuErrors(gpu, () => {
      const f = fusionForward(gpu, t[0], t[1], t[2], t[3], o);
      return { f, b: fusionBackward(gpu, t[0], t[1], t[2], f.probs, t[4], o) };
    });
    const ref = fusionForwardCpu(q, kz, vz, h, o);
    expectClose(await gpu.read(r.f.out), ref.out, { atol: 1e-5, rtol: 1e-4, label: 'out', shape: [rows, d] });
    expectClose(await gpu.read(r.f.probs), ref.probs, { atol: 1e-6, rtol: 1e-5, label: 'probs', shape: [rows, n] });
    const g = fusionBackwardCpu(q, kz, vz, ref.probs, dout, o);
    expectClose(await gpu.read(r.b.dq), g.dq, { atol: 1e-5, rtol: 1e-4, label: 'dq' });
    expectClose(await gpu.read(r.b.dkz), g.dkz, { atol: 1e-5, rtol: 1e-4, label: 'dkz' });
    expectClose(await gpu.read(r.b.dvz), g.dvz, { atol: 1e-5, rtol: 1e-4, label: 'dvz' });
  });

  test('the identity regulariser: value λ‖V − I‖² and gradient 2λ(V − I), accumulated', async () => {
    const gpu = await getGpu();
    const d = 9, lambda = 0.01;
    const v = randomArray(d * d, 7, 0.3);
    for (let i = 0; i < d; i++) v[i * d + i] += 1;
    const prior = randomArray(d * d, 8, 1);
    const [vt, dv, loss] = [gpu.upload(v), gpu.upload(prior), gpu.upload(new Float32Array([0.5]))];
    await noGpuErrors(gpu, () => {
      identityRegBackward(gpu, vt, dv, d, lambda);
      identityRegValue(gpu, vt, loss, d, lambda);
    });
    let want = 0;
    const wantGrad = new Float32Array(d * d);
    for (let i = 0; i < d * d; i++) {
      const e = v[i] - (Math.floor(i / d) === i % d ? 1 : 0);
      want += e * e;
      wantGrad[i] = prior[i] + 2 * lambda * e;
    }
    expect((await gpu.read(loss))[0]).toBeCloseTo(0.5 + lambda * want, 6);
    expectClose(await gpu.read(dv), wantGrad, { atol: 1e-6, rtol: 1e-6, label: 'dV' });
  });

  test.each([[1, 1, 1], [5, 16, 32], [33, 7, 3]])('concat and split (rows %i, d1 %i, d2 %i)', async (rows, d1, d2) => {
    const gpu = await getGpu();
    const a = randomArray(rows * d1, 1, 1), b = randomArray(rows * d2, 2, 1);
    const [at, bt] = [gpu.upload(a), gpu.upload(b)];
    const out = await noGpuErrors(gpu, () => concatForward(gpu, at, bt, rows, d1, d2));
    const want = concatCpu(a, b, rows, d1, d2);
    expect(await gpu.read(out)).toEqual(want);
    const split = await noGpuErrors(gpu, () => concatBackward(gpu, out, rows, d1, d2));
    expect(await gpu.read(split.da)).toEqual(a);
    expect(await gpu.read(split.db)).toEqual(b);
  });
});
