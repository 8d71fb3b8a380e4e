// Composing task knowledge through the engine (issue 7): a Pfeiffer run saved as a task adapter,
// AdapterFusion over two of them as a normal run, its attention per layer, the multi-task
// AdapterDrop table, and saved task adapters in IndexedDB (and the v1 → v2 schema upgrade).
import { afterAll, describe, expect, test } from 'vitest';
import { Engine, type RunConfig } from '../../src/train/engine';
import { DEFAULT_TRAIN } from '../../src/train/trainer';
import { taskAdapterNames, fusionNames } from '../../src/model/peft/fusion';
import { adapterNames } from '../../src/model/peft/adapter';
import { openStore, type SavedTaskAdapter } from '../../src/io/persist';
import type { Dataset } from '../../src/data/datasets';
import type { TaskAdapter, TaskAdapterInfo } from '../../src/train/compose';
import { tinyBase, tinyDataset } from './tiny';

const SEQ = 16, BATCH = 8;
const base = tinyBase(7, { numLayers: 2 });
const L = base.config.numLayers;
const engine = new Engine();

function run(method: RunConfig['method'], steps: number, lr = 3e-3): RunConfig {
  return { method, adapterDrop: { mode: 'none', n: 0 }, evalEvery: 0, train: { ...DEFAULT_TRAIN, batchSize: BATCH, seqLen: SEQ, lr, totalSteps: steps, seed: 3 } };
}

/** A second task on the same words: the labels flipped, under other class names. */
function flipped(): Dataset {
  const ds = tinyDataset(23);
  const flip = (xs: Dataset['train']) => xs.map((e) => ({ ...e, label: 1 - e.label }));
  return { ...ds, id: 'tiny-flipped', name: 'tiny flipped', classes: ['yes', 'no'], train: flip(ds.train), dev: flip(ds.dev), test: flip(ds.test) };
}

const saved: TaskAdapter[] = [];
const FUSION = { kind: 'fusion' as const, tasks: ['plain', 'flip'], bottleneck: 8, temperature: 1, regWeight: 0.01 };

afterAll(() => {
  engine.trainer?.destroy();
  engine.model?.destroy();
});

