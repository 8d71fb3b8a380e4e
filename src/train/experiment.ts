// The headless experiment runner's pure part (issue 8): reading and checking a grid configuration,
// expanding it into jobs (runs × tasks × seeds), keying each job by a hash of everything that
// decides its result (so a restarted grid skips what already finished), the resumable job loop,
// and the aggregation into mean ± std tables (markdown and JSON).
//
// No DOM, no Node API: the driver (scripts/experiment.mjs) loads this module through Vite's SSR
// loader and does the file and browser I/O; the page (bench/experiment.ts) runs one job on the
// Engine; the unit tests (tests/unit/experiment.test.ts) import it directly.
import { DEFAULT_METHODS, LORA_TARGETS, type AdapterDropConfig, type MethodConfig, type MethodKind } from '../model/config';
import { DEFAULT_TRAIN, type TrainConfig } from './trainer';

// ---- configuration -------------------------------------------------------------------------------

/** One evaluation of a trained job besides the default dev/test evaluation. */
export interface EvalVariant {
  label: string;
  /** AdaMix: the experts averaged into one module (the paper's inference) */
  merged?: boolean;
  /** AdaMix: single routes drawn at random, each evaluated alone; reported as the mean over `samples` */
  route?: 'sampled';
  /** how many single routes `route: 'sampled'` draws (default 3) */
  samples?: number;
  /** AdaMix: the class probabilities of k random routes averaged per example */
  ensemble?: number;
  /** AdapterDrop at inference: adapters of the lowest n layers skipped; 'all' = every n = 0…L */
  droppedLayers?: number | 'all';
}

/** The training settings a configuration may give (everything else of TrainConfig is fixed by the job). */
export interface ExperimentTrain {
  batchSize: number;
  seqLen: number;
  lr: number;
  weightDecay: number;
  warmupFraction: number;
  maxGradNorm: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** optimisation steps per job (the learning-rate schedule ends there) */
  steps: number;
  /** dev evaluation every k steps during training (0: only at the end); recorded as a curve */
  evalEvery: number;
}

export interface ExperimentRun {
  label: string;
  method: MethodConfig;
  adapterDrop: AdapterDropConfig;
  train: ExperimentTrain;
  eval: EvalVariant[];
}

export interface Experiment {
  name: string;
  description: string;
  /** a folder under public/models (HF layout), or 'default' = the first entry of public/models/index.json */
  model: string;
  tasks: string[];
  seeds: number[];
  /** seed of the train/dev/test split; absent: each job splits with its own seed, as the page does */
  dataSeed?: number;
  /** evaluate on the first k examples of the (shuffled, stratified) dev and test splits only; absent: all */
  evalExamples?: number;
  /** evaluate the final model on the test split too (default true) */
  test: boolean;
  /** the grid's training settings (runs may override them) */
  train: ExperimentTrain;
  runs: ExperimentRun[];
  /** where the configuration came from: a grid file, or a run exported from the page */
  source: 'grid' | 'page';
}

export const EXPERIMENT_TRAIN_DEFAULTS: ExperimentTrain = {
  batchSize: 16,
  seqLen: 32,
  lr: DEFAULT_TRAIN.lr,
  weightDecay: DEFAULT_TRAIN.weightDecay,
  warmupFraction: DEFAULT_TRAIN.warmupFraction,
  maxGradNorm: DEFAULT_TRAIN.maxGradNorm,
  beta1: DEFAULT_TRAIN.beta1,
  beta2: DEFAULT_TRAIN.beta2,
  eps: DEFAULT_TRAIN.eps,
  steps: DEFAULT_TRAIN.totalSteps,
  evalEvery: 0,
};

/** Methods a grid can train: AdapterFusion and K-Adapter need trained task adapters first. */
export const GRID_METHODS: MethodKind[] = ['full', 'headonly', 'bitfit', 'houlsby', 'pfeiffer', 'lora', 'adamix', 'adamix_lora'];
const ADAPTER_METHODS: MethodKind[] = ['houlsby', 'pfeiffer', 'lora', 'adamix', 'adamix_lora'];
const ADAMIX_METHODS: MethodKind[] = ['adamix', 'adamix_lora'];

