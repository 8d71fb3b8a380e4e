// The engine inside a real module Web Worker, driven through comlink as the page drives it:
// adapter acquisition, the matmul self-test, and a few training steps of a tiny model.
import { describe, expect, test } from 'vitest';
import * as Comlink from 'comlink';
import type { WorkerApi } from '../../src/train/worker';
import { tinyBase, tinyDataset } from './tiny';

describe('engine in a Web Worker', () => {
  test('the worker gets its own WebGPU adapter, runs kernels (matmul self-test) and trains through comlink', async () => {
    const worker = new Worker(new URL('../../src/train/worker.ts', import.meta.url), { type: 'module' });
    try {
      const api = Comlink.wrap<WorkerApi>(worker);
      const init = await api.init();
      if (!init.ok) throw new Error(`no WebGPU adapter in the worker: ${init.message}`);
      expect(init.adapter.vendor.length).toBeGreaterThan(0);
      const st = await api.selfTest();
      expect(st.passed, `self-test max error ${st.maxAbsError}`).toBe(true);

      const { config, params, vocab } = tinyBase();
      await api.loadModel(config, Object.fromEntries(params), vocab);
      await api.loadDataset(tinyDataset());
      const info = await api.configure({
        method: { kind: 'lora', r: 4, alpha: 8, targets: ['query', 'value'] },
        adapterDrop: { mode: 'none', n: 0 },
        train: { batchSize: 8, seqLen: 16, lr: 5e-3, weightDecay: 0, warmupFraction: 0, totalSteps: 100, maxGradNorm: 1, beta1: 0.9, beta2: 0.999, eps: 1e-8, seed: 3 },
        evalEvery: 0,
      });
      expect(info.trainable).toBeGreaterThan(0);
      const r = await api.train(6, 3);
      expect(r.step).toBe(6);
      const metrics = await api.takeMetrics();
      const steps = metrics.filter((m) => m.kind === 'step');
      expect(steps.length).toBe(6);
      for (const s of steps) if (s.kind === 'step') expect(Number.isFinite(s.loss)).toBe(true);
      const p = await api.predict('good movie');
      expect(p.probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
      expect(p.tokens[0]).toBe('[CLS]');
    } finally {
      worker.terminate();
    }
  });
});
