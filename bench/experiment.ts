// Experiment page: runs one job of a grid (scripts/experiment.mjs, issue 8) on the same Engine the
// playground's worker drives — load the base model and the built-in dataset, configure the method,
// train, evaluate dev and test — plus the evaluation variants the engine has no single call for:
// AdaMix with one sampled route, an ensemble of k sampled routes (class probabilities averaged per
// example), and AdapterDrop at every inference n. The model and the dataset stay loaded between
// jobs; every job configures fresh modules and a fresh head.
import { Engine, classificationMetrics } from '../src/train/engine';
import { encodeSplit, evalBatches, type EncodedSplit } from '../src/data/batch';
import { sampleRoute, type Route } from '../src/model/peft/adamix';
import { tuneMatmuls } from '../src/ops/matmul';
import { Rng } from '../src/train/rng';
import { loadBuiltinDataset } from '../src/data/datasets';
import type { JobResult, JobSpec, SplitScore, VariantScore } from '../src/train/experiment';

const log = (msg: string) => {
  console.log(msg);
  const el = document.getElementById('log');
  if (el) el.textContent += `\n${msg}`;
};

const engine = new Engine();
let adapterName = '';
let loadedModel: string | null = null;
let loadedData: string | null = null;

/** The WebGPU adapter in words (the results page states which machine produced the numbers). */
export async function experimentInit(): Promise<string> {
  const init = await engine.init();
  if (!init.ok) throw new Error(`WebGPU unavailable (${init.reason}): ${init.message}`);
  engine.gpu!.device.addEventListener('uncapturederror', (e) => log(`WebGPU error: ${(e as GPUUncapturedErrorEvent).error.message}`));
  const s = init.adapter;
  adapterName = [s.vendor, s.architecture, s.device, s.description].filter(Boolean).join(' / ') + (s.isFallbackAdapter ? ' (fallback adapter)' : '');
  return adapterName;
}

function adamixRouteSampler(seed: number): () => Route {
  const m = engine.trainer!.model.method;
  if (m.kind !== 'adamix' && m.kind !== 'adamix_lora') throw new Error(`route evaluation needs an AdaMix run, not ${m.kind}`);
  const rng = new Rng(seed ^ 0xada);
  const layers = engine.trainer!.model.config.numLayers;
  const up = m.kind === 'adamix' ? (m.sharedUp ? 1 : m.experts) : m.sharedB ? 1 : m.experts;
  return () => sampleRoute(rng, layers, { kind: m.kind, experts: m.experts, upExperts: up, targets: m.kind === 'adamix_lora' ? m.targets : undefined });
}

/**
 * Ensemble of routes: each example's class probabilities averaged over `routes` (one forward pass
 * per route and batch), then argmax — the alternative to merging that the AdaMix paper's ablation
 * compares against.
 */
async function ensembleScore(split: EncodedSplit, routes: Route[], batchSize: number): Promise<{ accuracy: number; macroF1: number }> {
  const trainer = engine.trainer!;
  const classes = trainer.model.config.numLabels;
  const pred: number[] = [], gold: number[] = [];
  for (const b of evalBatches(split, batchSize)) {
    const sum = new Float64Array(b.size * classes);
    for (const route of routes) {
      const r = await trainer.predictBatch(b, { route, droppedLayers: 0 });
      for (let i = 0; i < b.size * classes; i++) sum[i] += r.probs[i];
    }
    for (let i = 0; i < b.size; i++) {
      let best = 0;
      for (let c = 1; c < classes; c++) if (sum[i * classes + c] > sum[i * classes + best]) best = c;
      pred.push(best);
      gold.push(b.labels[i]);
    }
  }
  return classificationMetrics(pred, gold, classes);
}

