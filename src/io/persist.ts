// Local persistence of runs, their metric series and checkpoints in IndexedDB, so that a page
// reload keeps finished runs and a lost GPU device can resume from the last checkpoint.
// DOM-free: it uses `indexedDB` from globalThis, which exists in a window and in a Web Worker.
//
// Schema (SCHEMA_VERSION 2), the first three stores keyed by the run id:
//   runs         { id, meta: SavedRunMeta, metaAndMetricsBytes, checkpointBytes }  — small; listRuns reads only this
//   metrics      { id, series: object[] }                                    — the plain metric objects
//   checkpoints  { id, step, params: [{name, shape, buffer}], optimizer?, rng? }
//   taskAdapters { id: task name, info, params: [{name, shape, buffer}] }    — AdapterFusion's stage 1 (v2)
// v1 → v2 only adds `taskAdapters`; the runs of a v1 database stay as they are.
// Checkpoint sizes live in the `runs` record so that listing and re-saving never read the
// (possibly hundreds of MB) tensor data back.

export interface SavedRunMeta {
  id: string;
  name: string;
  createdAt: number;
  updatedAt: number;
  /** MethodConfig JSON */
  method: unknown;
  /** the run's whole configuration JSON */
  config: unknown;
  dataset: { id: string; name: string; classes: string[] };
  model: { id: string; name: string };
  step: number;
  bestDevAccuracy: number | null;
  trainable: number;
  total: number;
  wallMs: number;
  msPerStep: number | null;
  /** estimated bytes on disk (checkpoint tensors + metrics and meta as JSON); set by the store */
  bytes: number;
}

export interface Checkpoint {
  step: number;
  params: { name: string; shape: number[]; data: Float32Array }[];
  /** AdamW m, v arenas, optional */
  optimizer?: { name: string; data: Float32Array }[];
  rng?: unknown;
}

export class PersistError extends Error {
  override name = 'PersistError';
}

export const SCHEMA_VERSION = 2;
export const DEFAULT_DB_NAME = 'peft-playground';
/** the stores a run lives in (saving and deleting a run touches exactly these) */
const STORES = ['runs', 'metrics', 'checkpoints'] as const;
const ALL_STORES = [...STORES, 'taskAdapters'] as const;
type StoreName = (typeof ALL_STORES)[number];

/** A trained task adapter (with its head) kept for AdapterFusion and multi-task inference. */
export interface SavedTaskAdapter<Info = unknown> {
  /** the task's name: unique, and part of its parameter names */
  name: string;
  /** plain JSON describing it (dataset, classes, base model, sizes) */
  info: Info;
  params: { name: string; shape: number[]; data: Float32Array }[];
}
interface TaskAdapterRecord {
  id: string;
  info: unknown;
  params: { name: string; shape: number[]; buffer: ArrayBuffer }[];
}

interface RunRecord {
  id: string;
  meta: SavedRunMeta;
  /** JSON length of meta and metrics */
  metaAndMetricsBytes: number;
  /** tensor bytes of the stored checkpoint, 0 without one */
  checkpointBytes: number;
}
interface MetricsRecord {
  id: string;
  series: object[];
}
interface CheckpointRecord {
  id: string;
  step: number;
  params: { name: string; shape: number[]; buffer: ArrayBuffer }[];
  optimizer?: { name: string; buffer: ArrayBuffer }[];
  rng?: unknown;
}

/** A saved model: the Hugging Face checkpoint files of a trained run. */
export interface SavedModelFiles {
  config: string;
  weights: Uint8Array;
  vocab?: string;
}
interface ModelRecord {
  id: string;
  kind: 'model';
  config: string;
  weights: ArrayBuffer;
  vocab?: string;
}
const MODEL_SUFFIX = '/model';
function modelKey(runId: string): string {
  return `${runId}${MODEL_SUFFIX}`;
}

const MB = 1024 * 1024;
function formatBytes(n: number): string {
  return n >= MB ? `${(n / MB).toFixed(1)} MB` : `${(n / 1024).toFixed(1)} kB`;
}