/** What the caller knows about the world: the built-in task ids and the models on disk. */
export interface ExperimentContext {
  tasks: string[];
  models: string[];
  /** layers of each model (AdapterDrop's n must be below it) */
  layers?: Record<string, number>;
}

export class ExperimentConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid experiment configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ExperimentConfigError';
  }
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

function checkKeys(where: string, obj: Json, allowed: string[], problems: string[]): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) problems.push(`${where}: unknown field "${k}" (allowed: ${allowed.join(', ')})`);
  }
}

/** A method from a configuration: `kind` plus any of its fields; the rest from DEFAULT_METHODS. */
export function parseMethod(where: string, raw: unknown, problems: string[]): MethodConfig | null {
  if (typeof raw === 'string') raw = { kind: raw };
  if (!isObject(raw)) {
    problems.push(`${where}: a method is { "kind": ..., fields } or a method name`);
    return null;
  }
  const kind = raw.kind;
  if (typeof kind !== 'string' || !GRID_METHODS.includes(kind as MethodKind)) {
    problems.push(`${where}: unknown method "${String(kind)}" (one of ${GRID_METHODS.join(', ')})`);
    return null;
  }
  const defaults = DEFAULT_METHODS[kind as MethodKind] as unknown as Json;
  const method: Json = structuredClone(defaults);
  for (const [key, value] of Object.entries(raw)) {
    if (key === 'kind') continue;
    if (!(key in defaults)) {
      const fields = Object.keys(defaults).filter((k) => k !== 'kind');
      problems.push(`${where}: ${kind} has no field "${key}"${fields.length ? ` (its fields: ${fields.join(', ')})` : ''}`);
      continue;
    }
    const d = defaults[key];
    if (key === 'targets') {
      const ok = Array.isArray(value) && value.length > 0 && value.every((t) => typeof t === 'string' && t in LORA_TARGETS);
      if (!ok) problems.push(`${where}.targets: a non-empty list of ${Object.keys(LORA_TARGETS).join(', ')}`);
      else method[key] = [...new Set(value as string[])];
    } else if (key === 'inference') {
      if (value !== 'merged' && value !== 'sampled') problems.push(`${where}.inference: "merged" or "sampled"`);
      else method[key] = value;
    } else if (typeof d === 'boolean') {
      if (typeof value !== 'boolean') problems.push(`${where}.${key}: true or false`);
      else method[key] = value;
    } else if (typeof d === 'number') {
      const integer = Number.isInteger(d) && key !== 'consistencyWeight' && key !== 'alpha';
      const ok = typeof value === 'number' && Number.isFinite(value) && (integer ? Number.isInteger(value) && value >= 1 : value >= 0);
      if (!ok) problems.push(`${where}.${key}: ${integer ? 'a whole number ≥ 1' : 'a number ≥ 0'} (got ${JSON.stringify(value)})`);
      else method[key] = value;
    }
  }
  return method as unknown as MethodConfig;
}

function parseTrain(where: string, raw: unknown, base: ExperimentTrain, problems: string[]): ExperimentTrain {
  const out = { ...base };
  if (raw === undefined) return out;
  if (!isObject(raw)) {
    problems.push(`${where}: an object of training settings`);
    return out;
  }
  const keys = Object.keys(EXPERIMENT_TRAIN_DEFAULTS);
  checkKeys(where, raw, keys, problems);
  const ints: (keyof ExperimentTrain)[] = ['batchSize', 'seqLen', 'steps', 'evalEvery'];
  for (const k of keys as (keyof ExperimentTrain)[]) {
    const v = raw[k];
    if (v === undefined) continue;
    const int = ints.includes(k);
    const min = k === 'evalEvery' ? 0 : k === 'seqLen' ? 4 : int ? 1 : 0;
    if (typeof v !== 'number' || !Number.isFinite(v) || (int && !Number.isInteger(v)) || v < min) {
      problems.push(`${where}.${k}: ${int ? 'a whole number' : 'a number'} ≥ ${min} (got ${JSON.stringify(v)})`);
      continue;
    }
    if (k === 'lr' && (v <= 0 || v > 1)) {
      problems.push(`${where}.lr: between 0 and 1 (got ${v})`);
      continue;
    }
    if (k === 'batchSize' && v > 512) {
      problems.push(`${where}.batchSize: at most 512 (got ${v})`);
      continue;
    }
    out[k] = v;
  }
  return out;
}