export async function runExperimentJob(spec: JobSpec & { key: string; hash: string }): Promise<JobResult> {
  const started = performance.now();
  if (!engine.gpu) await experimentInit();
  const modelId = spec.model === 'default' ? 'default' : spec.model;
  if (loadedModel !== modelId) {
    const info = modelId === 'default' ? await engine.loadDefaultModel('/') : await engine.loadModelFromUrl(`/models/${modelId}`);
    log(`model ${info.name}: ${info.parameters} parameters`);
    loadedModel = modelId;
    loadedData = null; // loading a model drops the encoded splits
  }
  const dataKey = `${spec.task}@${spec.dataSeed}/${spec.evalExamples ?? 'all'}`;
  if (loadedData !== dataKey) {
    const full = await loadBuiltinDataset(spec.task, '/data/', spec.dataSeed);
    const k = spec.evalExamples ?? Infinity;
    const ds = engine.loadDataset({ ...full, dev: full.dev.slice(0, k), test: full.test.slice(0, k) });
    log(`dataset ${full.name}: ${ds.train} train, ${ds.dev} dev, ${ds.test} test evaluated`);
    loadedData = dataKey;
  }
  const info = engine.configure({ method: spec.method, adapterDrop: spec.adapterDrop, train: spec.train, evalEvery: spec.evalEvery });
  const steps = spec.train.totalSteps;
  const readEvery = 10;
  // the first step creates this method's pipelines; the matmul shapes it meets for the first time
  // are autotuned right after it, so the timed steps run with the variants the page would use
  let res = await engine.train(1, 1);
  await tuneMatmuls(engine.gpu!);
  const trainStart = performance.now();
  // in chunks, so that a log line every `chunk` steps shows a long job is alive
  const chunk = 25;
  while (res.state === 'done' && engine.trainer!.step < steps) {
    res = await engine.train(Math.min(chunk, steps - engine.trainer!.step), readEvery);
    log(`  ${spec.run} ${spec.task} seed ${spec.seed}: step ${engine.trainer!.step}/${steps}`);
  }
  const trainMs = performance.now() - trainStart;
  if (res.state === 'paused') throw new Error(`${spec.run} ${spec.task} seed ${spec.seed}: training paused at step ${res.step}`);
  if (res.state === 'error') {
    // a diverged job is a result (this setting is unstable), not a reason to stop the grid: it is
    // stored with its message and left out of the means
    log(`${spec.run} ${spec.task} seed ${spec.seed}: ${res.message}`);
    const nan: SplitScore = { accuracy: 0, macroF1: 0, loss: 0 };
    return {
      key: spec.key, hash: spec.hash, run: spec.run, task: spec.task, seed: spec.seed, method: spec.method.kind, steps,
      trainable: info.trainable, total: info.total, trainablePct: info.trainablePct, msPerStep: trainMs / Math.max(1, res.step - 1),
      wallS: (performance.now() - started) / 1000, finalLoss: 0, dev: nan, test: null, variants: [], curve: [], error: res.message ?? 'diverged',
    };
  }
  const metrics = engine.takeMetrics();
  const stepMetrics = metrics.filter((m) => m.kind === 'step');
  const curve = metrics.filter((m) => m.kind === 'eval' && m.split === 'dev').map((m) => ({ step: m.step, accuracy: (m as { accuracy: number }).accuracy }));
  // ms/step from the engine's read windows (evaluations during training excluded), first step excluded
  const timed = stepMetrics.filter((m) => m.step > 0).map((m) => (m as { stepMs: number }).stepMs);
  const msPerStep = timed.length ? timed.reduce((a, b) => a + b, 0) / timed.length : trainMs / Math.max(1, steps - 1);
  const finalLoss = stepMetrics.length ? (stepMetrics[stepMetrics.length - 1] as { loss: number }).loss : NaN;

  const score = (r: { accuracy: number; macroF1: number; loss: number }): SplitScore => ({ accuracy: r.accuracy, macroF1: r.macroF1, loss: r.loss });
  const dev = score(await engine.evaluate('dev', { record: false }));
  const test = spec.test && engine.dataset!.test.length ? score(await engine.evaluate('test', { record: false })) : null;

  const variants: VariantScore[] = [];
  const L = engine.trainer!.model.config.numLayers;
  let devSplit: EncodedSplit | null = null;
  for (const v of spec.eval) {
    if (v.merged !== undefined) {
      const r = await engine.evaluate('dev', { merged: v.merged, record: false });
      variants.push({ label: v.label, accuracy: r.accuracy, macroF1: r.macroF1 });
    } else if (v.route === 'sampled') {
      const next = adamixRouteSampler(spec.seed);
      const each: number[] = [], f1: number[] = [];
      for (let i = 0; i < (v.samples ?? 3); i++) {
        const r = await engine.evaluate('dev', { route: next(), record: false });
        each.push(r.accuracy);
        f1.push(r.macroF1);
      }
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      variants.push({ label: v.label, accuracy: mean(each), macroF1: mean(f1), each });
    } else if (v.ensemble !== undefined) {
      const next = adamixRouteSampler(spec.seed + 7919);
      devSplit ??= encodeSplit(engine.dataset!.dev, engine.tokenizer!, spec.train.seqLen);
      const routes = Array.from({ length: v.ensemble }, () => next());
      const r = await ensembleScore(devSplit, routes, spec.train.batchSize);
      variants.push({ label: v.label, accuracy: r.accuracy, macroF1: r.macroF1 });
    } else if (v.droppedLayers !== undefined) {
      const ns = v.droppedLayers === 'all' ? Array.from({ length: L + 1 }, (_, n) => n) : [v.droppedLayers];
      for (const n of ns) {
        const r = await engine.evaluate('dev', { droppedLayers: n, record: false });
        variants.push({ label: v.label, n: v.droppedLayers === 'all' ? n : undefined, accuracy: r.accuracy, macroF1: r.macroF1 });
      }
    }
  }
  const wallS = (performance.now() - started) / 1000;
  log(`${spec.run} ${spec.task} seed ${spec.seed}: dev ${(100 * dev.accuracy).toFixed(1)} %, ${msPerStep.toFixed(0)} ms/step, ${wallS.toFixed(0)} s`);
  return {
    key: spec.key, hash: spec.hash, run: spec.run, task: spec.task, seed: spec.seed, method: spec.method.kind, steps,
    trainable: info.trainable, total: info.total, trainablePct: info.trainablePct, msPerStep, wallS, finalLoss,
    dev, test, variants, curve,
  };
}

declare global {
  interface Window {
    runExperimentJob: typeof runExperimentJob;
    experimentInit: typeof experimentInit;
  }
}
window.runExperimentJob = runExperimentJob;
window.experimentInit = experimentInit;
