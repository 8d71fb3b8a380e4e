// Composing task knowledge (issue 7), the engine side: stage-1 task adapters (a trained Pfeiffer
// adapter and its head, saved under its task's name), the base parameters AdapterFusion's stage 2
// builds on, the fusion attention read back per layer, and multi-task AdapterDrop inference timed
// for k tasks and n shared layers. DOM-free: the worker's engine, bench/multitask.ts and the tests
// all use these functions.
import type { Gpu } from '../gpu/runtime';
import { Tensor } from '../gpu/tensor';
import { encodeSplit, evalBatches, type EncodedSplit } from '../data/batch';
import type { Example } from '../data/datasets';
import type { WordPieceTokenizer } from '../data/wordpiece';
import { BertModel } from '../model/bert';
import type { BertConfig, MethodConfig } from '../model/config';
import { adapterNames } from '../model/peft/adapter';
import { taskAdapterNames } from '../model/peft/fusion';
import { MultiTaskInference } from './multitask';
import type { HostBatch } from './trainer';
import { Rng } from './rng';

/** What a saved task adapter is: enough to rebuild its task model and evaluate it later. */
export interface TaskAdapterInfo {
  /** the task's name, part of its parameter names (`…output.adapters.<name>.…`) */
  name: string;
  dataset: { id: string; name: string; classes: string[] };
  /** the base model it was trained on; an adapter only fits the base it was trained with */
  base: { source: string; hiddenSize: number; numLayers: number; vocabSize: number };
  bottleneck: number;
  steps: number;
  /** dev accuracy of the adapter on its own task when it was saved */
  devAccuracy: number;
  adapterDrop: string;
  createdAt: number;
  /** a slice of its task's dev split, so that it can be evaluated whatever dataset is loaded */
  dev: Example[];
}

export interface TaskAdapter {
  name: string;
  info: TaskAdapterInfo;
  /** the adapter under taskAdapterNames(l, name), and the head: classifier.* and bert.pooler.* */
  params: { name: string; shape: number[]; data: Float32Array }[];
}

/** What the page lists: a task adapter without its weights and dev examples. */
export type TaskAdapterSummary = Omit<TaskAdapterInfo, 'dev'> & { devExamples: number; parameters: number };

export const MAX_SAVED_DEV = 256;
const HEAD = /^(classifier|bert\.pooler)\./;

/** Why `name` cannot be a task name, or null: it becomes part of parameter names (no dots). */
export function taskNameProblem(name: string): string | null {
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(name)) return `task name "${name}" must be 1–40 letters, digits, "_" or "-" (it becomes part of the parameter names)`;
  return null;
}

/** A Pfeiffer run's adapters (AdapterHub's single-adapter names) renamed to task `task`'s names. */
export function renameToTask(values: Map<string, Float32Array>, layers: number, task: string): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (let l = 0; l < layers; l++) {
    const from = adapterNames(l, 'output'), to = taskAdapterNames(l, task);
    for (const key of ['wDown', 'bDown', 'wUp', 'bUp'] as const) {
      const v = values.get(from[key]);
      if (!v) throw new Error(`a task adapter needs the Pfeiffer adapter of every layer: ${from[key]} is missing`);
      out.set(to[key], v);
    }
  }
  return out;
}

/** A trained Pfeiffer model → a task adapter (its adapters renamed, its head kept). */
export async function taskAdapterFromModel(
  model: BertModel,
  info: Omit<TaskAdapterInfo, 'bottleneck' | 'name'>,
  name: string,
): Promise<TaskAdapter> {
  const problem = taskNameProblem(name);
  if (problem) throw new Error(problem);
  if (model.method.kind !== 'pfeiffer') throw new Error(`only a Pfeiffer adapter run can be saved as a task adapter (AdapterFusion stacks Pfeiffer adapters); the current run trains ${model.method.kind}`);
  const values = await model.store.read((p) => p.name.includes('.output.adapter.') || HEAD.test(p.name));
  const shape = (n: string) => [...model.store.params.get(n)!.shape];
  const params: TaskAdapter['params'] = [];
  for (let l = 0; l < model.config.numLayers; l++) {
    const from = adapterNames(l, 'output'), to = taskAdapterNames(l, name);
    for (const key of ['wDown', 'bDown', 'wUp', 'bUp'] as const) params.push({ name: to[key], shape: shape(from[key]), data: values.get(from[key])! });
  }
  for (const [n, data] of values) if (HEAD.test(n)) params.push({ name: n, shape: shape(n), data });
  const bottleneck = model.store.params.get(adapterNames(0, 'output').bDown)!.size;
  return { name, info: { ...info, name, bottleneck, dev: info.dev.slice(0, MAX_SAVED_DEV) }, params };
}

