// Classification losses on the GPU and their CPU references: mean cross-entropy, and AdaMix's
// consistency regulariser w·[KL(sg(p2)‖p1) + KL(sg(p1)‖p2)] (REFERENCE.md, AdaMix).
// logits are (B, C) row-major, labels are u32 (B). The CPU references work in float64 so the
// unit tests can check their gradients against central finite differences.

import { f32, type Gpu } from '../gpu/runtime';
import type { Tensor } from '../gpu/tensor';
import code from '../../shaders/loss.wgsl?raw';
import { gridFor } from './reduce';

export interface LossShape {
  batch: number;
  classes: number;
}

function checkSize(t: Tensor, size: number, what: string): void {
  if (t.size < size) throw new Error(`${what}: ${t} holds ${t.size} values, needs ${size}`);
}

// ---- cross-entropy ---------------------------------------------------------------------------

/** logits (B, C), labels u32 (B) → loss [1] = mean_b −log softmax(logits_b)[label_b], probs (B, C). */
export function crossEntropyForward(
  gpu: Gpu,
  logits: Tensor,
  labels: Tensor,
  o: LossShape,
  out: { loss?: Tensor; probs?: Tensor } = {},
): { loss: Tensor; probs: Tensor } {
  const { batch, classes } = o;
  checkSize(logits, batch * classes, 'crossEntropyForward logits');
  checkSize(labels, batch, 'crossEntropyForward labels');
  if (labels.dtype !== 'u32') throw new Error(`crossEntropyForward: labels must be u32, got ${labels}`);
  const loss = out.loss ?? gpu.empty([1], 'f32', 'ce.loss');
  const probs = out.probs ?? gpu.empty([batch, classes], 'f32', 'ce.probs');
  checkSize(probs, batch * classes, 'crossEntropyForward probs');
  const k = gpu.kernel({ name: 'loss.ce_forward', code, entryPoint: 'ce_forward', bindings: ['read', 'read', 'write', 'write'] });
  gpu.dispatch(k, [logits, labels, loss, probs], [batch, classes], [1]);
  return { loss, probs };
}

/** probs (B, C), labels (B) → dlogits (B, C) = scale·(probs − onehot(labels))/B; `accumulate` adds into out. */
export function crossEntropyBackward(
  gpu: Gpu,
  probs: Tensor,
  labels: Tensor,
  o: LossShape & { scale?: number },
  out?: Tensor,
  accumulate = false,
): Tensor {
  const { batch, classes, scale = 1 } = o;
  checkSize(probs, batch * classes, 'crossEntropyBackward probs');
  if (accumulate && !out) throw new Error('crossEntropyBackward: accumulate needs an existing out tensor');
  const dlogits = out ?? gpu.empty([batch, classes], 'f32', 'ce.dlogits');
  checkSize(dlogits, batch * classes, 'crossEntropyBackward out');
  const k = gpu.kernel({ name: 'loss.ce_backward', code, entryPoint: 'ce_backward', bindings: ['read', 'read', 'write'] });
  gpu.dispatch(k, [probs, labels, dlogits], [batch, classes, f32(scale), accumulate ? 1 : 0], [gridFor(batch * classes)]);
  return dlogits;
}

/** Row-wise log-softmax in float64 (max subtracted before exp). */
function logSoftmaxRows(logits: ArrayLike<number>, batch: number, classes: number): Float64Array {
  const out = new Float64Array(batch * classes);
  for (let r = 0; r < batch; r++) {
    const row = r * classes;
    let mx = -Infinity;
    for (let c = 0; c < classes; c++) mx = Math.max(mx, logits[row + c]);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(logits[row + c] - mx);
    const lse = mx + Math.log(sum);
    for (let c = 0; c < classes; c++) out[row + c] = logits[row + c] - lse;
  }
  return out;
}

export function crossEntropyCpu(logits: ArrayLike<number>, labels: ArrayLike<number>, o: LossShape): { loss: number; probs: Float64Array } {
  const { batch, classes } = o;
  const logp = logSoftmaxRows(logits, batch, classes);
  let total = 0;
  for (let r = 0; r < batch; r++) {
    const label = labels[r];
    total += label >= 0 && label < classes ? -logp[r * classes + label] : NaN;
  }
  return { loss: total / batch, probs: logp.map(Math.exp) };
}