function idbFactory(): IDBFactory {
  const factory = (globalThis as { indexedDB?: IDBFactory }).indexedDB;
  if (!factory) {
    throw new PersistError(
      'IndexedDB is not available here (private browsing or site storage disabled): runs cannot be saved on this device; export them instead.',
    );
  }
  return factory;
}

function requestResult<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** Opens `name` at `version`; `upgrade` runs in onupgradeneeded. A blocked upgrade (another tab
 *  holds an older connection and does not close it) is reported instead of waiting forever. */
function openDb(name: string, version: number | undefined, upgrade: (db: IDBDatabase, oldVersion: number) => string | null): Promise<IDBDatabase> {
  const factory = idbFactory();
  return new Promise((resolve, reject) => {
    let settled = false;
    let req: IDBOpenDBRequest;
    try {
      req = version === undefined ? factory.open(name) : factory.open(name, version);
    } catch (e) {
      reject(new PersistError(`cannot open the saved-runs database "${name}": ${String(e)}`));
      return;
    }
    let refused: string | null = null;
    req.onupgradeneeded = (ev) => {
      // `upgrade` returns a reason to leave the database untouched: the upgrade is aborted
      refused = upgrade(req.result, ev.oldVersion);
      if (refused) req.transaction?.abort();
    };
    req.onblocked = () => {
      settled = true;
      reject(new PersistError(blockedMessage(name)));
    };
    req.onsuccess = () => {
      // the upgrade may finish after we gave up on a blocked request: do not leak that connection
      if (settled) req.result.close();
      else resolve(req.result);
      settled = true;
    };
    req.onerror = (ev) => {
      ev.preventDefault();
      if (settled) return;
      settled = true;
      const err = req.error;
      if (refused) {
        reject(new PersistError(refused));
      } else if (err?.name === 'VersionError') {
        reject(
          new PersistError(
            `the saved-runs database "${name}" was written by a newer version of the playground (this page reads schema v${SCHEMA_VERSION}); reload to get the newer version`,
          ),
        );
      } else {
        // Firefox's private mode and disabled site storage fail here (InvalidStateError / UnknownError)
        reject(
          new PersistError(
            `IndexedDB refused to open "${name}" (${err?.name ?? 'unknown error'}: ${err?.message ?? ''}); private browsing or disabled site storage prevents saving runs`,
          ),
        );
      }
    };
  });
}

function foreignStoresMessage(dbName: string, found: string[]): string {
  return `the database "${dbName}" holds stores [${found.join(', ')}] instead of the playground's [${STORES.join(', ')}]; it belongs to other code on this site`;
}

/** Creates the stores a version lacks. An existing database without our run stores but with
 *  others belongs to other code: it is refused rather than given our stores. */
function upgradeStores(dbName: string) {
  return (db: IDBDatabase, oldVersion: number): string | null => {
    const found = [...db.objectStoreNames];
    if (oldVersion > 0 && found.length > 0 && STORES.some((s) => !found.includes(s))) return foreignStoresMessage(dbName, found);
    for (const s of ALL_STORES) if (!db.objectStoreNames.contains(s)) db.createObjectStore(s, { keyPath: 'id' });
    return null;
  };
}

export async function openStore(dbName: string = DEFAULT_DB_NAME): Promise<RunStore> {
  let db = await openDb(dbName, SCHEMA_VERSION, upgradeStores(dbName));
  if (ALL_STORES.some((s) => !db.objectStoreNames.contains(s))) {
    // The database exists at our version without our stores, so other code created it (our
    // upgrade creates all stores in one transaction). An empty one holds nothing to lose:
    // recreate it. One with other stores is not ours to touch.
    const found = [...db.objectStoreNames];
    db.close();
    if (found.length > 0) {
      throw new PersistError(foreignStoresMessage(dbName, found));
    }
    await deleteDb(dbName);
    db = await openDb(dbName, SCHEMA_VERSION, upgradeStores(dbName));
  }
  return new RunStore(db, dbName);
}

function deleteDb(name: string): Promise<void> {
  const factory = idbFactory();
  return new Promise((resolve, reject) => {
    const req = factory.deleteDatabase(name);
    req.onsuccess = () => resolve();
    req.onerror = () => reject(new PersistError(`cannot recreate the saved-runs database "${name}": ${req.error?.message ?? 'unknown error'}`));
    req.onblocked = () => reject(new PersistError(blockedMessage(name)));
  });
}

