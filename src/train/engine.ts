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
import { sampleRoute, meanOfExpertsHost, type Route } from '../model/peft/adamix';
import { mergeLoraHost } from '../model/peft/lora';
import { bertParamShapes, initBaseParam } from '../model/bert';
import { LORA_TARGETS as MODEL_LORA_PATHS, peftTargetName, type LoraTarget } from '../model/config';
import { loadBuiltinDataset, splitDataset } from '../data/datasets';
import { importExamples } from '../data/import';
import { fetchBertCheckpoint, loadBertCheckpoint, resolveHfModelUrl, type BertCheckpoint, type BertConfig as HfBertConfig } from '../io/hf';
import { exportAdapterModules, exportHfCheckpoint, exportPeftLora } from '../io/export';
import { openStore, type Checkpoint, type RunStore } from '../io/persist';
import {
  checkFits, fusionBaseParams, FusionAttentionProbe, matchingHead, MAX_SAVED_DEV, measureMultitask, sentenceBatch, summarize, taskAdapterFromModel, taskNameProblem,
  type FusionAttentionResult, type MultitaskResult, type TaskAdapter, type TaskAdapterSummary,
} from './compose';

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
    if (run.method.kind === 'fusion') this.addFusionAdapters(base, run.method); // AdapterFusion stage 2 (issue 7)
    const model = BertModel.create(gpu, config, base, run.method, run.adapterDrop, new Rng(t.seed));
    if (run.method.kind === 'fusion') this.startFusionHead(model, run.method);
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
  // ---- page-facing loading, AdaMix route evaluation and exports (issue 6) ----------------------
  // These wrap the io/ and data/ libraries so the page only ever sends bytes or URLs and receives
  // summaries and files: parsing, tokenizing and merging all happen here, in the worker.

  /** What the loaded base model is, for the page and for the exports' base_model field. */
  modelInfo: ModelInfo | null = null;
  private vocabText: string | null = null;

  private adoptCheckpoint(ck: BertCheckpoint, vocab: string | undefined, info: Omit<ModelInfo, 'parameters' | 'config'>): ModelInfo {
    const vocabText = ck.vocab ?? vocab;
    if (!vocabText) throw new Error(`${info.source} has no vocab.txt, and none was given`);
    const { parameters } = this.loadModel(ck.config, ck.params, vocabText);
    this.vocabText = vocabText;
    this.modelInfo = { ...info, parameters, config: ck.config };
    return this.modelInfo;
  }

  /**
   * The shipped default: the first entry of `${baseUrl}models/index.json`. Without one (a checkout
   * before the pretrained mini-BERT exists) a small randomly initialised BERT over the shipped
   * vocabulary, and the info says so, so that Train still works offline on first click.
   */
  async loadDefaultModel(baseUrl: string): Promise<ModelInfo> {
    const indexUrl = `${baseUrl}models/index.json`;
    const res = await fetch(indexUrl).catch(() => null);
    const isJson = res?.ok && !(res.headers.get('content-type') ?? '').includes('text/html'); // dev servers answer 404s with index.html
    if (res && isJson) {
      const index = (await res.json()) as ModelIndexEntry[];
      if (!Array.isArray(index) || index.length === 0) throw new Error(`${indexUrl} lists no models`);
      const entry = index[0];
      const dir = entry.path ?? entry.dir ?? entry.id;
      // entries name their folder from the site's root (public/), e.g. "models/mini-bert/"
      const url = new URL(dir.replace(/\/+$/, ''), new URL(baseUrl, self.location.href)).href;
      const ck = await fetchBertCheckpoint(url);
      return this.adoptCheckpoint(ck, undefined, { source: `default:${entry.id}`, name: entry.name ?? entry.id, description: entry.description ?? '', pretrained: true });
    }
    const vocab = await (await fetch(`${baseUrl}vocab.txt`)).text();
    return this.loadRandomModel(vocab);
  }

  /** A randomly initialised BERT (HF init) over `vocab`: the fallback when no pretrained model is shipped. */
  loadRandomModel(vocab: string, over: Partial<BertConfig> = {}, seed = 1): ModelInfo {
    const pieces = WordPieceTokenizer.fromVocabText(vocab).vocabSize;
    const config: HfBertConfig = {
      vocabSize: pieces, hiddenSize: 64, numLayers: 2, numHeads: 4, intermediateSize: 256, maxPositions: 128, typeVocabSize: 2,
      layerNormEps: 1e-12, numLabels: 2, hiddenDropout: 0.1, attentionDropout: 0.1, hiddenAct: 'gelu', modelType: 'bert', ...over,
    };
    const rng = new Rng(seed);
    const params = new Map<string, Float32Array>();
    for (const [name, shape] of bertParamShapes(config)) params.set(name, initBaseParam(name, shape, rng));
    return this.adoptCheckpoint({ config, params, missing: [], unexpected: [] }, vocab, {
      source: 'random-init', name: 'random-init mini-BERT', pretrained: false,
      description: `no pretrained model is shipped in this build: a randomly initialised ${config.numLayers}-layer BERT (d = ${config.hiddenSize}); it learns, but slower than a pretrained one`,
    });
  }

  /** A checkpoint by hub id or URL; `fallbackVocabUrl` serves checkpoints that ship no vocab.txt. */
  async loadModelFromUrl(urlOrId: string, fallbackVocabUrl?: string, onProgress?: (loaded: number, total: number) => void): Promise<ModelInfo> {
    const base = resolveHfModelUrl(urlOrId);
    const ck = await fetchBertCheckpoint(base, undefined, onProgress);
    let vocab: string | undefined;
    if (!ck.vocab && fallbackVocabUrl) vocab = await (await fetch(fallbackVocabUrl)).text();
    return this.adoptCheckpoint(ck, vocab, { source: urlOrId.trim(), name: urlOrId.trim(), description: `from ${base}`, pretrained: true });
  }

  /** A checkpoint from local files (config.json, model.safetensors, vocab.txt). */
  loadModelFromFiles(files: { config: string; weights: Uint8Array | ArrayBuffer; vocab?: string; name?: string }, fallbackVocab?: string): ModelInfo {
    const ck = loadBertCheckpoint({ config: files.config, weights: files.weights, vocab: files.vocab });
    const name = files.name ?? 'local files';
    return this.adoptCheckpoint(ck, fallbackVocab, { source: name, name, description: 'loaded from local files', pretrained: true });
  }

  /** A built-in dataset (public/data), split with `seed`. */
  async loadBuiltin(id: string, baseUrl: string, seed: number): Promise<DatasetSummary> {
    const ds = await loadBuiltinDataset(id, `${baseUrl}data/`, seed);
    return { id: ds.id, name: ds.name, description: ds.description, ...this.loadDataset(ds), warnings: [] };
  }

  /**
   * A user's CSV/TSV/JSONL file. Everything is checked before the engine's dataset is replaced, so
   * a bad file throws its line-numbered ImportError message and the previous dataset stays loaded.
   */
  importDataset(bytes: Uint8Array | ArrayBuffer, fileName: string, seed: number): DatasetSummary {
    const imported = importExamples(bytes, fileName);
    const split = splitDataset(imported.examples, seed);
    const ds: Dataset = {
      id: `file:${fileName}`, name: fileName, classes: imported.classes, ...split,
      description: `${imported.examples.length} examples imported from ${fileName} (${imported.format.toUpperCase()}), ${imported.classes.length} classes`,
    };
    return { id: ds.id, name: ds.name, description: ds.description, ...this.loadDataset(ds), warnings: imported.warnings };
  }

  /**
   * AdaMix: dev accuracy of the merged model (expert weights averaged) against `samples` single
   * routes drawn at random — the paper's argument that merging loses nothing against any one route.
   */
  async adamixRouteEval(samples = 3, split: 'dev' | 'test' = 'dev'): Promise<{ merged: number; routes: number[] }> {
    const trainer = this.requireTrainer();
    const m = trainer.model.method;
    if (m.kind !== 'adamix' && m.kind !== 'adamix_lora') throw new Error('route evaluation needs an AdaMix run');
    const merged = await this.evaluate(split, { merged: true, record: false });
    const rng = new Rng(this.run!.train.seed ^ 0xada);
    const up = m.kind === 'adamix' ? (m.sharedUp ? 1 : m.experts) : m.sharedB ? 1 : m.experts;
    const routes: number[] = [];
    for (let i = 0; i < samples; i++) {
      const route = sampleRoute(rng, trainer.model.config.numLayers, { kind: m.kind, experts: m.experts, upExperts: up, targets: m.kind === 'adamix_lora' ? m.targets : undefined });
      routes.push((await this.evaluate(split, { route, record: false })).accuracy);
    }
    return { merged: merged.accuracy, routes };
  }

  private async paramsByName(which: 'trainable' | 'all'): Promise<{ values: Map<string, Float32Array>; shapes: Map<string, number[]> }> {
    const list = await this.exportParams(which);
    return { values: new Map(list.map((p) => [p.name, p.data])), shapes: new Map(list.map((p) => [p.name, p.shape])) };
  }

  private baseModelName(): string {
    return this.modelInfo?.source ?? 'unknown';
  }

  /** LoRA in Hugging Face PEFT's layout (adapter_config.json + adapter_model.safetensors). */
  async exportLora(): Promise<ExportFiles> {
    const m = this.requireTrainer().model.method;
    if (m.kind !== 'lora') throw new Error(`the current run trains ${m.kind}, not LoRA: export the adapter or the full model instead`);
    const { values, shapes } = await this.paramsByName('trainable');
    const files = exportPeftLora(values, shapes, {
      r: m.r, alpha: m.alpha, baseModel: this.baseModelName(),
      targetModules: m.targets.map(peftTargetName),
    });
    return { files };
  }

  /** Houlsby / Pfeiffer / AdaMix modules and the head in the playground's adapter layout; AdaMix merged (expert average) or all experts. */
  async exportAdapters(merged = true): Promise<ExportFiles> {
    const model = this.requireTrainer().model;
    const m = model.method;
    if (m.kind !== 'houlsby' && m.kind !== 'pfeiffer' && m.kind !== 'adamix') {
      throw new Error(`the current run trains ${m.kind}: adapter export is for Houlsby, Pfeiffer and AdaMix runs`);
    }
    const { values, shapes } = await this.paramsByName('trainable');
    const c = model.config;
    if (m.kind === 'adamix' && merged) {
      for (const [name, data] of values) {
        if (!name.includes('.adamix.')) continue;
        // a stacked [E, …] expert tensor (a shared up-projection is a stack of one) → its mean
        const shape = shapes.get(name)!;
        values.set(name, meanOfExpertsHost(data, shape[0]));
        shapes.set(name, shape.slice(1));
      }
    }
    const bottleneck = m.kind === 'houlsby' ? m.bottleneck : m.kind === 'pfeiffer' ? Math.max(1, Math.floor(c.hiddenSize / m.reductionFactor)) : m.bottleneck;
    const files = exportAdapterModules(values, shapes, {
      method: m.kind, base_model: this.baseModelName(), hidden_size: c.hiddenSize, num_layers: c.numLayers, bottleneck,
      num_labels: c.numLabels, labels: this.dataset?.classes, experts: m.kind === 'adamix' ? m.experts : 1,
      shared_up: m.kind === 'adamix' ? m.sharedUp : undefined, merged: m.kind === 'adamix' ? merged : undefined,
      dropped_layers: this.run!.adapterDrop.mode === 'specialized' ? this.run!.adapterDrop.n : 0,
    });
    return { files };
  }

  /**
   * The whole model as a Hugging Face BERT checkpoint. LoRA (and AdaMix-LoRA, experts averaged) is
   * merged into W first (W' = W + (α/r)·B·A); adapters have no place in transformers' BERT and
   * are refused with a pointer to the adapter export.
   */
  async exportFullModel(): Promise<ExportFiles> {
    const model = this.requireTrainer().model;
    const m = model.method;
    if (m.kind === 'houlsby' || m.kind === 'pfeiffer' || m.kind === 'adamix') {
      throw new Error(`a ${m.kind} run adds adapter modules that a Hugging Face BERT checkpoint cannot hold: use "adapter" export instead`);
    }
    const { values, shapes } = await this.paramsByName('all');
    if (m.kind === 'lora' || m.kind === 'adamix_lora') {
      const scale = m.alpha / m.r;
      for (let l = 0; l < model.config.numLayers; l++) {
        for (const t of m.targets as LoraTarget[]) {
          const path = `bert.encoder.layer.${l}.${MODEL_LORA_PATHS[t]}`;
          const w = `${path}.weight`;
          const [aName, bName] = m.kind === 'lora' ? [`${path}.lora_A.weight`, `${path}.lora_B.weight`] : [`${path}.adamix_lora.A`, `${path}.adamix_lora.B`];
          const a = values.get(aName), b = values.get(bName);
          if (!a || !b) continue; // AdapterDrop: layers below n have no trained factors
          const aMean = m.kind === 'lora' ? a : meanOfExpertsHost(a, shapes.get(aName)![0]);
          const bMean = m.kind === 'lora' ? b : meanOfExpertsHost(b, shapes.get(bName)![0]);
          values.set(w, mergeLoraHost(values.get(w)!, aMean, bMean, m.r, scale));
        }
      }
      for (const name of [...values.keys()]) if (/\.(lora_[AB]\.weight|adamix_lora\.[AB])$/.test(name)) values.delete(name);
    }
    const classes = this.dataset?.classes ?? [];
    const config: HfBertConfig = {
      ...model.config, hiddenAct: 'gelu', modelType: 'bert',
      id2label: Object.fromEntries(classes.map((name, i) => [i, name])),
    };
    const files: Record<string, string | Uint8Array> = exportHfCheckpoint(config, values, shapes, this.vocabText ?? undefined);
    return { files };
  }

  /** Resolves when the GPU device is lost (driver reset, tab backgrounded too long, ...). */
  async deviceLost(): Promise<{ reason: string; message: string }> {
    const info = await this.requireGpu().device.lost;
    return { reason: String(info.reason), message: info.message };
  }

  // ---- checkpoints, saved models, device loss (issue 6) ---------------------------------------
  // A run in progress is checkpointed into IndexedDB (trainable parameters, AdamW moments, step,
  // the trainer's random state) every few steps and when it pauses, so that after a lost GPU device
  // a fresh worker rebuilds the same run (configure) and continues it from there (restore): same
  // batches, dropout masks and routes as if nothing had happened. A run's trained weights can also
  // be stored as a Hugging Face checkpoint and loaded back as the base model of new runs.

  private checkpointing: { store: RunStore; runId: string; every: number } | null = null;
  private stores = new Map<string, Promise<RunStore>>();
  /** step of the last checkpoint written or restored for the current run (null: none yet) */
  lastCheckpointStep: number | null = null;
  /** why the last checkpoint could not be written (training goes on without it) */
  checkpointError: string | null = null;

  private runStoreFor(dbName?: string): Promise<RunStore> {
    const key = dbName ?? '';
    let s = this.stores.get(key);
    if (!s) {
      s = openStore(dbName);
      s.catch(() => this.stores.delete(key)); // a failed open is retried next time
      this.stores.set(key, s);
    }
    return s;
  }

  /** The setup a checkpoint belongs to: restoring into any other setup is refused. */
  private runKey(): string {
    const r = this.run!;
    return JSON.stringify({ method: r.method, adapterDrop: r.adapterDrop, train: r.train, labels: this.dataset?.classes.length ?? 0 });
  }

  /** The current run's state: everything needed to continue it on a fresh device. */
  async checkpoint(): Promise<Checkpoint> {
    const trainer = this.requireTrainer();
    const gpu = this.requireGpu();
    const store = trainer.model.store;
    const params: Checkpoint['params'] = [];
    const optimizer: NonNullable<Checkpoint['optimizer']> = [];
    for (const [group, a] of store.arenas) {
      if (group === 'frozen' || !a.m || !a.v) continue; // frozen weights come back with the base model
      const host = await gpu.read(a.values);
      for (const p of store.params.values()) if (p.group === group) params.push({ name: p.name, shape: p.shape, data: host.slice(p.offset, p.offset + p.size) });
      optimizer.push({ name: `m.${group}`, data: await gpu.read(a.m) }, { name: `v.${group}`, data: await gpu.read(a.v) });
    }
    const state: CheckpointState = {
      version: 1, run: this.runKey(), rng: trainer.rng.getState(),
      routing: trainer.routing?.snapshot() ?? null, droppedHistogram: [...trainer.droppedHistogram],
    };
    return { step: trainer.step, params, optimizer, rng: state };
  }

  /** Puts a checkpoint of this run's setup into the configured run (after `configure`). */
  restoreCheckpoint(cp: Checkpoint): void {
    const trainer = this.requireTrainer();
    const gpu = this.requireGpu();
    const state = cp.rng as CheckpointState | undefined;
    if (!state || state.version !== 1) throw new Error('the checkpoint holds no trainer state: it was written by another version of the playground');
    if (state.run !== this.runKey()) throw new Error('the checkpoint belongs to another setup (method, AdapterDrop, training numbers or label count differ)');
    if (!(cp.step >= 0 && cp.step <= this.run!.train.totalSteps)) throw new Error(`checkpoint step ${cp.step} is outside the schedule's 0…${this.run!.train.totalSteps}`);
    const store = trainer.model.store;
    const given = new Map(cp.params.map((p) => [p.name, p.data]));
    for (const p of store.trainable()) {
      const data = given.get(p.name);
      if (!data || data.length !== p.size) throw new Error(`the checkpoint ${data ? `has ${data.length} values for` : 'lacks'} parameter ${p.name}${data ? ` (${p.size} expected)` : ''}`);
    }
    const moments = new Map((cp.optimizer ?? []).map((o) => [o.name, o.data]));
    for (const [group, a] of store.arenas) {
      if (group === 'frozen' || !a.m) continue;
      for (const k of ['m', 'v']) {
        if (moments.get(`${k}.${group}`)?.length !== a.length) throw new Error(`the checkpoint's AdamW ${k} for ${group} parameters is missing or has another size`);
      }
    }
    // checked: now write
    for (const p of store.trainable()) store.write(p.name, given.get(p.name)!);
    for (const [group, a] of store.arenas) {
      if (group === 'frozen' || !a.m || !a.v) continue;
      gpu.write(a.m, moments.get(`m.${group}`)!);
      gpu.write(a.v, moments.get(`v.${group}`)!);
    }
    trainer.step = cp.step;
    trainer.rng.setState(state.rng);
    trainer.droppedHistogram = [...state.droppedHistogram];
    if (trainer.routing && state.routing) {
      trainer.routing.down = state.routing.down.map((r) => [...r]);
      trainer.routing.up = state.routing.up.map((r) => [...r]);
      trainer.routing.passes = state.routing.passes;
    }
    this.iterator!.seek(cp.step);
    trainer.model.invalidateMerged();
    this.metrics = [];
    this.lastCheckpointStep = cp.step;
  }

  /** From now on, checkpoint the configured run into IndexedDB (run record `runId`) every `every` steps and on pause. */
  async keepCheckpoints(runId: string | null, every = 50, dbName?: string): Promise<void> {
    this.lastCheckpointStep = null;
    this.checkpointError = null;
    this.checkpointing = runId ? { store: await this.runStoreFor(dbName), runId, every: Math.max(1, Math.floor(every)) } : null;
  }

  /** Writes a checkpoint now unless the last one is of this step; a failure is kept in `checkpointError`, training goes on. */
  async saveCheckpoint(): Promise<number | null> {
    const c = this.checkpointing;
    const step = this.requireTrainer().step;
    if (!c || step === this.lastCheckpointStep) return this.lastCheckpointStep;
    try {
      await c.store.saveCheckpoint(c.runId, await this.checkpoint());
      this.lastCheckpointStep = step;
      this.checkpointError = null;
    } catch (e) {
      this.checkpointError = e instanceof Error ? e.message : String(e);
    }
    return this.lastCheckpointStep;
  }

  /** Restores the run's stored checkpoint into the configured run; null when none was written. */
  async restoreStoredCheckpoint(runId: string, dbName?: string): Promise<number | null> {
    const { checkpoint } = await (await this.runStoreFor(dbName)).loadRun(runId);
    if (!checkpoint) return null;
    this.restoreCheckpoint(checkpoint);
    return checkpoint.step;
  }

  /**
   * `train`, cut at checkpoint boundaries: every `every` steps and on pause a checkpoint is written
   * (without keepCheckpoints it is plain `train`). Metrics and results are those of `train`.
   */
  async trainCheckpointed(steps: number, readEvery = 4): ReturnType<Engine['train']> {
    const c = this.checkpointing;
    if (!c) return this.train(steps, readEvery);
    const trainer = this.requireTrainer();
    const total = this.run!.train.totalSteps;
    let left = steps;
    for (;;) {
      const before = trainer.step;
      const r = await this.train(Math.min(left, c.every - (trainer.step % c.every)), readEvery);
      left -= trainer.step - before;
      if (r.state === 'error' || r.state === 'finished') return r;
      if (trainer.step < total && (r.state === 'paused' || trainer.step % c.every === 0)) await this.saveCheckpoint();
      if (r.state === 'paused' || left <= 0 || trainer.step >= total) return r;
      // a pause that arrived while the checkpoint was written (train() would clear the flag)
      if (this.paused) {
        await this.saveCheckpoint();
        return this.status('paused');
      }
    }
  }

  /**
   * AdapterDrop's training speed-up on the current setup: for n = 0…L−1 dropped layers, a throwaway
   * copy of the run (same method, data and batch shape) trains `steps` timed steps after one
   * warm-up step; the current run is not touched. Below the lowest module no backward is recorded,
   * so ms/step falls as n grows.
   */
  async measureAdapterDropTraining(steps = 3): Promise<{ n: number; msPerStep: number }[]> {
    const run = this.run;
    if (!run || !this.baseParams || !this.dataset || !this.splits) throw new Error('configure a run first');
    if (!['houlsby', 'pfeiffer', 'lora', 'adamix', 'adamix_lora'].includes(run.method.kind)) {
      throw new Error(`AdapterDrop drops adapter or LoRA modules; a ${run.method.kind} run has none: pick Houlsby, Pfeiffer, LoRA or AdaMix`);
    }
    if (this.running) throw new Error('pause training first');
    const gpu = this.requireGpu();
    const config: BertConfig = { ...this.baseConfig!, numLabels: this.dataset.classes.length };
    const base = new Map(this.baseParams);
    if (base.get('classifier.weight')?.length !== config.numLabels * config.hiddenSize) {
      base.delete('classifier.weight');
      base.delete('classifier.bias');
    }
    const rows: { n: number; msPerStep: number }[] = [];
    for (let n = 0; n < config.numLayers; n++) {
      const model = BertModel.create(gpu, config, base, run.method, { mode: 'specialized', n }, new Rng(run.train.seed));
      const trainer = new Trainer(gpu, model, run.train);
      try {
        const it = new BatchIterator(this.splits.train, run.train.batchSize, run.train.seed);
        trainer.trainStep(it.next()); // pipelines for this n's graph
        await trainer.readMetrics();
        const t0 = performance.now();
        for (let i = 0; i < steps; i++) trainer.trainStep(it.next());
        await trainer.readMetrics(); // waits for the GPU to finish the timed steps
        rows.push({ n, msPerStep: (performance.now() - t0) / steps });
      } finally {
        trainer.destroy();
        model.destroy();
      }
    }
    return rows;
  }

  /** Development aid: destroys the GPU device as a driver reset would (the page's e2e test uses it). */
  simulateDeviceLoss(): void {
    this.requireGpu().device.destroy();
  }

  /** Stores the current run's weights (LoRA merged) as a Hugging Face checkpoint under the saved run `runId`. */
  async saveModelOf(runId: string, dbName?: string): Promise<{ bytes: number }> {
    const { files } = await this.exportFullModel();
    const weights = files['model.safetensors'] as Uint8Array;
    await (await this.runStoreFor(dbName)).saveModelFiles(runId, {
      // a model given as a parameter map (loadModel) has no vocab.txt text: its tokenizer's pieces are it
      config: files['config.json'] as string, weights, vocab: (files['vocab.txt'] as string | undefined) ?? this.tokenizer!.pieces.join('\n') + '\n',
    });
    return { bytes: weights.byteLength };
  }

  /** Makes a saved run's stored weights the base model for new runs. */
  async loadSavedModel(runId: string, name: string, dbName?: string): Promise<ModelInfo> {
    const files = await (await this.runStoreFor(dbName)).loadModelFiles(runId);
    if (!files) throw new Error(`the saved run "${name}" has no stored weights (runs keep their weights when they finish with full fine-tuning, head-only, BitFit, LoRA or AdaMix-LoRA)`);
    const ck = loadBertCheckpoint(files);
    return this.adoptCheckpoint(ck, undefined, { source: `saved:${runId}`, name, description: 'the trained weights of a saved run (its classifier head is kept for datasets with the same number of classes)', pretrained: true });
  }

  // ---- composing: task adapters, fusion, multi-task (issue 7) ---------------------------------
  // Stage-1 task adapters live here for the session (the page persists them in IndexedDB and
  // hands them back after a reload); stage 2 is a normal run of method 'fusion' (configure adds
  // the chosen adapters to the base); the fusion attention and the multi-task AdapterDrop table
  // are measured here. The logic is in compose.ts.

  private taskAdapters = new Map<string, TaskAdapter>();

  private requireModelLoaded(): { config: BertConfig; params: Map<string, Float32Array>; tok: WordPieceTokenizer } {
    if (!this.baseConfig || !this.baseParams || !this.tokenizer) throw new Error('load a model first');
    return { config: this.baseConfig, params: this.baseParams, tok: this.tokenizer };
  }

  private fittingAdapters(names: string[]): TaskAdapter[] {
    const { config } = this.requireModelLoaded();
    return names.map((n) => {
      const a = this.taskAdapters.get(n);
      if (!a) throw new Error(`no saved task adapter named "${n}" in this session (saved: ${[...this.taskAdapters.keys()].join(', ') || 'none'})`);
      checkFits(a, config, this.modelInfo?.source ?? null);
      return a;
    });
  }

  /** The current Pfeiffer run, saved as task adapter `name` (its dev accuracy measured now). */
  async saveTaskAdapter(name: string): Promise<TaskAdapter> {
    if (!this.trainer || !this.dataset) throw new Error('train a Pfeiffer adapter run first: there is no trained model in the worker');
    const { config } = this.requireModelLoaded();
    const model = this.trainer.model;
    if (model.method.kind !== 'pfeiffer') throw new Error(`only a Pfeiffer adapter run can be saved as a task adapter; the current run trains ${model.method.kind}`);
    if (this.trainer.step === 0) throw new Error('the current run has not trained yet: train it first');
    const dev = await this.evaluate('dev', { droppedLayers: 0, record: false });
    const ds = this.dataset;
    const drop = this.run!.adapterDrop;
    const adapter = await taskAdapterFromModel(model, {
      dataset: { id: ds.id, name: ds.name, classes: [...ds.classes] },
      base: { source: this.modelInfo?.source ?? 'unknown', hiddenSize: config.hiddenSize, numLayers: config.numLayers, vocabSize: config.vocabSize },
      steps: this.trainer.step, devAccuracy: dev.accuracy, createdAt: Date.now(), dev: ds.dev.slice(0, MAX_SAVED_DEV),
      adapterDrop: drop.mode === 'specialized' ? `specialised n = ${drop.n}` : drop.mode,
    }, name);
    this.taskAdapters.set(name, adapter);
    return adapter;
  }

  /** Task adapters saved earlier (restored from IndexedDB by the page), replacing same-named ones. */
  addTaskAdapters(list: TaskAdapter[]): TaskAdapterSummary[] {
    for (const a of list) {
      const problem = taskNameProblem(a.name);
      if (problem) throw new Error(problem);
      this.taskAdapters.set(a.name, a);
    }
    return this.listTaskAdapters();
  }

  listTaskAdapters(): TaskAdapterSummary[] {
    return [...this.taskAdapters.values()].map(summarize);
  }

  deleteTaskAdapter(name: string): TaskAdapterSummary[] {
    this.taskAdapters.delete(name);
    return this.listTaskAdapters();
  }

  /** configure(): AdapterFusion's base holds the chosen task adapters under their tasks' names. */
  private addFusionAdapters(base: Map<string, Float32Array>, method: Extract<MethodConfig, { kind: 'fusion' }>): void {
    const withAdapters = fusionBaseParams(base, this.fittingAdapters(method.tasks), method);
    for (const [n, v] of withAdapters) base.set(n, v);
  }

  /** configure(): the head starts from the head of a chosen adapter trained on this dataset (if any). */
  private startFusionHead(model: BertModel, method: Extract<MethodConfig, { kind: 'fusion' }>): void {
    const head = matchingHead(this.fittingAdapters(method.tasks), this.dataset!.id, this.dataset!.classes);
    if (head) for (const [n, v] of head) if (model.store.has(n)) model.store.write(n, v);
  }

  /** The fusion run's attention per layer and task: averaged over the dev split, or over one sentence's tokens. */
  async fusionAttention(text?: string | null): Promise<FusionAttentionResult> {
    const trainer = this.requireTrainer();
    if (trainer.model.method.kind !== 'fusion') throw new Error(`the fusion attention needs an AdapterFusion run; the current run trains ${trainer.model.method.kind}`);
    const { batchSize, seqLen } = this.run!.train;
    const dropped = this.run!.adapterDrop.mode === 'specialized' ? this.run!.adapterDrop.n : 0;
    const probe = new FusionAttentionProbe(this.requireGpu(), trainer.model, batchSize, seqLen);
    try {
      if (text != null) {
        if (!text.trim()) throw new Error('type a sentence first');
        const { batch, tokens } = sentenceBatch(this.tokenizer!, text, null, batchSize, seqLen);
        await trainer.predictBatch(batch, { droppedLayers: dropped });
        await probe.collect(batch.mask, 1);
        return { ...probe.result(), pieces: tokens };
      }
      for (const b of evalBatches(this.splits!.dev, batchSize)) {
        await trainer.predictBatch(b, { droppedLayers: dropped });
        await probe.collect(b.mask, b.size);
      }
      return probe.result();
    } finally {
      probe.detach();
    }
  }

  /**
   * Multi-task AdapterDrop over saved task adapters (the first four by default): each task's
   * accuracy per n, and ms per batch for k = 1…K tasks and n = 0…L, shared against separate.
   */
  async measureMultitask(
    o: { names?: string[]; batchSize: number; seqLen: number; timedBatches?: number; devExamples?: number },
    onProgress?: (done: number, total: number) => void,
  ): Promise<MultitaskResult> {
    const gpu = this.requireGpu();
    const { config, params, tok } = this.requireModelLoaded();
    if (this.running) throw new Error('pause training first');
    if (o.seqLen > config.maxPositions) throw new Error(`sequence length ${o.seqLen} exceeds the model's ${config.maxPositions} positions`);
    const names = o.names ?? [...this.taskAdapters.keys()].slice(0, 4);
    const base = new Map(params);
    base.delete('classifier.weight');
    base.delete('classifier.bias');
    return measureMultitask(gpu, config, base, tok, this.fittingAdapters(names), {
      batchSize: o.batchSize, seqLen: o.seqLen, timedBatches: o.timedBatches ?? 3, devExamples: o.devExamples ?? 128,
    }, onProgress);
  }
}

/** The trainer's host-side state inside a checkpoint (Checkpoint.rng). */
interface CheckpointState {
  version: 1;
  /** the setup it belongs to (runKey) */
  run: string;
  rng: number;
  routing: { passes: number; down: number[][]; up: number[][] } | null;
  droppedHistogram: number[];
}

export interface ModelInfo {
  source: string;
  name: string;
  description: string;
  pretrained: boolean;
  parameters: number;
  config: BertConfig;
}

export interface ModelIndexEntry {
  id: string;
  name?: string;
  description?: string;
  /** folder with config.json, model.safetensors, vocab.txt, relative to the site's root (public/) */
  path?: string;
  dir?: string;
}

export interface DatasetSummary {
  id: string;
  name: string;
  description: string;
  train: number;
  dev: number;
  test: number;
  classes: string[];
  warnings: string[];
}

export interface ExportFiles {
  files: Record<string, string | Uint8Array>;
}
