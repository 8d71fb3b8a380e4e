// GPU kernels of the nn op family (GELU, LayerNorm, masked softmax, dropout, head split/merge,
// embedding, add) against their CPU references, on the shapes the tiny BERT uses and on the
// awkward ones (1, primes, d = 127/129, all-masked rows, grids past 65535 workgroups).
import { describe, expect, onTestFinished, test } from 'vitest';
import type { Gpu } from '../../src/gpu/runtime';
import { addCpu, addInto, scaleCpu, scaleInto } from '../../src/ops/add';
import { dropoutBackward, dropoutCpu, dropoutForward, dropoutMaskCpu } from '../../src/ops/dropout';
import { embeddingBackward, embeddingBackwardCpu, embeddingForward, embeddingForwardCpu } from '../../src/ops/embedding';
import { erf64, erfForward, geluBackward, geluBackwardCpu, geluCpu, geluForward } from '../../src/ops/gelu';
import { mergeHeads, mergeHeadsCpu, splitHeads, splitHeadsCpu } from '../../src/ops/heads';
import { layerNormBackward, layerNormBackwardCpu, layerNormForward, layerNormForwardCpu, setLayerNormRowPerThread } from '../../src/ops/layernorm';
import { maskedSoftmaxBackward, maskedSoftmaxBackwardCpu, maskedSoftmaxForward, maskedSoftmaxForwardCpu } from '../../src/ops/softmax';
import { compareArrays, expectClose, randomArray } from '../util/compare';
import { getGpu, noGpuErrors } from './gpu';

/** Index and values of the first difference, or null when bit-identical. */
function firstDifference(a: Float32Array, b: Float32Array): string | null {
  if (a.length !== b.length) return `lengths ${a.length} vs ${b.length}`;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < a.length; i++) if (ua[i] !== ub[i]) return `index ${i}: ${a[i]} vs ${b[i]}`;
  return null;
}

function offsetArray(n: number, seed: number, scale: number, offset: number): Float32Array {
  return randomArray(n, seed, scale).map((v) => v + offset);
}

describe('gelu', () => {
  test('float32 erf in the kernel is within 2.5e-7 of a float64 erf on [-7, 7] and keeps relative accuracy near 0', async () => {
    const gpu = await getGpu();
    const grid = new Float32Array(28001).map((_, i) => -7 + i * 0.0005);
    const specials = new Float32Array([0, 1e-30, -1e-20, 1e-8, 0.9999999, 1, -1, 1.0000001, 10, -10, 50, -1e30]);
    const x = new Float32Array([...grid, ...specials]);
    const xt = gpu.upload(x);
    const y = await noGpuErrors(gpu, () => erfForward(gpu, xt));
    const got = await gpu.read(y);
    const want = Array.from(x, erf64);
    expectClose(got, want, { atol: 2.5e-7, rtol: 0, label: 'erf32 vs erf64' });
    const small = Array.from(x.keys()).filter((i) => Math.abs(x[i]) < 0.5 && x[i] !== 0);
    expectClose(small.map((i) => got[i]), small.map((i) => want[i]), { atol: 0, rtol: 5e-7, label: 'erf32 relative near 0' });
  });

  test.each([1, 7, 127, 4099])('forward and backward match the CPU reference (n = %i)', async (n) => {
    const gpu = await getGpu();
    const x = randomArray(n, 11 + n, 6);
    const dy = randomArray(n, 12 + n, 1);
    const xt = gpu.upload(x), dyt = gpu.upload(dy);
    const [y, dx] = await noGpuErrors(gpu, () => [geluForward(gpu, xt), geluBackward(gpu, xt, dyt)]);
    expectClose(await gpu.read(y), geluCpu(x), { atol: 1e-6, rtol: 1e-5, label: `gelu n=${n}` });
    expectClose(await gpu.read(dx), geluBackwardCpu(x, dy), { atol: 1e-6, rtol: 1e-5, label: `gelu' n=${n}` });
  });
});

