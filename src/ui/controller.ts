// Everything the page does with the worker: boot, load data and models, the train/pause/step/reset
// loop, "compare methods", the AdaMix and AdapterDrop analyses, the try-it box, exports and saved
// runs. Components call these functions and read the store; the worker does all the computing,
// so the main thread only moves small objects and redraws.
import * as Comlink from 'comlink';
import type { Metric, RunConfig } from '../train/engine';
import type { DatasetInfo } from '../data/datasets';
import { DEFAULT_TRAIN } from '../train/trainer';
import { metricsToCsv } from '../io/export';
import { openStore, type RunStore, type SavedRunMeta } from '../io/persist';
import { getEngine } from './engine';
import { configFromSearch, configToSearch, methodWithDefaults, type PageConfig } from './config';
import { COMPARED_METHODS, methodLabel } from './methods';
import { bestDevAccuracy, currentRun, msPerStep, updateRun, useStore, type Run, type StepPoint } from './store';

const READ_EVERY = 4;
const POLL_MS = 300;
const SMOOTHING = 0.9;

/** why a call failed, as one sentence (comlink carries the worker's Error message across) */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

const set = useStore.setState;
const get = useStore.getState;

/** Runs `work` with a progress label shown (anything that may take more than a second). */
async function withBusy<T>(label: string, work: () => Promise<T>): Promise<T> {
  set({ busy: { label } });
  try {
    return await work();
  } finally {
    if (get().busy?.label === label) set({ busy: null });
  }
}

// ---- configuration and the URL -------------------------------------------------------------

/** Changing the data or the model reloads them in the worker, which drops its trained model. */
let engineEpoch = 0;
let runEpoch = -1;

export function setConfig(change: Partial<PageConfig>): void {
  const config = { ...get().config, ...change };
  set({ config });
  history.replaceState(null, '', configToSearch(config) + location.hash);
}

// ---- boot ----------------------------------------------------------------------------------

let store: RunStore | null = null;

export async function boot(): Promise<void> {
  const { config, notes } = configFromSearch(location.search);
  set({ config, configNotes: notes });
  const engine = getEngine();
  let init;
  try {
    init = await engine.init();
  } catch (e) {
    set({ gpu: { phase: 'unavailable', reason: 'worker', message: messageOf(e) } });
    return;
  }
  if (!init.ok) {
    set({ gpu: { phase: 'unavailable', reason: init.reason, message: init.message } });
    return;
  }
  set({ gpu: { phase: 'ready', adapter: init.adapter } });
  engine.deviceLost().then((lost) => {
    set({ gpu: { phase: 'lost', message: lost.message || lost.reason } });
    const run = currentRun();
    if (run && run.state === 'training') updateRun(run.id, { state: 'error', message: 'the GPU device was lost' });
  }).catch(() => undefined);
  history.replaceState(null, '', configToSearch(config) + location.hash);
  void restoreSavedRuns();
  await loadBuiltinList();
  await loadModel(config.model);
  await loadBuiltinDataset(config.dataset);
}

async function loadBuiltinList(): Promise<void> {
  try {
    const res = await fetch(`${import.meta.env.BASE_URL}data/index.json`);
    set({ builtins: (await res.json()) as DatasetInfo[] });
  } catch (e) {
    set({ datasetError: `could not list the built-in datasets: ${messageOf(e)}` });
  }
}

// ---- data and models -----------------------------------------------------------------------

export async function loadBuiltinDataset(id: string): Promise<void> {
  if (isTraining()) pause();
  await withBusy(`Loading dataset ${id}…`, async () => {
    try {
      const summary = await getEngine().loadBuiltin(id, get().config.seed);
      engineEpoch++;
      set({ dataset: summary, datasetError: null });
      setConfig({ dataset: id });
    } catch (e) {
      set({ datasetError: messageOf(e) });
    }
  });
}

