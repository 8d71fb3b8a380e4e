// Saved runs in the real IndexedDB of headless Chromium (no WebGPU needed; the gpu project is the
// one that runs in a browser). Every test uses its own database and deletes it afterwards.
import { afterEach, describe, expect, test } from 'vitest';
import { openStore, PersistError, RunStore, type Checkpoint, type SavedRunMeta } from '../../src/io/persist';

const dbNames: string[] = [];
const stores: RunStore[] = [];
const rawConnections: IDBDatabase[] = [];

function freshDbName(): string {
  const name = `persist-test-${crypto.randomUUID()}`;
  dbNames.push(name);
  return name;
}

async function open(name: string): Promise<RunStore> {
  const s = await openStore(name);
  stores.push(s);
  return s;
}

/** A connection opened without this module, standing in for another tab or older code. */
function openRaw(name: string, version: number): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(name, version);
    req.onsuccess = () => {
      rawConnections.push(req.result);
      resolve(req.result);
    };
    req.onerror = () => reject(req.error);
    req.onblocked = () => reject(new Error('raw open blocked'));
  });
}

afterEach(async () => {
  for (const s of stores.splice(0)) s.close();
  for (const c of rawConnections.splice(0)) c.close();
  for (const name of dbNames.splice(0)) {
    await new Promise<void>((resolve, reject) => {
      const req = indexedDB.deleteDatabase(name);
      req.onsuccess = () => resolve();
      req.onerror = () => reject(req.error);
      req.onblocked = () => reject(new Error(`deleting test database ${name} was blocked by an open connection`));
    });
  }
});

function meta(id: string, over: Partial<SavedRunMeta> = {}): SavedRunMeta {
  return {
    id,
    name: `run ${id}`,
    createdAt: 1_700_000_000_000,
    updatedAt: 1_700_000_000_000,
    method: { kind: 'lora', r: 4, alpha: 8, targets: ['query', 'value'] },
    config: { train: { batchSize: 8, lr: 5e-3, seed: 3 } },
    dataset: { id: 'sst2-mini', name: 'SST-2 (mini)', classes: ['negative', 'positive'] },
    model: { id: 'mini-bert', name: 'mini-BERT' },
    step: 100,
    bestDevAccuracy: 0.81,
    trainable: 1234,
    total: 567890,
    wallMs: 4321,
    msPerStep: 43.2,
    bytes: 0,
    ...over,
  };
}

/** Values that a float round trip through numbers could change: NaN payloads, -0, subnormals, ±Inf. */
function trickyFloats(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  const bits = new Uint32Array(a.buffer);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    bits[i] = x;
  }
  const special = [0x7fc00123, 0xffa00001, 0x80000000, 0x00000001, 0x807fffff, 0x7f800000, 0xff800000];
  special.forEach((b, i) => (bits[i] = b));
  return a;
}

function checkpoint(step: number, seed: number): Checkpoint {
  // ~4.2 MB of parameters plus two optimizer arenas; one tensor is a view into a larger arena,
  // as the trainer's flat parameter arenas hand them out
  const arena = trickyFloats(600_000, seed + 9);
  return {
    step,
    params: [
      { name: 'bert.encoder.layer.0.attention.self.query.lora_A', shape: [4, 512], data: trickyFloats(2048, seed) },
      { name: 'bert.encoder.layer.0.attention.self.query.lora_B', shape: [1000, 1000], data: trickyFloats(1_000_000, seed + 1) },
      { name: 'classifier.weight', shape: [2, 300], data: arena.subarray(1000, 1600) },
      { name: 'classifier.bias', shape: [2], data: trickyFloats(2, seed + 2) },
    ],
    optimizer: [
      { name: 'adamw.m', data: trickyFloats(1_002_650, seed + 3) },
      { name: 'adamw.v', data: trickyFloats(1_002_650, seed + 4) },
    ],
    rng: { seed: 3, counter: step * 7 },
  };
}

function expectSameBits(actual: Float32Array, expected: Float32Array, where: string): void {
  expect(actual.length, `${where}: length`).toBe(expected.length);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < e.length; i++) {
    if (a[i] !== e[i]) throw new Error(`${where}: element ${i} has bits 0x${a[i].toString(16)}, expected 0x${e[i].toString(16)}`);
  }
}

