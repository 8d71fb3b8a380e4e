// The engine the page drives: one object that owns the GPU, the tokenizer, the data, the model and
// the trainer. DOM-free: the browser's worker exposes it through comlink (worker.ts); tests,
// benchmarks and scripts drive it directly in headless Chromium.
import { Gpu } from '../gpu/runtime';
import { WebGpuUnavailableError, type AdapterSummary } from '../gpu/device';
import { WordPieceTokenizer } from '../data/wordpiece';
import { encodeSplit, BatchIterator, evalBatches, type EncodedSplit } from '../data/batch';
import type { Dataset } from '../data/datasets';
import { BertModel } from '../model/bert';
import type { AdapterDropConfig, BertConfig, MethodConfig } from '../model/config';
import { Trainer, DEFAULT_TRAIN, type TrainConfig } from './trainer';
import { Rng } from './rng';
import { tuneMatmuls } from '../ops/matmul';
import type { Route } from '../model/peft/adamix';

export type InitResult = { ok: true; adapter: AdapterSummary } | { ok: false; reason: string; message: string };

export interface RunConfig {
  method: MethodConfig;
  adapterDrop: AdapterDropConfig;
  train: TrainConfig;
  /** evaluate on the dev split every k steps (0: never during training) */
  evalEvery: number;
}

export interface StepMetric {
  kind: 'step';
  step: number;
  loss: number;
  consistency: number;
  lr: number;
  droppedLayers: number;
  /** wall time per step over the last read window (GPU work included) */
  stepMs: number;
  tokensPerS: number;
}

export interface EvalMetric {
  kind: 'eval';
  step: number;
  split: 'dev' | 'test';
  loss: number;
  accuracy: number;
  macroF1: number;
  ms: number;
  mode?: string;
}

export interface StatusMetric {
  kind: 'status';
  step: number;
  state: 'paused' | 'finished' | 'error';
  message?: string;
}

export type Metric = StepMetric | EvalMetric | StatusMetric;

export interface EvalResult {
  loss: number;
  accuracy: number;
  macroF1: number;
  ms: number;
  /** ms per batch of forward work (GPU included) */
  msPerBatch: number;
}

/** Accuracy and macro-F1 over predictions. */
export function classificationMetrics(pred: ArrayLike<number>, gold: ArrayLike<number>, classes: number): { accuracy: number; macroF1: number } {
  let correct = 0;
  const tp = new Array<number>(classes).fill(0), fp = [...tp], fn = [...tp];
  for (let i = 0; i < pred.length; i++) {
    if (pred[i] === gold[i]) {
      correct++;
      tp[gold[i]]++;
    } else {
      fp[pred[i]]++;
      fn[gold[i]]++;
    }
  }
  let f1 = 0;
  for (let c = 0; c < classes; c++) {
    const denom = 2 * tp[c] + fp[c] + fn[c];
    f1 += denom === 0 ? 0 : (2 * tp[c]) / denom;
  }
  return { accuracy: pred.length ? correct / pred.length : 0, macroF1: f1 / classes };
}

export class Engine {
  gpu: Gpu | null = null;
  tokenizer: WordPieceTokenizer | null = null;
  baseConfig: BertConfig | null = null;
  baseParams: Map<string, Float32Array> | null = null;
  dataset: Dataset | null = null;
  model: BertModel | null = null;
  trainer: Trainer | null = null;
  run: RunConfig | null = null;
  private splits: { train: EncodedSplit; dev: EncodedSplit; test: EncodedSplit } | null = null;
  private iterator: BatchIterator | null = null;
  private metrics: Metric[] = [];
  private paused = false;
  private tuned = false;
  private running = false;

  async init(): Promise<InitResult> {
    try {
      this.gpu ??= await Gpu.create();
      return { ok: true, adapter: this.gpu.summary };
    } catch (e) {
      if (e instanceof WebGpuUnavailableError) return { ok: false, reason: e.reason, message: e.message };
      return { ok: false, reason: 'error', message: String(e) };
    }
  }

  private requireGpu(): Gpu {
    if (!this.gpu) throw new Error('the engine is not initialised: call init() first');
    return this.gpu;
  }

  /** A base model: config, parameters by Hugging Face name, vocabulary text. */
  loadModel(config: BertConfig, params: Map<string, Float32Array> | Record<string, Float32Array>, vocab: string): { parameters: number } {
    const map = params instanceof Map ? params : new Map(Object.entries(params));
    const tok = WordPieceTokenizer.fromVocabText(vocab);
    if (tok.vocabSize !== config.vocabSize) {
      throw new Error(`the vocabulary has ${tok.vocabSize} pieces but the model expects ${config.vocabSize}`);
    }
    this.baseConfig = config;
    this.baseParams = map;
    this.tokenizer = tok;
    this.disposeModel();
    this.splits = null;
    let n = 0;
    for (const v of map.values()) n += v.length;
    return { parameters: n };
  }

