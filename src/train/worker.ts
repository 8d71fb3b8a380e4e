// The Web Worker that owns the GPU. The page holds no tensors: it calls this typed API through
// comlink and receives small plain objects.
import * as Comlink from 'comlink';
import { Gpu } from '../gpu/runtime';
import { WebGpuUnavailableError, type AdapterSummary } from '../gpu/device';
import { runSelfTest, type SelfTestResult } from './selftest';

export type InitResult =
  | { ok: true; adapter: AdapterSummary }
  | { ok: false; reason: string; message: string };

let gpu: Gpu | null = null;

const api = {
  async init(): Promise<InitResult> {
    try {
      gpu ??= await Gpu.create();
      return { ok: true, adapter: gpu.summary };
    } catch (e) {
      if (e instanceof WebGpuUnavailableError) return { ok: false, reason: e.reason, message: e.message };
      return { ok: false, reason: 'error', message: String(e) };
    }
  },

  async selfTest(): Promise<SelfTestResult> {
    if (!gpu) throw new Error('init() first');
    return runSelfTest(gpu);
  },
};

export type WorkerApi = typeof api;
Comlink.expose(api);