describe('layernorm', () => {
  const eps = 1e-12;
  // (rows, d): d around the 128-thread workgroup and BERT's sizes; 600 rows take the
  // partial-sum path of the parameter gradients (256 rows per chunk)
  const shapes: [number, number][] = [[1, 1], [3, 1], [5, 7], [4, 64], [3, 127], [128, 128], [3, 129], [2, 768], [600, 64]];
  const variants = shapes.flatMap(([r, d]) => [[r, d, 'workgroup-per-row'], [r, d, 'row-per-thread']] as [number, number, string][]);
  test.each(variants)('forward, dx, dgamma, dbeta match the CPU reference (rows %i, d %i, %s)', async (rows, d, variant) => {
    const gpu = await getGpu();
    setLayerNormRowPerThread(variant === 'row-per-thread');
    onTestFinished(() => setLayerNormRowPerThread(null));
    const x = offsetArray(rows * d, rows * 31 + d, 2, 3); // mean 3 ≫ std: the two-pass variance matters
    const gamma = offsetArray(d, d + 5, 0.5, 1);
    const beta = randomArray(d, d + 6, 0.5);
    const dy = randomArray(rows * d, rows + d + 7, 1);
    const [xt, gt, bt, dyt] = [gpu.upload(x, [rows, d]), gpu.upload(gamma), gpu.upload(beta), gpu.upload(dy, [rows, d])];
    const { fwd, bwd } = await noGpuErrors(gpu, () => {
      const fwd = layerNormForward(gpu, xt, gt, bt, eps);
      const bwd = layerNormBackward(gpu, dyt, xt, fwd.mean, fwd.rstd, gt, { needDx: true, needParamGrads: true });
      return { fwd, bwd };
    });
    const ref = layerNormForwardCpu(x, gamma, beta, eps);
    const shape = [rows, d];
    expectClose(await gpu.read(fwd.y), ref.y, { atol: 2e-5, rtol: 1e-4, label: 'y', shape });
    expectClose(await gpu.read(fwd.mean), ref.mean, { atol: 1e-5, rtol: 1e-5, label: 'mean' });
    // rstd of a constant row (d = 1) is 1/√eps = 1e6: compare relatively
    expectClose(await gpu.read(fwd.rstd), ref.rstd, { atol: 1e-5, rtol: 1e-4, label: 'rstd' });
    const gref = layerNormBackwardCpu(dy, x, ref.mean, ref.rstd, gamma);
    expectClose(await gpu.read(bwd.dx!), gref.dx, { atol: 5e-5, rtol: 1e-4, label: 'dx', shape });
    expectClose(await gpu.read(bwd.dgamma!), gref.dgamma, { atol: 1e-4, rtol: 1e-4, label: 'dgamma' });
    expectClose(await gpu.read(bwd.dbeta!), gref.dbeta, { atol: 1e-4, rtol: 1e-4, label: 'dbeta' });
  });

  test.each([[100, 7], [600, 64]])('accumulate adds the parameter gradients into given tensors, dx skipped (rows %i, d %i)', async (rows, d) => {
    const gpu = await getGpu();
    const x = randomArray(rows * d, 41, 2), gamma = offsetArray(d, 42, 0.5, 1), beta = randomArray(d, 43, 1);
    const dy = randomArray(rows * d, 44, 1);
    const prior = randomArray(d, 45, 3);
    const [xt, gt, bt, dyt] = [gpu.upload(x), gpu.upload(gamma), gpu.upload(beta), gpu.upload(dy)];
    const dgamma = gpu.upload(prior), dbeta = gpu.upload(prior);
    const out = await noGpuErrors(gpu, () => {
      const fwd = layerNormForward(gpu, xt, gt, bt, eps);
      return layerNormBackward(gpu, dyt, xt, fwd.mean, fwd.rstd, gt, { needDx: false, needParamGrads: true, dgamma, dbeta, accumulate: true });
    });
    expect(out.dx).toBeUndefined();
    expect(out.dgamma).toBe(dgamma);
    const ref = layerNormForwardCpu(x, gamma, beta, eps);
    const gref = layerNormBackwardCpu(dy, x, ref.mean, ref.rstd, gamma);
    expectClose(await gpu.read(dgamma), addCpu(gref.dgamma, prior), { atol: 1e-4, rtol: 1e-4, label: 'dgamma += ' });
    expectClose(await gpu.read(dbeta), addCpu(gref.dbeta, prior), { atol: 1e-4, rtol: 1e-4, label: 'dbeta += ' });
  });
});