/** A user's file. A bad one shows its line-numbered error; the loaded dataset stays as it was. */
export async function importDatasetFile(file: File): Promise<void> {
  if (isTraining()) pause();
  await withBusy(`Reading ${file.name}…`, async () => {
    try {
      const bytes = new Uint8Array(await file.arrayBuffer());
      const summary = await getEngine().importDataset(Comlink.transfer(bytes, [bytes.buffer]), file.name, get().config.seed);
      engineEpoch++;
      set({ dataset: summary, datasetError: null });
      setConfig({ dataset: summary.id });
    } catch (e) {
      set({ datasetError: `${file.name}: ${messageOf(e)} — the dataset "${get().dataset?.name ?? 'none'}" is still loaded` });
    }
  });
}

export async function loadModel(source: string): Promise<void> {
  if (isTraining()) pause();
  await withBusy(source === 'default' ? 'Loading the default model…' : `Downloading ${source}…`, async () => {
    try {
      const engine = getEngine();
      const info =
        source === 'default'
          ? await engine.loadDefaultModel()
          : await engine.loadModelFromUrl(
              source,
              Comlink.proxy((loaded: number, total: number) => set({ busy: { label: `Downloading ${source}…`, fraction: total ? loaded / total : undefined } })),
            );
      engineEpoch++;
      set({ model: info, modelError: null });
      setConfig({ model: source, seqLen: Math.min(get().config.seqLen, info.config.maxPositions) });
      // the dataset is tokenized with the model's vocabulary: reload it for the new model
    } catch (e) {
      set({ modelError: messageOf(e) });
    }
  });
}

/** config.json + model.safetensors (+ vocab.txt) picked from disk. */
export async function loadModelFiles(files: File[]): Promise<void> {
  const byName = (n: string) => files.find((f) => f.name === n);
  const config = byName('config.json'), weights = byName('model.safetensors') ?? files.find((f) => f.name.endsWith('.safetensors'));
  if (!config || !weights) {
    set({ modelError: `pick config.json and model.safetensors (and vocab.txt if the model has its own vocabulary); got ${files.map((f) => f.name).join(', ') || 'nothing'}` });
    return;
  }
  if (isTraining()) pause();
  await withBusy('Loading the model files…', async () => {
    try {
      const vocab = byName('vocab.txt');
      const bytes = new Uint8Array(await weights.arrayBuffer());
      const info = await getEngine().loadModelFromFiles(
        Comlink.transfer({ config: await config.text(), weights: bytes, vocab: vocab ? await vocab.text() : undefined, name: `files: ${weights.name}` }, [bytes.buffer]),
      );
      engineEpoch++;
      set({ model: info, modelError: null });
    } catch (e) {
      set({ modelError: messageOf(e) });
    }
  });
}

// ---- training ------------------------------------------------------------------------------

let training: Promise<void> | null = null;
let nextStyle = 0;

export function isTraining(): boolean {
  return training !== null;
}

function runConfigOf(c: PageConfig): RunConfig {
  return {
    method: c.method,
    adapterDrop: c.adapterDrop,
    evalEvery: c.evalEvery,
    train: { ...DEFAULT_TRAIN, seed: c.seed, lr: c.lr, totalSteps: c.steps, batchSize: c.batchSize, seqLen: c.seqLen },
  };
}

function sameSetup(a: PageConfig, b: PageConfig): boolean {
  return JSON.stringify({ ...a, evalEvery: 0 }) === JSON.stringify({ ...b, evalEvery: 0 });
}

/** The run the next step belongs to: the current one while its setup is unchanged, else a new one. */
async function ensureRun(config: PageConfig): Promise<Run> {
  const run = currentRun();
  if (run && !run.saved && runEpoch === engineEpoch && sameSetup(run.config, config) && run.state !== 'finished' && run.state !== 'error') return run;
  const s = get();
  if (!s.model || !s.dataset) throw new Error('the model and the dataset are still loading');
  const shape = await withBusy('Building the model and tokenizing the data…', () => getEngine().configure(runConfigOf(config)));
  runEpoch = engineEpoch;
  const n = s.runs.length + 1;
  const drop = config.adapterDrop.mode === 'specialized' ? ` · drop ${config.adapterDrop.n}` : config.adapterDrop.mode === 'robust' ? ' · robust drop' : '';
  const created: Run = {
    id: crypto.randomUUID(),
    label: `${n}. ${methodLabel(config.method.kind)}${drop}`,
    styleIndex: nextStyle++,
    config: structuredClone(config),
    datasetName: s.dataset.name,
    modelName: s.model.name,
    ...shape,
    steps: [],
    evals: [],
    state: 'ready',
    wallMs: 0,
    visible: true,
  };
  set({ runs: [...get().runs, created], currentRunId: created.id, prediction: null });
  return created;
}