function blockedMessage(name: string): string {
  return `the saved-runs database "${name}" needs an upgrade, but another tab of the playground still has it open; close the other tabs and reload this page`;
}

/** Checks a checkpoint before anything is written, so that bad input changes nothing stored. */
function validateCheckpoint(runLabel: string, cp: Checkpoint): void {
  const fail = (msg: string): never => {
    throw new PersistError(`checkpoint of run ${runLabel}: ${msg}`);
  };
  if (!Number.isInteger(cp.step) || cp.step < 0) fail(`step must be a non-negative integer, got ${cp.step}`);
  if (!Array.isArray(cp.params)) fail('params must be an array');
  const seen = new Set<string>();
  for (const p of cp.params) {
    if (typeof p.name !== 'string' || p.name === '') fail('a parameter has no name');
    if (seen.has(p.name)) fail(`parameter "${p.name}" appears twice`);
    seen.add(p.name);
    if (!(p.data instanceof Float32Array)) fail(`parameter "${p.name}" data is not a Float32Array`);
    if (!Array.isArray(p.shape) || p.shape.some((d) => !Number.isInteger(d) || d < 0)) {
      fail(`parameter "${p.name}" has an invalid shape ${JSON.stringify(p.shape)}`);
    }
    const n = p.shape.reduce((a, b) => a * b, 1);
    if (n !== p.data.length) fail(`parameter "${p.name}" shape [${p.shape.join(', ')}] holds ${n} values but data has ${p.data.length}`);
  }
  for (const o of cp.optimizer ?? []) {
    if (typeof o.name !== 'string' || o.name === '') fail('an optimizer state has no name');
    if (!(o.data instanceof Float32Array)) fail(`optimizer state "${o.name}" data is not a Float32Array`);
  }
}

/** A copy into an ArrayBuffer of exactly the tensor's bytes: structured clone of a view would
 *  store its whole underlying buffer (e.g. an entire parameter arena), and a byte copy keeps every
 *  bit, NaN payloads included. */
function ownBuffer(data: Float32Array): ArrayBuffer {
  return new Float32Array(data).buffer as ArrayBuffer;
}

function checkpointRecord(id: string, cp: Checkpoint): { record: CheckpointRecord; bytes: number } {
  let bytes = 0;
  const params = cp.params.map((p) => {
    bytes += p.data.byteLength;
    return { name: p.name, shape: [...p.shape], buffer: ownBuffer(p.data) };
  });
  const optimizer = cp.optimizer?.map((o) => {
    bytes += o.data.byteLength;
    return { name: o.name, buffer: ownBuffer(o.data) };
  });
  const record: CheckpointRecord = { id, step: cp.step, params };
  if (optimizer) record.optimizer = optimizer;
  if (cp.rng !== undefined) record.rng = cp.rng;
  return { record, bytes };
}

function checkpointFromRecord(r: CheckpointRecord): Checkpoint {
  const cp: Checkpoint = {
    step: r.step,
    params: r.params.map((p) => ({ name: p.name, shape: p.shape, data: new Float32Array(p.buffer) })),
  };
  if (r.optimizer) cp.optimizer = r.optimizer.map((o) => ({ name: o.name, data: new Float32Array(o.buffer) }));
  if (r.rng !== undefined) cp.rng = r.rng;
  return cp;
}

function jsonBytes(value: unknown, what: string): number {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    throw new PersistError(`${what} is not plain data (${String(e)})`);
  }
  return text === undefined ? 0 : text.length;
}

function unknownRun(id: string): PersistError {
  return new PersistError(`no saved run with id "${id}" (it may have been deleted in another tab)`);
}

export class RunStore {
  private db: IDBDatabase | null;
  private closedByOtherTab = false;

  constructor(db: IDBDatabase, readonly dbName: string) {
    this.db = db;
    // Close when another tab upgrades the schema, so that its upgrade is not blocked by us.
    db.onversionchange = () => {
      this.closedByOtherTab = true;
      this.close();
    };
  }

  close(): void {
    this.db?.close();
    this.db = null;
  }

