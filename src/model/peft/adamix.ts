// AdaMix, mixture of adaptations (REFERENCE.md): every adaptation module becomes M experts.
// Training: for every forward pass and every layer, the down expert i and the up expert j are
// drawn uniformly at random (the whole batch shares them) — no learned router, no balancing loss.
// Consistency: two passes with independent routes; w·[KL(sg(p₂)‖p₁) + KL(sg(p₁)‖p₂)] (train/trainer).
// Inference: the experts' weights are averaged (module merging), so it costs one adapter.
// Sharing: the released recipe shares the up-projection (M down experts, 1 up).
import type { Gpu } from '../../gpu/runtime';
import type { Tensor } from '../../gpu/tensor';
import { matmul } from '../../ops/matmul';
import type { Rng } from '../../train/rng';
import { LORA_TARGETS, layerPrefix, type LoraTarget } from '../config';
import type { ParamGroup, ParamSpec } from '../params';
import { kaimingUniform } from './lora';

export interface ExpertChoice {
  down: number;
  up: number;
}

/** One forward pass's route: per layer, for the adapter variant one choice; for the LoRA variant one per target. */
export interface Route {
  adapter?: ExpertChoice[];
  lora?: Partial<Record<LoraTarget, ExpertChoice>>[];
}

export function adamixNames(layer: number) {
  const p = `${layerPrefix(layer)}.output.adamix`;
  return { wDown: `${p}.down.weight`, bDown: `${p}.down.bias`, wUp: `${p}.up.weight`, bUp: `${p}.up.bias` };
}

export function adamixLoraNames(layer: number, target: LoraTarget) {
  const p = `${layerPrefix(layer)}.${LORA_TARGETS[target]}.adamix_lora`;
  return { a: `${p}.A`, b: `${p}.B` };
}

/** Experts ~ N(0, 0.02), biases 0 (REFERENCE.md). */
export function adamixParamSpecs(layer: number, d: number, m: number, experts: number, sharedUp: boolean, rng: Rng, group: ParamGroup): ParamSpec[] {
  const n = adamixNames(layer);
  const eUp = sharedUp ? 1 : experts;
  const biasGroup: ParamGroup = group === 'frozen' ? 'frozen' : 'noDecay';
  return [
    { name: n.wDown, shape: [experts, m, d], group, data: rng.fillNormal(new Float32Array(experts * m * d), 0.02) },
    { name: n.bDown, shape: [experts, m], group: biasGroup, data: new Float32Array(experts * m) },
    { name: n.wUp, shape: [eUp, d, m], group, data: rng.fillNormal(new Float32Array(eUp * d * m), 0.02) },
    { name: n.bUp, shape: [eUp, d], group: biasGroup, data: new Float32Array(eUp * d) },
  ];
}

/** LoRA variant: A experts kaiming-uniform as LoRA's A, B experts zero, so training starts at the base model. */
export function adamixLoraParamSpecs(layer: number, target: LoraTarget, dIn: number, dOut: number, r: number, experts: number, sharedB: boolean, rng: Rng, group: ParamGroup): ParamSpec[] {
  const n = adamixLoraNames(layer, target);
  const eB = sharedB ? 1 : experts;
  return [
    { name: n.a, shape: [experts, r, dIn], group, data: kaimingUniform(experts * r * dIn, dIn, rng) },
    { name: n.b, shape: [eB, dOut, r], group, data: new Float32Array(eB * dOut * r) },
  ];
}

/** Draw one route: every layer (and every LoRA target) gets independent uniform expert indices. */
export function sampleRoute(rng: Rng, layers: number, o: { kind: 'adamix' | 'adamix_lora'; experts: number; upExperts: number; targets?: LoraTarget[] }): Route {
  if (o.kind === 'adamix') {
    return { adapter: Array.from({ length: layers }, () => ({ down: rng.int(o.experts), up: rng.int(o.upExperts) })) };
  }
  return {
    lora: Array.from({ length: layers }, () => {
      const r: Partial<Record<LoraTarget, ExpertChoice>> = {};
      for (const t of o.targets ?? []) r[t] = { down: rng.int(o.experts), up: rng.int(o.upExperts) };
      return r;
    }),
  };
}

/**
 * Routing statistics: how often each expert was selected, per layer, for the down (A) and up (B)
 * projections. Counted on the host from the routes actually used, so they are exact.
 */
export class RoutingCounts {
  down: number[][];
  up: number[][];
  passes = 0;
  constructor(readonly layers: number, readonly experts: number, readonly upExperts: number) {
    this.down = Array.from({ length: layers }, () => new Array<number>(experts).fill(0));
    this.up = Array.from({ length: layers }, () => new Array<number>(upExperts).fill(0));
  }
  add(route: Route, activeFrom = 0): void {
    this.passes++;
    for (let l = activeFrom; l < this.layers; l++) {
      const choices = route.adapter ? [route.adapter[l]] : Object.values(route.lora?.[l] ?? {});
      for (const c of choices) {
        if (!c) continue;
        this.down[l][c.down]++;
        this.up[l][c.up]++;
      }
    }
  }
  snapshot() {
    return { layers: this.layers, experts: this.experts, upExperts: this.upExperts, passes: this.passes, down: this.down.map((r) => [...r]), up: this.up.map((r) => [...r]) };
  }
}

/**
 * Average a stack of E experts (E, …rest) into `out` (…rest) on the GPU: a (1×E)·(E×rest)
 * product with α = 1/E — module merging without a readback.
 */
export function meanOfExperts(gpu: Gpu, stacked: Tensor, ones: Tensor, out: Tensor): void {
  const e = stacked.shape[0];
  const rest = stacked.size / e;
  matmul(gpu, ones, stacked, { alpha: 1 / e, out, m: 1, n: rest, k: e });
}

export function meanOfExpertsHost(stacked: Float32Array, experts: number): Float32Array {
  const rest = stacked.length / experts;
  const out = new Float32Array(rest);
  for (let e = 0; e < experts; e++) for (let i = 0; i < rest; i++) out[i] += stacked[e * rest + i];
  for (let i = 0; i < rest; i++) out[i] /= experts;
  return out;
}
