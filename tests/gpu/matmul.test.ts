// The matmul kernels against matmulCpu on real WebGPU: every variant, every transpose form, odd /
// prime / tile-edge sizes, batches, the fused epilogue, offsets into stacked tensors, grid folding.
import { afterEach, describe, expect, test } from 'vitest';
import type { Gpu } from '../../src/gpu/runtime';
import { Tensor } from '../../src/gpu/tensor';
import {
  autotuneMatmul,
  forceMatmulVariant,
  getMatmulChoice,
  matmul,
  matmulCpu,
  matmulVariants,
  setMatmulAutotune,
  untunedMatmuls,
  type MatmulCpuOptions,
  type MatmulOptions,
  type MatmulVariant,
} from '../../src/ops/matmul';
import { expectClose, randomArray } from '../util/compare';
import { getGpu, noGpuErrors } from './gpu';

// float32 products summed over K: rounding grows about like √K
const atolFor = (k: number) => 1e-4 * Math.sqrt(k) + 1e-6;

let seed = 1;

interface Case {
  m: number;
  n: number;
  k: number;
  batch?: number;
  gpuOpts?: (t: Record<string, Tensor>) => MatmulOptions;
  cpuOpts?: MatmulCpuOptions;
}

/** Run one product on the GPU and on the CPU and compare; returns the max abs error. */
async function check(gpu: Gpu, label: string, c: Case, variant: MatmulVariant | null): Promise<number> {
  const { m, n, k } = c;
  const batch = c.batch ?? 1;
  const cpu = c.cpuOpts ?? {};
  const aHost = randomArray((cpu.aBroadcast ? 1 : batch) * m * k, seed++);
  const bHost = randomArray((cpu.bBroadcast ? 1 : batch) * k * n, seed++);
  const a = gpu.upload(aHost, cpu.transA ? [cpu.aBroadcast ? 1 : batch, k, m] : [cpu.aBroadcast ? 1 : batch, m, k]);
  const b = gpu.upload(bHost, cpu.transB ? [cpu.bBroadcast ? 1 : batch, n, k] : [cpu.bBroadcast ? 1 : batch, k, n]);
  forceMatmulVariant(variant);
  const out = await noGpuErrors(gpu, () =>
    matmul(gpu, a, b, { m, n, k, batch, transA: cpu.transA, transB: cpu.transB, aBroadcast: cpu.aBroadcast, bBroadcast: cpu.bBroadcast, ...c.gpuOpts?.({ a, b }) }),
  );
  const actual = await gpu.read(out);
  const expected = matmulCpu(aHost, bHost, m, n, k, { batch, ...cpu });
  const rep = expectClose(actual, expected, { atol: atolFor(k), rtol: 1e-5, label: `${label} [${variant ?? 'auto'}] ${batch}×${m}×${n}×${k}`, shape: [batch, m, n] });
  for (const t of [a, b, out]) gpu.release(t);
  return rep.maxAbs;
}

const transposeForms = [
  { transA: false, transB: false },
  { transA: false, transB: true },
  { transA: true, transB: false },
  { transA: true, transB: true },
];

afterEach(() => forceMatmulVariant(null));