function parseAdapterDrop(where: string, raw: unknown, layers: number | undefined, problems: string[]): AdapterDropConfig {
  if (raw === undefined) return { mode: 'none', n: 0 };
  if (!isObject(raw)) {
    problems.push(`${where}: { "mode": "none" | "specialized" | "robust", "n" }`);
    return { mode: 'none', n: 0 };
  }
  checkKeys(where, raw, ['mode', 'n'], problems);
  const mode = raw.mode;
  if (mode !== 'none' && mode !== 'specialized' && mode !== 'robust') {
    problems.push(`${where}.mode: "none", "specialized" or "robust" (got ${JSON.stringify(mode)})`);
    return { mode: 'none', n: 0 };
  }
  const n = raw.n ?? 0;
  if (!isInt(n) || n < 0 || (layers !== undefined && mode === 'specialized' && n >= layers)) {
    problems.push(`${where}.n: a whole number in 0…${layers !== undefined ? layers - 1 : 'L−1'} (got ${JSON.stringify(raw.n)})`);
    return { mode, n: 0 };
  }
  return { mode, n: mode === 'specialized' ? n : 0 };
}

function parseEvals(where: string, raw: unknown, method: MethodConfig | null, layers: number | undefined, problems: string[]): EvalVariant[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) {
    problems.push(`${where}: a list of evaluations`);
    return [];
  }
  const out: EvalVariant[] = [];
  const labels = new Set<string>();
  raw.forEach((e, i) => {
    const w = `${where}[${i}]`;
    if (!isObject(e)) return void problems.push(`${w}: an object { "label", "merged" | "route" | "ensemble" | "droppedLayers" }`);
    checkKeys(w, e, ['label', 'merged', 'route', 'samples', 'ensemble', 'droppedLayers'], problems);
    if (typeof e.label !== 'string' || e.label === '') return void problems.push(`${w}.label: a non-empty string`);
    if (labels.has(e.label)) problems.push(`${w}.label: "${e.label}" appears twice`);
    labels.add(e.label);
    const kinds = ['merged', 'route', 'ensemble', 'droppedLayers'].filter((k) => e[k] !== undefined);
    if (kinds.length !== 1) return void problems.push(`${w}: exactly one of merged, route, ensemble, droppedLayers (got ${kinds.join(', ') || 'none'})`);
    const v: EvalVariant = { label: e.label };
    const adamix = method !== null && ADAMIX_METHODS.includes(method.kind);
    if (e.merged !== undefined) {
      if (typeof e.merged !== 'boolean') problems.push(`${w}.merged: true or false`);
      v.merged = e.merged as boolean;
    }
    if (e.route !== undefined) {
      if (e.route !== 'sampled') problems.push(`${w}.route: "sampled"`);
      v.route = 'sampled';
      const s = e.samples ?? 3;
      if (!isInt(s) || s < 1) problems.push(`${w}.samples: a whole number ≥ 1`);
      v.samples = s as number;
    } else if (e.samples !== undefined) problems.push(`${w}.samples: only with "route": "sampled"`);
    if (e.ensemble !== undefined) {
      if (!isInt(e.ensemble) || e.ensemble < 2) problems.push(`${w}.ensemble: a whole number of routes ≥ 2`);
      v.ensemble = e.ensemble as number;
    }
    if ((v.merged !== undefined || v.route || v.ensemble) && method && !adamix) problems.push(`${w}: merged/route/ensemble evaluations need an AdaMix method (this run trains ${method.kind})`);
    if (e.droppedLayers !== undefined) {
      const d = e.droppedLayers;
      const ok = d === 'all' || (isInt(d) && d >= 0 && (layers === undefined || d <= layers));
      if (!ok) problems.push(`${w}.droppedLayers: "all" or a whole number in 0…${layers ?? 'L'}`);
      if (method && !ADAPTER_METHODS.includes(method.kind)) problems.push(`${w}: droppedLayers needs a method with modules in the layers (${ADAPTER_METHODS.join(', ')}), not ${method.kind}`);
      v.droppedLayers = d as number | 'all';
    }
    out.push(v);
  });
  return out;
}

