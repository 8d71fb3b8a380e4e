// The Compose panel's state and actions (issue 7): stage-1 task adapters (save a Pfeiffer run, or
// train one per built-in task in a queue), kept in the worker and in IndexedDB; stage 2 as a normal
// "AdapterFusion" run; the fusion attention per layer; the multi-task AdapterDrop table. The worker
// computes everything (train/compose.ts); this module moves summaries and drives the page's flow.
import * as Comlink from 'comlink';
import { create } from 'zustand';
import { openStore, type RunStore } from '../io/persist';
import { DEFAULT_METHODS, type MethodConfig } from '../model/config';
import type { FusionAttentionResult, MultitaskResult, TaskAdapter, TaskAdapterInfo, TaskAdapterSummary } from '../train/compose';
import { getEngine } from './engine';
import { currentRun, useStore } from './store';
import * as ctl from './controller';

export interface ComposeState {
  adapters: TaskAdapterSummary[];
  /** task adapters ticked for AdapterFusion */
  selected: string[];
  /** the fusion attention views, by run id */
  attention: Record<string, { dev?: FusionAttentionResult; sentence?: FusionAttentionResult & { text: string } }>;
  multitask: MultitaskResult | null;
  /** "train adapters for all built-in tasks" while it runs */
  queue: { tasks: string[]; index: number } | null;
  busy: string | null;
  error: string | null;
  note: string | null;
}

export const useCompose = create<ComposeState>(() => ({
  adapters: [], selected: [], attention: {}, multitask: null, queue: null, busy: null, error: null, note: null,
}));

const set = useCompose.setState;
const get = useCompose.getState;

let db: Promise<RunStore> | null = null;
function adapterStore(): Promise<RunStore> {
  db ??= openStore();
  db.catch(() => (db = null));
  return db;
}

/** Runs one action with its label shown; its failure becomes the panel's error line. */
async function act<T>(label: string, work: () => Promise<T>): Promise<T | undefined> {
  if (get().busy) {
    set({ error: `wait for "${get().busy}" to finish` });
    return undefined;
  }
  set({ busy: label, error: null });
  try {
    return await work();
  } catch (e) {
    set({ error: ctl.messageOf(e) });
    return undefined;
  } finally {
    set({ busy: null });
  }
}

function setAdapters(adapters: TaskAdapterSummary[]): void {
  const names = new Set(adapters.map((a) => a.name));
  set({ adapters, selected: get().selected.filter((n) => names.has(n)) });
}

/** the worker the saved adapters were last handed to: a fresh one (after a lost device) gets them again */
let restoredTo: unknown = null;

/** Hands the task adapters saved in IndexedDB to the worker (once per worker). */
export async function restoreTaskAdapters(): Promise<void> {
  if (restoredTo === getEngine()) return;
  restoredTo = getEngine();
  try {
    const list = await (await adapterStore()).listTaskAdapters<TaskAdapterInfo>();
    if (list.length === 0) return;
    setAdapters(await getEngine().addTaskAdapters(list as TaskAdapter[]));
  } catch (e) {
    set({ note: `saved task adapters could not be read: ${ctl.messageOf(e)} (they live for this session only)` });
  }
}

async function persist(a: TaskAdapter): Promise<void> {
  try {
    await (await adapterStore()).saveTaskAdapter(a);
  } catch (e) {
    set({ note: `task adapter "${a.name}" is kept for this session but could not be saved: ${ctl.messageOf(e)}` });
  }
}

function requireIdle(): void {
  if (ctl.isTraining()) throw new Error('pause training first');
}

/** The current Pfeiffer run becomes task adapter `name` (worker + IndexedDB). */
export function saveCurrentAsTaskAdapter(name: string): Promise<void> {
  return act(`Saving task adapter "${name}" (measuring its dev accuracy)…`, async () => {
    requireIdle();
    const run = currentRun();
    if (!run || run.saved) throw new Error('train a Pfeiffer adapter run first (a saved run has curves but no weights in this session)');
    if (run.config.method.kind !== 'pfeiffer') throw new Error(`only a Pfeiffer adapter run can be saved as a task adapter; the current run is ${run.label}`);
    await saveFromWorker(name);
  }).then(() => undefined);
}

async function saveFromWorker(name: string): Promise<void> {
  const engine = getEngine();
  const adapter = await engine.saveTaskAdapter(name);
  await persist(adapter);
  setAdapters(await engine.listTaskAdapters());
}

export function deleteTaskAdapter(name: string): Promise<void> {
  return act(`Deleting task adapter "${name}"…`, async () => {
    setAdapters(await getEngine().deleteTaskAdapter(name));
    await (await adapterStore()).deleteTaskAdapter(name).catch(() => undefined); // a session-only adapter has no record
  }).then(() => undefined);
}

export function toggleSelected(name: string): void {
  const s = get().selected;
  set({ selected: s.includes(name) ? s.filter((n) => n !== name) : [...s, name] });
}

/**
 * Stage 1 in one click: a Pfeiffer adapter (robust AdapterDrop, so any n works at inference) for
 * an imported dataset if one is loaded, then for every built-in task, `steps` steps each, each
 * saved under its dataset's name. The page's dataset and method are put back afterwards.
 */
