// Masked attention softmax. scores, probs are (batch·heads, tq, tk); keyMask is (batch, tk) f32,
// 1 = keep, 0 = padding (padded keys get the logit −1e9; see shaders/softmax.wgsl).

import { f32, type Gpu } from '../gpu/runtime';
import type { Tensor } from '../gpu/tensor';
import code from '../../shaders/softmax.wgsl?raw';
import { allocLike, assertNoAlias, assertSize, workgroupGrid, type FloatArray } from './nn-util';

export interface SoftmaxShape {
  batch: number;
  heads: number;
  tq: number;
  tk: number;
  /** multiplies the scores before the softmax: 1/√(d/h) for attention */
  scale: number;
}

const MASKED_LOGIT = -1e9;

/** A 1-value placeholder bound where there is no key mask (the kernel ignores it then). */
const noMask = new WeakMap<Gpu, Tensor>();
function placeholderMask(gpu: Gpu): Tensor {
  let t = noMask.get(gpu);
  if (!t) noMask.set(gpu, (t = gpu.upload(new Float32Array([1]), [1], 'f32', 'softmax.noMask')));
  return t;
}

export function maskedSoftmaxForward(gpu: Gpu, scores: Tensor, keyMask: Tensor | null, o: SoftmaxShape, out?: Tensor): Tensor {
  const op = 'maskedSoftmaxForward';
  const rows = o.batch * o.heads * o.tq;
  assertSize(op, scores, rows * o.tk, 'scores');
  if (keyMask) assertSize(op, keyMask, o.batch * o.tk, 'keyMask');
  const probs = out ?? gpu.empty(scores.shape);
  assertSize(op, probs, scores.size, 'out');
  assertNoAlias(op, probs, scores, ...(keyMask ? [keyMask] : []));
  const k = gpu.kernel({ name: 'softmax.forward', code, entryPoint: 'forward', bindings: ['read', 'read', 'write'] });
  gpu.dispatch(
    k,
    [scores, keyMask ?? placeholderMask(gpu), probs],
    [rows, o.tk, o.heads * o.tq, f32(o.scale), keyMask ? 1 : 0],
    workgroupGrid(gpu, rows),
  );
  return probs;
}

/** d(scores) = scale·probs·(dprobs − Σ probs·dprobs), row-wise over rows × cols. */
export function maskedSoftmaxBackward(
  gpu: Gpu,
  probs: Tensor,
  dprobs: Tensor,
  o: { rows: number; cols: number; scale: number },
  out?: Tensor,
): Tensor {
  const op = 'maskedSoftmaxBackward';
  assertSize(op, probs, o.rows * o.cols, 'probs');
  assertSize(op, dprobs, o.rows * o.cols, 'dprobs');
  const dscores = out ?? gpu.empty(probs.shape);
  assertSize(op, dscores, probs.size, 'out');
  assertNoAlias(op, dscores, probs, dprobs);
  const k = gpu.kernel({ name: 'softmax.backward', code, entryPoint: 'backward', bindings: ['read', 'read', 'write'] });
  gpu.dispatch(k, [probs, dprobs, dscores], [o.rows, o.cols, 1, f32(o.scale), 0], workgroupGrid(gpu, o.rows));
  return dscores;
}

// ---- CPU reference (float64 inside; outputs keep the scores' precision) -----------------------

export function maskedSoftmaxForwardCpu<A extends FloatArray>(scores: A, keyMask: ArrayLike<number> | null, o: SoftmaxShape): A {
  const rows = o.batch * o.heads * o.tq;
  const cols = o.tk;
  const probs = allocLike(scores, rows * cols);
  const logits = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const b = Math.floor(r / (o.heads * o.tq));
    let m = -Infinity;
    for (let c = 0; c < cols; c++) {
      const keep = !keyMask || keyMask[b * cols + c] >= 0.5;
      logits[c] = keep ? o.scale * scores[r * cols + c] : MASKED_LOGIT;
      m = Math.max(m, logits[c]);
    }
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(logits[c] - m);
    for (let c = 0; c < cols; c++) probs[r * cols + c] = Math.exp(logits[c] - m) / s;
  }
  return probs;
}

export function maskedSoftmaxBackwardCpu<A extends FloatArray>(
  probs: A,
  dprobs: ArrayLike<number>,
  o: { rows: number; cols: number; scale: number },
): A {
  const ds = allocLike(probs, o.rows * o.cols);
  for (let r = 0; r < o.rows; r++) {
    const base = r * o.cols;
    let dot = 0;
    for (let c = 0; c < o.cols; c++) dot += probs[base + c] * dprobs[base + c];
    for (let c = 0; c < o.cols; c++) ds[base + c] = o.scale * probs[base + c] * (dprobs[base + c] - dot);
  }
  return ds;
}