/**
 * A run exported from the page (src/ui/config.ts PageConfig: dataset, model, method, adapterDrop,
 * seed, lr, steps, batchSize, seqLen, evalEvery) as a one-job experiment. The page trains with
 * `{ ...DEFAULT_TRAIN, seed, lr, totalSteps: steps, batchSize, seqLen }` and splits the dataset with
 * the run's seed, so the mapping keeps both.
 */
export function isPageConfig(raw: unknown): boolean {
  return isObject(raw) && typeof raw.dataset === 'string' && isObject(raw.method) && raw.runs === undefined;
}

function pageToGrid(raw: Json, name: string): Json {
  const dataset = raw.dataset as string;
  const method = raw.method as Json;
  return {
    name,
    description: `a run exported from the page: ${String(method.kind)} on ${dataset}, seed ${String(raw.seed)}`,
    model: raw.model ?? 'default',
    tasks: [dataset],
    seeds: [raw.seed ?? DEFAULT_TRAIN.seed],
    train: {
      lr: raw.lr, steps: raw.steps, batchSize: raw.batchSize, seqLen: raw.seqLen, evalEvery: raw.evalEvery,
      // the page's schedule: DEFAULT_TRAIN's optimiser settings
      weightDecay: DEFAULT_TRAIN.weightDecay, warmupFraction: DEFAULT_TRAIN.warmupFraction, maxGradNorm: DEFAULT_TRAIN.maxGradNorm,
    },
    runs: [{ label: String(method.kind), method, adapterDrop: raw.adapterDrop }],
  };
}

const PAGE_KEYS = ['dataset', 'model', 'method', 'adapterDrop', 'seed', 'lr', 'steps', 'batchSize', 'seqLen', 'evalEvery'];