  async listRuns(): Promise<SavedRunMeta[]> {
    const records = await this.run(['runs'], 'readonly', 'list saved runs', (tx) =>
      requestResult(tx.objectStore('runs').getAll() as IDBRequest<RunRecord[]>),
    );
    // newest first by creation, so that a run's later checkpoint saves do not reorder the list
    return records
      .map((r) => r.meta)
      .sort((a, b) => b.createdAt - a.createdAt || b.updatedAt - a.updatedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Writes meta, metrics and (when given) the checkpoint in one transaction, replacing a run with
   *  the same id. Without a checkpoint argument the run's stored checkpoint, if any, is kept: the
   *  worker saves checkpoints on its own schedule and the page re-saves meta and metrics. */
  async saveRun(meta: SavedRunMeta, metrics: object[], checkpoint?: Checkpoint): Promise<void> {
    if (typeof meta?.id !== 'string' || meta.id === '') throw new PersistError('a saved run needs a non-empty string id');
    if (!Array.isArray(metrics)) throw new PersistError(`metrics of run "${meta.name}" must be an array of plain objects`);
    const label = `"${meta.name}" (${meta.id})`;
    const metricsBytes = jsonBytes(metrics, `the metric series of run ${label}`);
    const metaBytes = jsonBytes({ ...meta, bytes: 0 }, `the configuration of run ${label}`);
    let cp: { record: CheckpointRecord; bytes: number } | null = null;
    if (checkpoint) {
      validateCheckpoint(label, checkpoint);
      cp = checkpointRecord(meta.id, checkpoint);
    }
    let writtenBytes = metricsBytes + metaBytes + (cp?.bytes ?? 0);
    await this.run(['runs', 'metrics', 'checkpoints'], 'readwrite', `save run ${label}`, async (tx) => {
      const runs = tx.objectStore('runs');
      let checkpointBytes = cp?.bytes ?? 0;
      if (!cp) {
        const old = (await requestResult(runs.get(meta.id))) as RunRecord | undefined;
        checkpointBytes = old?.checkpointBytes ?? 0;
      }
      writtenBytes = metricsBytes + metaBytes + checkpointBytes;
      const record: RunRecord = { id: meta.id, meta: { ...meta, bytes: writtenBytes }, metaAndMetricsBytes: metricsBytes + metaBytes, checkpointBytes };
      runs.put(record);
      tx.objectStore('metrics').put({ id: meta.id, series: metrics } satisfies MetricsRecord);
      if (cp) tx.objectStore('checkpoints').put(cp.record);
    }, () => `run ${label}, ${formatBytes(writtenBytes)}`);
  }

  async loadRun(id: string): Promise<{ meta: SavedRunMeta; metrics: object[]; checkpoint: Checkpoint | null }> {
    return this.run(['runs', 'metrics', 'checkpoints'], 'readonly', `load run "${id}"`, async (tx) => {
      const [run, metrics, cp] = await Promise.all([
        requestResult(tx.objectStore('runs').get(id)) as Promise<RunRecord | undefined>,
        requestResult(tx.objectStore('metrics').get(id)) as Promise<MetricsRecord | undefined>,
        requestResult(tx.objectStore('checkpoints').get(id)) as Promise<CheckpointRecord | undefined>,
      ]);
      if (!run) throw unknownRun(id);
      return { meta: run.meta, metrics: metrics?.series ?? [], checkpoint: cp ? checkpointFromRecord(cp) : null };
    });
  }

  /** Replaces the run's checkpoint (every k steps, for resuming after a lost device). */
  async saveCheckpoint(id: string, checkpoint: Checkpoint): Promise<void> {
    validateCheckpoint(`"${id}"`, checkpoint);
    const cp = checkpointRecord(id, checkpoint);
    let runBytes = cp.bytes;
    let runName = id;
    await this.run(['runs', 'checkpoints'], 'readwrite', `save the checkpoint of run "${id}"`, async (tx) => {
      const runs = tx.objectStore('runs');
      const run = (await requestResult(runs.get(id))) as RunRecord | undefined;
      if (!run) throw unknownRun(id);
      runName = run.meta.name;
      runBytes = run.metaAndMetricsBytes + cp.bytes;
      runs.put({ ...run, checkpointBytes: cp.bytes, meta: { ...run.meta, bytes: runBytes } } satisfies RunRecord);
      tx.objectStore('checkpoints').put(cp.record);
    }, () => `the checkpoint of run "${runName}" (${id}), ${formatBytes(cp.bytes)} (run total ${formatBytes(runBytes)})`);
  }

  async deleteRun(id: string): Promise<void> {
    await this.run(['runs', 'metrics', 'checkpoints'], 'readwrite', `delete run "${id}"`, async (tx) => {
      const n = await requestResult(tx.objectStore('runs').count(id));
      if (n === 0) throw unknownRun(id);
      for (const s of STORES) tx.objectStore(s).delete(id);
      tx.objectStore('checkpoints').delete(modelKey(id));
    });
  }

  // ---- saved models (issue 6): a run's trained weights as a Hugging Face BERT checkpoint (the
  // files exportFullModel writes), offered as a base model for new runs. They live in the
  // checkpoints store under `<run id>/model`, so no schema change is needed; deleteRun removes them.

  async saveModelFiles(id: string, files: SavedModelFiles): Promise<void> {
    if (typeof files.config !== 'string' || !(files.weights instanceof Uint8Array)) throw new PersistError(`the model of run "${id}" needs config.json text and safetensors bytes`);
    const weights = files.weights.slice().buffer as ArrayBuffer; // exactly the file's bytes, not a larger underlying buffer
    const record: ModelRecord = { id: modelKey(id), kind: 'model', config: files.config, weights, vocab: files.vocab };
    await this.run(['runs', 'checkpoints'], 'readwrite', `save the model of run "${id}"`, async (tx) => {
      if ((await requestResult(tx.objectStore('runs').count(id))) === 0) throw unknownRun(id);
      tx.objectStore('checkpoints').put(record);
    }, () => `the model of run "${id}", ${formatBytes(weights.byteLength)}`);
  }

  async loadModelFiles(id: string): Promise<SavedModelFiles | null> {
    const r = await this.run(['checkpoints'], 'readonly', `load the model of run "${id}"`, (tx) =>
      requestResult(tx.objectStore('checkpoints').get(modelKey(id)) as IDBRequest<ModelRecord | undefined>),
    );
    return r ? { config: r.config, weights: new Uint8Array(r.weights), vocab: r.vocab } : null;
  }

  /** Ids of the runs that have a saved model (keys only: no tensor data is read). */
  async listModelIds(): Promise<string[]> {
    const keys = await this.run(['checkpoints'], 'readonly', 'list saved models', (tx) => requestResult(tx.objectStore('checkpoints').getAllKeys()));
    return keys.map(String).filter((k) => k.endsWith(MODEL_SUFFIX)).map((k) => k.slice(0, -MODEL_SUFFIX.length));
  }

  /** Drops a run's resume checkpoint (a finished run no longer needs one) and keeps the rest. */
  async deleteCheckpoint(id: string): Promise<void> {
    await this.run(['runs', 'checkpoints'], 'readwrite', `delete the checkpoint of run "${id}"`, async (tx) => {
      const runs = tx.objectStore('runs');
      const run = (await requestResult(runs.get(id))) as RunRecord | undefined;
      if (run) runs.put({ ...run, checkpointBytes: 0, meta: { ...run.meta, bytes: run.metaAndMetricsBytes } } satisfies RunRecord);
      tx.objectStore('checkpoints').delete(id);
    });
  }

  /** Saves a task adapter (AdapterFusion's stage 1), replacing one of the same name. */
  async saveTaskAdapter(adapter: SavedTaskAdapter): Promise<void> {
    const label = `task adapter "${adapter?.name}"`;
    if (typeof adapter?.name !== 'string' || adapter.name === '') throw new PersistError('a task adapter needs a non-empty name');
    jsonBytes(adapter.info, `the description of ${label}`);
    validateCheckpoint(label, { step: 0, params: adapter.params });
    const { record, bytes } = checkpointRecord(adapter.name, { step: 0, params: adapter.params });
    const stored: TaskAdapterRecord = { id: adapter.name, info: adapter.info, params: record.params };
    await this.run(['taskAdapters'], 'readwrite', `save ${label}`, async (tx) => {
      tx.objectStore('taskAdapters').put(stored);
    }, () => `${label}, ${formatBytes(bytes)}`);
  }

  /** Every saved task adapter with its weights (they are small: one bottleneck per layer and a head). */
  async listTaskAdapters<Info = unknown>(): Promise<SavedTaskAdapter<Info>[]> {
    const records = await this.run(['taskAdapters'], 'readonly', 'list saved task adapters', (tx) =>
      requestResult(tx.objectStore('taskAdapters').getAll() as IDBRequest<TaskAdapterRecord[]>),
    );
    return records
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((r) => ({ name: r.id, info: r.info as Info, params: r.params.map((p) => ({ name: p.name, shape: p.shape, data: new Float32Array(p.buffer) })) }));
  }

  async deleteTaskAdapter(name: string): Promise<void> {
    await this.run(['taskAdapters'], 'readwrite', `delete task adapter "${name}"`, async (tx) => {
      const n = await requestResult(tx.objectStore('taskAdapters').count(name));
      if (n === 0) throw new PersistError(`no saved task adapter named "${name}" (it may have been deleted in another tab)`);
      tx.objectStore('taskAdapters').delete(name);
    });
  }

  async usage(): Promise<{ runs: number; bytes: number; quota?: number }> {
    const records = await this.run(['runs'], 'readonly', 'measure saved runs', (tx) =>
      requestResult(tx.objectStore('runs').getAll() as IDBRequest<RunRecord[]>),
    );
    const result: { runs: number; bytes: number; quota?: number } = {
      runs: records.length,
      bytes: records.reduce((a, r) => a + r.meta.bytes, 0),
    };
    const storage = (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage;
    if (storage?.estimate) {
      const est = await storage.estimate();
      if (est.quota !== undefined) result.quota = est.quota;
    }
    return result;
  }

  /** Runs `body` in one transaction and resolves with its result once the transaction commits.
   *  `body` may only await IndexedDB requests of `tx` (any other await lets the transaction
   *  auto-commit). A PersistError thrown by `body` aborts the transaction and is reported as is;
   *  a quota error names what was being written (`quotaLabel`: the run and its size). */
  private run<T>(
    stores: StoreName[],
    mode: IDBTransactionMode,
    action: string,
    body: (tx: IDBTransaction) => Promise<T>,
    quotaLabel?: () => string,
  ): Promise<T> {
    if (!this.db) {
      const why = this.closedByOtherTab
        ? 'another tab upgraded the saved-runs database; reload this page'
        : 'the store was closed';
      return Promise.reject(new PersistError(`cannot ${action}: ${why}`));
    }
    let tx: IDBTransaction;
    try {
      tx = this.db.transaction(stores, mode);
    } catch (e) {
      return Promise.reject(new PersistError(`cannot ${action}: ${String(e)}`));
    }
    return new Promise<T>((resolve, reject) => {
      let result: T;
      let bodyError: unknown = null;
      body(tx).then(
        (r) => {
          result = r;
        },
        (e) => {
          bodyError = e;
          try {
            tx.abort();
          } catch {
            // already committing or aborting: oncomplete/onabort reports it
          }
        },
      );
      tx.oncomplete = () => {
        if (bodyError) reject(bodyError instanceof PersistError ? bodyError : new PersistError(`cannot ${action}: ${String(bodyError)}`));
        else resolve(result);
      };
      tx.onabort = () => {
        if (bodyError instanceof PersistError) {
          reject(bodyError);
          return;
        }
        // a failed request rejects `body` with its DOMException and then aborts the transaction
        const err = (bodyError as DOMException | null) ?? tx.error;
        if (err?.name === 'QuotaExceededError') {
          reject(
            new PersistError(
              `cannot ${quotaLabel ? `save ${quotaLabel()}` : action}: the browser's storage quota for this site is full; delete saved runs you no longer need to free space`,
            ),
          );
        } else {
          reject(new PersistError(`cannot ${action}: ${err?.name ?? 'transaction aborted'}${err?.message ? `: ${err.message}` : ''}`));
        }
      };
    });
  }
}
