// The page's handle on the worker. One worker per page; the UI calls it through comlink.
import * as Comlink from 'comlink';
import type { WorkerApi } from '../train/worker';

let engine: Comlink.Remote<WorkerApi> | null = null;

export function getEngine(): Comlink.Remote<WorkerApi> {
  if (!engine) {
    const worker = new Worker(new URL('../train/worker.ts', import.meta.url), { type: 'module', name: 'engine' });
    engine = Comlink.wrap<WorkerApi>(worker);
  }
  return engine;
}