/** Reads and checks a configuration (a grid, or a run exported from the page); throws every problem at once. */
export function parseExperiment(raw: unknown, ctx: ExperimentContext, fallbackName = 'experiment'): Experiment {
  const problems: string[] = [];
  if (!isObject(raw)) throw new ExperimentConfigError(['the configuration must be a JSON object']);
  let source: Experiment['source'] = 'grid';
  if (isPageConfig(raw)) {
    checkKeys('page configuration', raw, PAGE_KEYS, problems);
    const ds = raw.dataset as string;
    if (ds.startsWith('file:')) problems.push(`dataset "${ds}" was imported from a file in the browser: only built-in datasets (${ctx.tasks.join(', ')}) can be reproduced headless`);
    raw = pageToGrid(raw, fallbackName);
    source = 'page';
  }
  const r = raw as Json;
  checkKeys('configuration', r, ['name', 'description', 'model', 'tasks', 'seeds', 'dataSeed', 'evalExamples', 'test', 'train', 'runs'], problems);
  const name = r.name ?? fallbackName;
  if (typeof name !== 'string' || !/^[A-Za-z0-9._-]+$/.test(name)) problems.push(`name: letters, digits, ".", "_" and "-" only (it names the output files; got ${JSON.stringify(name)})`);
  const description = typeof r.description === 'string' ? r.description : '';
  const model = r.model ?? 'default';
  if (typeof model !== 'string' || (model !== 'default' && !ctx.models.includes(model))) {
    problems.push(`model: "${String(model)}" is not a model under public/models (available: default, ${ctx.models.join(', ') || 'none'}); hub ids and URLs need a network and are not run headless`);
  }
  const layers = typeof model === 'string' ? ctx.layers?.[model] : undefined;
  const tasks = r.tasks;
  if (!Array.isArray(tasks) || tasks.length === 0) problems.push(`tasks: a non-empty list of built-in datasets (${ctx.tasks.join(', ')})`);
  else for (const t of tasks) if (typeof t !== 'string' || !ctx.tasks.includes(t)) problems.push(`tasks: unknown task ${JSON.stringify(t)} (built-in: ${ctx.tasks.join(', ')})`);
  const seeds = r.seeds;
  if (!Array.isArray(seeds) || seeds.length === 0 || !seeds.every((s) => isInt(s) && s >= 0)) problems.push('seeds: a non-empty list of whole numbers ≥ 0');
  else if (new Set(seeds).size !== seeds.length) problems.push('seeds: a seed appears twice');
  if (r.dataSeed !== undefined && !(isInt(r.dataSeed) && r.dataSeed >= 0)) problems.push('dataSeed: a whole number ≥ 0');
  if (r.evalExamples !== undefined && !(isInt(r.evalExamples) && r.evalExamples >= 1)) problems.push('evalExamples: a whole number ≥ 1');
  if (r.test !== undefined && typeof r.test !== 'boolean') problems.push('test: true or false');
  const train = parseTrain('train', r.train, EXPERIMENT_TRAIN_DEFAULTS, problems);
  const runs: ExperimentRun[] = [];
  if (!Array.isArray(r.runs) || r.runs.length === 0) problems.push('runs: a non-empty list of { "label", "method", ... }');
  else {
    const labels = new Set<string>();
    r.runs.forEach((run, i) => {
      const w = `runs[${i}]`;
      if (!isObject(run)) return void problems.push(`${w}: an object { "label", "method", "adapterDrop"?, "train"?, "eval"? }`);
      checkKeys(w, run, ['label', 'method', 'adapterDrop', 'train', 'eval'], problems);
      const label = run.label;
      if (typeof label !== 'string' || label === '') problems.push(`${w}.label: a non-empty string`);
      else if (labels.has(label)) problems.push(`${w}.label: "${label}" appears twice (labels key the results)`);
      else labels.add(label);
      const method = parseMethod(`${w}.method`, run.method, problems);
      const adapterDrop = parseAdapterDrop(`${w}.adapterDrop`, run.adapterDrop, layers, problems);
      if (method && adapterDrop.mode !== 'none' && !ADAPTER_METHODS.includes(method.kind)) problems.push(`${w}.adapterDrop: needs a method with modules in the layers (${ADAPTER_METHODS.join(', ')}), not ${method.kind}`);
      const runTrain = parseTrain(`${w}.train`, run.train, train, problems);
      const evals = parseEvals(`${w}.eval`, run.eval, method, layers, problems);
      if (method && typeof label === 'string') runs.push({ label, method, adapterDrop, train: runTrain, eval: evals });
    });
  }
  if (problems.length) throw new ExperimentConfigError(problems);
  return {
    name: name as string, description, model: model as string, tasks: tasks as string[], seeds: seeds as number[],
    dataSeed: r.dataSeed as number | undefined, evalExamples: r.evalExamples as number | undefined, test: r.test !== false, train, runs, source,
  };
}

// ---- jobs ------------------------------------------------------------------------------------------

/** Everything one training job needs; the page runs it as given. */
export interface JobSpec {
  run: string;
  task: string;
  seed: number;
  dataSeed: number;
  /** dev/test evaluated on their first k examples (undefined: all) */
  evalExamples?: number;
  test: boolean;
  model: string;
  /** a digest of the model's weights file, so that a retrained base model reruns the grid */
  modelDigest: string;
  method: MethodConfig;
  adapterDrop: AdapterDropConfig;
  train: TrainConfig;
  evalEvery: number;
  eval: EvalVariant[];
}

export interface Job {
  /** run label × task × seed × hash of the spec: what the state file remembers */
  key: string;
  hash: string;
  spec: JobSpec;
}

/** JSON with object keys sorted, so equal specs hash equally whatever order a file wrote them in. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (isObject(v)) return `{${Object.keys(v).sort().filter((k) => v[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

/** cyrb53 (a 53-bit string hash): enough to tell configurations apart, no crypto API needed. */
export function hashString(s: string): string {
  let h1 = 0xdeadbeef, h2 = 0x41c6ce57;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16).padStart(14, '0');
}

/**
 * The grid, each job keyed, seed-major (every run of every task for the first seed, then the next
 * seed): a grid interrupted half-way already has every run once instead of some runs three times.
 */