export function summarize(a: TaskAdapter): TaskAdapterSummary {
  const { dev, ...rest } = a.info;
  return { ...rest, devExamples: dev.length, parameters: a.params.reduce((s, p) => s + p.data.length, 0) };
}

/** Throws unless the adapter was trained on a base of this shape (and name, when both are known). */
export function checkFits(a: TaskAdapter, c: BertConfig, source: string | null): void {
  const b = a.info.base;
  if (b.hiddenSize !== c.hiddenSize || b.numLayers !== c.numLayers || b.vocabSize !== c.vocabSize) {
    throw new Error(`task adapter "${a.name}" was trained on a ${b.numLayers}-layer, d = ${b.hiddenSize} base ("${b.source}"); the loaded model has ${c.numLayers} layers, d = ${c.hiddenSize}: load that base model again`);
  }
  if (source && b.source !== 'unknown' && source !== b.source) {
    throw new Error(`task adapter "${a.name}" was trained on the base model "${b.source}", but "${source}" is loaded: load that base model again`);
  }
}

/**
 * AdapterFusion's stage-2 base: the frozen base plus every chosen task adapter's weights under its
 * task's name (what BertModel.create reads for method kind 'fusion').
 */
export function fusionBaseParams(base: Map<string, Float32Array>, adapters: TaskAdapter[], method: Extract<MethodConfig, { kind: 'fusion' }>): Map<string, Float32Array> {
  if (adapters.length < 2) throw new Error(`AdapterFusion combines at least 2 saved task adapters (got ${adapters.length}): choose them in the Compose panel`);
  const out = new Map(base);
  for (const a of adapters) {
    if (a.info.bottleneck !== method.bottleneck) {
      throw new Error(`task adapter "${a.name}" has bottleneck ${a.info.bottleneck}, the fusion is configured for ${method.bottleneck}: fuse adapters of one width`);
    }
    for (const p of a.params) if (p.name.includes(`.adapters.${a.name}.`)) out.set(p.name, p.data);
  }
  return out;
}

/** The head (classifier + pooler) of a chosen adapter trained on this very dataset, if any. */
export function matchingHead(adapters: TaskAdapter[], datasetId: string, classes: string[]): Map<string, Float32Array> | null {
  const a = adapters.find((x) => x.info.dataset.id === datasetId && JSON.stringify(x.info.dataset.classes) === JSON.stringify(classes));
  return a ? new Map(a.params.filter((p) => HEAD.test(p.name)).map((p) => [p.name, p.data])) : null;
}

/** Pfeiffer's reduction factor giving exactly bottleneck m on width d (bert.ts floors d / factor). */
export function reductionFactorFor(d: number, m: number): number {
  let f = d / m;
  while (Math.floor(d / f) < m) f *= 1 - 1e-12;
  return f;
}

/** The task's own model: the frozen base, its adapter back under Pfeiffer's names, its head. */
export function taskModel(gpu: Gpu, config: BertConfig, base: Map<string, Float32Array>, a: TaskAdapter): BertModel {
  const head = new Map(a.params.filter((p) => HEAD.test(p.name)).map((p) => [p.name, p.data]));
  const params = new Map(base);
  for (const [n, v] of head) params.set(n, v);
  const c: BertConfig = { ...config, numLabels: a.info.dataset.classes.length };
  const model = BertModel.create(gpu, c, params, { kind: 'pfeiffer', reductionFactor: reductionFactorFor(c.hiddenSize, a.info.bottleneck) }, { mode: 'none', n: 0 }, new Rng(1));
  for (const p of a.params) if (p.name.includes(`.adapters.${a.name}.`)) model.store.write(p.name.replace(`.adapters.${a.name}.`, '.adapter.'), p.data);
  return model;
}