export async function trainAllTaskAdapters(steps: number): Promise<void> {
  if (get().queue || get().busy) return;
  if (ctl.isTraining()) {
    set({ error: 'pause training first' });
    return;
  }
  const page = useStore.getState();
  const before = page.config;
  const imported = page.dataset?.id.startsWith('file:') ? page.dataset.id : null;
  const tasks = [...(imported ? [imported] : []), ...page.builtins.map((b) => b.id)];
  if (tasks.length === 0) {
    set({ error: 'the built-in datasets are still loading' });
    return;
  }
  const pfeiffer: MethodConfig = before.method.kind === 'pfeiffer' ? before.method : DEFAULT_METHODS.pfeiffer;
  set({ queue: { tasks, index: 0 }, error: null, note: null });
  try {
    for (let i = 0; i < tasks.length; i++) {
      set({ queue: { tasks, index: i } });
      const id = tasks[i];
      if (id !== imported) await ctl.loadBuiltinDataset(id);
      if (useStore.getState().dataset?.id !== id) throw new Error(`dataset ${id} could not be loaded: ${useStore.getState().datasetError ?? 'unknown error'}`);
      useStore.setState({ currentRunId: null });
      ctl.setConfig({ method: pfeiffer, adapterDrop: { mode: 'robust', n: 0 }, steps });
      await ctl.train();
      const run = currentRun();
      if (!run || run.state !== 'finished') throw new Error(`stopped at ${id}: ${useStore.getState().error ?? run?.message ?? `the run is ${run?.state ?? 'missing'}`}`);
      set({ busy: `Saving task adapter "${taskNameOf(id)}"…` });
      try {
        await saveFromWorker(taskNameOf(id));
      } finally {
        set({ busy: null });
      }
    }
  } catch (e) {
    set({ error: ctl.messageOf(e) });
  } finally {
    set({ queue: null });
    ctl.setConfig({ method: before.method, adapterDrop: before.adapterDrop, steps: before.steps });
    const ds = useStore.getState().dataset?.id;
    if (!before.dataset.startsWith('file:') && ds !== before.dataset) await ctl.loadBuiltinDataset(before.dataset);
    else if (imported && ds !== imported) set({ note: `the imported dataset was replaced by the built-in ones while training; import it again to train on it` });
  }
}

/** A dataset id as a task name (parameter names allow letters, digits, "_" and "-"). */
export function taskNameOf(datasetId: string): string {
  return datasetId.replace(/^file:/, '').replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 40) || 'task';
}

/** Stage 2: a normal run of method AdapterFusion over the ticked adapters, on the loaded dataset. */
export async function trainFusion(): Promise<void> {
  const chosen = get().adapters.filter((a) => get().selected.includes(a.name));
  if (chosen.length < 2) {
    set({ error: 'tick at least 2 saved task adapters to fuse' });
    return;
  }
  const widths = new Set(chosen.map((a) => a.bottleneck));
  if (widths.size > 1) {
    set({ error: `the ticked adapters have different bottlenecks (${[...widths].join(', ')}): fuse adapters of one width` });
    return;
  }
  if (ctl.isTraining()) {
    set({ error: 'pause training first' });
    return;
  }
  const prev = useStore.getState().config.method;
  const method: MethodConfig = {
    kind: 'fusion', tasks: chosen.map((a) => a.name), bottleneck: chosen[0].bottleneck,
    temperature: prev.kind === 'fusion' ? prev.temperature : 1, regWeight: prev.kind === 'fusion' ? prev.regWeight : 0.01,
  };
  set({ error: null });
  useStore.setState({ currentRunId: null });
  ctl.setConfig({ method, adapterDrop: { mode: 'none', n: 0 } });
  await ctl.train();
}

function requireFusionRun(): string {
  requireIdle();
  const run = currentRun();
  if (!run || run.saved) throw new Error('train an AdapterFusion run first (a saved run has curves but no weights in this session)');
  if (run.config.method.kind !== 'fusion') throw new Error(`the fusion attention needs an AdapterFusion run; the current run is ${run.label}`);
  return run.id;
}

export function fusionAttentionDev(): Promise<void> {
  return act('Averaging the fusion attention over the dev split…', async () => {
    const id = requireFusionRun();
    const dev = await getEngine().fusionAttention(null);
    set({ attention: { ...get().attention, [id]: { ...get().attention[id], dev } } });
  }).then(() => undefined);
}

export function fusionAttentionSentence(text: string): Promise<void> {
  return act('Fusion attention for the sentence…', async () => {
    const id = requireFusionRun();
    if (!text.trim()) throw new Error('type a sentence first');
    const sentence = { ...(await getEngine().fusionAttention(text)), text };
    set({ attention: { ...get().attention, [id]: { ...get().attention[id], sentence } } });
  }).then(() => undefined);
}

/** k = 1…K saved adapters (K ≤ 4), n = 0…L: each task's accuracy per n and ms per batch, shared vs separate. */
export function measureMultitask(o: { timedBatches?: number; devExamples?: number } = {}): Promise<void> {
  return act('Measuring multi-task inference…', async () => {
    requireIdle();
    const names = get().adapters.slice(0, 4).map((a) => a.name);
    if (names.length === 0) throw new Error('save at least one task adapter first (stage 1)');
    const { batchSize, seqLen } = useStore.getState().config;
    const label = `Multi-task inference: ${names.length} task(s), n = 0…L`;
    const progress = Comlink.proxy((done: number, total: number) => useStore.setState({ busy: { label, fraction: done / total } }));
    useStore.setState({ busy: { label, fraction: 0 } });
    try {
      const multitask = await getEngine().measureMultitask({ names, batchSize, seqLen, timedBatches: o.timedBatches ?? 3, devExamples: o.devExamples ?? 128 }, progress);
      set({ multitask });
    } finally {
      if (useStore.getState().busy?.label === label) useStore.setState({ busy: null });
    }
  }).then(() => undefined);
}
