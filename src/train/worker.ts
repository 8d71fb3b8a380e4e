// The Web Worker that owns the GPU. The page holds no tensors: it calls this typed API through
// comlink and receives small plain objects (metrics, counts, probabilities, parameter arrays).
import * as Comlink from 'comlink';
import { Engine, type ExportFiles, type InitResult, type RunConfig } from './engine';
import { runSelfTest, type SelfTestResult } from './selftest';
import type { BertConfig } from '../model/config';
import type { Dataset } from '../data/datasets';
import type { TaskAdapter } from './compose';

const engine = new Engine();
/** where public/ is served (models/, data/, vocab.txt), as an absolute URL the worker can fetch */
const BASE = new URL(import.meta.env.BASE_URL, self.location.origin).href;

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

  // the page's loaders, exports and analyses (issue 6); URLs are resolved against the app's base
  loadDefaultModel: () => engine.loadDefaultModel(BASE),
  loadModelFromUrl: (urlOrId: string, onProgress?: (loaded: number, total: number) => void) =>
    engine.loadModelFromUrl(urlOrId, `${BASE}vocab.txt`, onProgress),
  async loadModelFromFiles(files: { config: string; weights: Uint8Array; vocab?: string; name?: string }) {
    const fallback = files.vocab ? undefined : await (await fetch(`${BASE}vocab.txt`)).text();
    return engine.loadModelFromFiles(files, fallback);
  },
  loadBuiltin: (id: string, seed: number) => engine.loadBuiltin(id, BASE, seed),
  importDataset: (bytes: Uint8Array, fileName: string, seed: number) => engine.importDataset(bytes, fileName, seed),
  adamixRouteEval: (samples?: number) => engine.adamixRouteEval(samples),
  exportLora: () => transferFiles(engine.exportLora()),
  exportAdapters: (merged?: boolean) => transferFiles(engine.exportAdapters(merged)),
  exportFullModel: () => transferFiles(engine.exportFullModel()),
  deviceLost: () => engine.deviceLost(),

  // checkpoints, saved models, device loss (issue 6)
  keepCheckpoints: (runId: string | null, every?: number) => engine.keepCheckpoints(runId, every),
  trainCheckpointed: (steps: number, readEvery?: number) => engine.trainCheckpointed(steps, readEvery),
  checkpointInfo: () => ({ step: engine.lastCheckpointStep, error: engine.checkpointError }),
  restoreStoredCheckpoint: (runId: string) => engine.restoreStoredCheckpoint(runId),
  saveModelOf: (runId: string) => engine.saveModelOf(runId),
  loadSavedModel: (runId: string, name: string) => engine.loadSavedModel(runId, name),
  simulateDeviceLoss: () => engine.simulateDeviceLoss(),
  measureAdapterDropTraining: (steps?: number) => engine.measureAdapterDropTraining(steps),

  // composing: task adapters, fusion attention, multi-task AdapterDrop (issue 7)
  saveTaskAdapter: (name: string) => engine.saveTaskAdapter(name),
  addTaskAdapters: (list: TaskAdapter[]) => engine.addTaskAdapters(list),
  listTaskAdapters: () => engine.listTaskAdapters(),
  deleteTaskAdapter: (name: string) => engine.deleteTaskAdapter(name),
  fusionAttention: (text?: string | null) => engine.fusionAttention(text),
  measureMultitask: (o: Parameters<Engine['measureMultitask']>[0], onProgress?: (done: number, total: number) => void) => engine.measureMultitask(o, onProgress),
};

async function transferFiles(p: Promise<ExportFiles>): Promise<ExportFiles> {
  const out = await p;
  const buffers = Object.values(out.files).filter((f): f is Uint8Array => typeof f !== 'string').map((f) => f.buffer as ArrayBuffer);
  return Comlink.transfer(out, buffers);
}

export type WorkerApi = typeof api;
Comlink.expose(api);