describe('matmul kernels against matmulCpu', () => {
  test('every variant × every transpose form: sizes 1, primes and tile edges ±1', async () => {
    const gpu = await getGpu();
    const shapes: [number, number, number][] = [
      [1, 1, 1],
      [7, 13, 31],
      [67, 7, 13],
      [31, 67, 5],
      [63, 65, 64],
      [65, 64, 63],
      [64, 63, 65],
      [129, 127, 128],
    ];
    let worst = 0;
    for (const variant of matmulVariants) {
      for (const form of transposeForms) {
        for (const [m, n, k] of shapes) {
          worst = Math.max(worst, await check(gpu, `${form.transA ? 'T' : 'N'}${form.transB ? 'T' : 'N'}`, { m, n, k, cpuOpts: form }, variant));
        }
      }
    }
    console.log(`matmul sweep: max abs error ${worst.toExponential(2)}`);
  });

  test('tiny BERT layer shapes: tokens 128 × hidden 128 × intermediate 512 and back, with fused bias+GELU and bias+residual', async () => {
    const gpu = await getGpu();
    const [tokens, hidden, inter] = [128, 128, 512];
    const biasUp = randomArray(inter, seed++);
    const pre = new Float32Array(tokens * inter);
    const preGpu = gpu.empty([tokens, inter]);
    // W1 stored [out, in] as in PyTorch: x·W1ᵀ
    const bias1 = gpu.upload(biasUp);
    await check(gpu, 'FFN up', {
      m: tokens, n: inter, k: hidden,
      gpuOpts: () => ({ bias: bias1, activation: 'gelu', preActivationOut: preGpu }),
      cpuOpts: { transB: true, bias: biasUp, activation: 'gelu', preActivationOut: pre },
    }, null);
    expectClose(await gpu.read(preGpu), pre, { atol: atolFor(hidden), label: 'FFN up pre-activation' });
    for (const variant of matmulVariants) {
      const residualHost = randomArray(tokens * hidden, seed++);
      const biasDown = randomArray(hidden, seed++);
      const residual = gpu.upload(residualHost);
      const bias2 = gpu.upload(biasDown);
      await check(gpu, 'FFN down', {
        m: tokens, n: hidden, k: inter,
        gpuOpts: () => ({ bias: bias2, residual }),
        cpuOpts: { transB: true, bias: biasDown, residual: residualHost },
      }, variant);
      gpu.release(residual);
      gpu.release(bias2);
    }
    gpu.release(bias1);
    gpu.release(preGpu);
  });

  test('batched attention: 8 heads of Q·Kᵀ (64×64×32, alpha 1/√32) and P·V (64×32×64), each variant', async () => {
    const gpu = await getGpu();
    for (const variant of matmulVariants) {
      await check(gpu, 'QKᵀ', { m: 64, n: 64, k: 32, batch: 8, gpuOpts: () => ({ alpha: 1 / Math.sqrt(32) }), cpuOpts: { transB: true, alpha: 1 / Math.sqrt(32) } }, variant);
      await check(gpu, 'PV', { m: 64, n: 32, k: 64, batch: 8 }, variant);
    }
  });

  test('batch with a broadcast operand: B shared by 5 products, A shared by 3', async () => {
    const gpu = await getGpu();
    for (const variant of ['direct8x8', 'tiled'] as const) {
      await check(gpu, 'bBroadcast', { m: 33, n: 20, k: 17, batch: 5, cpuOpts: { bBroadcast: true } }, variant);
      await check(gpu, 'aBroadcast', { m: 12, n: 40, k: 24, batch: 3, cpuOpts: { aBroadcast: true, transA: true } }, variant);
    }
  });

  test('GELU with and without bias and alpha, each variant, against exact-erf GELU', async () => {
    const gpu = await getGpu();
    for (const variant of matmulVariants) {
      const biasHost = randomArray(45, seed++, 2);
      const bias = gpu.upload(biasHost);
      await check(gpu, 'alpha·AB+bias → gelu', { m: 37, n: 45, k: 19, gpuOpts: () => ({ alpha: 2.5, bias, activation: 'gelu' }), cpuOpts: { alpha: 2.5, bias: biasHost, activation: 'gelu' } }, variant);
      await check(gpu, 'gelu(AᵀB)', { m: 20, n: 9, k: 8, gpuOpts: () => ({ activation: 'gelu' }), cpuOpts: { transA: true, activation: 'gelu' } }, variant);
      gpu.release(bias);
    }
  });

  test('accumulate: dW += dYᵀ·X twice (weight gradient over two micro-batches), each variant', async () => {
    const gpu = await getGpu();
    const [tokens, inF, outF] = [50, 24, 36];
    for (const variant of matmulVariants) {
      forceMatmulVariant(variant);
      const start = randomArray(outF * inF, seed++);
      const dW = gpu.upload(start);
      const expected = Float32Array.from(start);
      for (let micro = 0; micro < 2; micro++) {
        const dyHost = randomArray(tokens * outF, seed++);
        const xHost = randomArray(tokens * inF, seed++);
        const dy = gpu.upload(dyHost, [tokens, outF]);
        const x = gpu.upload(xHost, [tokens, inF]);
        await noGpuErrors(gpu, () => matmul(gpu, dy, x, { transA: true, accumulate: true, out: dW }));
        matmulCpu(dyHost, xHost, outF, inF, tokens, { transA: true, accumulateInto: expected });
        gpu.release(dy);
        gpu.release(x);
      }
      expectClose(await gpu.read(dW), expected, { atol: 2 * atolFor(tokens), label: `accumulate [${variant}]`, shape: [outF, inF] });
      gpu.release(dW);
    }
  });

  test('in-place residual: out = out + x·Wᵀ when residual is out itself', async () => {
    const gpu = await getGpu();
    const [rows, d] = [19, 16];
    const xHost = randomArray(rows * d, seed++);
    const wHost = randomArray(d * d, seed++);
    const hHost = randomArray(rows * d, seed++);
    const x = gpu.upload(xHost, [rows, d]);
    const w = gpu.upload(wHost, [d, d]);
    const h = gpu.upload(hHost, [rows, d]);
    await noGpuErrors(gpu, () => matmul(gpu, x, w, { transB: true, residual: h, out: h }));
    const expected = matmulCpu(xHost, wHost, rows, d, d, { transB: true, residual: hHost });
    expectClose(await gpu.read(h), expected, { atol: atolFor(d), label: 'in-place residual', shape: [rows, d] });
    for (const t of [x, w, h]) gpu.release(t);
  });

  test('offsets: expert 2 of stacked [3, m, d] down-projections and [3, m] biases writes into slot 1 of a stacked output', async () => {
    const gpu = await getGpu();
    const [experts, rows, d, bottleneck] = [3, 10, 12, 6];
    const expert = 2;
    const xHost = randomArray(rows * d, seed++);
    const wHost = randomArray(experts * bottleneck * d, seed++);
    const bHost = randomArray(experts * bottleneck, seed++);
    const x = gpu.upload(xHost, [rows, d]);
    const w = gpu.upload(wHost, [experts, bottleneck, d]);
    const bias = gpu.upload(bHost, [experts, bottleneck]);
    for (const variant of matmulVariants) {
      forceMatmulVariant(variant);
      const out = gpu.zeros([3, rows, bottleneck]);
      await noGpuErrors(gpu, () =>
        matmul(gpu, x, w, {
          transB: true, m: rows, n: bottleneck, k: d,
          bOffset: expert * bottleneck * d, bias, biasOffset: expert * bottleneck, outOffset: rows * bottleneck,
          activation: 'gelu', out,
        }),
      );
      const slot = matmulCpu(xHost, wHost.subarray(expert * bottleneck * d, (expert + 1) * bottleneck * d), rows, bottleneck, d, {
        transB: true, bias: bHost.subarray(expert * bottleneck, (expert + 1) * bottleneck), activation: 'gelu',
      });
      const expected = new Float32Array(3 * rows * bottleneck);
      expected.set(slot, rows * bottleneck);
      expectClose(await gpu.read(out), expected, { atol: atolFor(d), label: `offsets [${variant}]`, shape: [3, rows, bottleneck] });
      gpu.release(out);
    }
    // an odd offset cannot use vec4 loads: the scalar path must take over
    const odd = gpu.upload(new Float32Array([99, ...xHost]));
    const out = await noGpuErrors(gpu, () => matmul(gpu, odd, w, { transB: true, m: rows, n: bottleneck, k: d, aOffset: 1, bOffset: bottleneck * d }));
    const expected = matmulCpu(xHost, wHost.subarray(bottleneck * d, 2 * bottleneck * d), rows, bottleneck, d, { transB: true });
    expectClose(await gpu.read(out), expected, { atol: atolFor(d), label: 'odd aOffset', shape: [rows, bottleneck] });
    for (const t of [x, w, bias, odd, out]) gpu.release(t);
  });

  test('a grid of more than 65535 workgroups folds into y: 66000 products of 2×3×2', async () => {
    const gpu = await getGpu();
    await check(gpu, 'folded grid', { m: 2, n: 3, k: 2, batch: 66000 }, 'direct4x4');
  });

  test('shapes are inferred: [B, T, H] activations times a [N, H] weight give [B, T, N]', async () => {
    const gpu = await getGpu();
    const xHost = randomArray(2 * 5 * 8, seed++);
    const wHost = randomArray(6 * 8, seed++);
    const x = gpu.upload(xHost, [2, 5, 8]);
    const w = gpu.upload(wHost, [6, 8]);
    const out = await noGpuErrors(gpu, () => matmul(gpu, x, w, { transB: true }));
    expect(out.shape).toEqual([2, 5, 6]);
    expectClose(await gpu.read(out), matmulCpu(xHost, wHost, 10, 6, 8, { transB: true }), { atol: atolFor(8), label: 'inferred shapes' });
    expect(() => matmul(gpu, x, w, { transB: true, k: 7 })).toThrow(/does not hold/);
    for (const t of [x, w, out]) gpu.release(t);
  });
});