describe('masked softmax', () => {
  async function check(gpu: Gpu, o: { batch: number; heads: number; tq: number; tk: number; scale: number }, mask: Float32Array | null) {
    const rows = o.batch * o.heads * o.tq;
    const s = randomArray(rows * o.tk, rows + o.tk, 4);
    const dp = randomArray(rows * o.tk, rows + o.tk + 1, 1);
    const st = gpu.upload(s), dpt = gpu.upload(dp);
    const mt = mask ? gpu.upload(mask) : null;
    const [probs, ds] = await noGpuErrors(gpu, () => {
      const probs = maskedSoftmaxForward(gpu, st, mt, o);
      return [probs, maskedSoftmaxBackward(gpu, probs, dpt, { rows, cols: o.tk, scale: o.scale })];
    });
    const shape = [rows, o.tk];
    const got = await gpu.read(probs);
    const want = maskedSoftmaxForwardCpu(s, mask, o);
    expectClose(got, want, { atol: 1e-6, rtol: 1e-5, label: 'probs', shape });
    expectClose(await gpu.read(ds), maskedSoftmaxBackwardCpu(want, dp, { rows, cols: o.tk, scale: o.scale }), {
      atol: 1e-6, rtol: 1e-4, label: 'dscores', shape,
    });
    return got;
  }

  test('tiny-BERT attention 2 batches × 2 heads × 64 × 64 with padded keys matches the CPU reference; padded keys get 0', async () => {
    const gpu = await getGpu();
    const o = { batch: 2, heads: 2, tq: 64, tk: 64, scale: 1 / Math.sqrt(64) };
    const mask = new Float32Array(2 * 64).fill(1);
    mask.fill(0, 64 + 40); // sequence 1 has 40 real tokens
    const probs = await check(gpu, o, mask);
    const padded = Array.from({ length: 2 * 64 * 24 }, (_, i) => probs[(2 * 64 + Math.floor(i / 24)) * 64 + 40 + (i % 24)]);
    expect(Math.max(...padded)).toBe(0);
  });

  test('a sequence whose keys are all masked gives uniform rows, not NaN', async () => {
    const gpu = await getGpu();
    const o = { batch: 2, heads: 3, tq: 5, tk: 9, scale: 0.5 };
    const mask = new Float32Array(2 * 9).fill(1);
    mask.fill(0, 9); // sequence 1: nothing to attend to
    const probs = await check(gpu, o, mask);
    const masked = probs.subarray(3 * 5 * 9);
    expectClose(masked, new Float32Array(masked.length).fill(1 / 9), { atol: 1e-7, rtol: 0, label: 'uniform' });
  });

  test.each([1, 7, 129])('no mask, tk = %i (fewer and more keys than the 64 threads)', async (tk) => {
    const gpu = await getGpu();
    await check(gpu, { batch: 1, heads: 3, tq: 5, tk, scale: 0.125 }, null);
  });

});

