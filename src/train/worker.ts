// The Web Worker that owns the GPU. The page holds no tensors: it calls this typed API through
// comlink and receives small plain objects (metrics, counts, probabilities, parameter arrays).
import * as Comlink from 'comlink';
import { Engine, type InitResult, type RunConfig } from './engine';
import { runSelfTest, type SelfTestResult } from './selftest';
import type { BertConfig } from '../model/config';
import type { Dataset } from '../data/datasets';

const engine = new Engine();

const api = {
  init: (): Promise<InitResult> => engine.init(),
  async selfTest(): Promise<SelfTestResult> {
    if (!engine.gpu) throw new Error('init() first');
    return runSelfTest(engine.gpu);
  },
  loadModel: (config: BertConfig, params: Record<string, Float32Array>, vocab: string) => engine.loadModel(config, params, vocab),
  loadDataset: (ds: Dataset) => engine.loadDataset(ds),
  configure: (run: RunConfig) => engine.configure(run),
  train: (steps: number, readEvery?: number) => engine.train(steps, readEvery),
  pause: () => engine.pause(),
  isRunning: () => engine.isRunning,
  takeMetrics: () => engine.takeMetrics(),
  evaluate: (split?: 'dev' | 'test', o?: Parameters<Engine['evaluate']>[1]) => engine.evaluate(split, o),
  predict: (text: string, pair?: string | null) => engine.predict(text, pair),
  routingCounts: () => engine.routingCounts(),
  measureAdapterDrop: (split?: 'dev' | 'test') => engine.measureAdapterDrop(split),
  async exportParams(which?: 'trainable' | 'all') {
    const out = await engine.exportParams(which);
    return Comlink.transfer(out, out.map((p) => p.data.buffer as ArrayBuffer));
  },
};

export type WorkerApi = typeof api;
Comlink.expose(api);
