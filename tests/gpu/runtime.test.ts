import { describe, expect, test } from 'vitest';
import { f32 } from '../../src/gpu/runtime';
import { getGpu, noGpuErrors } from './gpu';

const AXPY = /* wgsl */ `
struct P { n: u32, a: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@compute @workgroup_size({{WG}}) fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x < p.n) { y[g.x] = p.a * x[g.x] + y[g.x]; }
}`;

describe('gpu runtime', () => {
  test('adapter is SwiftShader or a real GPU, never missing', async () => {
    const gpu = await getGpu();
    expect(gpu.summary.vendor.length).toBeGreaterThan(0);
  });

  test('many dispatches with different uniforms in one submit each see their own parameters', async () => {
    const gpu = await getGpu();
    const k = gpu.kernel({ name: 'axpy-test', code: AXPY, bindings: ['read', 'write'], defines: { WG: 64 } });
    const n = 100;
    const x = gpu.upload(new Float32Array(n).fill(1));
    const y = gpu.zeros([n]);
    const submits = gpu.submitCount;
    await noGpuErrors(gpu, () => {
      for (let i = 1; i <= 50; i++) gpu.dispatch(k, [x, y], [n, f32(i)], [Math.ceil(n / 64)]);
    });
    const out = await gpu.read(y);
    expect(gpu.submitCount - submits).toBe(2); // the batch, then the readback
    expect(out[0]).toBe((50 * 51) / 2);
    expect(out[n - 1]).toBe((50 * 51) / 2);
  });

  test('the buffer pool reuses released buffers: steady state allocates nothing', async () => {
    const gpu = await getGpu();
    for (let step = 0; step < 3; step++) {
      const ts = [gpu.empty([10]), gpu.empty([1000]), gpu.empty([10])];
      ts.forEach((t) => gpu.release(t));
    }
    const before = { bytes: gpu.pool.totalBytes, created: gpu.pool.created };
    for (let step = 0; step < 10; step++) {
      const ts = [gpu.empty([10]), gpu.empty([1000]), gpu.empty([10])];
      ts.forEach((t) => gpu.release(t));
    }
    expect(gpu.pool.totalBytes).toBe(before.bytes);
    expect(gpu.pool.created).toBe(before.created);
  });
});
