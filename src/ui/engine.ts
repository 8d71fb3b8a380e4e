// The page's handle on the worker. One worker per page; the UI calls it through comlink. After a
// lost GPU device the page starts a fresh worker (resetEngine): the old one's GPU state is gone,
// and its pending calls are abandoned.
import * as Comlink from 'comlink';
import type { WorkerApi } from '../train/worker';

let worker: Worker | null = null;
let engine: Comlink.Remote<WorkerApi> | null = null;

export function getEngine(): Comlink.Remote<WorkerApi> {
  if (!engine) {
    worker = new Worker(new URL('../train/worker.ts', import.meta.url), { type: 'module', name: 'engine' });
    engine = Comlink.wrap<WorkerApi>(worker);
  }
  return engine;
}

/** Ends the current worker (and with it its GPU device); the next getEngine() starts a new one. */
export function resetEngine(): void {
  worker?.terminate();
  worker = null;
  engine = null;
}