describe('composing task adapters (issue 7)', () => {
  test('a trained Pfeiffer run is saved as a task adapter: its adapters renamed to the task, its head kept', async () => {
    expect((await engine.init()).ok).toBe(true);
    engine.loadModel(base.config, base.params, base.vocab);
    for (const [ds, name] of [[tinyDataset(), 'plain'], [flipped(), 'flip']] as const) {
      engine.loadDataset(ds);
      engine.configure(run({ kind: 'pfeiffer', reductionFactor: 4 }, 30, 5e-3));
      expect((await engine.train(30)).state).not.toBe('error');
      const trained = new Map((await engine.exportParams('all')).map((p) => [p.name, p.data]));
      const a = await engine.saveTaskAdapter(name);
      saved.push(a);
      expect(a.info.bottleneck).toBe(8);
      expect(a.info.steps).toBe(30);
      expect(a.info.dataset.id).toBe(ds.id);
      expect(a.info.dev.length).toBe(ds.dev.length);
      const byName = new Map(a.params.map((p) => [p.name, p]));
      for (let l = 0; l < L; l++) {
        const from = adapterNames(l, 'output'), to = taskAdapterNames(l, name);
        for (const k of ['wDown', 'bDown', 'wUp', 'bUp'] as const) expect(byName.get(to[k])!.data).toEqual(trained.get(from[k]));
      }
      for (const n of ['classifier.weight', 'classifier.bias', 'bert.pooler.dense.weight', 'bert.pooler.dense.bias']) expect(byName.get(n)!.data).toEqual(trained.get(n));
      expect(byName.get(taskAdapterNames(0, name).wDown)!.shape).toEqual([8, base.config.hiddenSize]);
    }
    // the accuracy measured at saving is checked against the rebuilt task model in the multi-task test
    for (const a of saved) expect(a.info.devAccuracy).toBeGreaterThanOrEqual(0);
    expect(engine.listTaskAdapters().map((s) => s.name)).toEqual(['plain', 'flip']);
    // only Pfeiffer runs can be saved; names must fit parameter names
    engine.configure(run({ kind: 'headonly' }, 2));
    await engine.train(1);
    await expect(engine.saveTaskAdapter('x')).rejects.toThrow(/only a Pfeiffer adapter run/);
    engine.configure(run({ kind: 'pfeiffer', reductionFactor: 4 }, 2));
    await engine.train(1);
    await expect(engine.saveTaskAdapter('a.b')).rejects.toThrow(/letters, digits/);
  });

  test('AdapterFusion over the two saved adapters trains as a normal run: adapters frozen, fusion and head trained', async () => {
    engine.loadDataset(tinyDataset());
    expect(() => engine.configure(run({ ...FUSION, tasks: ['plain'] }, 4))).toThrow(/at least 2 saved task adapters/);
    expect(() => engine.configure(run({ ...FUSION, tasks: ['plain', 'nope'] }, 4))).toThrow(/no saved task adapter named "nope"/);
    expect(() => engine.configure(run({ ...FUSION, bottleneck: 4 }, 4))).toThrow(/bottleneck 8/);
    const shape = engine.configure(run(FUSION, 12));
    const before = new Map((await engine.exportParams('all')).map((p) => [p.name, p.data]));
    // the base holds each task's adapter, and the head starts from the adapter trained on this dataset
    const plain = new Map(saved[0].params.map((p) => [p.name, p.data]));
    const flip = new Map(saved[1].params.map((p) => [p.name, p.data]));
    for (let l = 0; l < L; l++) {
      expect(before.get(taskAdapterNames(l, 'plain').wUp)).toEqual(plain.get(taskAdapterNames(l, 'plain').wUp));
      expect(before.get(taskAdapterNames(l, 'flip').wDown)).toEqual(flip.get(taskAdapterNames(l, 'flip').wDown));
    }
    expect(before.get('classifier.weight')).toEqual(plain.get('classifier.weight'));
    const trainable = new Set((await engine.exportParams('trainable')).map((p) => p.name));
    expect(trainable.has(fusionNames(0).v)).toBe(true);
    expect(trainable.has('classifier.weight')).toBe(true);
    expect([...trainable].some((n) => n.includes('.adapters.'))).toBe(false);
    expect(shape.trainable).toBeLessThan(shape.total);
    const r = await engine.train(12);
    expect(r.state).not.toBe('error');
    const losses = engine.takeMetrics().filter((m) => m.kind === 'step').map((m) => (m as { loss: number }).loss);
    expect(losses.length).toBe(12);
    expect(losses.every(Number.isFinite)).toBe(true);
    const after = new Map((await engine.exportParams('all')).map((p) => [p.name, p.data]));
    expect(after.get(taskAdapterNames(1, 'flip').wUp)).toEqual(before.get(taskAdapterNames(1, 'flip').wUp));
    expect(after.get(fusionNames(1).q)).not.toEqual(before.get(fusionNames(1).q));
    const dev = await engine.evaluate('dev', { record: false });
    console.log(`fusion dev accuracy ${dev.accuracy.toFixed(3)} (single adapters: plain ${saved[0].info.devAccuracy.toFixed(3)}, flip ${saved[1].info.devAccuracy.toFixed(3)})`);
  });

  test('the fusion attention: per layer a distribution over the tasks, over the dev split and over one sentence', async () => {
    const devView = await engine.fusionAttention();
    expect(devView.tasks).toEqual(['plain', 'flip']);
    expect(devView.layers.length).toBe(L);
    const devTokens = engine['splits']!.dev.mask.reduce((a: number, b: number) => a + b, 0);
    expect(devView.tokens).toBe(devTokens);
    for (const row of devView.layers) {
      expect(row).not.toBeNull();
      expect(row!.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 3);
      for (const x of row!) expect(x).toBeGreaterThan(0);
    }
    const one = await engine.fusionAttention('the plot was great');
    expect(one.pieces).toEqual(['[CLS]', 'the', 'plot', 'was', 'great', '[SEP]']);
    expect(one.tokens).toBe(6);
    for (const row of one.layers) expect(row!.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 3);
    // one sentence is not the dev mean (the weights depend on the input)
    const diff = Math.max(...one.layers.flatMap((row, l) => row!.map((x, t) => Math.abs(x - devView.layers[l]![t]))));
    expect(diff).toBeGreaterThan(1e-7);
    // the same mean taken by hand from the model's hook: the last layer's (rows, tasks) block, first 6 rows
    const gpu = engine.gpu!, model = engine.model!;
    const copy = gpu.empty([BATCH * SEQ, 2]);
    model.onFusionAttention = (l, probs) => { if (l === L - 1) gpu.copy(probs, copy); };
    const { sentenceBatch } = await import('../../src/train/compose');
    await engine.trainer!.predictBatch(sentenceBatch(engine.tokenizer!, 'the plot was great', null, BATCH, SEQ).batch);
    model.onFusionAttention = null;
    const host = await gpu.read(copy);
    gpu.release(copy);
    for (let t = 0; t < 2; t++) {
      let sum = 0;
      for (let r = 0; r < 6; r++) sum += host[r * 2 + t];
      expect(one.layers[L - 1]![t]).toBeCloseTo(sum / 6, 6);
    }
    // a non-fusion run has no fusion attention
    engine.configure(run({ kind: 'headonly' }, 2));
    await expect(engine.fusionAttention()).rejects.toThrow(/needs an AdapterFusion run/);
  });

  test('multi-task AdapterDrop: a timing row for every k tasks and n shared layers, and each task rebuilt exactly', async () => {
    const seen: number[] = [];
    const res = await engine.measureMultitask({ batchSize: BATCH, seqLen: SEQ, timedBatches: 1, devExamples: 256 }, (done) => seen.push(done));
    expect(res.tasks).toEqual(['plain', 'flip']);
    expect(res.timing.map((r) => [r.tasks, r.n])).toEqual([1, 2].flatMap((k) => Array.from({ length: L + 1 }, (_, n) => [k, n])));
    for (const r of res.timing) {
      expect(r.infer_ms).toBeGreaterThan(0);
      expect(r.separate_ms).toBeGreaterThan(0);
      expect(r.speedup).toBeCloseTo(r.separate_ms / r.infer_ms, 2);
    }
    expect(res.accuracy.length).toBe(2 * (L + 1));
    // n = 0 is the saved adapter and head as they were trained: the accuracy measured when saved
    for (const a of saved) expect(res.accuracy.find((x) => x.task === a.name && x.n === 0)!.accuracy).toBeCloseTo(a.info.devAccuracy, 3);
    expect(seen.at(-1)).toBe(2 * (L + 1) + 2 * (L + 1));
    console.log(res.timing.map((r) => `k=${r.tasks} n=${r.n}: shared ${r.infer_ms} ms, separate ${r.separate_ms} ms`).join('\n'));
    // an adapter of another base is refused with the reason
    const other = { ...saved[0], name: 'other', info: { ...saved[0].info, name: 'other', base: { ...saved[0].info.base, hiddenSize: 64 } } };
    engine.addTaskAdapters([other]);
    await expect(engine.measureMultitask({ names: ['other'], batchSize: BATCH, seqLen: SEQ })).rejects.toThrow(/d = 64 base/);
    expect(engine.deleteTaskAdapter('other').map((s) => s.name)).toEqual(['plain', 'flip']);
  });

  test('saved task adapters round-trip through IndexedDB, and a v1 database keeps its runs when upgraded', async () => {
    const name = `compose-test-${crypto.randomUUID()}`;
    // a v1 database as the playground wrote it before task adapters existed, with one run
    await new Promise<void>((resolve, reject) => {
      const req = indexedDB.open(name, 1);
      req.onupgradeneeded = () => {
        for (const s of ['runs', 'metrics', 'checkpoints']) req.result.createObjectStore(s, { keyPath: 'id' });
        const meta = { id: 'old', name: 'old run', createdAt: 1, updatedAt: 1, method: { kind: 'lora' }, config: {}, dataset: { id: 'x', name: 'x', classes: [] }, model: { id: 'm', name: 'm' }, step: 3, bestDevAccuracy: 0.5, trainable: 1, total: 2, wallMs: 1, msPerStep: 1, bytes: 10 };
        req.transaction!.objectStore('runs').put({ id: 'old', meta, metaAndMetricsBytes: 10, checkpointBytes: 0 });
        req.transaction!.objectStore('metrics').put({ id: 'old', series: [{ step: 1, loss: 0.7 }] });
      };
      req.onsuccess = () => { req.result.close(); resolve(); };
      req.onerror = () => reject(req.error);
    });
    const store = await openStore(name);
    try {
      expect((await store.listRuns()).map((m) => m.id)).toEqual(['old']);
      expect((await store.loadRun('old')).metrics).toEqual([{ step: 1, loss: 0.7 }]);
      for (const a of saved) await store.saveTaskAdapter(a as SavedTaskAdapter);
      const back = await store.listTaskAdapters<TaskAdapterInfo>();
      expect(back.map((a) => a.name)).toEqual(['flip', 'plain']);
      const plain = back.find((a) => a.name === 'plain')!;
      expect(plain.info).toEqual(saved[0].info);
      expect(plain.params.map((p) => p.name)).toEqual(saved[0].params.map((p) => p.name));
      plain.params.forEach((p, i) => expect(p.data).toEqual(saved[0].params[i].data));
      // what came back serves stage 2 in a fresh session: the fusion model builds from it
      engine.addTaskAdapters(back as TaskAdapter[]);
      engine.loadDataset(flipped());
      engine.configure(run(FUSION, 2));
      expect((await engine.exportParams('all')).find((p) => p.name === 'classifier.weight')!.data).toEqual(saved[1].params.find((p) => p.name === 'classifier.weight')!.data);
      await store.deleteTaskAdapter('flip');
      expect((await store.listTaskAdapters()).map((a) => a.name)).toEqual(['plain']);
      await expect(store.deleteTaskAdapter('flip')).rejects.toThrow(/no saved task adapter named "flip"/);
      expect((await store.listRuns()).map((m) => m.id)).toEqual(['old']);
    } finally {
      store.close();
      await new Promise((r) => { const req = indexedDB.deleteDatabase(name); req.onsuccess = req.onerror = r; });
    }
  });
});
