// Resuming after a lost GPU device, and a run's weights as a new base model (issue 6), on real
// WebGPU: a run checkpointed into IndexedDB, its device destroyed, and a fresh engine (its own
// device) restoring the checkpoint must continue with the losses and AdaMix routes of a run that
// was never interrupted; a stored LoRA run loaded as a base model must predict as the run did.
import { describe, expect, test } from 'vitest';
import { Engine, type Metric, type RunConfig } from '../../src/train/engine';
import { DEFAULT_TRAIN } from '../../src/train/trainer';
import { openStore, type SavedRunMeta } from '../../src/io/persist';
import { tinyBase, tinyDataset } from './tiny';

const RUN: RunConfig = {
  // AdaMix draws routes and dropout seeds from the trainer's generator: the hardest state to restore
  method: { kind: 'adamix', experts: 4, bottleneck: 8, sharedUp: false, consistencyWeight: 1, inference: 'merged' },
  adapterDrop: { mode: 'none', n: 0 },
  evalEvery: 0,
  train: { ...DEFAULT_TRAIN, batchSize: 8, seqLen: 16, lr: 5e-3, totalSteps: 40, warmupFraction: 0.1, seed: 3 },
};

async function engineWith(run: RunConfig): Promise<Engine> {
  const e = new Engine();
  const init = await e.init();
  if (!init.ok) throw new Error(`no WebGPU adapter: ${init.message}`);
  const { config, params, vocab } = tinyBase();
  e.loadModel(config, params, vocab);
  e.loadDataset(tinyDataset());
  e.configure(run);
  return e;
}

/** step → loss of the step metrics since the last call */
function losses(e: Engine): Map<number, number> {
  return new Map(e.takeMetrics().filter((m): m is Extract<Metric, { kind: 'step' }> => m.kind === 'step').map((m) => [m.step, m.loss]));
}

/** a run record in a database of its own (checkpoints are stored under a saved run) */
async function runRecord(id: string): Promise<string> {
  const dbName = `checkpoint-test-${crypto.randomUUID()}`;
  const db = await openStore(dbName);
  const meta: SavedRunMeta = {
    id, name: id, createdAt: Date.now(), updatedAt: Date.now(), method: RUN.method, config: {}, dataset: { id: 'tiny', name: 'tiny', classes: [] },
    model: { id: 'tiny', name: 'tiny' }, step: 0, bestDevAccuracy: null, trainable: 0, total: 0, wallMs: 0, msPerStep: null, bytes: 0,
  };
  await db.saveRun(meta, []);
  db.close();
  return dbName; // left in the test browser's throwaway profile: the engines keep their connections open
}

