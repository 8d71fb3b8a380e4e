// Issue 7's numbers, in the page on the playground's own engine: (1) one Pfeiffer adapter per
// built-in task on the shipped mini-BERT, trained with robust AdapterDrop so any n works at
// inference; (2) multi-task inference with the lowest n layers shared, against running each task
// separately, for k = 1…4 tasks and n = 0…L, with each task's dev accuracy per n; (3) AdapterFusion
// over the three task adapters for each task, against that task's single adapter.
import { Gpu } from '../src/gpu/runtime';
import { loadBertCheckpoint } from '../src/io/hf';
import { WordPieceTokenizer } from '../src/data/wordpiece';
import { loadBuiltinDataset, type Dataset } from '../src/data/datasets';
import { encodeSplit, BatchIterator, type EncodedSplit } from '../src/data/batch';
import { BertModel } from '../src/model/bert';
import type { BertConfig, MethodConfig, AdapterDropConfig } from '../src/model/config';
import { Trainer, DEFAULT_TRAIN, type TrainConfig } from '../src/train/trainer';
import { accuracyOf, measureMultitaskTiming, renameToTask } from '../src/train/compose';
import { tuneMatmuls } from '../src/ops/matmul';
import { Rng } from '../src/train/rng';

export interface MultitaskBenchConfig {
  seqLen: number;
  batchSize: number;
  adapterSteps: number;
  fusionSteps: number;
  reduction: number;
  timedBatches: number;
  devExamples: number;
  seed: number;
}

const defaults: MultitaskBenchConfig = { seqLen: 32, batchSize: 16, adapterSteps: 150, fusionSteps: 80, reduction: 8, timedBatches: 3, devExamples: 160, seed: 42 };

const log = (msg: string) => {
  console.log(msg);
  const el = document.getElementById('log');
  if (el) el.textContent += `\n${msg}`;
};
const r3 = (x: number) => Math.round(x * 1000) / 1000;

interface Task {
  id: string;
  ds: Dataset;
  train: EncodedSplit;
  dev: EncodedSplit;
}

function evaluate(trainer: Trainer, dev: EncodedSplit, batchSize: number, droppedLayers: number): Promise<number> {
  return accuracyOf(async (b) => (await trainer.predictBatch(b, { droppedLayers })).probs, dev, batchSize, trainer.model.config.numLabels);
}

async function train(gpu: Gpu, model: BertModel, t: Task, cfg: TrainConfig, steps: number): Promise<Trainer> {
  const trainer = new Trainer(gpu, model, { ...cfg, totalSteps: steps });
  const it = new BatchIterator(t.train, cfg.batchSize, cfg.seed);
  for (let s = 0; s < steps; s++) {
    trainer.trainStep(it.next());
    if (s === 0) await tuneMatmuls(gpu);
    if (s % 25 === 24 || s === steps - 1) {
      const { records } = await trainer.readMetrics();
      log(`  ${t.id} step ${s + 1}/${steps}: loss ${records[records.length - 1].loss.toFixed(4)}`);
    }
  }
  return trainer;
}

