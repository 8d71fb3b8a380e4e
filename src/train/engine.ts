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
