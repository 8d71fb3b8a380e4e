// LoRA (REFERENCE.md): on a frozen linear W, h = W·x + b + (α/r)·B·A·x, A: (r, d_in)
// kaiming-uniform, B: (d_out, r) zeros, so training starts exactly at the base model.
// The AdaMix LoRA variant (peft/adamix.ts) stacks M experts of A and of B and passes the routed
// expert's element offset; plain LoRA is expert 0 of a stack of one.
import { matmul } from '../../ops/matmul';
import type { Rng } from '../../train/rng';
import { LORA_TARGETS, layerPrefix, type LoraTarget } from '../config';
import { addGradShared } from '../layers';
import type { ParamGroup, ParamSpec } from '../params';
import { Var, type Tape } from '../tape';

export function loraNames(layer: number, target: LoraTarget) {
  const p = `${layerPrefix(layer)}.${LORA_TARGETS[target]}`;
  return { a: `${p}.lora_A.weight`, b: `${p}.lora_B.weight` };
}

/** kaiming_uniform_(a=√5) as PyTorch's nn.Linear and PEFT use for A: bound = 1/√fan_in. */
export function kaimingUniform(size: number, fanIn: number, rng: Rng): Float32Array {
  const bound = 1 / Math.sqrt(fanIn);
  return rng.fillUniform(new Float32Array(size), -bound, bound);
}

export function loraParamSpecs(layer: number, target: LoraTarget, dIn: number, dOut: number, r: number, rng: Rng, group: ParamGroup): ParamSpec[] {
  const n = loraNames(layer, target);
  return [
    { name: n.a, shape: [r, dIn], group, data: kaimingUniform(r * dIn, dIn, rng) },
    { name: n.b, shape: [dOut, r], group, data: new Float32Array(dOut * r) },
  ];
}

/**
 * y' = y + scale·(x·A[ea]ᵀ)·B[eb]ᵀ, where y = W·x + b is the frozen linear's output, x is (n, d_in),
 * A is (…, r, d_in), B is (…, d_out, r); `experts` picks slices of stacked A/B (AdaMix).
 */
export function applyLora(tape: Tape, x: Var, y: Var, a: Var, b: Var, scale: number, experts = { a: 0, b: 0 }, name = ''): Var {
  const gpu = tape.gpu;
  const dIn = a.shape[a.shape.length - 1];
  const r = a.shape[a.shape.length - 2];
  const dOut = b.shape[b.shape.length - 2];
  const n = x.value.size / dIn;
  const aOff = experts.a * r * dIn;
  const bOff = experts.b * dOut * r;
  const t = tape.own(matmul(gpu, x.value, a.value, { transB: true, bOffset: aOff, m: n, n: r, k: dIn }));
  const out = tape.own(matmul(gpu, t, b.value, { transB: true, alpha: scale, residual: y.value, bOffset: bOff, m: n, n: dOut, k: r }));
  const needs = tape.needsGrad(x, y, a, b);
  const result = new Var(out.reshape(y.shape), needs, false, null, name);
  if (needs) {
    tape.record(`lora:${name}`, () => {
      const dy = result.grad!;
      addGradShared(tape, y, dy);
      const dt = tape.own(matmul(gpu, dy, b.value, { alpha: scale, bOffset: bOff, m: n, n: r, k: dOut }));
      if (b.requiresGrad) {
        matmul(gpu, dy, t, { transA: true, alpha: scale, out: b.grad!, accumulate: true, outOffset: bOff, m: dOut, n: r, k: n });
      }
      if (a.requiresGrad) {
        matmul(gpu, dt, x.value, { transA: true, out: a.grad!, accumulate: true, outOffset: aOff, m: r, n: dIn, k: n });
      }
      if (x.requiresGrad) {
        tape.addGrad(x, (o, acc) => matmul(gpu, dt, a.value, { bOffset: aOff, out: o, accumulate: acc, m: n, n: dIn, k: r }));
      }
    });
  }
  return result;
}

/** W' = W + scale·B·A on the host (inference merge, export): W (d_out, d_in), B (d_out, r), A (r, d_in). */
export function mergeLoraHost(w: Float32Array, a: Float32Array, b: Float32Array, r: number, scale: number): Float32Array {
  const dIn = a.length / r;
  const dOut = b.length / r;
  const out = Float32Array.from(w);
  for (let o = 0; o < dOut; o++) {
    for (let i = 0; i < dIn; i++) {
      let s = 0;
      for (let k = 0; k < r; k++) s += b[o * r + k] * a[k * dIn + i];
      out[o * dIn + i] += scale * s;
    }
  }
  return out;
}