export function expandJobs(exp: Experiment, modelDigest: string): Job[] {
  const jobs: Job[] = [];
  for (const seed of exp.seeds) {
    for (const task of exp.tasks) {
      for (const run of exp.runs) {
        const { steps, evalEvery, ...rest } = run.train;
        const spec: JobSpec = {
          run: run.label, task, seed, dataSeed: exp.dataSeed ?? seed, evalExamples: exp.evalExamples, test: exp.test, model: exp.model, modelDigest,
          method: run.method, adapterDrop: run.adapterDrop,
          train: { ...DEFAULT_TRAIN, ...rest, totalSteps: steps, seed },
          evalEvery, eval: run.eval,
        };
        const hash = hashString(canonicalJson(spec));
        jobs.push({ key: `${run.label}|${task}|${seed}|${hash}`, hash, spec });
      }
    }
  }
  return jobs;
}

// ---- results and the state file ----------------------------------------------------------------

export interface SplitScore {
  accuracy: number;
  macroF1: number;
  loss: number;
}

export interface VariantScore {
  label: string;
  /** AdapterDrop 'all': one score per inference n, labelled `${label} n=${n}` */
  n?: number;
  accuracy: number;
  macroF1: number;
  /** route: the score of each sampled route */
  each?: number[];
}

/** What the page returns for one job; the driver adds key, hash and finishedAt before storing it. */
export interface JobResult {
  key: string;
  hash: string;
  run: string;
  task: string;
  seed: number;
  method: MethodKind;
  steps: number;
  trainable: number;
  total: number;
  trainablePct: number;
  msPerStep: number;
  wallS: number;
  finalLoss: number;
  dev: SplitScore;
  test: SplitScore | null;
  variants: VariantScore[];
  curve: { step: number; accuracy: number }[];
  /** the loss became NaN/Inf: the job is kept (it finished, badly) but left out of the means */
  error?: string;
  finishedAt?: string;
}

/**
 * Finished jobs from the state file (one JSON result per line). A torn last line (the process died
 * while appending) is dropped with a note; lines of jobs not in the current grid (an edited
 * configuration) are kept in the file but not used.
 */
export function readState(text: string, jobs: Job[]): { done: Map<string, JobResult>; notes: string[] } {
  const wanted = new Set(jobs.map((j) => j.key));
  const done = new Map<string, JobResult>();
  const notes: string[] = [];
  const lines = text.split('\n');
  let stale = 0;
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let rec: JobResult;
    try {
      rec = JSON.parse(line) as JobResult;
    } catch {
      notes.push(`state line ${i + 1} is not complete JSON (an interrupted write?): ignored, that job runs again`);
      return;
    }
    if (typeof rec?.key !== 'string') return void notes.push(`state line ${i + 1} has no job key: ignored`);
    if (wanted.has(rec.key)) done.set(rec.key, rec);
    else stale++;
  });
  if (stale) notes.push(`${stale} finished job(s) in the state file belong to another configuration (changed settings or base model): not used`);
  return { done, notes };
}

/** One line of the state file. */
export function stateLine(r: JobResult): string {
  return JSON.stringify(r) + '\n';
}

/**
 * Runs the jobs that have no result yet, in order. After each one `onResult` must have stored it
 * (the driver appends to the state file) before the next starts, so an interruption loses at most
 * the job in flight.
 */
export async function runGrid(
  jobs: Job[],
  done: Map<string, JobResult>,
  runJob: (job: Job) => Promise<JobResult>,
  onResult: (r: JobResult, progress: { done: number; total: number; ranNow: number }) => void | Promise<void>,
): Promise<{ ran: number; skipped: number }> {
  let ran = 0, skipped = 0;
  for (const job of jobs) {
    if (done.has(job.key)) {
      skipped++;
      continue;
    }
    const r = await runJob(job);
    if (r.key !== job.key) throw new Error(`job ${job.key} returned the result of ${r.key}`);
    done.set(job.key, r);
    ran++;
    await onResult(r, { done: jobs.filter((j) => done.has(j.key)).length, total: jobs.length, ranNow: ran });
  }
  return { ran, skipped };
}