describe('checkpoints and device loss', () => {
  test('a checkpoint restored into a fresh engine after a lost device continues like an uninterrupted run', async () => {
    const a = await engineWith(RUN);
    await a.train(12, 4);
    const ref = losses(a);
    const refRouting = a.routingCounts()!;
    expect(ref.size).toBe(12);

    const dbName = await runRecord('run-b');
    const b = await engineWith(RUN);
    await b.keepCheckpoints('run-b', 4, dbName);
    const r = await b.trainCheckpointed(7, 4);
    expect(r).toMatchObject({ state: 'done', step: 7 });
    expect(b.lastCheckpointStep).toBe(4);
    expect(b.checkpointError).toBeNull();
    const before = losses(b);
    b.simulateDeviceLoss();
    expect((await b.deviceLost()).reason).toBe('destroyed');

    const c = await engineWith(RUN);
    expect(await c.restoreStoredCheckpoint('run-b', dbName)).toBe(4);
    await c.train(8, 4);
    const after = losses(c);
    expect([...after.keys()]).toEqual([4, 5, 6, 7, 8, 9, 10, 11]);
    let maxDiff = 0;
    for (const [step, loss] of [...before, ...after]) maxDiff = Math.max(maxDiff, Math.abs(loss - ref.get(step)!));
    console.log(`resumed run vs uninterrupted run: max |Δloss| over 12 steps = ${maxDiff.toExponential(2)}`);
    expect(maxDiff).toBeLessThan(1e-5);
    // the same routes were drawn after the restore as without the interruption
    expect(c.routingCounts()).toEqual(refRouting);
    // the losses do move, so equal losses are not equal by accident
    expect(Math.abs(after.get(11)! - ref.get(0)!)).toBeGreaterThan(1e-3);

    // a checkpoint only restores into its own setup
    c.configure({ ...RUN, train: { ...RUN.train, seed: 4 } });
    await expect(c.restoreStoredCheckpoint('run-b', dbName)).rejects.toThrow(/another setup/);
    for (const e of [a, c]) e.gpu!.device.destroy();
  });

  test('a pause writes a checkpoint at the paused step', async () => {
    const dbName = await runRecord('run-p');
    const e = await engineWith(RUN);
    await e.keepCheckpoints('run-p', 50, dbName);
    const training = e.trainCheckpointed(30, 2);
    await new Promise((r) => setTimeout(r, 50));
    e.pause();
    const r = await training;
    expect(r.state).toBe('paused');
    expect(r.step).toBeLessThan(30);
    expect(e.lastCheckpointStep).toBe(r.step);
    const db = await openStore(dbName);
    expect((await db.loadRun('run-p')).checkpoint?.step).toBe(r.step);
    db.close();
    e.gpu!.device.destroy();
  });

  test("a stored LoRA run loaded as the base model predicts as the run did (LoRA merged into W)", async () => {
    const lora: RunConfig = { ...RUN, method: { kind: 'lora', r: 4, alpha: 8, targets: ['query', 'value'] }, train: { ...RUN.train, lr: 2e-2 } };
    const dbName = await runRecord('run-l');
    const trained = await engineWith(lora);
    await trained.train(10, 5);
    const want = await trained.evaluate('dev', { record: false });
    expect((await trained.saveModelOf('run-l', dbName)).bytes).toBeGreaterThan(0);

    const fresh = new Engine();
    expect((await fresh.init()).ok).toBe(true);
    const info = await fresh.loadSavedModel('run-l', 'LoRA run', dbName);
    expect(info.source).toBe('saved:run-l');
    fresh.loadDataset(tinyDataset());
    // head-only on the loaded base: the trained head is kept (same label count), LoRA is in W now
    fresh.configure({ ...lora, method: { kind: 'headonly' } });
    const got = await fresh.evaluate('dev', { record: false });
    console.log(`dev loss of the LoRA run ${want.loss.toFixed(6)}, of its stored merged model ${got.loss.toFixed(6)}`);
    expect(Math.abs(got.loss - want.loss)).toBeLessThan(1e-4);
    expect(got.accuracy).toBe(want.accuracy);
    // and the untrained base predicts differently, so the comparison can fail
    const base = await engineWith({ ...lora, method: { kind: 'headonly' } });
    expect(Math.abs((await base.evaluate('dev', { record: false })).loss - want.loss)).toBeGreaterThan(1e-3);
    await expect(fresh.loadSavedModel('no-such-run', 'missing', dbName)).rejects.toThrow(/no stored weights/);
    for (const e of [trained, fresh, base]) e.gpu!.device.destroy();
  });
});

describe('AdapterDrop training time', () => {
  test('times n = 0…L−1 dropped layers on throwaway copies and leaves the run as it was', async () => {
    const run: RunConfig = { ...RUN, method: { kind: 'houlsby', bottleneck: 8 } };
    const e = await engineWith(run);
    await e.train(2, 2);
    const before = await e.exportParams();
    const rows = await e.measureAdapterDropTraining(2);
    expect(rows.map((r) => r.n)).toEqual([0, 1]); // the tiny model has 2 layers
    for (const r of rows) expect(r.msPerStep).toBeGreaterThan(0);
    expect(e.trainer!.step).toBe(2);
    const after = await e.exportParams();
    expect(after.map((p) => [p.name, Array.from(p.data)])).toEqual(before.map((p) => [p.name, Array.from(p.data)]));
    e.configure({ ...run, method: { kind: 'headonly' } });
    await expect(e.measureAdapterDropTraining(1)).rejects.toThrow(/has none/);
    e.gpu!.device.destroy();
  });
});