export async function runMultitaskBench(partial: Partial<MultitaskBenchConfig> = {}) {
  const c = { ...defaults, ...partial };
  const gpu = await Gpu.create();
  const s = gpu.summary;
  const adapter = [s.vendor, s.architecture, s.device, s.description].filter(Boolean).join(' / ') + (s.isFallbackAdapter ? ' (fallback adapter)' : '');
  log(`adapter: ${adapter}`);
  const base = '/models/mini-bert/';
  const [configJson, weights, vocab] = await Promise.all([
    fetch(base + 'config.json').then((r) => r.text()),
    fetch(base + 'model.safetensors').then((r) => r.arrayBuffer()),
    fetch(base + 'vocab.txt').then((r) => r.text()),
  ]);
  const ckpt = loadBertCheckpoint({ config: configJson, weights, vocab });
  const tok = WordPieceTokenizer.fromVocabText(vocab);
  const baseParams = new Map(ckpt.params);
  baseParams.delete('classifier.weight');
  baseParams.delete('classifier.bias');
  const L = ckpt.config.numLayers;
  const d = ckpt.config.hiddenSize;
  const m = Math.max(1, Math.floor(d / c.reduction));

  const load = async (id: string, seed: number, name = id): Promise<Task> => {
    const ds = await loadBuiltinDataset(id, '/data/', seed);
    return { id: name, ds, train: encodeSplit(ds.train, tok, c.seqLen), dev: encodeSplit(ds.dev.slice(0, c.devExamples), tok, c.seqLen) };
  };
  // four tasks: the three built-ins, and sentiment again on another split and seed
  const tasks = [await load('sentiment', c.seed), await load('topic', c.seed), await load('spam', c.seed), await load('sentiment', c.seed + 1, 'sentiment-b')];
  const trainCfg: TrainConfig = { ...DEFAULT_TRAIN, batchSize: c.batchSize, seqLen: c.seqLen, lr: 2e-3, warmupFraction: 0.06, weightDecay: 0.01, seed: c.seed };
  const configFor = (t: Task): BertConfig => ({ ...ckpt.config, numLabels: t.ds.classes.length });

  // (1) one adapter per task, robust AdapterDrop
  const pfeiffer: MethodConfig = { kind: 'pfeiffer', reductionFactor: c.reduction };
  const robust: AdapterDropConfig = { mode: 'robust', n: 0 };
  const taskModels: BertModel[] = [];
  const accuracy: { task: string; n: number; accuracy: number }[] = [];
  for (const t of tasks) {
    log(`training a Pfeiffer adapter (m = ${m}) for ${t.id} (${t.ds.classes.length} classes, ${t.ds.train.length} train) with robust AdapterDrop`);
    const model = BertModel.create(gpu, configFor(t), baseParams, pfeiffer, robust, new Rng(c.seed));
    const trainer = await train(gpu, model, t, trainCfg, c.adapterSteps);
    for (let n = 0; n <= L; n++) accuracy.push({ task: t.id, n, accuracy: r3(await evaluate(trainer, t.dev, c.batchSize, n)) });
    log(`  ${t.id} dev accuracy by n: ${accuracy.filter((a) => a.task === t.id).map((a) => a.accuracy).join(' ')}`);
    trainer.destroy();
    taskModels.push(model);
  }

  // (2) multi-task inference timing
  const batch = new BatchIterator(tasks[0].dev, c.batchSize, 1, { shuffle: false }).next();
  const host = { ids: batch.ids.slice(), typeIds: batch.typeIds.slice(), mask: batch.mask.slice(), labels: batch.labels.slice() };
  const rows = await measureMultitaskTiming(gpu, taskModels, host, c.batchSize, c.seqLen, c.timedBatches, (r) =>
    log(`  k = ${r.tasks}, n = ${r.n}: shared ${r.infer_ms.toFixed(1)} ms/batch, separate ${r.separate_ms.toFixed(1)} ms/batch (${r.speedup.toFixed(2)}×)`),
  );

  // (3) AdapterFusion over the three built-in tasks' adapters, for each of them
  const fusionTasks = tasks.slice(0, 3);
  const adapterParams = new Map<string, Float32Array>();
  for (let i = 0; i < fusionTasks.length; i++) {
    const values = await taskModels[i].store.read((p) => p.name.includes('.output.adapter.'));
    for (const [name, v] of renameToTask(values, L, fusionTasks[i].id)) adapterParams.set(name, v);
  }
  const fusion: { task: string; single_adapter: number; fusion: number }[] = [];
  for (let i = 0; i < fusionTasks.length; i++) {
    const t = fusionTasks[i];
    const method: MethodConfig = { kind: 'fusion', tasks: fusionTasks.map((x) => x.id), bottleneck: m, temperature: 1, regWeight: 0.01 };
    const model = BertModel.create(gpu, configFor(t), new Map([...baseParams, ...adapterParams]), method, { mode: 'none', n: 0 }, new Rng(c.seed));
    // the head starts from the task's single-adapter head (stage 2 trains fusion and head)
    const head = await taskModels[i].store.read((p) => p.name.startsWith('classifier.'));
    for (const [name, v] of head) model.store.write(name, v);
    log(`training AdapterFusion for ${t.id} over [${method.tasks}]`);
    const trainer = await train(gpu, model, t, { ...trainCfg, lr: 5e-4 }, c.fusionSteps);
    const single = accuracy.find((a) => a.task === t.id && a.n === 0)!.accuracy;
    const fused = r3(await evaluate(trainer, t.dev, c.batchSize, 0));
    fusion.push({ task: t.id, single_adapter: single, fusion: fused });
    log(`  ${t.id}: single adapter ${single}, fusion ${fused}`);
    trainer.destroy();
    model.destroy();
  }
  taskModels.forEach((x) => x.destroy());
  return {
    adapter,
    config: { ...c, model: 'mini-bert (public/models/mini-bert)', hidden: d, layers: L, vocab: ckpt.config.vocabSize, adapter: `pfeiffer m = ${m}`, adapterDrop: 'robust during training' },
    multitask: rows,
    accuracy,
    fusion,
  };
}

(window as unknown as { runMultitaskBench: typeof runMultitaskBench }).runMultitaskBench = runMultitaskBench;