describe('matmul variant choice', () => {
  test('forced variant wins; the autotuner times every variant, caches a winner that is then used', async () => {
    const gpu = await getGpu();
    forceMatmulVariant('tiled');
    expect(getMatmulChoice(gpu, { m: 256, n: 256, k: 256 })).toEqual({ variant: 'tiled', source: 'forced' });
    forceMatmulVariant(null);
    setMatmulAutotune(true);
    const problem = { m: 128, n: 128, k: 136, transB: true, epilogue: 'plain' };
    expect(getMatmulChoice(gpu, problem).source).toBe('heuristic');
    // matmul() records an untuned problem instead of waiting on timings inside a step
    const a = gpu.upload(randomArray(128 * 136, seed++), [128, 136]);
    const b = gpu.upload(randomArray(128 * 136, seed++), [128, 136]);
    const out = matmul(gpu, a, b, { transB: true });
    await gpu.sync();
    expect(untunedMatmuls(gpu).some((p) => p.m === 128 && p.k === 136 && p.transB)).toBe(true);
    const result = await autotuneMatmul(gpu, problem, { minMs: 1, maxReps: 1 });
    expect(Object.keys(result.ms).sort()).toEqual([...matmulVariants].sort());
    expect(getMatmulChoice(gpu, problem)).toEqual({ variant: result.variant, source: 'tuned' });
    expect(untunedMatmuls(gpu).some((p) => p.m === 128 && p.k === 136 && p.transB)).toBe(false);
    console.log('autotune 128×128×136 NT:', JSON.stringify(result.ms), '→', result.variant);
    for (const t of [a, b, out]) gpu.release(t);
  });
});