/** Accuracy of `predict` (class probabilities of a batch) over a split. */
export async function accuracyOf(predict: (b: HostBatch) => Promise<Float32Array>, split: EncodedSplit, batchSize: number, classes: number): Promise<number> {
  let correct = 0, seen = 0;
  for (const b of evalBatches(split, batchSize)) {
    const probs = await predict(b);
    for (let i = 0; i < b.size; i++) {
      let best = 0;
      for (let c = 1; c < classes; c++) if (probs[i * classes + c] > probs[i * classes + best]) best = c;
      if (best === b.labels[i]) correct++;
      seen++;
    }
  }
  return seen ? correct / seen : 0;
}

export interface MultitaskTimingRow {
  tasks: number;
  n: number;
  /** ms per batch, the lowest n layers computed once for all tasks */
  infer_ms: number;
  /** ms per batch, every task's model run on its own */
  separate_ms: number;
  speedup: number;
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;

/**
 * Multi-task AdapterDrop inference time per batch for k = 1…models.length tasks and n = 0…L
 * shared (adapter-free) lower layers, against running each task separately.
 */
export async function measureMultitaskTiming(
  gpu: Gpu,
  models: BertModel[],
  batch: HostBatch,
  batchSize: number,
  seqLen: number,
  timedBatches: number,
  onRow?: (row: MultitaskTimingRow) => void,
): Promise<MultitaskTimingRow[]> {
  const L = models[0].config.numLayers;
  const rows: MultitaskTimingRow[] = [];
  for (let k = 1; k <= models.length; k++) {
    const multi = new MultiTaskInference(gpu, models.slice(0, k), batchSize, seqLen);
    try {
      for (let n = 0; n <= L; n++) {
        const separate = await multi.time(batch, n, false, timedBatches);
        const shared = await multi.time(batch, n, true, timedBatches);
        const row = { tasks: k, n, infer_ms: r3(shared), separate_ms: r3(separate), speedup: r3(separate / shared) };
        rows.push(row);
        onRow?.(row);
      }
    } finally {
      multi.destroy();
    }
  }
  return rows;
}

export interface MultitaskResult {
  tasks: string[];
  layers: number;
  batchSize: number;
  seqLen: number;
  timing: MultitaskTimingRow[];
  /** each task's dev accuracy (its saved dev slice) with the adapters of the lowest n layers dropped */
  accuracy: { task: string; n: number; accuracy: number }[];
}

/**
 * The page's multi-task AdapterDrop measurement over saved task adapters: each task's accuracy per
 * n (on the dev slice saved with it), then the timing table. `onProgress(done, total)`.
 */
export async function measureMultitask(
  gpu: Gpu,
  config: BertConfig,
  base: Map<string, Float32Array>,
  tok: WordPieceTokenizer,
  adapters: TaskAdapter[],
  o: { batchSize: number; seqLen: number; timedBatches: number; devExamples: number },
  onProgress?: (done: number, total: number) => void,
): Promise<MultitaskResult> {
  if (adapters.length === 0) throw new Error('save at least one task adapter first (stage 1)');
  const L = config.numLayers;
  const total = adapters.length * (L + 1) + adapters.length * (L + 1);
  let done = 0;
  const tick = () => onProgress?.(++done, total);
  const models = adapters.map((a) => taskModel(gpu, config, base, a));
  try {
    const accuracy: MultitaskResult['accuracy'] = [];
    const devs = adapters.map((a) => encodeSplit(a.info.dev.slice(0, o.devExamples), tok, o.seqLen));
    for (let t = 0; t < adapters.length; t++) {
      const single = new MultiTaskInference(gpu, [models[t]], o.batchSize, o.seqLen);
      try {
        for (let n = 0; n <= L; n++) {
          const acc = devs[t].n === 0 ? 0 : await accuracyOf(async (b) => (await single.run(b, n, true))[0], devs[t], o.batchSize, adapters[t].info.dataset.classes.length);
          accuracy.push({ task: adapters[t].name, n, accuracy: r3(acc) });
          tick();
        }
      } finally {
        single.destroy();
      }
    }
    const first = devs.find((d) => d.n > 0);
    if (!first) throw new Error('the saved task adapters hold no dev examples to time inference on');
    const batch = evalBatches(first, o.batchSize).next().value!;
    const host: HostBatch = { ids: batch.ids.slice(), typeIds: batch.typeIds.slice(), mask: batch.mask.slice(), labels: batch.labels.slice() };
    const timing = await measureMultitaskTiming(gpu, models, host, o.batchSize, o.seqLen, o.timedBatches, tick);
    return { tasks: adapters.map((a) => a.name), layers: L, batchSize: o.batchSize, seqLen: o.seqLen, timing, accuracy };
  } finally {
    models.forEach((m) => m.destroy());
  }
}

// ---- the fusion attention ------------------------------------------------------------------

export interface FusionAttentionResult {
  tasks: string[];
  /** per layer, the mean attention weight each task's adapter gets; null where the layer's fusion is dropped */
  layers: (number[] | null)[];
  /** how many tokens the means are over (padding excluded) */
  tokens: number;
  /** for a typed sentence: its WordPiece tokens */
  pieces?: string[];
}

/**
 * Averages a fusion model's attention over tokens: while attached, every forward pass copies each
 * layer's (rows, tasks) softmax into one buffer of its own (the pass's tensors return to the pool
 * when it ends); `collect` then reads it once and adds the real (unpadded) rows to the sums.
 */
export class FusionAttentionProbe {
  private buf: Tensor;
  private seen = new Set<number>();
  private sums: Float64Array[];
  private count = 0;
  readonly tasks: string[];

