// The page's state (zustand): the configuration, what the worker has loaded, the runs with their
// metric series, and what the panels show. Components read it; only controller.ts writes to it
// from the worker's answers, so no component holds training logic.
import { create } from 'zustand';
import type { AdapterSummary } from '../gpu/device';
import type { DatasetInfo } from '../data/datasets';
import type { DatasetSummary, ModelInfo } from '../train/engine';
import { DEFAULT_CONFIG, type PageConfig } from './config';

export interface StepPoint {
  step: number;
  loss: number;
  /** exponential moving average of the loss (TensorBoard-style, debiased) */
  smooth: number;
  consistency: number;
  stepMs: number;
  tokensPerS: number;
}

export interface EvalPoint {
  step: number;
  loss: number;
  accuracy: number;
  macroF1: number;
}

export interface RoutingSnapshot {
  layers: number;
  experts: number;
  upExperts: number;
  passes: number;
  down: number[][];
  up: number[][];
}

export interface Run {
  id: string;
  label: string;
  /** index into the run palette: colour, dash pattern and marker all follow it */
  styleIndex: number;
  config: PageConfig;
  datasetName: string;
  modelName: string;
  trainable: number;
  total: number;
  trainablePct: number;
  layers: number;
  steps: StepPoint[];
  evals: EvalPoint[];
  state: 'ready' | 'training' | 'paused' | 'finished' | 'error' | 'saved';
  message?: string;
  wallMs: number;
  visible: boolean;
  routing?: RoutingSnapshot;
  routeEval?: { merged: number; routes: number[] };
  adapterDrop?: { n: number; accuracy: number; msPerBatch: number }[];
  /** AdapterDrop's training cost: ms/step of throwaway copies of this run with n = 0…L−1 dropped */
  dropTraining?: { n: number; msPerStep: number }[];
  /** the step of the last checkpoint in IndexedDB (a lost device resumes from there) */
  checkpointStep?: number | null;
  /** the checkpoint steps this run was resumed from after lost devices */
  resumedFrom?: number[];
  /** restored from IndexedDB: curves only, the weights are not in the worker */
  saved?: boolean;
}

export type GpuState =
  | { phase: 'starting' }
  | { phase: 'unavailable'; reason: string; message: string }
  | { phase: 'ready'; adapter: AdapterSummary }
  | { phase: 'lost'; message: string; run?: { id: string; label: string; checkpointStep: number | null; wasTraining: boolean } };

export interface Busy {
  label: string;
  /** 0…1 when known */
  fraction?: number;
}

export interface PageState {
  config: PageConfig;
  /** notes about URL values that were ignored */
  configNotes: string[];
  gpu: GpuState;
  builtins: DatasetInfo[];
  dataset: DatasetSummary | null;
  datasetError: string | null;
  model: ModelInfo | null;
  modelError: string | null;
  runs: Run[];
  currentRunId: string | null;
  /** methods still queued by "compare methods" */
  queue: PageConfig[];
  busy: Busy | null;
  error: string | null;
  prediction: { tokens: string[]; probs: number[]; classes: string[] } | null;
  /** a run in progress is checkpointed every this many steps (and when it pauses) */
  checkpointEvery: number;
  /** saved runs whose trained weights can be loaded as the base model */
  savedModels: { id: string; name: string }[];
}

export const useStore = create<PageState>(() => ({
  config: DEFAULT_CONFIG,
  configNotes: [],
  gpu: { phase: 'starting' },
  builtins: [],
  dataset: null,
  datasetError: null,
  model: null,
  modelError: null,
  runs: [],
  currentRunId: null,
  queue: [],
  busy: null,
  error: null,
  prediction: null,
  checkpointEvery: 50,
  savedModels: [],
}));

export function updateRun(id: string, change: Partial<Run> | ((r: Run) => Partial<Run>)): void {
  useStore.setState((s) => ({
    runs: s.runs.map((r) => (r.id === id ? { ...r, ...(typeof change === 'function' ? change(r) : change) } : r)),
  }));
}

export function currentRun(s: PageState = useStore.getState()): Run | undefined {
  return s.runs.find((r) => r.id === s.currentRunId);
}

/** Eight run styles: a colour-blind-safe palette (Okabe–Ito) paired with distinct dash patterns and markers. */
export const RUN_STYLES = [
  { color: '#0072B2', dash: '', marker: '●' },
  { color: '#D55E00', dash: '6 3', marker: '■' },
  { color: '#009E73', dash: '2 2', marker: '▲' },
  { color: '#CC79A7', dash: '8 3 2 3', marker: '◆' },
  { color: '#E69F00', dash: '12 4', marker: '▼' },
  { color: '#56B4E9', dash: '4 4 1 4', marker: '★' },
  { color: '#000000', dash: '1 3', marker: '✚' },
  { color: '#8C564B', dash: '10 2 2 2 2 2', marker: '⬟' },
];

export function runStyle(r: Pick<Run, 'styleIndex'>) {
  return RUN_STYLES[r.styleIndex % RUN_STYLES.length];
}

export function bestDevAccuracy(r: Run): number | null {
  return r.evals.length ? Math.max(...r.evals.map((e) => e.accuracy)) : null;
}

export function msPerStep(r: Run): number | null {
  // the first read window includes pipeline creation and autotuning: leave it out when there are others
  const pts = r.steps.length > 8 ? r.steps.slice(4) : r.steps;
  return pts.length ? pts.reduce((a, p) => a + p.stepMs, 0) / pts.length : null;
}