function appendMetrics(runId: string, metrics: Metric[]): void {
  if (metrics.length === 0) return;
  updateRun(runId, (r) => {
    const steps = r.steps.slice();
    const evals = r.evals.slice();
    let state = r.state, message = r.message;
    for (const m of metrics) {
      if (m.kind === 'step') {
        const k = steps.length + 1;
        const prevEma = k > 1 ? steps[k - 2].smooth * (1 - SMOOTHING ** (k - 1)) : 0;
        const ema = SMOOTHING * prevEma + (1 - SMOOTHING) * m.loss;
        const point: StepPoint = { step: m.step + 1, loss: m.loss, smooth: ema / (1 - SMOOTHING ** k), consistency: m.consistency, stepMs: m.stepMs, tokensPerS: m.tokensPerS };
        steps.push(point);
      } else if (m.kind === 'eval' && m.split === 'dev' && !m.mode) {
        evals.push({ step: m.step, loss: m.loss, accuracy: m.accuracy, macroF1: m.macroF1 });
      } else if (m.kind === 'status') {
        state = m.state === 'error' ? 'error' : m.state;
        message = m.message;
      }
    }
    return { steps, evals, state, message };
  });
}

async function drain(run: Run): Promise<void> {
  const engine = getEngine();
  appendMetrics(run.id, await engine.takeMetrics());
  const kind = run.config.method.kind;
  if (kind === 'adamix' || kind === 'adamix_lora') {
    const routing = await engine.routingCounts();
    if (routing) updateRun(run.id, { routing });
  }
}

/** Train `steps` steps (or to the end of the schedule) of the current setup, polling metrics. */
async function trainSteps(steps: number): Promise<void> {
  if (training) return;
  const config = get().config;
  let run: Run;
  try {
    run = await ensureRun(config);
  } catch (e) {
    set({ error: messageOf(e), queue: [] });
    return;
  }
  set({ error: null });
  const engine = getEngine();
  training = (async () => {
    updateRun(run.id, { state: 'training', message: undefined });
    const started = performance.now();
    let done = false;
    const result = engine.train(steps, READ_EVERY).finally(() => (done = true));
    while (!done) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      await drain(run);
    }
    try {
      const r = await result;
      await drain(run);
      // 'done' = the asked-for steps ran; when they reached the schedule's end the run is finished
      const finished = r.state === 'finished' || (r.state === 'done' && r.step >= run.config.steps);
      const wallMs = performance.now() - started;
      if (finished) await onFinished(run.id); // the final dev evaluation belongs to the run, before it reads "finished"
      updateRun(run.id, (cur) => ({
        wallMs: cur.wallMs + wallMs,
        state: finished ? 'finished' : r.state === 'done' ? 'paused' : r.state,
        message: r.message,
      }));
    } catch (e) {
      updateRun(run.id, (cur) => ({ state: 'error', message: messageOf(e), wallMs: cur.wallMs + (performance.now() - started) }));
      set({ queue: [] });
    }
  })();
  try {
    await training;
  } finally {
    training = null;
  }
  void saveRun(run.id);
  await continueQueue();
}

async function onFinished(runId: string): Promise<void> {
  const run = get().runs.find((r) => r.id === runId)!;
  // a final dev evaluation when the schedule's last step was not an eval step
  if (!run.evals.some((e) => e.step === run.config.steps)) {
    await withBusy('Evaluating on the dev split…', async () => {
      await getEngine().evaluate('dev');
      appendMetrics(runId, await getEngine().takeMetrics());
    });
  }
}

export function train(): Promise<void> {
  const c = get().config;
  return trainSteps(c.steps);
}

export function step(): Promise<void> {
  return trainSteps(1);
}