describe('dropout', () => {
  const n = 100003;
  test.each([0, 0.1, 0.5])('p = %f: GPU mask equals the CPU hash mask bit for bit, in forward and backward, and keeps ≈ 1 − p', async (p) => {
    const gpu = await getGpu();
    const seed = 1234567;
    const x = randomArray(n, 5, 2);
    const xt = gpu.upload(x), ones = gpu.upload(new Float32Array(n).fill(1));
    const [y, backMask] = await noGpuErrors(gpu, () => [dropoutForward(gpu, xt, p, seed), dropoutBackward(gpu, ones, p, seed)]);
    const mask = dropoutMaskCpu(n, p, seed);
    const gotMask = await gpu.read(backMask);
    expect(firstDifference(gotMask, mask)).toBeNull();
    expect(firstDifference(await gpu.read(y), dropoutCpu(x, p, seed))).toBeNull();
    if (p === 0) expect(firstDifference(await gpu.read(y), x)).toBeNull();
    const kept = mask.reduce((a, v) => a + (v !== 0 ? 1 : 0), 0) / n;
    const sigma = Math.sqrt((p * (1 - p)) / n);
    expect(Math.abs(kept - (1 - p))).toBeLessThanOrEqual(4 * sigma + 1e-12);
    expect(new Set(mask).size).toBe(p === 0 ? 1 : 2); // only 0 and 1/(1 − p)
  });

  test('different seeds give different masks; the same seed the same one', async () => {
    const a = dropoutMaskCpu(10000, 0.5, 1), b = dropoutMaskCpu(10000, 0.5, 2), c = dropoutMaskCpu(10000, 0.5, 1);
    let agree = 0;
    for (let i = 0; i < a.length; i++) if ((a[i] === 0) === (b[i] === 0)) agree++;
    expect(agree / a.length).toBeGreaterThan(0.45); // independent masks agree on about half
    expect(agree / a.length).toBeLessThan(0.55);
    expect(firstDifference(a, c)).toBeNull();
  });
});

describe('heads', () => {
  test.each([[2, 5, 3, 7], [2, 64, 2, 64], [1, 1, 1, 1]])('split matches the CPU layout and merge(split(x)) = x (batch %i, t %i, heads %i, dh %i)', async (batch, t, heads, dh) => {
    const gpu = await getGpu();
    const x = randomArray(batch * t * heads * dh, batch + t + heads + dh, 1);
    const xt = gpu.upload(x, [batch, t, heads * dh]);
    const [split, merged] = await noGpuErrors(gpu, () => {
      const split = splitHeads(gpu, xt, batch, t, heads, dh);
      return [split, mergeHeads(gpu, split, batch, t, heads, dh)];
    });
    expect(split.shape).toEqual([batch, heads, t, dh]);
    const s = await gpu.read(split);
    expect(firstDifference(s, splitHeadsCpu(x, batch, t, heads, dh))).toBeNull();
    expect(firstDifference(mergeHeadsCpu(s, batch, t, heads, dh), x)).toBeNull();
    expect(firstDifference(await gpu.read(merged), x)).toBeNull();
  });
});

