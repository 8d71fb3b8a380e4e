// Training behaviour on real WebGPU: every method learns, the steady state allocates nothing,
// frozen weights stay bit-identical, one submit per step, AdaMix routing and merging, AdapterDrop.
import { describe, expect, test } from 'vitest';
import { BertModel } from '../../src/model/bert';
import type { MethodConfig, AdapterDropConfig, BertConfig } from '../../src/model/config';
import { RoutingCounts, sampleRoute, meanOfExpertsHost, adamixNames } from '../../src/model/peft/adamix';
import { encodeSplit, BatchIterator } from '../../src/data/batch';
import { WordPieceTokenizer } from '../../src/data/wordpiece';
import { Trainer, DEFAULT_TRAIN, drawDroppedLayers, type TrainConfig } from '../../src/train/trainer';
import { Engine } from '../../src/train/engine';
import { Rng } from '../../src/train/rng';
import { expectClose } from '../util/compare';
import { getGpu } from './gpu';
import { tinyBase, tinyDataset } from './tiny';

const TRAIN: TrainConfig = { ...DEFAULT_TRAIN, batchSize: 16, seqLen: 16, lr: 3e-3, warmupFraction: 0, totalSteps: 1000, weightDecay: 0.01, seed: 5 };

async function setup(method: MethodConfig, drop: AdapterDropConfig = { mode: 'none', n: 0 }, train: TrainConfig = TRAIN, over: Partial<BertConfig> = {}) {
  const gpu = await getGpu();
  const { config, params, vocab } = tinyBase(7, over);
  const ds = tinyDataset();
  const tok = WordPieceTokenizer.fromVocabText(vocab);
  const split = encodeSplit(ds.train, tok, train.seqLen);
  const model = BertModel.create(gpu, config, params, method, drop, new Rng(train.seed));
  const trainer = new Trainer(gpu, model, train);
  const it = new BatchIterator(split, train.batchSize, train.seed);
  return { gpu, model, trainer, it, dispose: () => (trainer.destroy(), model.destroy()) };
}

async function trainLosses(trainer: Trainer, it: BatchIterator, steps: number): Promise<number[]> {
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) {
    trainer.trainStep(it.next());
    if ((i + 1) % 8 === 0 || i === steps - 1) losses.push(...(await trainer.readMetrics()).records.map((r) => r.loss));
  }
  return losses;
}

const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;

const METHODS: [string, MethodConfig, number][] = [
  ['full', { kind: 'full' }, 3e-4],
  ['headonly', { kind: 'headonly' }, 1e-2],
  ['bitfit', { kind: 'bitfit' }, 1e-2],
  ['houlsby', { kind: 'houlsby', bottleneck: 8 }, 5e-3],
  ['pfeiffer', { kind: 'pfeiffer', reductionFactor: 4 }, 5e-3],
  ['lora', { kind: 'lora', r: 4, alpha: 8, targets: ['query', 'value'] }, 5e-3],
  ['adamix', { kind: 'adamix', experts: 4, bottleneck: 8, sharedUp: true, consistencyWeight: 1, inference: 'merged' }, 5e-3],
  ['adamix_lora', { kind: 'adamix_lora', experts: 4, r: 4, alpha: 8, targets: ['query', 'value'], sharedB: true, consistencyWeight: 1, inference: 'merged' }, 5e-3],
];