export function pause(): void {
  set({ queue: [] });
  void getEngine().pause();
}

export function toggleTrain(): void {
  if (isTraining()) pause();
  else void train();
}

/** Forget the current run's progress: the next Train starts a fresh run of the same setup. */
export function reset(): void {
  if (isTraining()) pause();
  const run = currentRun();
  if (run && run.steps.length === 0) return;
  if (run) updateRun(run.id, { state: run.state === 'training' ? 'paused' : run.state });
  set({ currentRunId: null });
}

/** Queues full FT, head-only, Houlsby, Pfeiffer, LoRA and AdaMix on the same data, model and seed. */
export async function compareMethods(): Promise<void> {
  if (isTraining()) return;
  const base = get().config;
  const queue = COMPARED_METHODS.map((kind) => ({ ...base, method: methodWithDefaults(kind), adapterDrop: { mode: 'none' as const, n: 0 } }));
  set({ queue: queue.slice(1), currentRunId: null });
  setConfig({ method: queue[0].method, adapterDrop: queue[0].adapterDrop });
  await train();
}

async function continueQueue(): Promise<void> {
  const [next, ...rest] = get().queue;
  if (!next) return;
  const run = currentRun();
  if (run && run.state !== 'finished') return; // paused or failed: the queue was cleared or waits
  set({ queue: rest });
  setConfig({ method: next.method, adapterDrop: next.adapterDrop });
  await train();
}

// ---- analyses ------------------------------------------------------------------------------

function requireLiveRun(): Run {
  const run = currentRun();
  if (!run || run.saved || runEpoch !== engineEpoch) throw new Error('train a run first (a saved run has curves but no weights in this session)');
  if (isTraining()) throw new Error('pause training first');
  return run;
}

export async function evaluateAdamixRoutes(): Promise<void> {
  try {
    const run = requireLiveRun();
    const r = await withBusy('Evaluating the merged model and 3 sampled routes on dev…', () => getEngine().adamixRouteEval(3));
    updateRun(run.id, { routeEval: r });
    set({ error: null });
  } catch (e) {
    set({ error: messageOf(e) });
  }
}

export async function measureAdapterDrop(): Promise<void> {
  try {
    const run = requireLiveRun();
    const rows = await withBusy('Evaluating dev with n = 0…L adapter layers dropped…', () => getEngine().measureAdapterDrop('dev'));
    updateRun(run.id, { adapterDrop: rows });
    set({ error: null });
  } catch (e) {
    set({ error: messageOf(e) });
  }
}

export async function predict(text: string): Promise<void> {
  try {
    requireLiveRun();
    if (!text.trim()) throw new Error('type a sentence first');
    set({ prediction: await getEngine().predict(text), error: null });
  } catch (e) {
    set({ error: messageOf(e) });
  }
}

// ---- exports -------------------------------------------------------------------------------

