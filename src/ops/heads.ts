// Attention head layout: tokens (batch, t, heads·dh) ⇄ heads (batch, heads, t, dh).
// splitHeads and mergeHeads are each other's inverse, so each is the other's backward.

import type { Gpu } from '../gpu/runtime';
import type { Tensor } from '../gpu/tensor';
import code from '../../shaders/heads.wgsl?raw';
import { allocLike, assertNoAlias, assertSize, workgroupGrid, type FloatArray } from './nn-util';

const WG = 256;

function dispatchHeads(gpu: Gpu, op: string, x: Tensor, batch: number, t: number, heads: number, dh: number, split: boolean, out?: Tensor): Tensor {
  const n = batch * t * heads * dh;
  assertSize(op, x, n, 'x');
  const y = out ?? gpu.empty(split ? [batch, heads, t, dh] : [batch, t, heads * dh]);
  assertSize(op, y, n, 'out');
  assertNoAlias(op, y, x);
  const k = gpu.kernel({ name: 'heads', code, bindings: ['read', 'write'] });
  gpu.dispatch(k, [x, y], [n, t, heads, dh, split ? 1 : 0], workgroupGrid(gpu, Math.ceil(n / WG)));
  return y;
}

/** (batch, t, heads·dh) → (batch, heads, t, dh) */
export function splitHeads(gpu: Gpu, x: Tensor, batch: number, t: number, heads: number, dh: number, out?: Tensor): Tensor {
  return dispatchHeads(gpu, 'splitHeads', x, batch, t, heads, dh, true, out);
}

/** (batch, heads, t, dh) → (batch, t, heads·dh) */
export function mergeHeads(gpu: Gpu, x: Tensor, batch: number, t: number, heads: number, dh: number, out?: Tensor): Tensor {
  return dispatchHeads(gpu, 'mergeHeads', x, batch, t, heads, dh, false, out);
}

// ---- CPU reference -----------------------------------------------------------------------------

export function splitHeadsCpu<A extends FloatArray>(x: A, batch: number, t: number, heads: number, dh: number): A {
  const y = allocLike(x, x.length);
  for (let b = 0; b < batch; b++)
    for (let tok = 0; tok < t; tok++)
      for (let h = 0; h < heads; h++)
        for (let e = 0; e < dh; e++) y[((b * heads + h) * t + tok) * dh + e] = x[((b * t + tok) * heads + h) * dh + e];
  return y;
}

export function mergeHeadsCpu<A extends FloatArray>(x: A, batch: number, t: number, heads: number, dh: number): A {
  const y = allocLike(x, x.length);
  for (let b = 0; b < batch; b++)
    for (let tok = 0; tok < t; tok++)
      for (let h = 0; h < heads; h++)
        for (let e = 0; e < dh; e++) y[((b * t + tok) * heads + h) * dh + e] = x[((b * heads + h) * t + tok) * dh + e];
  return y;
}
