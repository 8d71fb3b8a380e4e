// The training loop's GPU side: one step = write the batch, forward (one or two AdaMix passes),
// loss, backward over the tape, global-norm clipping and AdamW — all encoded into ONE queue
// submission, with no readback. The loss of each step goes into a small GPU ring that the host
// reads every few steps; a NaN/Inf flag rides along so a diverged run is caught and paused.
import type { Gpu } from '../gpu/runtime';
import { Tensor } from '../gpu/tensor';
import { crossEntropyForward, crossEntropyBackward, consistencyForward, consistencyBackward } from '../ops/loss';
import { sumSquares, nonFiniteFlag } from '../ops/reduce';
import { adamwStep } from '../ops/adamw';
import { addInto } from '../ops/add';
import { BertModel, createInputs, destroyInputs, writeInputs, type ModelInputs, type PassOptions } from '../model/bert';
import { Tape } from '../model/tape';
import type { AdapterDropConfig } from '../model/config';
import { RoutingCounts, sampleRoute, type Route } from '../model/peft/adamix';
import { Rng } from './rng';

export interface TrainConfig {
  batchSize: number;
  seqLen: number;
  lr: number;
  weightDecay: number;
  warmupFraction: number;
  totalSteps: number;
  maxGradNorm: number;
  beta1: number;
  beta2: number;
  eps: number;
  seed: number;
}

export const DEFAULT_TRAIN: TrainConfig = {
  batchSize: 32,
  seqLen: 64,
  lr: 1e-3,
  weightDecay: 0.01,
  warmupFraction: 0.06,
  totalSteps: 300,
  maxGradNorm: 1,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  seed: 42,
};

/** Linear warm-up to `lr`, then linear decay to 0 at `totalSteps` (HF's linear schedule). */
export function learningRate(step: number, c: Pick<TrainConfig, 'lr' | 'warmupFraction' | 'totalSteps'>): number {
  const warmup = Math.round(c.warmupFraction * c.totalSteps);
  if (step < warmup) return (c.lr * (step + 1)) / warmup;
  return c.lr * Math.max(0, (c.totalSteps - step) / Math.max(1, c.totalSteps - warmup));
}

export interface HostBatch {
  ids: Uint32Array;
  typeIds: Uint32Array;
  mask: Float32Array;
  labels: Uint32Array;
}

export interface StepRecord {
  step: number;
  loss: number;
  consistency: number;
  lr: number;
  droppedLayers: number;
}

const RING = 256;

/** AdapterDrop's n for one step: fixed (specialised), uniform over {0…L−1} (robust), or 0. */
export function drawDroppedLayers(d: AdapterDropConfig, layers: number, rng: Rng): number {
  if (d.mode === 'specialized') return d.n;
  if (d.mode === 'robust') return rng.int(layers);
  return 0;
}

export class Trainer {
  readonly inputs: ModelInputs;
  readonly tape: Tape;
  readonly rng: Rng;
  step = 0;
  routing: RoutingCounts | null = null;
  /** AdapterDrop robust mode: how often each n was drawn */
  droppedHistogram: number[];
  private ring: Tensor;
  private flag: Tensor;
  private normSq: Tensor;
  private pending: { step: number; lr: number; droppedLayers: number }[] = [];

  constructor(
    readonly gpu: Gpu,
    readonly model: BertModel,
    readonly config: TrainConfig,
  ) {
    this.inputs = createInputs(gpu, config.batchSize, config.seqLen);
    this.tape = new Tape(gpu);
    this.rng = new Rng(config.seed ^ 0x5eed);
    this.ring = gpu.zeros([RING * 2], 'f32', 'metrics.ring');
    this.flag = gpu.zeros([1], 'u32', 'metrics.nonfinite');
    this.normSq = gpu.zeros([1], 'f32', 'grad.norm_sq');
    const m = model.method;
    if (m.kind === 'adamix') routingFor(this, model, m.experts, m.sharedUp ? 1 : m.experts);
    if (m.kind === 'adamix_lora') routingFor(this, model, m.experts, m.sharedB ? 1 : m.experts);
    this.droppedHistogram = new Array<number>(model.config.numLayers).fill(0);
  }

  private drawDropped(): number {
    return drawDroppedLayers(this.model.adapterDrop, this.model.config.numLayers, this.rng);
  }

  private sampleRoute(rng: Rng = this.rng): Route | undefined {
    const m = this.model.method;
    if (m.kind === 'adamix') return sampleRoute(rng, this.model.config.numLayers, { kind: 'adamix', experts: m.experts, upExperts: m.sharedUp ? 1 : m.experts });
    if (m.kind === 'adamix_lora') {
      return sampleRoute(rng, this.model.config.numLayers, { kind: 'adamix_lora', experts: m.experts, upExperts: m.sharedB ? 1 : m.experts, targets: m.targets });
    }
    return undefined;
  }

  private consistencyWeight(): number {
    const m = this.model.method;
    return m.kind === 'adamix' || m.kind === 'adamix_lora' ? m.consistencyWeight : 0;
  }

