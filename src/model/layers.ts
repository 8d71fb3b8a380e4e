// Differentiable building blocks of BERT: each runs its forward kernels now and, when an input
// requires a gradient, records its backward on the tape. Shapes use n = batch·seq rows.
import type { Tensor } from '../gpu/tensor';
import { matmul } from '../ops/matmul';
import { geluBackward } from '../ops/gelu';
import { layerNormForward, layerNormBackward } from '../ops/layernorm';
import { maskedSoftmaxForward, maskedSoftmaxBackward } from '../ops/softmax';
import { dropoutForward, dropoutBackward } from '../ops/dropout';
import { splitHeads, mergeHeads } from '../ops/heads';
import { embeddingForward, embeddingBackward } from '../ops/embedding';
import { addInto } from '../ops/add';
import { colSum } from '../ops/reduce';
import { tanhForward, tanhBackward } from '../ops/elementwise';
import { Var, type Tape } from './tape';

/** Give v the gradient contribution `t` (a step-scoped tensor nobody else will write). */
export function addGradTensor(tape: Tape, v: Var, t: Tensor): void {
  if (!v.requiresGrad) return;
  if (v.grad) addInto(tape.gpu, v.grad, t, v.grad);
  else v.grad = t;
}

/** Give v a copy of the contribution `t` (t is also used elsewhere, so it must not be adopted). */
export function addGradShared(tape: Tape, v: Var, t: Tensor): void {
  if (!v.requiresGrad) return;
  if (v.grad) addInto(tape.gpu, v.grad, t, v.grad);
  else {
    v.grad = tape.temp(t.shape, `d${v.name}`);
    tape.gpu.copy(t, v.grad);
  }
}

function out(tape: Tape, t: Tensor, requiresGrad: boolean, name = ''): Var {
  return new Var(tape.own(t), requiresGrad, false, null, name);
}

/** x (n, in) · Wᵀ (in, out) + b, optionally GELU'd; W is (out, in) as PyTorch stores it. */
export function linear(tape: Tape, x: Var, w: Var, b: Var | null, opts: { gelu?: boolean; name?: string } = {}): Var {
  const gpu = tape.gpu;
  const inF = x.shape[x.shape.length - 1];
  const outF = w.shape[0];
  if (w.shape[1] !== inF) throw new Error(`linear ${opts.name}: x [${x.shape}] · W [${w.shape}]ᵀ`);
  const rows = x.value.size / inF;
  const needs = tape.needsGrad(x, w, b);
  const pre = opts.gelu && needs ? tape.temp([rows, outF], 'pre') : undefined;
  const y = matmul(gpu, x.value, w.value, {
    transB: true, bias: b?.value, activation: opts.gelu ? 'gelu' : 'none', preActivationOut: pre, m: rows, n: outF, k: inF,
  });
  const result = out(tape, y.reshape([rows, outF]), needs, opts.name);
  if (needs) {
    tape.record(`linear:${opts.name ?? ''}`, () => {
      let dy = result.grad!;
      if (opts.gelu) dy = tape.own(geluBackward(gpu, pre!, dy));
      linearBackward(tape, x, w, b, dy, rows, inF, outF);
    });
  }
  return result;
}

export function linearBackward(tape: Tape, x: Var, w: Var, b: Var | null, dy: Tensor, rows: number, inF: number, outF: number): void {
  const gpu = tape.gpu;
  if (x.requiresGrad) {
    tape.addGrad(x, (o, acc) => {
      matmul(gpu, dy, w.value, { out: o, accumulate: acc, m: rows, n: inF, k: outF });
    });
  }
  if (w.requiresGrad) matmul(gpu, dy, x.value, { transA: true, out: w.grad!, accumulate: true, m: outF, n: inF, k: rows });
  if (b?.requiresGrad) colSum(gpu, dy, { rows, cols: outF }, b.grad!, true);
}

/** LayerNorm over the last dim of x (rows, d). */
export function layerNorm(tape: Tape, x: Var, gamma: Var, beta: Var, eps: number, name = ''): Var {
  const gpu = tape.gpu;
  const d = x.shape[x.shape.length - 1];
  const rows = x.value.size / d;
  const x2 = x.value.reshape([rows, d]);
  const { y, mean, rstd } = layerNormForward(gpu, x2, gamma.value, beta.value, eps);
  tape.own(mean);
  tape.own(rstd);
  const needs = tape.needsGrad(x, gamma, beta);
  const result = out(tape, y, needs, name);
  if (needs) {
    tape.record(`layernorm:${name}`, () => {
      const needParamGrads = gamma.requiresGrad || beta.requiresGrad;
      // when only one of γ, β trains (BitFit trains β), the other's gradient goes to a scratch tensor
      const r = layerNormBackward(gpu, result.grad!, x2, mean, rstd, gamma.value, {
        needDx: x.requiresGrad,
        needParamGrads,
        dgamma: needParamGrads ? (gamma.requiresGrad ? gamma.grad! : tape.temp([d], 'dgamma.scratch')) : undefined,
        dbeta: needParamGrads ? (beta.requiresGrad ? beta.grad! : tape.temp([d], 'dbeta.scratch')) : undefined,
        accumulate: true,
      });
      if (x.requiresGrad && r.dx) addGradTensor(tape, x, tape.own(r.dx.reshape(x.shape)));
    });
  }
  return result;
}