export function crossEntropyBackwardCpu(probs: ArrayLike<number>, labels: ArrayLike<number>, o: LossShape & { scale?: number }): Float64Array {
  const { batch, classes, scale = 1 } = o;
  const d = new Float64Array(batch * classes);
  for (let r = 0; r < batch; r++) {
    for (let c = 0; c < classes; c++) {
      const i = r * classes + c;
      d[i] = (scale * (probs[i] - (labels[r] === c ? 1 : 0))) / batch;
    }
  }
  return d;
}

// ---- AdaMix consistency ----------------------------------------------------------------------

export interface ConsistencyShape extends LossShape {
  weight: number;
}

/** logits1, logits2 (B, C) → [1] = w·mean_b [KL(p2‖p1) + KL(p1‖p2)]. */
export function consistencyForward(gpu: Gpu, logits1: Tensor, logits2: Tensor, o: ConsistencyShape, out?: Tensor): Tensor {
  const { batch, classes, weight } = o;
  checkSize(logits1, batch * classes, 'consistencyForward logits1');
  checkSize(logits2, batch * classes, 'consistencyForward logits2');
  const loss = out ?? gpu.empty([1], 'f32', 'consistency.loss');
  const k = gpu.kernel({ name: 'loss.consistency_forward', code, entryPoint: 'consistency_forward', bindings: ['read', 'read', 'write'] });
  gpu.dispatch(k, [logits1, logits2, loss], [batch, classes, f32(weight)], [1]);
  return loss;
}

/**
 * Gradients of the stop-gradient objective: d1 = w·(p1 − p2)/B, d2 = w·(p2 − p1)/B.
 * `accumulate` adds into the given d1/d2 (e.g. onto the cross-entropy gradient of pass 1).
 */
export function consistencyBackward(
  gpu: Gpu,
  logits1: Tensor,
  logits2: Tensor,
  o: ConsistencyShape,
  out: { d1?: Tensor; d2?: Tensor } = {},
  accumulate = false,
): { d1: Tensor; d2: Tensor } {
  const { batch, classes, weight } = o;
  checkSize(logits1, batch * classes, 'consistencyBackward logits1');
  checkSize(logits2, batch * classes, 'consistencyBackward logits2');
  if (accumulate && (!out.d1 || !out.d2)) throw new Error('consistencyBackward: accumulate needs existing d1 and d2');
  const d1 = out.d1 ?? gpu.empty([batch, classes], 'f32', 'consistency.d1');
  const d2 = out.d2 ?? gpu.empty([batch, classes], 'f32', 'consistency.d2');
  checkSize(d1, batch * classes, 'consistencyBackward d1');
  checkSize(d2, batch * classes, 'consistencyBackward d2');
  const k = gpu.kernel({
    name: 'loss.consistency_backward',
    code,
    entryPoint: 'consistency_backward',
    bindings: ['read', 'read', 'write', 'write'],
  });
  gpu.dispatch(k, [logits1, logits2, d1, d2], [batch, classes, f32(weight), accumulate ? 1 : 0], [Math.ceil(batch / 64)]);
  return { d1, d2 };
}

export function consistencyCpu(logits1: ArrayLike<number>, logits2: ArrayLike<number>, o: ConsistencyShape): number {
  const { batch, classes, weight } = o;
  const logp1 = logSoftmaxRows(logits1, batch, classes);
  const logp2 = logSoftmaxRows(logits2, batch, classes);
  let total = 0;
  for (let i = 0; i < batch * classes; i++) {
    total += (Math.exp(logp2[i]) - Math.exp(logp1[i])) * (logp2[i] - logp1[i]);
  }
  return (weight * total) / batch;
}

export function consistencyBackwardCpu(
  logits1: ArrayLike<number>,
  logits2: ArrayLike<number>,
  o: ConsistencyShape,
): { d1: Float64Array; d2: Float64Array } {
  const { batch, classes, weight } = o;
  const logp1 = logSoftmaxRows(logits1, batch, classes);
  const logp2 = logSoftmaxRows(logits2, batch, classes);
  const d1 = new Float64Array(batch * classes);
  const d2 = new Float64Array(batch * classes);
  for (let i = 0; i < batch * classes; i++) {
    d1[i] = (weight * (Math.exp(logp1[i]) - Math.exp(logp2[i]))) / batch;
    d2[i] = -d1[i];
  }
  return { d1, d2 };
}