function download(name: string, content: string | Uint8Array | Blob, type = 'application/octet-stream'): void {
  const blob = content instanceof Blob ? content : new Blob([content as BlobPart], { type });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

function fileStem(run: Run): string {
  return `${run.config.method.kind}-${run.config.dataset.replace(/^file:/, '').replace(/[^\w.-]+/g, '_')}-seed${run.config.seed}`;
}

export async function exportRun(what: 'adapter' | 'adapter-experts' | 'lora' | 'full'): Promise<void> {
  try {
    const run = requireLiveRun();
    const engine = getEngine();
    const out = await withBusy('Exporting…', () =>
      what === 'lora' ? engine.exportLora() : what === 'full' ? engine.exportFullModel() : engine.exportAdapters(what === 'adapter'),
    );
    for (const [name, content] of Object.entries(out.files)) download(`${fileStem(run)}-${what}-${name}`, content);
    set({ error: null });
  } catch (e) {
    set({ error: messageOf(e) });
  }
}

export function exportMetricsCsv(): void {
  const rows: Array<Record<string, number | string | null>> = [];
  for (const r of get().runs) {
    for (const p of r.steps) rows.push({ run: r.label, method: r.config.method.kind, kind: 'train', step: p.step, loss: p.loss, smoothed_loss: p.smooth, consistency: p.consistency, ms_per_step: p.stepMs, tokens_per_s: p.tokensPerS });
    for (const e of r.evals) rows.push({ run: r.label, method: r.config.method.kind, kind: 'dev', step: e.step, loss: e.loss, accuracy: e.accuracy, macro_f1: e.macroF1 });
  }
  if (rows.length === 0) {
    set({ error: 'no metrics yet: train a run first' });
    return;
  }
  download('metrics.csv', metricsToCsv(rows), 'text/csv');
}

/** A chart's SVG drawn onto a white canvas at 2× and saved as PNG. */
export async function exportChartPng(svg: SVGSVGElement | null, name: string): Promise<void> {
  if (!svg) return;
  const { width, height } = svg.getBoundingClientRect();
  const clone = svg.cloneNode(true) as SVGSVGElement;
  clone.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
  clone.setAttribute('width', String(width));
  clone.setAttribute('height', String(height));
  const url = URL.createObjectURL(new Blob([new XMLSerializer().serializeToString(clone)], { type: 'image/svg+xml' }));
  const img = new Image();
  await new Promise<void>((resolve, reject) => {
    img.onload = () => resolve();
    img.onerror = () => reject(new Error('the chart could not be drawn'));
    img.src = url;
  });
  const canvas = document.createElement('canvas');
  canvas.width = width * 2;
  canvas.height = height * 2;
  const ctx = canvas.getContext('2d')!;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.scale(2, 2);
  ctx.drawImage(img, 0, 0, width, height);
  URL.revokeObjectURL(url);
  canvas.toBlob((b) => b && download(`${name}.png`, b));
}

// ---- runs: visibility, saved runs ----------------------------------------------------------

export function toggleRunVisible(id: string): void {
  updateRun(id, (r) => ({ visible: !r.visible }));
}

export function selectRun(id: string): void {
  set({ currentRunId: id });
}

async function runStore(): Promise<RunStore | null> {
  try {
    store ??= await openStore();
    return store;
  } catch {
    return null; // private browsing without IndexedDB: runs live for this session only
  }
}

async function saveRun(id: string): Promise<void> {
  const run = get().runs.find((r) => r.id === id);
  const db = await runStore();
  if (!run || !db || run.steps.length === 0) return;
  const meta: SavedRunMeta = {
    id: run.id, name: run.label, createdAt: Date.now(), updatedAt: Date.now(), method: run.config.method, config: run.config,
    dataset: { id: run.config.dataset, name: run.datasetName, classes: [] }, model: { id: run.config.model, name: run.modelName },
    step: run.steps.at(-1)!.step, bestDevAccuracy: bestDevAccuracy(run), trainable: run.trainable, total: run.total,
    wallMs: run.wallMs, msPerStep: msPerStep(run), bytes: 0,
  };
  const series = [{ kind: 'run', run: { ...run, state: run.state === 'training' ? 'paused' : run.state } }];
  await db.saveRun(meta, series).catch((e) => set({ error: `could not save the run: ${messageOf(e)}` }));
}

async function restoreSavedRuns(): Promise<void> {
  const db = await runStore();
  if (!db) return;
  try {
    const metas = await db.listRuns();
    const restored: Run[] = [];
    for (const meta of metas.sort((a, b) => a.createdAt - b.createdAt)) {
      const { metrics } = await db.loadRun(meta.id);
      const saved = (metrics[0] as { run?: Run } | undefined)?.run;
      if (saved) restored.push({ ...saved, saved: true, state: 'saved', visible: false, styleIndex: nextStyle++ });
    }
    if (restored.length) set({ runs: [...restored, ...get().runs] });
  } catch (e) {
    set({ error: `saved runs could not be read: ${messageOf(e)}` });
  }
}

export async function deleteRun(id: string): Promise<void> {
  set({ runs: get().runs.filter((r) => r.id !== id), currentRunId: get().currentRunId === id ? null : get().currentRunId });
  const db = await runStore();
  await db?.deleteRun(id).catch((e) => set({ error: `could not delete the saved run: ${messageOf(e)}` }));
}
