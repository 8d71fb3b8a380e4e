// Bottleneck adapters (REFERENCE.md, "Houlsby adapter" and "Pfeiffer adapter"):
//   A(x) = x + W_up·f(W_down·x + b_down) + b_up,   W_down: (m, d), W_up: (d, m)
// Houlsby places one after the attention-output dense and one after the FFN-output dense, both
// before the residual add and LayerNorm; Pfeiffer only the second. The weights are stored stacked
// per expert — (E, m, d), (E, m), (E_up, d, m), (E_up, d) — so AdaMix (peft/adamix.ts) runs the same
// kernels with E > 1 and an expert index; a plain adapter is E = 1 with the leading axis dropped.
import { adapterDownForward, adapterUpForward, adapterBackward } from '../../ops/adapter';
import type { Rng } from '../../train/rng';
import type { ParamSpec, ParamGroup } from '../params';
import { Var, type Tape } from '../tape';

export interface AdapterWeights {
  wDown: Var;
  bDown: Var;
  wUp: Var;
  bUp: Var;
}

export type AdapterSite = 'attention.output' | 'output';

/** Parameter names of the adapter at one site: `bert.encoder.layer.N.<site>.adapter.{down,up}.{weight,bias}`. */
export function adapterNames(layer: number, site: AdapterSite, module = 'adapter') {
  const p = `bert.encoder.layer.${layer}.${site}.${module}`;
  return { wDown: `${p}.down.weight`, bDown: `${p}.down.bias`, wUp: `${p}.up.weight`, bUp: `${p}.up.bias` };
}

/** Near-identity init: weights ~ truncated normal(std 1e-3), biases 0 (Houlsby et al.). */
export function adapterParamSpecs(layer: number, site: AdapterSite, d: number, m: number, rng: Rng, group: ParamGroup): ParamSpec[] {
  const n = adapterNames(layer, site);
  const trunc = (size: number) => {
    const a = new Float32Array(size);
    for (let i = 0; i < size; i++) a[i] = rng.truncNormal(1e-3);
    return a;
  };
  return [
    { name: n.wDown, shape: [m, d], group, data: trunc(m * d) },
    { name: n.bDown, shape: [m], group: group === 'frozen' ? 'frozen' : 'noDecay', data: new Float32Array(m) },
    { name: n.wUp, shape: [d, m], group, data: trunc(d * m) },
    { name: n.bUp, shape: [d], group: group === 'frozen' ? 'frozen' : 'noDecay', data: new Float32Array(d) },
  ];
}

/** Adapter parameters per layer, as REFERENCE.md counts them: 2md + m + d. */
export function adapterParamCount(d: number, m: number): number {
  return 2 * m * d + m + d;
}

/**
 * out = x + W_up[up]·gelu(W_down[down]·x + b_down[down]) + b_up[up] over x (n, d).
 * Fused kernels: down-projection + bias + GELU, then up-projection + bias + residual.
 */
export function applyAdapter(tape: Tape, x: Var, w: AdapterWeights, experts: { down: number; up: number } = { down: 0, up: 0 }, name = ''): Var {
  const gpu = tape.gpu;
  const d = x.shape[x.shape.length - 1];
  const n = x.value.size / d;
  const m = w.wDown.shape[w.wDown.shape.length - 2];
  const o = { n, d, m };
  const x2 = x.value.reshape([n, d]);
  const { pre, h } = adapterDownForward(gpu, x2, w.wDown.value, w.bDown.value, experts.down, o);
  tape.own(pre);
  tape.own(h);
  const y = tape.own(adapterUpForward(gpu, h, w.wUp.value, w.bUp.value, x2, experts.up, o));
  const needs = tape.needsGrad(x, w.wDown, w.bDown, w.wUp, w.bUp);
  const result = new Var(y, needs, false, null, name);
  if (needs) {
    tape.record(`adapter:${name}`, () => {
      const grads = {
        dwDown: w.wDown.requiresGrad ? w.wDown.grad! : undefined,
        dbDown: w.bDown.requiresGrad ? w.bDown.grad! : undefined,
        dwUp: w.wUp.requiresGrad ? w.wUp.grad! : undefined,
        dbUp: w.bUp.requiresGrad ? w.bUp.grad! : undefined,
      };
      const weights = { wDown: w.wDown.value, bDown: w.bDown.value, wUp: w.wUp.value, bUp: w.bUp.value };
      const saved = { x: x2, pre, h };
      if (x.requiresGrad) {
        tape.addGrad(x, (dx, acc) => {
          if (!acc) gpu.fill(dx, 0); // adapterBackward accumulates into dx
          adapterBackward(gpu, saved, result.grad!, weights, experts, o, { ...grads, dx: dx.reshape([n, d]) });
        });
      } else {
        adapterBackward(gpu, saved, result.grad!, weights, experts, o, grads);
      }
    });
  }
  return result;
}