  loadDataset(ds: Dataset): { train: number; dev: number; test: number; classes: string[] } {
    if (ds.classes.length < 2) throw new Error(`dataset ${ds.name} has ${ds.classes.length} class; at least 2 are needed`);
    if (ds.train.length === 0 || ds.dev.length === 0) throw new Error(`dataset ${ds.name} has an empty train or dev split`);
    this.dataset = ds;
    this.splits = null;
    this.disposeModel();
    return { train: ds.train.length, dev: ds.dev.length, test: ds.test.length, classes: ds.classes };
  }

  private disposeModel(): void {
    this.trainer?.destroy();
    this.model?.destroy();
    this.trainer = null;
    this.model = null;
    this.iterator = null;
  }

  /** Build the model for a method on the loaded base, fresh modules and head, step 0. */
  configure(run: RunConfig): { trainable: number; total: number; trainablePct: number; layers: number } {
    const gpu = this.requireGpu();
    if (!this.baseConfig || !this.baseParams || !this.tokenizer) throw new Error('load a model first');
    if (!this.dataset) throw new Error('load a dataset first');
    const t = run.train;
    if (t.seqLen > this.baseConfig.maxPositions) throw new Error(`sequence length ${t.seqLen} exceeds the model's ${this.baseConfig.maxPositions} positions`);
    if (!(t.batchSize >= 1 && t.batchSize <= 512)) throw new Error(`batch size ${t.batchSize} must be between 1 and 512`);
    if (run.adapterDrop.mode === 'specialized' && !(run.adapterDrop.n >= 0 && run.adapterDrop.n < this.baseConfig.numLayers)) {
      throw new Error(`AdapterDrop n = ${run.adapterDrop.n} must be in 0…${this.baseConfig.numLayers - 1}`);
    }
    this.disposeModel();
    const config: BertConfig = { ...this.baseConfig, numLabels: this.dataset.classes.length };
    // a head trained for another label set is dropped; a matching one is kept
    const base = new Map(this.baseParams);
    const head = base.get('classifier.weight');
    if (head && head.length !== config.numLabels * config.hiddenSize) {
      base.delete('classifier.weight');
      base.delete('classifier.bias');
    }
    const model = BertModel.create(gpu, config, base, run.method, run.adapterDrop, new Rng(t.seed));
    this.model = model;
    this.trainer = new Trainer(gpu, model, t);
    this.run = run;
    if (!this.splits || this.splits.train.seqLen !== t.seqLen) {
      const tok = this.tokenizer;
      this.splits = {
        train: encodeSplit(this.dataset.train, tok, t.seqLen),
        dev: encodeSplit(this.dataset.dev, tok, t.seqLen),
        test: encodeSplit(this.dataset.test, tok, t.seqLen),
      };
    }
    this.iterator = new BatchIterator(this.splits.train, t.batchSize, t.seed);
    this.metrics = [];
    const trainable = model.store.trainableCount();
    const total = model.store.totalCount();
    return { trainable, total, trainablePct: (100 * trainable) / total, layers: config.numLayers };
  }

  private requireTrainer(): Trainer {
    if (!this.trainer || !this.iterator || !this.run) throw new Error('configure a run first');
    return this.trainer;
  }

