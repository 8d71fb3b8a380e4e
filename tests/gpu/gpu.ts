// Shared GPU test set-up: one device per test file. A missing adapter FAILS the test run —
// a GPU test must never pass by skipping (CI would go green having tested nothing).
import { Gpu } from '../../src/gpu/runtime';

let shared: Promise<Gpu> | null = null;

export function getGpu(): Promise<Gpu> {
  if (!shared) {
    shared = (async () => {
      if (!navigator.gpu) throw new Error('GPU test host has no navigator.gpu: WebGPU is not enabled in this browser');
      const adapter = await navigator.gpu.requestAdapter();
      if (!adapter) throw new Error('GPU test host found no WebGPU adapter: check the Chromium flags (scripts/chromium.mjs)');
      const gpu = await Gpu.create();
      gpu.device.addEventListener('uncapturederror', (e) => {
        console.error('WebGPU uncaptured error:', (e as GPUUncapturedErrorEvent).error.message);
      });
      return gpu;
    })();
  }
  return shared;
}

/** Run `fn` inside a validation error scope and fail if WebGPU reported an error. */
export async function noGpuErrors<T>(gpu: Gpu, fn: () => Promise<T> | T): Promise<T> {
  gpu.device.pushErrorScope('validation');
  gpu.device.pushErrorScope('out-of-memory');
  let out: T;
  try {
    out = await fn();
    gpu.flush();
  } finally {
    // pop both scopes even when fn throws, so one failing test cannot leak scopes into the next
    var oom = await gpu.device.popErrorScope();
    var val = await gpu.device.popErrorScope();
  }
  if (val) throw new Error(`WebGPU validation error: ${val.message}`);
  if (oom) throw new Error(`WebGPU out of memory: ${oom.message}`);
  return out;
}