  /**
   * Record one training step and submit it. `routes` overrides the sampled AdaMix routes (tests
   * compare against fixtures with given routes).
   */
  trainStep(batch: HostBatch, opts: { routes?: Route[]; train?: boolean; skipOptimizer?: boolean } = {}): void {
    const { gpu, model, tape, inputs, config } = this;
    const c = model.config;
    writeInputs(gpu, inputs, batch);
    model.store.zeroGrads();
    const droppedLayers = this.drawDropped();
    this.droppedHistogram[droppedLayers]++;
    const w = this.consistencyWeight();
    const twoPasses = w > 0;
    const route1 = opts.routes?.[0] ?? this.sampleRoute();
    const route2 = twoPasses ? (opts.routes?.[1] ?? this.sampleRoute()) : undefined;
    const base: PassOptions = { train: opts.train ?? true, seed: this.rng.nextU32(), droppedLayers };
    const logits1 = model.forward(tape, inputs, { ...base, route: route1 });
    if (route1) this.routing?.add(route1, droppedLayers);
    const shape = { batch: inputs.batch, classes: c.numLabels };
    const { loss, probs } = crossEntropyForward(gpu, logits1.value, inputs.labels, shape);
    tape.own(loss);
    tape.own(probs);
    logits1.grad = tape.own(crossEntropyBackward(gpu, probs, inputs.labels, shape));
    let cons: Tensor | null = null;
    if (twoPasses) {
      const logits2 = model.forward(tape, inputs, { ...base, seed: this.rng.nextU32(), route: route2 });
      if (route2) this.routing?.add(route2, droppedLayers);
      cons = tape.own(consistencyForward(gpu, logits1.value, logits2.value, { ...shape, weight: w }));
      const d = consistencyBackward(gpu, logits1.value, logits2.value, { ...shape, weight: w });
      addInto(gpu, logits1.grad, tape.own(d.d1), logits1.grad);
      logits2.grad = tape.own(d.d2);
    }
    tape.backward();
    model.regularize(tape, loss);
    const lr = learningRate(this.step, config);
    if (!opts.skipOptimizer) {
      const arenas = [...model.store.arenas.values()].filter((a) => a.grads);
      sumSquares(gpu, arenas.map((a) => a.grads!), this.normSq);
      for (const a of arenas) {
        adamwStep(gpu, { params: a.values, grads: a.grads!, m: a.m!, v: a.v! }, {
          lr, beta1: config.beta1, beta2: config.beta2, eps: config.eps,
          weightDecay: a.group === 'decay' ? config.weightDecay : 0,
          step: this.step + 1, maxGradNorm: config.maxGradNorm, gradNormSq: this.normSq,
        });
      }
      model.invalidateMerged();
    }
    const slot = (this.step % RING) * 2;
    gpu.copy(loss, this.ringView(slot));
    if (cons) gpu.copy(cons, this.ringView(slot + 1));
    else gpu.fill(this.ringView(slot + 1), 0);
    nonFiniteFlag(gpu, loss, this.flag);
    gpu.flush();
    tape.reset();
    this.pending.push({ step: this.step, lr, droppedLayers });
    this.step++;
    if (this.pending.length >= RING) throw new Error('readMetrics() must be called at least every 256 steps');
  }

  private ringView(slot: number): Tensor {
    return new Tensor(this.ring.buffer, [1], 'f32', slot * 4, 'ring');
  }

  /** Read the losses of the steps since the last call (one readback). */
  async readMetrics(): Promise<{ records: StepRecord[]; nonFinite: boolean }> {
    if (this.pending.length === 0) return { records: [], nonFinite: false };
    const ring = await this.gpu.read(this.ring);
    const flag = await this.gpu.readU32(this.flag);
    const records = this.pending.map((p) => {
      const slot = (p.step % RING) * 2;
      return { step: p.step, loss: ring[slot], consistency: ring[slot + 1], lr: p.lr, droppedLayers: p.droppedLayers };
    });
    this.pending = [];
    return { records, nonFinite: flag[0] !== 0 };
  }

  /** Clear the NaN flag (after the user resumes a paused run). */
  clearNonFinite(): void {
    this.gpu.fill(this.flag, 0);
  }

  /** Forward only, dropout off; returns class probabilities of the batch's rows (batch, labels). */
  async predictBatch(
    batch: HostBatch,
    o: { merged?: boolean; route?: Route; droppedLayers?: number } = {},
  ): Promise<{ logits: Float32Array; probs: Float32Array; loss: number }> {
    const { gpu, model, inputs } = this;
    const c = model.config;
    writeInputs(gpu, inputs, batch);
    const tape = this.tape;
    tape.enabled = false;
    try {
      const logits = model.forward(tape, inputs, { train: false, seed: 0, route: o.route, merged: o.merged, droppedLayers: o.droppedLayers ?? 0 });
      const { loss, probs } = crossEntropyForward(gpu, logits.value, inputs.labels, { batch: inputs.batch, classes: c.numLabels });
      tape.own(loss);
      tape.own(probs);
      const hostLogits = await gpu.read(logits.value);
      const hostProbs = await gpu.read(probs);
      const l = await gpu.read(loss);
      return { logits: hostLogits, probs: hostProbs, loss: l[0] };
    } finally {
      tape.enabled = true;
      tape.reset();
    }
  }

  /** Default AdaMix inference mode of the method (merged experts, or a sampled route). */
  inferenceOptions(rng?: Rng): { merged?: boolean; route?: Route } {
    const m = this.model.method;
    if (m.kind !== 'adamix' && m.kind !== 'adamix_lora') return {};
    if (m.inference === 'merged') return { merged: true };
    return { route: this.sampleRoute(rng ?? new Rng(this.config.seed)) };
  }

  destroy(): void {
    destroyInputs(this.gpu, this.inputs);
    for (const t of [this.ring, this.flag, this.normSq]) this.gpu.release(t);
  }
}

function routingFor(t: Trainer, model: BertModel, experts: number, upExperts: number): void {
  t.routing = new RoutingCounts(model.config.numLayers, experts, upExperts);
}
