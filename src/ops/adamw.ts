// AdamW over one flat parameter buffer (params, grads, m, v all (n)) in a single dispatch,
// with optional global-norm clipping and a skipped step on a non-finite gradient norm.
// Decoupled weight decay as torch.optim.AdamW:
//   p ← p − lr·wd·p;  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;
//   p ← p − lr·(m/(1−β1^t)) / (sqrt(v/(1−β2^t)) + eps)

import { f32, type Gpu } from '../gpu/runtime';
import type { Tensor } from '../gpu/tensor';
import code from '../../shaders/adamw.wgsl?raw';
import { gridFor } from './reduce';

export interface AdamwHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step number, for the bias corrections */
  step: number;
  /** clip the global gradient norm to this (needs gradNormSq) */
  maxGradNorm?: number;
}

export interface AdamwState<T> {
  params: T;
  grads: T;
  m: T;
  v: T;
}

function biasCorrections(h: AdamwHyper): [number, number] {
  if (!(h.step >= 1)) throw new Error(`adamw: step must be 1-based, got ${h.step}`);
  return [1 - Math.pow(h.beta1, h.step), 1 - Math.pow(h.beta2, h.step)];
}

/**
 * One AdamW update. `gradNormSq` ([1], from sumSquares over this step's gradients): with
 * `maxGradNorm` the gradients are scaled by min(1, maxGradNorm/(‖g‖+1e-6)); whenever it is given
 * and ‖g‖ is not finite, the update is skipped entirely (params, m, v untouched).
 */
export function adamwStep(gpu: Gpu, s: AdamwState<Tensor>, h: AdamwHyper & { gradNormSq?: Tensor }): void {
  const n = s.params.size;
  for (const [name, t] of [['grads', s.grads], ['m', s.m], ['v', s.v]] as const) {
    if (t.size !== n) throw new Error(`adamwStep: ${name} ${t} differs in size from params ${s.params}`);
  }
  if (h.maxGradNorm !== undefined && h.maxGradNorm > 0 && !h.gradNormSq) {
    throw new Error('adamwStep: maxGradNorm needs gradNormSq (from sumSquares over the gradients)');
  }
  const [bc1, bc2] = biasCorrections(h);
  const k = gpu.kernel({ name: 'adamw', code, bindings: ['write', 'read', 'write', 'write', 'read'] });
  // Without a norm the kernel never reads binding 5; grads stand in so the layout stays fixed.
  const normBinding = h.gradNormSq ?? s.grads;
  gpu.dispatch(
    k,
    [s.params, s.grads, s.m, s.v, normBinding],
    [
      n,
      f32(h.lr),
      f32(h.beta1),
      f32(h.beta2),
      f32(1 - h.beta1),
      f32(1 - h.beta2),
      f32(h.eps),
      f32(h.weightDecay),
      f32(bc1),
      f32(bc2),
      f32(h.maxGradNorm ?? 0),
      h.gradNormSq ? 1 : 0,
    ],
    [gridFor(n)],
  );
}

/** The same update on host arrays, in place (float64 arithmetic, stored into the given arrays). */
export function adamwCpu(
  s: AdamwState<Float32Array | Float64Array>,
  h: AdamwHyper & { gradNormSq?: number },
): void {
  const [bc1, bc2] = biasCorrections(h);
  let clip = 1;
  if (h.gradNormSq !== undefined) {
    const norm = Math.sqrt(h.gradNormSq);
    if (!Number.isFinite(norm)) return;
    if (h.maxGradNorm !== undefined && h.maxGradNorm > 0) clip = Math.min(1, h.maxGradNorm / (norm + 1e-6));
  }
  const { params, grads, m, v } = s;
  for (let i = 0; i < params.length; i++) {
    const g = grads[i] * clip;
    let w = params[i];
    w -= h.lr * h.weightDecay * w;
    m[i] = h.beta1 * m[i] + (1 - h.beta1) * g;
    v[i] = h.beta2 * v[i] + (1 - h.beta2) * g * g;
    w -= (h.lr * (m[i] / bc1)) / (Math.sqrt(v[i] / bc2) + h.eps);
    params[i] = w;
  }
}