/** a + b (same shape) */
export function add(tape: Tape, a: Var, b: Var, name = ''): Var {
  const gpu = tape.gpu;
  const y = addInto(gpu, a.value, b.value);
  const needs = tape.needsGrad(a, b);
  const result = out(tape, y.reshape(a.shape), needs, name);
  if (needs) {
    tape.record(`add:${name}`, () => {
      const g = result.grad!;
      if (a.requiresGrad && b.requiresGrad) {
        addGradShared(tape, a, g);
        addGradShared(tape, b, g);
      } else if (a.requiresGrad) addGradShared(tape, a, g);
      else addGradShared(tape, b, g);
    });
  }
  return result;
}

/** Inverted dropout; identity (no op recorded) when p = 0 or not training. */
export function dropout(tape: Tape, x: Var, p: number, seed: number, name = ''): Var {
  if (p <= 0) return x;
  const gpu = tape.gpu;
  const y = dropoutForward(gpu, x.value, p, seed);
  const needs = tape.needsGrad(x);
  const result = out(tape, y.reshape(x.shape), needs, name);
  if (needs) {
    tape.record(`dropout:${name}`, () => {
      addGradTensor(tape, x, tape.own(dropoutBackward(gpu, result.grad!, p, seed).reshape(x.shape)));
    });
  }
  return result;
}

export function tanh(tape: Tape, x: Var, name = ''): Var {
  const gpu = tape.gpu;
  const y = tanhForward(gpu, x.value);
  const needs = tape.needsGrad(x);
  const result = out(tape, y, needs, name);
  if (needs) {
    tape.record(`tanh:${name}`, () => {
      addGradTensor(tape, x, tape.own(tanhBackward(gpu, result.value, result.grad!)));
    });
  }
  return result;
}

/** Rows of `table` (vocab, d) at `ids`; the backward scatters rows deterministically. */
export function embedding(tape: Tape, table: Var, ids: Tensor, hostIds: Uint32Array, name = ''): Var {
  const gpu = tape.gpu;
  const [vocab, d] = table.shape;
  const y = embeddingForward(gpu, table.value, ids);
  const needs = tape.needsGrad(table);
  const result = out(tape, y.reshape([ids.size, d]), needs, name);
  if (needs) {
    tape.record(`embedding:${name}`, () => {
      if (table.isParam) {
        embeddingBackward(gpu, result.grad!, ids, hostIds, vocab, table.grad!, { accumulate: true });
      } else {
        tape.addGrad(table, (o, acc) => embeddingBackward(gpu, result.grad!, ids, hostIds, vocab, o, { accumulate: acc }));
      }
    });
  }
  return result;
}

export interface AttentionShape {
  batch: number;
  seq: number;
  heads: number;
  headDim: number;
}

/**
 * Scaled dot-product attention over projected q, k, v (each (batch·seq, heads·headDim)):
 * softmax(QKᵀ/√dh + mask)·V per head, with dropout on the probabilities.
 */
export function attention(tape: Tape, q: Var, k: Var, v: Var, keyMask: Tensor, s: AttentionShape, dropP: number, seed: number, name = ''): Var {
  const gpu = tape.gpu;
  const { batch, seq, heads, headDim } = s;
  const bh = batch * heads;
  const scale = 1 / Math.sqrt(headDim);
  const qh = tape.own(splitHeads(gpu, q.value, batch, seq, heads, headDim));
  const kh = tape.own(splitHeads(gpu, k.value, batch, seq, heads, headDim));
  const vh = tape.own(splitHeads(gpu, v.value, batch, seq, heads, headDim));
  const scores = tape.own(matmul(gpu, qh, kh, { transB: true, batch: bh, m: seq, n: seq, k: headDim }));
  const probs = tape.own(maskedSoftmaxForward(gpu, scores, keyMask, { batch, heads, tq: seq, tk: seq, scale }));
  const probsD = dropP > 0 ? tape.own(dropoutForward(gpu, probs, dropP, seed)) : probs;
  const ctx = tape.own(matmul(gpu, probsD, vh, { batch: bh, m: seq, n: headDim, k: seq }));
  const merged = mergeHeads(gpu, ctx, batch, seq, heads, headDim);
  const needs = tape.needsGrad(q, k, v);
  const result = out(tape, merged.reshape([batch * seq, heads * headDim]), needs, name);
  if (needs) {
    tape.record(`attention:${name}`, () => {
      const dctx = tape.own(splitHeads(gpu, result.grad!, batch, seq, heads, headDim));
      if (v.requiresGrad) {
        const dvh = tape.own(matmul(gpu, probsD, dctx, { transA: true, batch: bh, m: seq, n: headDim, k: seq }));
        addGradTensor(tape, v, tape.own(mergeHeads(gpu, dvh, batch, seq, heads, headDim).reshape(v.shape)));
      }
      if (q.requiresGrad || k.requiresGrad) {
        let dprobs = tape.own(matmul(gpu, dctx, vh, { transB: true, batch: bh, m: seq, n: seq, k: headDim }));
        if (dropP > 0) dprobs = tape.own(dropoutBackward(gpu, dprobs, dropP, seed));
        const dscores = tape.own(maskedSoftmaxBackward(gpu, probs, dprobs, { rows: bh * seq, cols: seq, scale }));
        if (q.requiresGrad) {
          const dqh = tape.own(matmul(gpu, dscores, kh, { batch: bh, m: seq, n: headDim, k: seq }));
          addGradTensor(tape, q, tape.own(mergeHeads(gpu, dqh, batch, seq, heads, headDim).reshape(q.shape)));
        }
        if (k.requiresGrad) {
          const dkh = tape.own(matmul(gpu, dscores, qh, { transA: true, batch: bh, m: seq, n: headDim, k: seq }));
          addGradTensor(tape, k, tape.own(mergeHeads(gpu, dkh, batch, seq, heads, headDim).reshape(k.shape)));
        }
      }
    });
  }
  return result;
}
