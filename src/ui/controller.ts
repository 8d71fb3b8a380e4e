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
import { getEngine, resetEngine } from './engine';
import { configFromSearch, configToSearch, methodWithDefaults, type PageConfig } from './config';
import { COMPARED_METHODS, methodLabel } from './methods';
import { bestDevAccuracy, currentRun, msPerStep, updateRun, useStore, type Run, type StepPoint } from './store';

const READ_EVERY = 4;
/** metrics reach the store (and the charts) at most 4 times a second, one update per poll */
const POLL_MS = 250;
const SMOOTHING = 0.9;
/** methods whose trained weights fit a plain BERT checkpoint (LoRA merged): kept as base models */
const STORABLE_AS_MODEL = new Set(['full', 'headonly', 'bitfit', 'lora', 'adamix_lora']);

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
  if (!(await startEngine())) return;
  history.replaceState(null, '', configToSearch(config) + location.hash);
  const saved = restoreSavedRuns();
  await loadBuiltinList();
  if (config.model.startsWith('saved:')) await saved; // the saved run's name labels the model
  await loadModel(config.model);
  await loadBuiltinDataset(config.dataset);
}

/** Worker generations: a lost device ends one; answers from an ended generation are ignored. */
let generation = 0;

/** Starts the worker's GPU and watches for its loss; false (and the problem page) when there is none. */
async function startEngine(): Promise<boolean> {
  const engine = getEngine();
  let init;
  try {
    init = await engine.init();
  } catch (e) {
    set({ gpu: { phase: 'unavailable', reason: 'worker', message: messageOf(e) } });
    return false;
  }
  if (!init.ok) {
    set({ gpu: { phase: 'unavailable', reason: init.reason, message: init.message } });
    return false;
  }
  set({ gpu: { phase: 'ready', adapter: init.adapter } });
  const gen = generation;
  engine.deviceLost().then((lost) => gen === generation && onDeviceLost(lost.message || lost.reason)).catch(() => undefined);
  return true;
}

/** The live run (if any) waits on the lost-device page for Resume, which continues it from its last checkpoint. */
function onDeviceLost(message: string): void {
  const run = currentRun();
  const live = run && !run.saved && runEpoch === engineEpoch ? run : undefined;
  const wasTraining = live?.state === 'training';
  if (live) {
    const at = live.steps.at(-1)?.step ?? 0;
    const from = live.checkpointStep ?? 0;
    updateRun(live.id, { state: 'paused', message: `the GPU device was lost at step ${at}; Resume continues from ${from ? `the checkpoint at step ${from}` : 'step 0'}` });
  }
  set({ gpu: { phase: 'lost', message, run: live && { id: live.id, label: live.label, checkpointStep: live.checkpointStep ?? null, wasTraining } }, busy: null });
}

/**
 * After a lost device: a new worker and GPU device, the run's model and dataset loaded again, the
 * same run configured and its last checkpoint restored; its curves continue from that step, and a
 * run that was training trains on.
 */