function expectSameCheckpoint(actual: Checkpoint | null, expected: Checkpoint): void {
  expect(actual).not.toBeNull();
  const cp = actual!;
  expect(cp.step).toBe(expected.step);
  expect(cp.rng).toEqual(expected.rng);
  expect(cp.params.map((p) => [p.name, p.shape])).toEqual(expected.params.map((p) => [p.name, p.shape]));
  cp.params.forEach((p, i) => expectSameBits(p.data, expected.params[i].data, p.name));
  expect(cp.optimizer?.map((o) => o.name)).toEqual(expected.optimizer?.map((o) => o.name));
  cp.optimizer?.forEach((o, i) => expectSameBits(o.data, expected.optimizer![i].data, o.name));
}

async function expectPersistError(p: Promise<unknown>, ...fragments: string[]): Promise<PersistError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, `expected a PersistError containing ${fragments.join(', ')}`).toBeInstanceOf(PersistError);
  for (const f of fragments) expect((err as Error).message).toContain(f);
  return err as PersistError;
}

const metricSeries = (n: number, offset = 0) =>
  Array.from({ length: n }, (_, i) => ({ kind: 'step', step: i + 1, loss: 0.7 - i * 1e-3 + offset, lr: 5e-3, ms: 40 + (i % 3) }));