describe('embedding', () => {
  const vocab = 50;
  /** ids drawn from the first 12 rows: many repeats, rows 12..49 never used */
  function repeatedIds(n: number, seed: number): Uint32Array {
    return Uint32Array.from(randomArray(n, seed, 1), (v) => Math.floor((v + 1) * 6) % 12);
  }

  test.each([7, 128])('forward gathers rows exactly; backward matches the CPU sums and zeroes unused rows (d = %i)', async (d) => {
    const gpu = await getGpu();
    const n = 300;
    const table = randomArray(vocab * d, 3, 1);
    const ids = repeatedIds(n, 4);
    const dOut = randomArray(n * d, 5, 1);
    const [tt, it, dt] = [gpu.upload(table, [vocab, d]), gpu.upload(ids), gpu.upload(dOut, [n, d])];
    const dTable = gpu.upload(new Float32Array(vocab * d).fill(7)); // stale contents must go
    const out = await noGpuErrors(gpu, () => {
      const out = embeddingForward(gpu, tt, it);
      embeddingBackward(gpu, dt, it, ids, vocab, dTable);
      return out;
    });
    expect(firstDifference(await gpu.read(out), embeddingForwardCpu(table, ids, d))).toBeNull();
    expectClose(await gpu.read(dTable), embeddingBackwardCpu(dOut, ids, vocab, d), { atol: 1e-5, rtol: 1e-5, label: 'dTable', shape: [vocab, d] });
  });

  test('backward is bit-identical across runs with many repeated ids, and accumulate adds', async () => {
    const gpu = await getGpu();
    const d = 64, n = 2048;
    const ids = repeatedIds(n, 9);
    const dOut = randomArray(n * d, 10, 1);
    const [it, dt] = [gpu.upload(ids), gpu.upload(dOut)];
    const first = gpu.empty([vocab, d]), second = gpu.empty([vocab, d]);
    const prior = randomArray(vocab * d, 11, 1);
    const accumulated = gpu.upload(prior);
    await noGpuErrors(gpu, () => {
      embeddingBackward(gpu, dt, it, ids, vocab, first);
      // a second call in the same submit must not disturb the first one's host-written grouping
      embeddingBackward(gpu, dt, it, ids.slice().reverse(), vocab, second);
      embeddingBackward(gpu, dt, it, ids, vocab, accumulated, { accumulate: true });
    });
    const a = await gpu.read(first);
    const ref = embeddingBackwardCpu(dOut, ids, vocab, d);
    expectClose(a, ref, { atol: 1e-5, rtol: 1e-5, label: 'first run' });
    expectClose(await gpu.read(second), embeddingBackwardCpu(dOut, ids.slice().reverse(), vocab, d), { atol: 1e-5, rtol: 1e-5, label: 'reversed ids' });
    expectClose(await gpu.read(accumulated), addCpu(ref, prior), { atol: 1e-5, rtol: 1e-5, label: 'accumulate' });
    for (let run = 0; run < 3; run++) {
      await noGpuErrors(gpu, () => embeddingBackward(gpu, dt, it, ids, vocab, second));
      expect(firstDifference(await gpu.read(second), a)).toBeNull();
    }
  });
});

describe('add and scale', () => {
  test('more workgroups than one grid dimension holds: the grid folds into y and covers every element', async () => {
    const gpu = await getGpu();
    const n = gpu.device.limits.maxComputeWorkgroupsPerDimension * 256 + 300;
    const a = new Float32Array(n).map((_, i) => i % 1000), b = new Float32Array(n).fill(0.5);
    const [at, bt] = [gpu.upload(a), gpu.upload(b)];
    const sum = await noGpuErrors(gpu, () => addInto(gpu, at, bt));
    const got = await gpu.read(sum);
    let wrong = -1;
    for (let i = 0; i < n && wrong < 0; i++) if (got[i] !== a[i] + 0.5) wrong = i;
    expect(wrong, `first wrong element ${wrong}: ${got[wrong]}`).toBe(-1);
    [at, bt, sum].forEach((t) => gpu.release(t));
  });

  test.each([1, 7, 100003])('out = a + b, in place, and scale (n = %i)', async (n) => {
    const gpu = await getGpu();
    const a = randomArray(n, n, 1), b = randomArray(n, n + 1, 1);
    const [at, bt] = [gpu.upload(a), gpu.upload(b)];
    const acc = gpu.upload(a);
    const [sum, scaled] = await noGpuErrors(gpu, () => {
      const sum = addInto(gpu, at, bt);
      addInto(gpu, acc, bt, acc);
      return [sum, scaleInto(gpu, at, -0.5)];
    });
    const want = new Float32Array(addCpu(a, b));
    expect(firstDifference(await gpu.read(sum), want)).toBeNull();
    expect(firstDifference(await gpu.read(acc), want)).toBeNull();
    expect(compareArrays(await gpu.read(scaled), scaleCpu(a, -0.5)).maxAbs).toBe(0);
  });
});