export async function resumeAfterDeviceLoss(): Promise<void> {
  const lost = get().gpu;
  if (lost.phase !== 'lost') return;
  generation++;
  training = null; // the old worker's training loop never answers again
  resetEngine();
  set({ gpu: { phase: 'starting' }, error: null, model: null, dataset: null });
  if (!(await startEngine())) return;
  const run = lost.run && get().runs.find((r) => r.id === lost.run!.id);
  const config = run?.config ?? get().config;
  setConfig(config);
  await loadModel(config.model);
  await reloadDataset(config.dataset);
  const s = get();
  if (!s.model || !s.dataset) {
    set({ error: `the run cannot resume: ${s.modelError ?? s.datasetError ?? 'the model or the dataset did not load'}` });
    return;
  }
  if (!run) return;
  try {
    await withBusy(`Resuming ${run.label} from its last checkpoint…`, async () => {
      const engine = getEngine();
      // a fusion run's stage-1 adapters were in the lost worker: hand the saved ones to the new one
      if (config.method.kind === 'fusion') await (await import('./compose')).restoreTaskAdapters();
      await engine.configure(runConfigOf(config));
      runEpoch = engineEpoch;
      let step = 0, note = '';
      try {
        step = (await engine.restoreStoredCheckpoint(run.id)) ?? 0;
      } catch (e) {
        note = ` (the checkpoint could not be read: ${messageOf(e)})`; // restore checks before writing: the run is still at step 0
      }
      await engine.keepCheckpoints(run.id, get().checkpointEvery).catch(() => undefined);
      updateRun(run.id, (r) => ({
        steps: r.steps.filter((p) => p.step <= step),
        evals: r.evals.filter((e) => e.step <= step),
        routing: undefined,
        state: 'paused',
        checkpointStep: step || null,
        resumedFrom: [...(r.resumedFrom ?? []), step],
        message: `resumed from ${step ? `the checkpoint at step ${step}` : 'step 0'} after the GPU device was lost${note}`,
      }));
      set({ currentRunId: run.id });
    });
  } catch (e) {
    updateRun(run.id, { state: 'error', message: `could not resume: ${messageOf(e)}` });
    return;
  }
  if (lost.run!.wasTraining) await train();
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

/** The last imported file, kept so that a new worker (after a lost device) can load it again. */
let lastImport: { name: string; bytes: Uint8Array } | null = null;

async function reloadDataset(id: string): Promise<void> {
  if (!id.startsWith('file:')) await loadBuiltinDataset(id);
  else if (lastImport && `file:${lastImport.name}` === id) await importDataset(lastImport.name, lastImport.bytes);
  else set({ datasetError: `${id.slice(5)} is no longer in memory: import it again` });
}

/** A user's file. A bad one shows its line-numbered error; the loaded dataset stays as it was. */
export async function importDatasetFile(file: File): Promise<void> {
  await importDataset(file.name, new Uint8Array(await file.arrayBuffer()));
}

async function importDataset(name: string, data: Uint8Array): Promise<void> {
  if (isTraining()) pause();
  const file = { name };
  await withBusy(`Reading ${file.name}…`, async () => {
    try {
      const bytes = data.slice(); // the copy goes to the worker; `data` stays here
      const summary = await getEngine().importDataset(Comlink.transfer(bytes, [bytes.buffer]), file.name, get().config.seed);
      lastImport = { name, bytes: data };
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
  const saved = source.startsWith('saved:') ? source.slice('saved:'.length) : null;
  const savedName = saved && (get().savedModels.find((m) => m.id === saved)?.name ?? 'a saved run');
  await withBusy(source === 'default' ? 'Loading the default model…' : saved ? `Loading the weights of ${savedName}…` : `Downloading ${source}…`, async () => {
    try {
      const engine = getEngine();
      const info =
        source === 'default'
          ? await engine.loadDefaultModel()
          : saved
          ? await engine.loadSavedModel(saved, `saved run: ${savedName}`)
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
  // the run's record exists before its first checkpoint, which the worker writes under its id
  await saveRun(created.id);
  await getEngine().keepCheckpoints(created.id, get().checkpointEvery).catch((e) => set({ error: `checkpoints are off for this run: ${messageOf(e)}` }));
  return created;
}

function appendMetrics(runId: string, metrics: Metric[], extra: Partial<Run> = {}): void {
  if (metrics.length === 0) {
    if (Object.keys(extra).length) updateRun(runId, extra);
    return;
  }
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
    return { ...extra, steps, evals, state, message };
  });
}

/** Everything new from the worker in ONE store update (one redraw per poll). */
async function drain(run: Run, gen: number): Promise<void> {
  const engine = getEngine();
  const metrics = await engine.takeMetrics();
  const kind = run.config.method.kind;
  const routing = kind === 'adamix' || kind === 'adamix_lora' ? await engine.routingCounts() : null;
  const ck = await engine.checkpointInfo();
  if (gen !== generation) return;
  const extra: Partial<Run> = {};
  if (routing && metrics.length) extra.routing = routing;
  const cur = get().runs.find((r) => r.id === run.id);
  if (ck.step !== null && cur?.checkpointStep !== ck.step) extra.checkpointStep = ck.step;
  if (ck.error && get().error !== `could not save a checkpoint: ${ck.error}`) set({ error: `could not save a checkpoint: ${ck.error}` });
  appendMetrics(run.id, metrics, extra);
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
  const gen = generation;
  let finishedRun = false;
  training = (async () => {
    updateRun(run.id, { state: 'training', message: undefined });
    const started = performance.now();
    let done = false;
    const result = engine.trainCheckpointed(steps, READ_EVERY).finally(() => (done = true));
    result.catch(() => undefined); // handled below, after the polling loop: not an unhandled rejection meanwhile
    while (!done) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      await drain(run, gen);
    }
    try {
      const r = await result;
      await drain(run, gen);
      // 'done' = the asked-for steps ran; when they reached the schedule's end the run is finished
      const finished = r.state === 'finished' || (r.state === 'done' && r.step >= run.config.steps);
      const wallMs = performance.now() - started;
      if (finished) await onFinished(run.id); // the final dev evaluation belongs to the run, before it reads "finished"
      finishedRun = finished;
      updateRun(run.id, (cur) => ({
        wallMs: cur.wallMs + wallMs,
        state: finished ? 'finished' : r.state === 'done' ? 'paused' : r.state,
        message: r.message,
      }));
    } catch (e) {
      // a lost device fails the pending readback first and resolves its lost promise just after:
      // give it a moment, so that the lost-device page (not an error) takes the run over
      await new Promise((r) => setTimeout(r, 500));
      if (gen !== generation || get().gpu.phase === 'lost') return;
      updateRun(run.id, (cur) => ({ state: 'error', message: messageOf(e), wallMs: cur.wallMs + (performance.now() - started) }));
      set({ queue: [] });
    }
  })();
  try {
    await training;
  } finally {
    if (gen === generation) training = null;
  }
  if (gen !== generation || get().gpu.phase === 'lost') return;
  await saveRun(run.id);
  if (finishedRun) await keepFinishedRun(run.id);
  await continueQueue();
}

/** A finished run needs no resume checkpoint; its weights are kept as a base model where a BERT can hold them. */
async function keepFinishedRun(id: string): Promise<void> {
  const run = get().runs.find((r) => r.id === id);
  const db = await runStore();
  if (!run || !db) return;
  await db.deleteCheckpoint(id).catch(() => undefined);
  if (!STORABLE_AS_MODEL.has(run.config.method.kind)) return;
  try {
    await withBusy(`Storing the weights of ${run.label} as a model…`, () => getEngine().saveModelOf(id));
    await refreshSavedModels();
  } catch (e) {
    set({ error: `could not store the weights of ${run.label}: ${messageOf(e)}` });
  }
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

/** An analysis of the live run in the worker, with a progress label; its result is kept on the run under `key`. */
async function analyseRun<K extends 'routeEval' | 'adapterDrop' | 'dropTraining'>(key: K, label: string, work: () => Promise<Run[K]>): Promise<void> {
  try {
    const run = requireLiveRun();
    const result = await withBusy(label, work);
    updateRun(run.id, { [key]: result } as Partial<Run>);
    set({ error: null });
  } catch (e) {
    set({ error: messageOf(e) });
  }
}

export function evaluateAdamixRoutes(): Promise<void> {
  return analyseRun('routeEval', 'Evaluating the merged model and 3 sampled routes on dev…', () => getEngine().adamixRouteEval(3));
}

export function measureAdapterDrop(): Promise<void> {
  return analyseRun('adapterDrop', 'Evaluating dev with n = 0…L adapter layers dropped…', () => getEngine().measureAdapterDrop('dev'));
}

/** AdapterDrop in training: a few timed steps for n = 0…L−1 dropped layers on the current setup. */
export function measureAdapterDropTraining(): Promise<void> {
  return analyseRun('dropTraining', 'Timing training steps with n = 0…L−1 adapter layers dropped…', () => getEngine().measureAdapterDropTraining(3));
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
  if (!run || !db) return;
  const meta: SavedRunMeta = {
    id: run.id, name: run.label, createdAt: Date.now(), updatedAt: Date.now(), method: run.config.method, config: run.config,
    dataset: { id: run.config.dataset, name: run.datasetName, classes: [] }, model: { id: run.config.model, name: run.modelName },
    step: run.steps.at(-1)?.step ?? 0, bestDevAccuracy: bestDevAccuracy(run), trainable: run.trainable, total: run.total,
    wallMs: run.wallMs, msPerStep: msPerStep(run), bytes: 0,
  };
  const series = [{ kind: 'run', run: { ...run, state: run.state === 'training' || run.state === 'ready' ? 'paused' : run.state } }];
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
      if (saved && saved.steps.length) restored.push({ ...saved, saved: true, state: 'saved', visible: false, styleIndex: nextStyle++ });
    }
    if (restored.length) set({ runs: [...restored, ...get().runs] });
    await refreshSavedModels();
  } catch (e) {
    set({ error: `saved runs could not be read: ${messageOf(e)}` });
  }
}

export async function deleteRun(id: string): Promise<void> {
  set({ runs: get().runs.filter((r) => r.id !== id), currentRunId: get().currentRunId === id ? null : get().currentRunId });
  const db = await runStore();
  await db?.deleteRun(id).catch((e) => set({ error: `could not delete the saved run: ${messageOf(e)}` }));
  await refreshSavedModels();
}

/** The saved runs whose weights are stored, newest first, for the model chooser. */
async function refreshSavedModels(): Promise<void> {
  const db = await runStore();
  if (!db) return;
  try {
    const ids = new Set(await db.listModelIds());
    const runs = get().runs.filter((r) => ids.has(r.id));
    set({ savedModels: runs.reverse().map((r) => ({ id: r.id, name: `${r.label} (${r.datasetName}, best dev ${fmtAcc(bestDevAccuracy(r))})` })) });
  } catch (e) {
    set({ error: `saved models could not be listed: ${messageOf(e)}` });
  }
}

function fmtAcc(a: number | null): string {
  return a === null ? '—' : `${(100 * a).toFixed(1)} %`;
}

// the e2e test loses the device on purpose; production builds have no such hook
if (import.meta.env.DEV) {
  (window as unknown as { __playgroundDev: object }).__playgroundDev = { simulateDeviceLoss: () => getEngine().simulateDeviceLoss() };
}
