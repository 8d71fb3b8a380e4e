// A short check that this adapter computes correctly: one matmul of awkward sizes on the GPU,
// compared with the plain-TypeScript reference. The page runs it on start-up.
import type { Gpu } from '../gpu/runtime';
import { matmul, matmulCpu } from '../ops/matmul';
import { Rng } from './rng';

export interface SelfTestResult {
  name: string;
  m: number;
  n: number;
  k: number;
  maxAbsError: number;
  tolerance: number;
  passed: boolean;
  ms: number;
}

export async function runSelfTest(gpu: Gpu): Promise<SelfTestResult> {
  const m = 67, n = 45, k = 129;
  const rng = new Rng(1234);
  const a = rng.fillUniform(new Float32Array(m * k), -1, 1);
  const b = rng.fillUniform(new Float32Array(k * n), -1, 1);
  const t0 = performance.now();
  const ta = gpu.upload(a, [m, k]);
  const tb = gpu.upload(b, [k, n]);
  const out = matmul(gpu, ta, tb);
  const got = await gpu.read(out);
  const ms = performance.now() - t0;
  const want = matmulCpu(a, b, m, n, k);
  let maxAbsError = 0;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]);
    if (!(e <= maxAbsError)) maxAbsError = Number.isNaN(e) ? Infinity : e;
  }
  [ta, tb, out].forEach((t) => gpu.release(t));
  const tolerance = 1e-4 * Math.sqrt(k);
  return { name: 'matmul', m, n, k, maxAbsError, tolerance, passed: maxAbsError <= tolerance, ms };
}
