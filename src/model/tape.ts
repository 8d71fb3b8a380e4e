// Autograd as a tape over GPU ops (micrograd's idea, on buffers): an op records a backward closure
// only when one of its inputs requires a gradient. Frozen weights never require one, so below the
// lowest trainable module nothing is recorded and the backward pass never runs there — AdapterDrop's
// training speed-up falls out of this instead of being special-cased.
//
// Gradients: a parameter's gradient is a view into a flat, pre-zeroed gradient buffer and is only
// ever accumulated into. An activation's gradient is allocated on first use: the first backward
// contribution writes it, later ones accumulate (which one comes first is known while recording).

import type { Gpu } from '../gpu/runtime';
import type { Tensor } from '../gpu/tensor';

export class Var {
  /** gradient tensor; for parameters the persistent view, for activations set during backward */
  grad: Tensor | null;
  constructor(
    readonly value: Tensor,
    readonly requiresGrad: boolean,
    /** parameters own a persistent, pre-zeroed gradient: always accumulate */
    readonly isParam = false,
    grad: Tensor | null = null,
    readonly name = '',
  ) {
    this.grad = grad;
  }
  get shape(): readonly number[] {
    return this.value.shape;
  }
}

export function constant(t: Tensor): Var {
  return new Var(t, false);
}

type Backward = () => void;

export class Tape {
  private entries: Backward[] = [];
  /** tensors allocated during this step (forward and backward), returned to the pool at reset */
  private temps: Tensor[] = [];
  /** ops recorded (tests check that a specialised AdapterDrop records nothing below layer n) */
  recordedOps: string[] = [];
  /** the ops the last completed step recorded (kept across reset for inspection) */
  lastRecordedOps: string[] = [];
  enabled = true;

  constructor(readonly gpu: Gpu) {}

  /** Allocate a step-scoped tensor. */
  temp(shape: readonly number[], name = ''): Tensor {
    const t = this.gpu.empty(shape, 'f32', name);
    this.temps.push(t);
    return t;
  }

  /** Keep a tensor produced by an op (allocated from the pool) until the step ends. */
  own(t: Tensor): Tensor {
    this.temps.push(t);
    return t;
  }

  needsGrad(...inputs: (Var | null | undefined)[]): boolean {
    return this.enabled && inputs.some((v) => v?.requiresGrad);
  }

  record(op: string, backward: Backward): void {
    this.recordedOps.push(op);
    this.entries.push(backward);
  }

  /**
   * Contribute `compute(out, accumulate)` to v's gradient: the first contribution to an activation
   * allocates and writes, later ones (and all contributions to parameters) accumulate.
   */
  addGrad(v: Var, compute: (out: Tensor, accumulate: boolean) => void): void {
    if (!v.requiresGrad) return;
    if (v.grad) {
      compute(v.grad, true);
    } else {
      v.grad = this.temp(v.value.shape, `d${v.name}`);
      compute(v.grad, false);
    }
  }

  /** Run the recorded backward closures in reverse order. */
  backward(): void {
    for (let i = this.entries.length - 1; i >= 0; i--) this.entries[i]();
  }

  /** End of step: forget the tape and return every step-scoped tensor to the pool. */
  reset(): void {
    this.entries = [];
    if (this.recordedOps.length) this.lastRecordedOps = this.recordedOps;
    this.recordedOps = [];
    for (const t of this.temps) this.gpu.release(t);
    this.temps = [];
  }
}