  pause(): void {
    this.paused = true;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /**
   * Train up to `steps` steps (or until paused, or the schedule's end). Metrics are read back every
   * `readEvery` steps and appended to the stream (`takeMetrics`).
   */
  async train(steps: number, readEvery = 4): Promise<{ step: number; state: 'paused' | 'finished' | 'done' | 'error'; message?: string }> {
    const trainer = this.requireTrainer();
    const run = this.run!;
    if (this.running) throw new Error('already training');
    this.running = true;
    this.paused = false;
    const tokensPerStep = run.train.batchSize * run.train.seqLen;
    let windowStart = performance.now();
    let windowSteps = 0;
    try {
      for (let i = 0; i < steps; i++) {
        if (this.paused) return this.status('paused');
        if (trainer.step >= run.train.totalSteps) return this.status('finished');
        trainer.trainStep(this.iterator!.next());
        windowSteps++;
        if (!this.tuned) {
          // time the matmul variants for this run's shapes once, after the first step saw them
          this.tuned = true;
          await tuneMatmuls(this.gpu!);
          windowStart = performance.now(); // the step time excludes the one-off tuning
        }
        const last = i === steps - 1 || trainer.step >= run.train.totalSteps;
        if (windowSteps >= readEvery || last) {
          const { records, nonFinite } = await trainer.readMetrics();
          const now = performance.now();
          const stepMs = (now - windowStart) / windowSteps;
          for (const r of records) {
            this.metrics.push({ kind: 'step', ...r, stepMs, tokensPerS: (tokensPerStep / stepMs) * 1000 });
          }
          windowStart = now;
          windowSteps = 0;
          if (nonFinite) {
            const bad = records.find((r) => !Number.isFinite(r.loss));
            const at = bad?.step ?? trainer.step - 1;
            trainer.clearNonFinite();
            this.paused = true;
            return this.status('error', `the loss became ${bad ? bad.loss : 'NaN/Inf'} at step ${at + 1}: training paused (lower the learning rate or enable gradient clipping)`);
          }
        }
        if (run.evalEvery > 0 && trainer.step % run.evalEvery === 0) {
          await this.evaluate('dev');
          windowStart = performance.now();
        }
      }
      return { step: trainer.step, state: 'done' };
    } finally {
      this.running = false;
    }
  }

  private status(state: 'paused' | 'finished' | 'error', message?: string) {
    const step = this.trainer?.step ?? 0;
    this.metrics.push({ kind: 'status', step, state, message });
    return { step, state, message };
  }

  /** Metrics since the last call. */
  takeMetrics(): Metric[] {
    const m = this.metrics;
    this.metrics = [];
    return m;
  }

  /** Loss, accuracy and macro-F1 over a split; AdaMix uses its configured inference mode unless given. */
  async evaluate(split: 'dev' | 'test' = 'dev', o: { merged?: boolean; route?: Route; droppedLayers?: number; mode?: string; record?: boolean } = {}): Promise<EvalResult> {
    const trainer = this.requireTrainer();
    const data = this.splits![split];
    const t0 = performance.now();
    const inference = o.merged !== undefined || o.route ? { merged: o.merged, route: o.route } : trainer.inferenceOptions();
    const dropped = o.droppedLayers ?? (this.run!.adapterDrop.mode === 'specialized' ? this.run!.adapterDrop.n : 0);
    const classes = this.model!.config.numLabels;
    const pred: number[] = [], gold: number[] = [];
    let lossSum = 0, batches = 0;
    for (const b of evalBatches(data, this.run!.train.batchSize)) {
      const r = await trainer.predictBatch(b, { ...inference, droppedLayers: dropped });
      batches++;
      for (let i = 0; i < b.size; i++) {
        let best = 0;
        for (let c = 1; c < classes; c++) if (r.probs[i * classes + c] > r.probs[i * classes + best]) best = c;
        pred.push(best);
        gold.push(b.labels[i]);
        lossSum += -Math.log(Math.max(r.probs[i * classes + b.labels[i]], 1e-30));
      }
    }
    const ms = performance.now() - t0;
    const m = classificationMetrics(pred, gold, classes);
    const res = { loss: lossSum / Math.max(1, pred.length), ...m, ms, msPerBatch: ms / Math.max(1, batches) };
    if (o.record !== false) this.metrics.push({ kind: 'eval', step: trainer.step, split, ...res, mode: o.mode });
    return res;
  }

  /** Class probabilities of one text (or pair) under the current model, with its WordPiece tokens. */
  async predict(text: string, pair?: string | null): Promise<{ tokens: string[]; probs: number[]; classes: string[] }> {
    const trainer = this.requireTrainer();
    const tok = this.tokenizer!;
    const { batchSize, seqLen } = this.run!.train;
    const enc = tok.encode(text, pair ?? null, { maxLength: seqLen, padding: true });
    const ids = new Uint32Array(batchSize * seqLen), typeIds = new Uint32Array(batchSize * seqLen), mask = new Float32Array(batchSize * seqLen);
    for (let b = 0; b < batchSize; b++) {
      ids.set(enc.ids, b * seqLen);
      typeIds.set(enc.typeIds, b * seqLen);
      mask.set(enc.mask, b * seqLen);
    }
    const r = await trainer.predictBatch({ ids, typeIds, mask, labels: new Uint32Array(batchSize) }, {
      ...trainer.inferenceOptions(),
      droppedLayers: this.run!.adapterDrop.mode === 'specialized' ? this.run!.adapterDrop.n : 0,
    });
    const classes = this.model!.config.numLabels;
    return { tokens: enc.tokens, probs: Array.from(r.probs.slice(0, classes)), classes: this.dataset!.classes };
  }

  /** AdaMix: how often each expert was selected, per layer (down and up). */
  routingCounts() {
    return this.trainer?.routing?.snapshot() ?? null;
  }

  /** AdapterDrop at inference: for each n = 0…L, dev accuracy and ms per batch. */
  async measureAdapterDrop(split: 'dev' | 'test' = 'dev'): Promise<{ n: number; accuracy: number; msPerBatch: number }[]> {
    const L = this.requireTrainer().model.config.numLayers;
    const rows: { n: number; accuracy: number; msPerBatch: number }[] = [];
    await this.evaluate(split, { droppedLayers: 0, record: false }); // warm-up: pipelines and autotune
    for (let n = 0; n <= L; n++) {
      const r = await this.evaluate(split, { droppedLayers: n, record: false });
      rows.push({ n, accuracy: r.accuracy, msPerBatch: r.msPerBatch });
    }
    return rows;
  }

  /** Parameters by name (trainable only, or all). */
  async exportParams(which: 'trainable' | 'all' = 'trainable'): Promise<{ name: string; shape: number[]; data: Float32Array }[]> {
    const model = this.requireTrainer().model;
    const values = await model.store.read(which === 'all' ? undefined : (p) => p.group !== 'frozen');
    return [...values].map(([name, data]) => ({ name, shape: model.store.params.get(name)!.shape, data }));
  }

  defaultTrain(): TrainConfig {
    return { ...DEFAULT_TRAIN };
  }
}