describe('training', () => {
  // the learnable task: fit one fixed batch of 16 labelled sentences (dropout off); every method
  // must bring the loss well below its start within 25 steps
  test.each(METHODS)('%s lowers the loss on a small learnable task', async (_name, method, lr) => {
    const s = await setup(method, undefined, { ...TRAIN, lr }, { hiddenDropout: 0, attentionDropout: 0 });
    try {
      const b = s.it.next();
      const batch = { ids: b.ids.slice(), typeIds: b.typeIds.slice(), mask: b.mask.slice(), labels: b.labels.slice() };
      const losses: number[] = [];
      for (let i = 0; i < 25; i++) {
        s.trainer.trainStep(batch);
        if (i % 8 === 7 || i === 24) losses.push(...(await s.trainer.readMetrics()).records.map((r) => r.loss));
      }
      const first = losses[0], last = mean(losses.slice(-3));
      expect(last, `loss went from ${first.toFixed(4)} to ${last.toFixed(4)}`).toBeLessThan(first * 0.8);
    } finally {
      s.dispose();
    }
  });

  test('the same seed gives the same run (dropout and AdaMix routes included)', async () => {
    const method: MethodConfig = { kind: 'adamix', experts: 3, bottleneck: 8, sharedUp: false, consistencyWeight: 1, inference: 'merged' };
    const runs: number[][] = [];
    for (let r = 0; r < 2; r++) {
      const s = await setup(method);
      try {
        runs.push(await trainLosses(s.trainer, s.it, 6));
      } finally {
        s.dispose();
      }
    }
    expect(runs[1]).toEqual(runs[0]);
  });

  test('one queue submission per training step, and GPU memory is the same after step 10 and step 300', async () => {
    // a 1-layer model keeps 300 steps short on a software adapter
    const s = await setup(
      { kind: 'adamix', experts: 2, bottleneck: 4, sharedUp: true, consistencyWeight: 1, inference: 'merged' },
      undefined, { ...TRAIN, batchSize: 4, seqLen: 8 }, { numLayers: 1, hiddenSize: 16, intermediateSize: 32 },
    );
    try {
      for (let i = 0; i < 10; i++) s.trainer.trainStep(s.it.next());
      await s.trainer.readMetrics();
      const bytes10 = s.gpu.pool.totalBytes, created10 = s.gpu.pool.created;
      const before = s.gpu.submitCount;
      s.trainer.trainStep(s.it.next());
      expect(s.gpu.submitCount - before).toBe(1);
      for (let i = 11; i < 300; i++) {
        s.trainer.trainStep(s.it.next());
        if (i % 100 === 0) await s.trainer.readMetrics();
      }
      await s.trainer.readMetrics();
      expect(s.gpu.pool.totalBytes).toBe(bytes10);
      expect(s.gpu.pool.created).toBe(created10);
    } finally {
      s.dispose();
    }
  });

  test('frozen parameters are bit-identical after training (Houlsby)', async () => {
    const s = await setup({ kind: 'houlsby', bottleneck: 8 });
    try {
      const frozen = (p: { group: string }) => p.group === 'frozen';
      const before = await s.model.store.read(frozen);
      const trainableBefore = await s.model.store.read((p) => p.group !== 'frozen');
      await trainLosses(s.trainer, s.it, 5);
      const after = await s.model.store.read(frozen);
      expect(before.size).toBeGreaterThan(0);
      for (const [name, v] of before) expect(after.get(name)!, name).toEqual(v);
      const trainableAfter = await s.model.store.read((p) => p.group !== 'frozen');
      const changed = [...trainableBefore].filter(([n, v]) => trainableAfter.get(n)!.some((x, i) => x !== v[i]));
      expect(changed.length).toBeGreaterThan(0);
    } finally {
      s.dispose();
    }
  });

  test('AdaMix merged inference equals one adapter whose weights are the experts\' average', async () => {
    const method: MethodConfig = { kind: 'adamix', experts: 3, bottleneck: 8, sharedUp: false, consistencyWeight: 0, inference: 'merged' };
    const s = await setup(method);
    try {
      await trainLosses(s.trainer, s.it, 4); // experts diverge from their init
      const params = await s.model.store.read();
      const averaged = new Map(params);
      for (let l = 0; l < s.model.config.numLayers; l++) {
        for (const name of Object.values(adamixNames(l))) averaged.set(name, meanOfExpertsHost(params.get(name)!, 3));
      }
      const single = BertModel.create(s.gpu, s.model.config, averaged, { ...method, experts: 1 }, { mode: 'none', n: 0 }, new Rng(1));
      for (const [n, v] of averaged) single.store.write(n, v);
      const t2 = new Trainer(s.gpu, single, TRAIN);
      try {
        const batch = s.it.next();
        const merged = await s.trainer.predictBatch(batch, { merged: true });
        const one = await t2.predictBatch(batch, { route: { adapter: [{ down: 0, up: 0 }, { down: 0, up: 0 }] } });
        expectClose(merged.logits, one.logits, { atol: 1e-5, rtol: 1e-5, label: 'merged vs averaged single adapter' });
      } finally {
        t2.destroy();
        single.destroy();
      }
    } finally {
      s.dispose();
    }
  });

  test('AdaMix routing counts sum to the routed passes and are roughly uniform', async () => {
    const s = await setup({ kind: 'adamix', experts: 4, bottleneck: 4, sharedUp: false, consistencyWeight: 1, inference: 'merged' });
    try {
      await trainLosses(s.trainer, s.it, 10);
      const c = s.trainer.routing!.snapshot();
      expect(c.passes).toBe(20); // two routed passes per step with consistency on
      for (let l = 0; l < c.layers; l++) {
        expect(c.down[l].reduce((a, b) => a + b, 0)).toBe(20);
        expect(c.up[l].reduce((a, b) => a + b, 0)).toBe(20);
      }
    } finally {
      s.dispose();
    }
    // uniformity of the sampler itself over many routes: every expert within ±10 % of N/M
    const counts = new RoutingCounts(3, 4, 4);
    const rng = new Rng(99);
    for (let i = 0; i < 8000; i++) counts.add(sampleRoute(rng, 3, { kind: 'adamix', experts: 4, upExperts: 4 }));
    for (const row of [...counts.down, ...counts.up]) for (const k of row) expect(Math.abs(k - 2000)).toBeLessThan(200);
  });

  test('robust AdapterDrop draws n uniformly from 0…L−1; specialised n records no backward below layer n', async () => {
    const rng = new Rng(4);
    const hist = [0, 0, 0, 0, 0, 0];
    for (let i = 0; i < 6000; i++) hist[drawDroppedLayers({ mode: 'robust', n: 0 }, 6, rng)]++;
    for (const k of hist) expect(Math.abs(k - 1000)).toBeLessThan(120);

    const s = await setup({ kind: 'houlsby', bottleneck: 8 }, { mode: 'specialized', n: 1 });
    try {
      s.trainer.trainStep(s.it.next());
      await s.trainer.readMetrics();
      const ops = s.trainer.tape.lastRecordedOps;
      expect(ops.length).toBeGreaterThan(0);
      expect(ops.filter((o) => o.includes('layer.0.') || o.startsWith('embedding:word') || o.includes(':emb'))).toEqual([]);
      expect(ops.some((o) => o.includes('layer.1.'))).toBe(true);
      expect(s.trainer.droppedHistogram[1]).toBe(1);
    } finally {
      s.dispose();
    }
  });

  test('a NaN loss pauses the run with a message naming the step', async () => {
    const engine = new Engine();
    const init = await engine.init();
    if (!init.ok) throw new Error(init.message);
    const { config, params, vocab } = tinyBase();
    engine.loadModel(config, params, vocab);
    engine.loadDataset(tinyDataset());
    engine.configure({ method: { kind: 'lora', r: 2, alpha: 4, targets: ['query'] }, adapterDrop: { mode: 'none', n: 0 }, train: TRAIN, evalEvery: 0 });
    const r0 = await engine.train(3, 1);
    expect(r0.state).toBe('done');
    // poison a frozen weight: every later loss is NaN
    const w = engine.model!.store;
    w.write('bert.embeddings.LayerNorm.weight', new Float32Array(config.hiddenSize).fill(NaN));
    const r = await engine.train(10, 2);
    expect(r.state).toBe('error');
    expect(r.message).toMatch(/step 4\b/);
    engine.pause();
  });
});

describe('a base model without a pooler', () => {
  test('gets a fresh pooler that trains with the head (frozen, a random projection would block every PEFT method)', async () => {
    const gpu = await getGpu();
    const { config, params } = tinyBase();
    const noPooler = new Map(params);
    noPooler.delete('bert.pooler.dense.weight');
    noPooler.delete('bert.pooler.dense.bias');
    const lora: MethodConfig = { kind: 'lora', r: 2, alpha: 4, targets: ['query'] };
    const without = BertModel.create(gpu, config, noPooler, lora, { mode: 'none', n: 0 }, new Rng(1));
    const withPooler = BertModel.create(gpu, config, params, lora, { mode: 'none', n: 0 }, new Rng(1));
    try {
      expect(without.store.params.get('bert.pooler.dense.weight')!.group).toBe('decay');
      expect(without.store.params.get('bert.pooler.dense.bias')!.group).toBe('noDecay');
      expect(withPooler.store.params.get('bert.pooler.dense.weight')!.group).toBe('frozen');
      expect(without.store.trainableCount() - withPooler.store.trainableCount()).toBe(config.hiddenSize * config.hiddenSize + config.hiddenSize);
    } finally {
      without.destroy();
      withPooler.destroy();
    }
  });
});
