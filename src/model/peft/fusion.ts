// AdapterFusion, stage 2 (REFERENCE.md): the base and the task adapters (trained one per task in
// stage 1, Pfeiffer placement) are frozen; per layer a fusion block attends over the adapters'
// outputs:  q = Q·h,  k_t = K·z_t,  v_t = V·z_t,  s = softmax_t(q·k_t / T),  out = Σ_t s_t·v_t + h,
// where h is the adapters' input (the FFN-output dense output) and z_t adapter t's up-projection
// output without its residual (as adapter-hub stacks it). V starts at the identity, Q and K random,
// no biases; the loss adds λ·Σ‖I − V‖². Trainable: Q, K, V and the head.
import { fusionBackward, fusionForward, identityRegBackward, identityRegValue } from '../../ops/fusion';
import { Tensor } from '../../gpu/tensor';
import type { Rng } from '../../train/rng';
import { layerPrefix } from '../config';
import { addGradShared, addGradTensor, linear } from '../layers';
import type { ParamGroup, ParamSpec } from '../params';
import { Var, type Tape } from '../tape';
import type { AdapterWeights } from './adapter';

export function fusionNames(layer: number) {
  const p = `${layerPrefix(layer)}.output.adapter_fusion`;
  return { q: `${p}.query.weight`, k: `${p}.key.weight`, v: `${p}.value.weight` };
}

/** A stage-1 task adapter under its task's name: `bert.encoder.layer.N.output.adapters.<task>.…` */
export function taskAdapterNames(layer: number, task: string) {
  const p = `${layerPrefix(layer)}.output.adapters.${task}`;
  return { wDown: `${p}.down.weight`, bDown: `${p}.down.bias`, wUp: `${p}.up.weight`, bUp: `${p}.up.bias` };
}

/** Q, K ~ N(0, 0.02) (BERT init); V = I with off-diagonal noise ~1e-6 (adapter-hub). */
export function fusionParamSpecs(layer: number, d: number, rng: Rng, group: ParamGroup): ParamSpec[] {
  const n = fusionNames(layer);
  const v = rng.fillNormal(new Float32Array(d * d), 1e-6);
  for (let i = 0; i < d; i++) v[i * d + i] = 1;
  return [
    { name: n.q, shape: [d, d], group, data: rng.fillNormal(new Float32Array(d * d), 0.02) },
    { name: n.k, shape: [d, d], group, data: rng.fillNormal(new Float32Array(d * d), 0.02) },
    { name: n.v, shape: [d, d], group, data: v },
  ];
}

/** The task adapters' stacked outputs (N, rows, d) as one Var; its gradient splits back per adapter. */
function stack(tape: Tape, parts: Var[], name: string): Var {
  const gpu = tape.gpu;
  const [rows, d] = [parts[0].value.size / parts[0].shape[parts[0].shape.length - 1], parts[0].shape[parts[0].shape.length - 1]];
  const out = tape.temp([parts.length * rows, d], name);
  const slice = (t: Tensor, i: number) => new Tensor(t.buffer, [rows, d], 'f32', t.offset + i * rows * d * 4);
  parts.forEach((p, i) => gpu.copy(p.value, slice(out, i)));
  const needs = tape.needsGrad(...parts);
  const result = new Var(out, needs, false, null, name);
  if (needs) {
    tape.record(`stack:${name}`, () => {
      parts.forEach((p, i) => {
        if (!p.requiresGrad) return;
        const g = tape.temp([rows, d], `d${name}.${i}`);
        gpu.copy(slice(result.grad!, i), g);
        addGradTensor(tape, p, g);
      });
    });
  }
  return result;
}

export interface FusionWeights {
  q: Var;
  k: Var;
  v: Var;
}

/** out = Σ_t softmax_t(Q·h · K·z_t / T)·V·z_t + h over h (rows, d). Returns the attention too. */
export function applyFusion(tape: Tape, h: Var, adapters: AdapterWeights[], w: FusionWeights, temperature: number, name = ''): { out: Var; probs: Tensor } {
  const gpu = tape.gpu;
  const d = h.shape[h.shape.length - 1];
  const rows = h.value.size / d;
  const zs = adapters.map((a, t) => linear(tape, linear(tape, h, a.wDown, a.bDown, { gelu: true, name: `${name}.${t}.down` }), a.wUp, a.bUp, { name: `${name}.${t}.up` }));
  const z = stack(tape, zs, `${name}.z`);
  const q = linear(tape, h, w.q, null, { name: `${name}.query` });
  const kz = linear(tape, z, w.k, null, { name: `${name}.key` });
  const vz = linear(tape, z, w.v, null, { name: `${name}.value` });
  const o = { rows, d, n: adapters.length, temperature };
  const { out, probs } = fusionForward(gpu, q.value, kz.value, vz.value, h.value.reshape([rows, d]), o);
  tape.own(out);
  tape.own(probs);
  const needs = tape.needsGrad(h, q, kz, vz);
  const result = new Var(out.reshape(h.shape), needs, false, null, name);
  if (needs) {
    tape.record(`fusion:${name}`, () => {
      const g = fusionBackward(gpu, q.value, kz.value, vz.value, probs, result.grad!, o);
      addGradTensor(tape, q, tape.own(g.dq));
      addGradTensor(tape, kz, tape.own(g.dkz));
      addGradTensor(tape, vz, tape.own(g.dvz));
      addGradShared(tape, h, result.grad!); // the residual
    });
  }
  return { out: result, probs };
}

/** λ·‖I − V‖²: adds its gradient into V's and its value into `loss` (both on the GPU). */
export function fusionRegularizer(tape: Tape, v: Var, lambda: number, loss: Tensor): void {
  const d = v.shape[0];
  if (v.requiresGrad) identityRegBackward(tape.gpu, v.value, v.grad!, d, lambda);
  identityRegValue(tape.gpu, v.value, loss, d, lambda);
}
