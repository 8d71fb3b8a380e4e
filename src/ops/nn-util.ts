// Small helpers shared by the nn op modules (gelu, layernorm, softmax, dropout, heads, embedding,
// add): dispatch grids past the per-dimension limit, aliasing checks, and CPU-reference arrays
// that keep the caller's precision (Float32Array in tests against the GPU, Float64Array in the
// finite-difference gradient checks).

import type { Gpu } from '../gpu/runtime';
import type { Tensor } from '../gpu/tensor';

export type FloatArray = Float32Array | Float64Array;

/** A zeroed array of n values with the same precision as `like`. */
export function allocLike<A extends FloatArray>(like: A, n: number): A {
  return (like instanceof Float64Array ? new Float64Array(n) : new Float32Array(n)) as A;
}

/**
 * Workgroup grid for `groups` workgroups, folded into y past maxComputeWorkgroupsPerDimension
 * (65535 on most adapters: 64 sequences × 12 heads × 128 queries already exceed it).
 * Kernels rebuild the flat workgroup index as `wid.y * nwg.x + wid.x` and skip indices ≥ groups.
 */
export function workgroupGrid(gpu: Gpu, groups: number): [number, number] {
  const max = gpu.device.limits.maxComputeWorkgroupsPerDimension;
  if (groups <= max) return [groups, 1];
  const y = Math.ceil(groups / max);
  return [Math.ceil(groups / y), y];
}

/**
 * WebGPU rejects a dispatch that binds one buffer both read-only and read-write, so an output
 * that shares a buffer with an input is a caller error: say which op and which tensors.
 */
export function assertNoAlias(op: string, out: Tensor, ...inputs: Tensor[]): void {
  for (const t of inputs) {
    if (t.buffer === out.buffer) throw new Error(`${op}: output ${out} shares a GPU buffer with input ${t}`);
  }
}

export function assertSize(op: string, t: Tensor, size: number, what: string): void {
  if (t.size !== size) throw new Error(`${op}: ${what} ${t} has ${t.size} values, expected ${size}`);
}

/**
 * A buffer an op keeps for its intermediate results, one per (gpu, key, size). It never goes back
 * to the pool: a pooled buffer released mid-step could be re-acquired and filled by a
 * queue.writeBuffer, which runs before this step's recorded dispatches and would be clobbered.
 * Reuse by later dispatches of the same command encoder is safe: dispatches run in order.
 */
const scratch = new WeakMap<Gpu, Map<string, Tensor>>();
export function scratchTensor(gpu: Gpu, key: string, size: number): Tensor {
  let perGpu = scratch.get(gpu);
  if (!perGpu) scratch.set(gpu, (perGpu = new Map()));
  const fullKey = `${key}:${size}`;
  let t = perGpu.get(fullKey);
  if (!t) perGpu.set(fullKey, (t = gpu.empty([size], 'f32', key)));
  return t;
}