  constructor(
    readonly gpu: Gpu,
    readonly model: BertModel,
    readonly batchSize: number,
    readonly seqLen: number,
  ) {
    const m = model.method;
    if (m.kind !== 'fusion') throw new Error(`the fusion attention needs an AdapterFusion run; the current run trains ${m.kind}`);
    this.tasks = m.tasks;
    const L = model.config.numLayers, rows = batchSize * seqLen, n = m.tasks.length;
    this.buf = gpu.empty([L * rows * n], 'f32', 'fusion.attention.probe');
    this.sums = Array.from({ length: L }, () => new Float64Array(n));
    model.onFusionAttention = (l, probs) => {
      if (probs.size !== rows * n) throw new Error(`fusion attention of layer ${l}: ${probs.size} values, expected ${rows}×${n}`);
      this.seen.add(l);
      gpu.copy(probs, new Tensor(this.buf.buffer, [rows, n], 'f32', this.buf.offset + l * rows * n * 4));
    };
  }

  /** After a forward pass: add rows b·seq + t with b < size and mask 1 to the sums. */
  async collect(mask: Float32Array, size: number): Promise<void> {
    const host = await this.gpu.read(this.buf);
    const rows = this.batchSize * this.seqLen, n = this.tasks.length;
    let counted = 0;
    for (let r = 0; r < size * this.seqLen; r++) {
      if (mask[r] === 0) continue;
      counted++;
      for (const l of this.seen) for (let t = 0; t < n; t++) this.sums[l][t] += host[l * rows * n + r * n + t];
    }
    this.count += counted;
  }

  result(): FusionAttentionResult {
    return {
      tasks: this.tasks,
      layers: this.sums.map((s, l) => (this.seen.has(l) ? Array.from(s, (x) => x / Math.max(1, this.count)) : null)),
      tokens: this.count,
    };
  }

  detach(): void {
    this.model.onFusionAttention = null;
    this.gpu.release(this.buf);
  }
}

/** One text (or pair) as a full batch: the example in row 0, repeated to fill the rows. */
export function sentenceBatch(tok: WordPieceTokenizer, text: string, pair: string | null, batchSize: number, seqLen: number): { batch: HostBatch; tokens: string[] } {
  const enc = tok.encode(text, pair, { maxLength: seqLen, padding: true });
  const ids = new Uint32Array(batchSize * seqLen), typeIds = new Uint32Array(batchSize * seqLen), mask = new Float32Array(batchSize * seqLen);
  for (let b = 0; b < batchSize; b++) {
    ids.set(enc.ids, b * seqLen);
    typeIds.set(enc.typeIds, b * seqLen);
    mask.set(enc.mask, b * seqLen);
  }
  return { batch: { ids, typeIds, mask, labels: new Uint32Array(batchSize) }, tokens: enc.tokens.filter((_, i) => enc.mask[i] !== 0) };
}
