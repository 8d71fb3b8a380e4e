// Multi-task inference with AdapterDrop (REFERENCE.md, "AdapterDrop"): several task adapters over
// one frozen base run in one pass. With the adapters of the lowest n layers dropped, those layers
// are the same for every task, so they are computed once and shared; only layers n…L−1 (and the
// heads) run per task. `shared: false` runs each task's whole model separately — the baseline the
// speed-up is measured against. The outputs are identical either way (tests check it).
import type { Gpu } from '../gpu/runtime';
import { crossEntropyForward } from '../ops/loss';
import { createInputs, destroyInputs, writeInputs, type BertModel, type ModelInputs, type PassOptions } from '../model/bert';
import { Tape } from '../model/tape';
import type { HostBatch } from './trainer';

export class MultiTaskInference {
  readonly inputs: ModelInputs;
  private tape: Tape;

  constructor(
    readonly gpu: Gpu,
    /** one model per task: the same frozen base, each with its own adapters and head */
    readonly tasks: BertModel[],
    batchSize: number,
    seqLen: number,
  ) {
    if (tasks.length === 0) throw new Error('multi-task inference needs at least one task model');
    const c = tasks[0].config;
    for (const m of tasks) {
      if (m.config.hiddenSize !== c.hiddenSize || m.config.numLayers !== c.numLayers || m.config.vocabSize !== c.vocabSize) {
        throw new Error('multi-task inference needs task models over the same base model');
      }
    }
    this.inputs = createInputs(gpu, batchSize, seqLen);
    this.tape = new Tape(gpu);
    this.tape.enabled = false;
  }

  /**
   * Class probabilities of every task for one batch, with the adapters of layers < n dropped.
   * Records everything into one submission and reads the results back.
   */
  async run(batch: HostBatch, n: number, shared: boolean): Promise<Float32Array[]> {
    const { gpu, tape, inputs } = this;
    const L = this.tasks[0].config.numLayers;
    writeInputs(gpu, inputs, batch);
    const o: PassOptions = { train: false, seed: 0, droppedLayers: n };
    try {
      const probs = [];
      if (shared) {
        const lower = this.tasks[0].embed(tape, inputs, o);
        this.tasks[0].encode(tape, lower, 0, n);
        for (const model of this.tasks) {
          const state = { ...lower, plugins: [] };
          model.encode(tape, state, n, L);
          probs.push(this.softmax(model, model.classify(tape, state).value));
        }
      } else {
        for (const model of this.tasks) probs.push(this.softmax(model, model.forward(tape, inputs, o).value));
      }
      gpu.flush();
      const out: Float32Array[] = [];
      for (const p of probs) out.push(await gpu.read(p));
      return out;
    } finally {
      tape.reset();
    }
  }

  private softmax(model: BertModel, logits: import('../gpu/tensor').Tensor) {
    const { probs, loss } = crossEntropyForward(this.gpu, logits, this.inputs.labels, { batch: this.inputs.batch, classes: model.config.numLabels });
    this.tape.own(loss);
    return this.tape.own(probs);
  }

  /** Mean ms per batch over `batches` (GPU work and the readback included), after one warm-up. */
  async time(batch: HostBatch, n: number, shared: boolean, batches: number): Promise<number> {
    await this.run(batch, n, shared);
    const t0 = performance.now();
    for (let i = 0; i < batches; i++) await this.run(batch, n, shared);
    return (performance.now() - t0) / batches;
  }

  destroy(): void {
    destroyInputs(this.gpu, this.inputs);
  }
}
