// Inverted dropout with an in-kernel hash mask: x, y, dy, dx are any shape, n values.
// The same (p, seed) gives the same mask in forward, backward and the CPU reference; every
// dropout site of a training step needs its own seed.

import { f32, type Gpu } from '../gpu/runtime';
import type { Tensor } from '../gpu/tensor';
import code from '../../shaders/dropout.wgsl?raw';
import { assertNoAlias, assertSize, workgroupGrid } from './nn-util';

const WG = 256;

/** threshold = ⌊p·2³²⌋ (drop when the hash is below it) and the kept values' scale 1/(1 − p). */
function dropoutParams(p: number): { threshold: number; scale: number } {
  if (!(p >= 0 && p < 1)) throw new Error(`dropout: probability ${p} is outside [0, 1)`);
  return { threshold: Math.min(Math.floor(p * 4294967296), 4294967295), scale: 1 / (1 - p) };
}

function dispatchDropout(gpu: Gpu, op: string, x: Tensor, p: number, seed: number, out?: Tensor): Tensor {
  const { threshold, scale } = dropoutParams(p);
  const y = out ?? gpu.empty(x.shape);
  assertSize(op, y, x.size, 'out');
  assertNoAlias(op, y, x);
  const k = gpu.kernel({ name: 'dropout', code, bindings: ['read', 'write'] });
  gpu.dispatch(k, [x, y], [x.size, seed >>> 0, threshold, f32(scale)], workgroupGrid(gpu, Math.ceil(x.size / WG)));
  return y;
}

/** y = x·mask with mask = 1/(1 − p) or 0; p = 0 copies x. */
export function dropoutForward(gpu: Gpu, x: Tensor, p: number, seed: number, out?: Tensor): Tensor {
  return dispatchDropout(gpu, 'dropoutForward', x, p, seed, out);
}

/** dx = dy·mask, the mask recomputed from (p, seed). */
export function dropoutBackward(gpu: Gpu, dy: Tensor, p: number, seed: number, out?: Tensor): Tensor {
  return dispatchDropout(gpu, 'dropoutBackward', dy, p, seed, out);
}

// ---- CPU reference -----------------------------------------------------------------------------

/** The kernel's lowbias32 hash with u32 arithmetic (Math.imul wraps like WGSL's u32 multiply). */
function lowbias32(v: number): number {
  let h = v >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** The mask the kernel applies: each element is fround(1/(1 − p)) (kept) or 0 (dropped). */
export function dropoutMaskCpu(n: number, p: number, seed: number): Float32Array {
  const { threshold, scale } = dropoutParams(p);
  const seedHash = lowbias32(seed >>> 0);
  const mask = new Float32Array(n);
  const kept = Math.fround(scale);
  for (let i = 0; i < n; i++) mask[i] = (lowbias32(lowbias32(i) ^ seedHash) >>> 0) >= threshold ? kept : 0;
  return mask;
}

/** y = x·mask in float32, as the kernel computes it (a dropped element is +0, never −0). */
export function dropoutCpu(x: Float32Array, p: number, seed: number): Float32Array {
  const mask = dropoutMaskCpu(x.length, p, seed);
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = mask[i] === 0 ? 0 : x[i] * mask[i];
  return y;
}

/** dx = dy·mask: the backward is the same masking of dy. */
export const dropoutBackwardCpu = dropoutCpu;