/** `[#####.....] 12/54 jobs · 5 min · ETA 20 min · <note>` — ETA from this session's mean job time. */
export function progressLine(done: number, total: number, elapsedS: number, ranNow: number, note = '', width = 24): string {
  const filled = total ? Math.round((done / total) * width) : width;
  const left = total - done;
  const eta = ranNow > 0 ? (elapsedS / ranNow) * left : NaN;
  const fmt = (s: number) => (!Number.isFinite(s) ? '?' : s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 60 ? `${Math.round(s / 60)} min` : `${Math.round(s)} s`);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} jobs · ${fmt(elapsedS)} · ETA ${left === 0 ? 'done' : fmt(eta)}${note ? ` · ${note}` : ''}`;
}

// ---- aggregation -----------------------------------------------------------------------------------

export interface Stat {
  mean: number;
  /** sample standard deviation (n − 1); 0 for one value */
  std: number;
  n: number;
}

export function meanStd(xs: number[]): Stat {
  const n = xs.length;
  if (n === 0) return { mean: NaN, std: NaN, n: 0 };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, n };
}

export interface RunSummary {
  run: string;
  method: MethodKind;
  seeds: number[];
  /** seeds whose loss became NaN/Inf (not in the means) */
  diverged: number[];
  dev: Stat;
  devF1: Stat;
  test: Stat | null;
  trainablePct: number;
  trainable: number;
  msPerStep: Stat;
  wallS: Stat;
  steps: number;
  lr: number;
  /** per variant label (AdapterDrop 'all' expanded to `label n=k`), dev accuracy */
  variants: Record<string, Stat>;
}

export interface Aggregation {
  tasks: { task: string; runs: RunSummary[] }[];
  finished: number;
  total: number;
}

export function variantKey(v: VariantScore): string {
  return v.n !== undefined ? `${v.label} n=${v.n}` : v.label;
}

/** Mean ± std over seeds per task and run, in the configuration's order; jobs not finished are left out. */
export function aggregate(exp: Experiment, jobs: Job[], done: Map<string, JobResult>): Aggregation {
  const tasks = exp.tasks.map((task) => {
    const runs: RunSummary[] = [];
    for (const run of exp.runs) {
      const finished = jobs.filter((j) => j.spec.task === task && j.spec.run === run.label).map((j) => done.get(j.key)).filter((r): r is JobResult => r !== undefined);
      const results = finished.filter((r) => !r.error);
      const diverged = finished.filter((r) => r.error).map((r) => r.seed);
      if (finished.length === 0) continue;
      if (results.length === 0) {
        const none = meanStd([]);
        runs.push({ run: run.label, method: run.method.kind, seeds: [], diverged, dev: none, devF1: none, test: null, trainablePct: finished[0].trainablePct, trainable: finished[0].trainable, msPerStep: meanStd(finished.map((r) => r.msPerStep)), wallS: meanStd(finished.map((r) => r.wallS)), steps: finished[0].steps, lr: run.train.lr, variants: {} });
        continue;
      }
      const variants: Record<string, Stat> = {};
      const keys: string[] = [];
      for (const r of results) for (const v of r.variants) if (!keys.includes(variantKey(v))) keys.push(variantKey(v));
      for (const k of keys) variants[k] = meanStd(results.flatMap((r) => r.variants.filter((v) => variantKey(v) === k).map((v) => v.accuracy)));
      const tests = results.filter((r) => r.test).map((r) => r.test!.accuracy);
      runs.push({
        run: run.label,
        method: run.method.kind,
        seeds: results.map((r) => r.seed),
        diverged,
        dev: meanStd(results.map((r) => r.dev.accuracy)),
        devF1: meanStd(results.map((r) => r.dev.macroF1)),
        test: tests.length ? meanStd(tests) : null,
        trainablePct: results[0].trainablePct,
        trainable: results[0].trainable,
        msPerStep: meanStd(results.map((r) => r.msPerStep)),
        wallS: meanStd(results.map((r) => r.wallS)),
        steps: results[0].steps,
        lr: run.train.lr,
        variants,
      });
    }
    return { task, runs };
  });
  return { tasks, finished: jobs.filter((j) => done.has(j.key)).length, total: jobs.length };
}

const pct = (s: Stat | null, digits = 1) => (!s || s.n === 0 ? '—' : s.n > 1 ? `${(100 * s.mean).toFixed(digits)} ± ${(100 * s.std).toFixed(digits)}` : `${(100 * s.mean).toFixed(digits)}`);

function trainSummary(exp: Experiment): string {
  const t = exp.train;
  const same = exp.runs.every((r) => canonicalJson(r.train) === canonicalJson(t));
  const s = `${t.steps} steps, batch ${t.batchSize}, seq ${t.seqLen}, lr ${t.lr}, weight decay ${t.weightDecay}, warm-up ${Math.round(t.warmupFraction * 100)} %, grad clip ${t.maxGradNorm}, AdamW`;
  return same ? s : `${s}; runs that override a setting: ${exp.runs.filter((r) => canonicalJson(r.train) !== canonicalJson(t)).map((r) => r.label).join(', ')} (see the lr column and the JSON)`;
}

/** The results page: a table per task (mean ± std over seeds), then one per kind of evaluation variant. */
export function renderMarkdown(exp: Experiment, agg: Aggregation, machine: { adapter: string; model: string; date: string; command: string }): string {
  const out: string[] = [];
  out.push(`# ${exp.name}`, '');
  if (exp.description) out.push(exp.description, '');
  out.push(
    `Produced by \`${machine.command}\` (scripts/experiment.mjs) on ${machine.date}.`,
    '',
    `- model: ${machine.model}`,
    `- training: ${trainSummary(exp)}; seeds ${exp.seeds.join(', ')}; ${exp.dataSeed !== undefined ? `train/dev/test split with seed ${exp.dataSeed} for every job` : "each job splits the data with its own seed (as the page does)"}`,
    `- evaluation: ${exp.evalExamples !== undefined ? `the first ${exp.evalExamples} examples of` : 'all of'} the dev${exp.test ? ' and test splits' : ' split (no test evaluation)'}`,
    `- adapter: ${machine.adapter}`,
    `- jobs finished: ${agg.finished} of ${agg.total}${agg.finished < agg.total ? ' — **incomplete**: run the same command again to resume' : ''}`,
    '',
    'Accuracies in %, mean ± sample std over seeds (a seed whose loss became NaN/Inf counts as diverged and stays out of the means); dev = the final model on the dev split (AdaMix: its configured inference, merged unless stated), test likewise on the test split. ms/step and wall time are per job on this machine (software WebGPU timings say nothing absolute about a GPU).',
    '',
  );
  for (const { task, runs } of agg.tasks) {
    out.push(`## ${task}`, '');
    if (runs.length === 0) {
      out.push('No finished jobs yet.', '');
      continue;
    }
    out.push('| run | method | lr | seeds | dev acc | dev macro-F1 | test acc | trainable | trainable % | ms/step | wall s |', '|---|---|---|---|---|---|---|---|---|---|---|');
    for (const r of runs) {
      out.push(
        `| ${r.run} | ${r.method} | ${r.lr} | ${r.seeds.length}${r.diverged.length ? ` (+${r.diverged.length} diverged)` : ''} | ${pct(r.dev)} | ${pct(r.devF1)} | ${pct(r.test)} | ${r.trainable.toLocaleString('en-US')} | ${r.trainablePct < 1 ? r.trainablePct.toFixed(3) : r.trainablePct.toFixed(1)} | ${r.msPerStep.n ? r.msPerStep.mean.toFixed(0) : '—'} | ${r.wallS.n ? r.wallS.mean.toFixed(0) : '—'} |`,
      );
    }
    out.push('');
    const withVariants = runs.filter((r) => Object.keys(r.variants).length > 0);
    if (withVariants.length) {
      const cols: string[] = [];
      for (const r of withVariants) for (const k of Object.keys(r.variants)) if (!cols.includes(k)) cols.push(k);
      out.push(`### ${task}: evaluation variants (dev accuracy %)`, '');
      out.push(`| run | ${cols.join(' | ')} |`, `|---|${cols.map(() => '---').join('|')}|`);
      for (const r of withVariants) out.push(`| ${r.run} | ${cols.map((c) => pct(r.variants[c] ?? null)).join(' | ')} |`);
      out.push('');
    }
  }
  return out.join('\n');
}