describe('IndexedDB run store', () => {
  test('save, list, load and delete round-trip a run with a ~12 MB checkpoint bit-exactly (NaN payloads, -0, subnormals, views)', async () => {
    const store = await open(freshDbName());
    const cp = checkpoint(100, 1);
    const metrics = metricSeries(500);
    await store.saveRun(meta('a'), metrics, cp);

    const list = await store.listRuns();
    expect(list.map((m) => m.id)).toEqual(['a']);
    const tensorBytes = 4 * (2048 + 1_000_000 + 600 + 2 + 2 * 1_002_650);
    // the view's 600 values are stored, not its 600,000-value arena
    expect(list[0].bytes).toBeGreaterThanOrEqual(tensorBytes);
    expect(list[0].bytes).toBeLessThan(tensorBytes + 200_000);

    const loaded = await store.loadRun('a');
    expect(loaded.meta).toEqual({ ...meta('a'), bytes: list[0].bytes });
    expect(loaded.metrics).toEqual(metrics);
    expectSameCheckpoint(loaded.checkpoint, cp);
    expect(loaded.checkpoint!.params[2].data.buffer.byteLength).toBe(600 * 4);

    const usage = await store.usage();
    expect(usage.runs).toBe(1);
    expect(usage.bytes).toBe(list[0].bytes);
    expect(usage.quota).toBeGreaterThan(0);

    await store.deleteRun('a');
    expect(await store.listRuns()).toEqual([]);
    await expectPersistError(store.loadRun('a'), 'no saved run with id "a"');
    expect((await store.usage()).runs).toBe(0);
  });

  test('saving a run with an existing id overwrites it; without a checkpoint argument the stored checkpoint is kept', async () => {
    const store = await open(freshDbName());
    const cp = checkpoint(50, 2);
    await store.saveRun(meta('a', { name: 'first', step: 50 }), metricSeries(10), cp);
    await store.saveRun(meta('a', { name: 'second', step: 80, updatedAt: 1_700_000_100_000 }), metricSeries(20, 1));

    const list = await store.listRuns();
    expect(list.map((m) => [m.id, m.name, m.step])).toEqual([['a', 'second', 80]]);
    const loaded = await store.loadRun('a');
    expect(loaded.metrics).toEqual(metricSeries(20, 1));
    expectSameCheckpoint(loaded.checkpoint, cp);
    expect(loaded.meta.bytes).toBeGreaterThan(12_000_000);

    const small: Checkpoint = { step: 90, params: [{ name: 'classifier.bias', shape: [2], data: new Float32Array([1.5, -2.25]) }] };
    await store.saveRun(meta('a', { name: 'third', step: 90 }), metricSeries(5), small);
    const again = await store.loadRun('a');
    expect(again.meta.name).toBe('third');
    expectSameCheckpoint(again.checkpoint, small);
    expect(again.checkpoint!.optimizer).toBeUndefined();
    expect(again.meta.bytes).toBeLessThan(10_000);
  });

  test('saveCheckpoint replaces the run checkpoint and its size; an unknown id creates nothing', async () => {
    const store = await open(freshDbName());
    await store.saveRun(meta('r'), metricSeries(30));
    expect((await store.loadRun('r')).checkpoint).toBeNull();
    const noCheckpointBytes = (await store.listRuns())[0].bytes;

    const first = checkpoint(10, 3);
    await store.saveCheckpoint('r', first);
    expectSameCheckpoint((await store.loadRun('r')).checkpoint, first);

    const second: Checkpoint = { step: 20, params: first.params.map((p) => ({ ...p, data: p.data.map((v) => v * 0.5) })) };
    await store.saveCheckpoint('r', second);
    const loaded = await store.loadRun('r');
    expectSameCheckpoint(loaded.checkpoint, second);
    expect(loaded.checkpoint!.optimizer).toBeUndefined();
    expect(loaded.metrics).toEqual(metricSeries(30));
    expect(loaded.meta.bytes).toBe(noCheckpointBytes + 4 * (2048 + 1_000_000 + 600 + 2));

    await expectPersistError(store.saveCheckpoint('missing', first), 'no saved run with id "missing"');
    expect((await store.listRuns()).map((m) => m.id)).toEqual(['r']);
  });

  test('an unknown run id is a clear error for load, delete and saveCheckpoint', async () => {
    const store = await open(freshDbName());
    await store.saveRun(meta('x'), []);
    await expectPersistError(store.loadRun('nope'), 'no saved run with id "nope"');
    await expectPersistError(store.deleteRun('nope'), 'no saved run with id "nope"');
    await expectPersistError(store.saveCheckpoint('nope', { step: 1, params: [] }), 'no saved run with id "nope"');
    expect((await store.listRuns()).map((m) => m.id)).toEqual(['x']);
  });

  test('runs are listed newest first by creation time, whatever the saving order', async () => {
    const store = await open(freshDbName());
    const created = { b: 3000, d: 1000, a: 4000, c: 2000 };
    for (const [id, t] of Object.entries(created)) await store.saveRun(meta(id, { createdAt: t, updatedAt: t }), []);
    // a later save of an old run does not move it to the top
    await store.saveCheckpoint('d', { step: 5, params: [{ name: 'w', shape: [1], data: new Float32Array([1]) }] });
    expect((await store.listRuns()).map((m) => m.id)).toEqual(['a', 'b', 'c', 'd']);
  });

  test('saved runs survive closing and reopening the database (a page reload)', async () => {
    const name = freshDbName();
    const cp = checkpoint(7, 4);
    const first = await open(name);
    await first.saveRun(meta('keep', { createdAt: 2 }), metricSeries(40), cp);
    await first.saveRun(meta('other', { createdAt: 1 }), metricSeries(3));
    first.close();
    await expectPersistError(first.listRuns(), 'the store was closed');

    const second = await open(name);
    expect((await second.listRuns()).map((m) => m.id)).toEqual(['keep', 'other']);
    const loaded = await second.loadRun('keep');
    expect(loaded.metrics).toEqual(metricSeries(40));
    expectSameCheckpoint(loaded.checkpoint, cp);
  });

  test('a malformed checkpoint is rejected with its problem named and the stored run left as it was', async () => {
    const store = await open(freshDbName());
    const good: Checkpoint = { step: 3, params: [{ name: 'w', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) }] };
    await store.saveRun(meta('r', { name: 'good' }), metricSeries(4), good);

    const wrongShape: Checkpoint = { step: 4, params: [{ name: 'w', shape: [3, 2], data: new Float32Array(4) }] };
    await expectPersistError(store.saveRun(meta('r', { name: 'bad' }), [], wrongShape), '"w" shape [3, 2] holds 6 values but data has 4');
    await expectPersistError(store.saveCheckpoint('r', wrongShape), '"w" shape [3, 2]');
    const twice: Checkpoint = { step: 4, params: [good.params[0], good.params[0]] };
    await expectPersistError(store.saveCheckpoint('r', twice), 'parameter "w" appears twice');
    const notFloat = { step: 4, params: [{ name: 'w', shape: [4], data: [1, 2, 3, 4] }] } as unknown as Checkpoint;
    await expectPersistError(store.saveCheckpoint('r', notFloat), 'not a Float32Array');
    // metrics the structured clone cannot store abort the whole transaction
    await expectPersistError(store.saveRun(meta('r', { name: 'bad' }), [{ step: 1, f: () => 1 }]), 'DataCloneError');

    const loaded = await store.loadRun('r');
    expect(loaded.meta.name).toBe('good');
    expect(loaded.metrics).toEqual(metricSeries(4));
    expectSameCheckpoint(loaded.checkpoint, good);
  });

  test('recreating a database blocked by another open connection is reported, and the store opens once that is closed', async () => {
    const name = freshDbName();
    // other code (or another tab) created the database at our version without our stores and
    // keeps it open without listening for version changes: recreating it is blocked
    const other = await openRaw(name, 1);
    await expectPersistError(openStore(name), 'another tab of the playground still has it open');
    other.close();
    const store = await open(name);
    await store.saveRun(meta('a'), metricSeries(2));
    expect((await store.listRuns()).map((m) => m.id)).toEqual(['a']);
  });

  test('an open store gives way to another tab upgrading the schema, then says to reload; a newer schema is refused', async () => {
    const name = freshDbName();
    const store = await open(name);
    await store.saveRun(meta('a'), []);
    // the "newer tab" would be blocked (and the raw open rejects) if the store held on
    const newer = await openRaw(name, 5);
    await expectPersistError(store.listRuns(), 'another tab upgraded the saved-runs database; reload');
    newer.close();
    await expectPersistError(openStore(name), 'written by a newer version of the playground');
  });

  test('a database of this name holding other stores is left alone', async () => {
    const name = freshDbName();
    await new Promise<void>((resolve, reject) => {
      const req = indexedDB.open(name, 1);
      req.onupgradeneeded = () => req.result.createObjectStore('notes');
      req.onsuccess = () => {
        req.result.close();
        resolve();
      };
      req.onerror = () => reject(req.error);
    });
    await expectPersistError(openStore(name), 'holds stores [notes]');
    const again = await openRaw(name, 1);
    expect([...again.objectStoreNames]).toEqual(['notes']);
  });

  test('without IndexedDB (as in some private-browsing modes) openStore says so', async () => {
    // the global's indexedDB attribute is replaced for this test only and then restored
    const original = Object.getOwnPropertyDescriptor(globalThis, 'indexedDB')!;
    expect(original, 'indexedDB is an own property of the global').toBeDefined();
    Object.defineProperty(globalThis, 'indexedDB', { value: undefined, configurable: true, writable: true });
    try {
      await expectPersistError(openStore(`persist-test-${crypto.randomUUID()}`), 'IndexedDB is not available here');
    } finally {
      Object.defineProperty(globalThis, 'indexedDB', original);
    }
    expect(typeof indexedDB.open).toBe('function');
  });

  test('a Web Worker saves a run that the page then loads', async () => {
    const name = freshDbName();
    const moduleUrl = new URL('../../src/io/persist.ts', import.meta.url).href;
    const source = `
      import { openStore } from ${JSON.stringify(moduleUrl)};
      self.onmessage = async (ev) => {
        try {
          const store = await openStore(ev.data.name);
          const data = new Float32Array(1000).map((_, i) => Math.sin(i) * 1e-3);
          await store.saveRun(ev.data.meta, [{ step: 1, loss: 0.5 }], { step: 1, params: [{ name: 'w', shape: [10, 100], data }] });
          store.close();
          self.postMessage({ ok: true, data });
        } catch (e) {
          self.postMessage({ ok: false, message: String(e) });
        }
      };`;
    const url = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
    const worker = new Worker(url, { type: 'module' });
    try {
      const reply = await new Promise<{ ok: boolean; message?: string; data?: Float32Array }>((resolve, reject) => {
        worker.onmessage = (ev) => resolve(ev.data);
        worker.onerror = (ev) => reject(new Error(`worker failed: ${ev.message}`));
        worker.postMessage({ name, meta: meta('from-worker') });
      });
      if (!reply.ok) throw new Error(`worker: ${reply.message}`);
      const store = await open(name);
      const loaded = await store.loadRun('from-worker');
      expect(loaded.metrics).toEqual([{ step: 1, loss: 0.5 }]);
      expectSameBits(loaded.checkpoint!.params[0].data, reply.data!, 'w');
    } finally {
      worker.terminate();
      URL.revokeObjectURL(url);
    }
  });
});
