// Training benchmark page: ms per training step and tokens/s of every PEFT method on one randomly
// initialised BERT with the real bert-base-uncased vocabulary and the built-in sentiment dataset,
// AdapterDrop's training and inference speed for each number of dropped lower layers, and derived
// ratios (adapters against full fine-tuning, AdaMix against one adapter). Drives the same Engine the
// playground's worker uses. Driven by scripts/bench-train.mjs (npm run bench:train).
//
// Speed does not depend on pretraining, so the base weights are random (Hugging Face init); the
// vocabulary's full size matters (the word-embedding table is most of the model's parameters and
// full fine-tuning updates all of it).

import { Engine } from '../src/train/engine';
import { bertParamShapes, initBaseParam } from '../src/model/bert';
import { DEFAULT_METHODS, type BertConfig, type MethodConfig, type MethodKind } from '../src/model/config';
import { DEFAULT_TRAIN, type TrainConfig } from '../src/train/trainer';
import { loadBuiltinDataset } from '../src/data/datasets';
import { tuneMatmuls } from '../src/ops/matmul';
import { Rng } from '../src/train/rng';

export interface TrainBenchConfig {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  seqLen: number;
  batchSize: number;
  /** untimed steps after the first one (which triggers pipeline creation and matmul autotuning) */
  warmupSteps: number;
  /** timed steps per configuration and round; one metrics read at the end */
  steps: number;
  /** rounds over all configurations (round-robin); each one's fastest round is kept (load only slows) */
  rounds: number;
  /** dev examples used for the inference timing (a multiple of batchSize keeps batches full) */
  inferExamples: number;
  methods: MethodKind[];
  /** AdapterDrop part (Houlsby, specialized) */
  adapterDrop: boolean;
  seed: number;
}

export interface MethodRow {
  method: MethodKind;
  config: MethodConfig;
  ms_per_step: number;
  tokens_per_s: number;
  /** the engine's own step metric (wall time over its read window, GPU work included) */
  engine_ms_per_step: number;
  trainable: number;
  total: number;
  trainable_pct: number;
  /** ms of every timed round */
  rounds_ms: number[];
  final_loss: number;
}

export interface DropRow {
  n: number;
  /** null for n = L: no trainable adapter left, only the head (the engine refuses that config) */
  train_ms: number | null;
  train_tokens_per_s: number | null;
  infer_ms: number;
  trainable: number | null;
}

export interface TrainBenchResult {
  adapter: string;
  config: Record<string, unknown>;
  methods: MethodRow[];
  adapterdrop: DropRow[];
  derived: Record<string, unknown>;
  seconds: number;
}

const defaultConfig: TrainBenchConfig = {
  hiddenSize: 128,
  numLayers: 4,
  numHeads: 4,
  intermediateSize: 512,
  seqLen: 64,
  batchSize: 32,
  warmupSteps: 1,
  steps: 3,
  rounds: 3,
  inferExamples: 64,
  methods: ['full', 'headonly', 'bitfit', 'houlsby', 'pfeiffer', 'lora', 'adamix', 'adamix_lora'],
  adapterDrop: true,
  seed: 42,
};

const log = (msg: string) => {
  console.log(msg);
  const el = document.getElementById('log');
  if (el) el.textContent += `\n${msg}`;
};

const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

function randomBase(config: BertConfig, seed: number): Map<string, Float32Array> {
  const rng = new Rng(seed);
  const params = new Map<string, Float32Array>();
  for (const [name, shape] of bertParamShapes(config)) params.set(name, initBaseParam(name, shape, rng));
  return params;
}

export async function runTrainBench(partial: Partial<TrainBenchConfig> = {}): Promise<TrainBenchResult> {
  const c = { ...defaultConfig, ...partial };
  const started = performance.now();
  const engine = new Engine();
  const init = await engine.init();
  if (!init.ok) throw new Error(`WebGPU unavailable (${init.reason}): ${init.message}`);
  const gpu = engine.gpu!;
  gpu.device.addEventListener('uncapturederror', (e) => log(`WebGPU error: ${(e as GPUUncapturedErrorEvent).error.message}`));
  const s = init.adapter;
  const adapter = [s.vendor, s.architecture, s.device, s.description].filter(Boolean).join(' / ') + (s.isFallbackAdapter ? ' (fallback adapter)' : '');
  log(`adapter: ${adapter}`);

  const vocab = await (await fetch('/vocab.txt')).text();
  const vocabSize = vocab.split('\n').filter((l) => l.length > 0).length;
  const bert: BertConfig = {
    vocabSize,
    hiddenSize: c.hiddenSize,
    numLayers: c.numLayers,
    numHeads: c.numHeads,
    intermediateSize: c.intermediateSize,
    maxPositions: 512,
    typeVocabSize: 2,
    layerNormEps: 1e-12,
    numLabels: 2,
    hiddenDropout: 0.1,
    attentionDropout: 0.1,
  };
  const loaded = engine.loadModel(bert, randomBase(bert, c.seed), vocab);
  const ds = await loadBuiltinDataset('sentiment', '/data/', c.seed);
  // inference timing reads the dev split: keep a fixed number of examples so every n costs the same
  const dev = ds.dev.slice(0, c.inferExamples);
  engine.loadDataset({ ...ds, dev });
  log(`model: vocab ${vocabSize}, hidden ${c.hiddenSize}, ${c.numLayers} layers, ${c.numHeads} heads, intermediate ${c.intermediateSize}, ${loaded.parameters} base parameters; dataset ${ds.name}: ${ds.train.length} train`);

  const tokensPerStep = c.batchSize * c.seqLen;
  const train: TrainConfig = { ...DEFAULT_TRAIN, batchSize: c.batchSize, seqLen: c.seqLen, seed: c.seed, totalSteps: 100_000, warmupFraction: 0 };

  type Job = { label: string; method: MethodConfig; drop: { mode: 'none' | 'specialized'; n: number } };
  type Timing = { info: ReturnType<Engine['configure']>; roundsMs: number[]; engineMs: number[]; loss: number };

  /**
   * One round of one configuration: configure (fresh modules, step 0), one step (pipelines; matmul
   * autotuning of shapes not met before), `warmupSteps` untimed steps, then `steps` timed steps with
   * one metrics read at the end (which waits for the GPU).
   */
  async function timeRound(job: Job, t: Timing | undefined): Promise<Timing> {
    const info = engine.configure({ method: job.method, adapterDrop: job.drop, train, evalEvery: 0 });
    await engine.train(1, 1);
    await tuneMatmuls(gpu); // shapes this method met first (the engine tunes only on its first run)
    if (c.warmupSteps > 0) await engine.train(c.warmupSteps, c.warmupSteps);
    engine.takeMetrics();
    const t0 = performance.now();
    const res = await engine.train(c.steps, c.steps);
    const ms = (performance.now() - t0) / c.steps;
    if (res.state !== 'done') throw new Error(`${job.label}: training stopped: ${res.state} ${res.message ?? ''}`);
    const out = t ?? { info, roundsMs: [], engineMs: [], loss: NaN };
    out.roundsMs.push(ms);
    for (const m of engine.takeMetrics()) {
      if (m.kind !== 'step') continue;
      out.engineMs.push(m.stepMs);
      out.loss = m.loss;
    }
    return out;
  }

  // every configuration once per round, round after round: load from other processes on a shared
  // machine spreads over all configurations instead of slowing whichever ran at the time, and the
  // fastest round of each is kept (load only ever slows a round down)
  const jobs: Job[] = c.methods.map((kind) => ({ label: kind, method: DEFAULT_METHODS[kind], drop: { mode: 'none', n: 0 } }));
  const houlsby = DEFAULT_METHODS.houlsby;
  const L = c.numLayers;
  if (c.adapterDrop) for (let n = 0; n < L; n++) jobs.push({ label: `adapterdrop n=${n}`, method: houlsby, drop: { mode: 'specialized', n } });
  const timings = new Map<string, Timing>();
  for (let r = 0; r < c.rounds; r++) {
    for (const job of jobs) {
      const t = await timeRound(job, timings.get(job.label));
      timings.set(job.label, t);
      log(`round ${r + 1}/${c.rounds} ${job.label}: ${t.roundsMs[r].toFixed(1)} ms/step`);
    }
  }

  const methods: MethodRow[] = [];
  for (const kind of c.methods) {
    const method = DEFAULT_METHODS[kind];
    const r = timings.get(kind)!;
    const best = Math.min(...r.roundsMs);
    const row: MethodRow = {
      method: kind,
      config: method,
      ms_per_step: round(best, 2),
      tokens_per_s: round((tokensPerStep / best) * 1000, 1),
      engine_ms_per_step: round(Math.min(...r.engineMs), 2),
      trainable: r.info.trainable,
      total: r.info.total,
      trainable_pct: round(r.info.trainablePct, 4),
      rounds_ms: r.roundsMs.map((x) => round(x, 2)),
      final_loss: round(r.loss, 4),
    };
    methods.push(row);
    log(`${kind}: ${row.ms_per_step} ms/step, ${row.tokens_per_s} tokens/s, trainable ${row.trainable} (${row.trainable_pct} %), rounds ${row.rounds_ms.join(' / ')} ms`);
  }

  const adapterdrop: DropRow[] = [];
  if (c.adapterDrop) {
    // inference: one Houlsby model (adapters in every layer), forward with the lowest n layers' adapters skipped
    engine.configure({ method: houlsby, adapterDrop: { mode: 'none', n: 0 }, train, evalEvery: 0 });
    await engine.train(1, 1);
    for (let n = 0; n <= L; n++) await engine.evaluate('dev', { droppedLayers: n, record: false });
    await tuneMatmuls(gpu);
    const inferRuns: { n: number; msPerBatch: number }[][] = [];
    for (let r = 0; r < c.rounds; r++) inferRuns.push(await engine.measureAdapterDrop('dev'));
    for (let n = 0; n <= L; n++) {
      const infer = Math.min(...inferRuns.map((rows) => rows.find((x) => x.n === n)!.msPerBatch));
      const t = n < L ? timings.get(`adapterdrop n=${n}`)! : undefined;
      const ms = t ? Math.min(...t.roundsMs) : null;
      adapterdrop.push({
        n,
        train_ms: ms !== null ? round(ms, 2) : null,
        train_tokens_per_s: ms !== null ? round((tokensPerStep / ms) * 1000, 1) : null,
        infer_ms: round(infer, 2),
        trainable: t ? t.info.trainable : null,
      });
      log(`AdapterDrop n=${n}: train ${ms?.toFixed(2) ?? '—'} ms/step (rounds ${t?.roundsMs.map((x) => x.toFixed(1)).join(' / ') ?? '—'}), inference ${infer.toFixed(2)} ms/batch (rounds ${inferRuns.map((rows) => rows[n].msPerBatch.toFixed(1)).join(' / ')})`);
    }
  }

  // ---- derived ---------------------------------------------------------------------------------
  const ms = (k: MethodKind) => methods.find((m) => m.method === k)?.ms_per_step;
  const full = ms('full');
  const speedup: Record<string, { speedup: number; pct_faster: number }> = {};
  if (full) {
    for (const m of methods) {
      if (m.method === 'full') continue;
      const x = full / m.ms_per_step;
      speedup[m.method] = { speedup: round(x, 3), pct_faster: round((x - 1) * 100, 1) };
    }
  }
  const derived: Record<string, unknown> = {
    note: 'speedup = ms_per_step(full) / ms_per_step(method); pct_faster = (speedup − 1) · 100 (throughput gain)',
    speedup_over_full: speedup,
  };
  const adapterMean = ['houlsby', 'pfeiffer'].map((k) => ms(k as MethodKind)).filter((x): x is number => x !== undefined);
  if (full && adapterMean.length) {
    const mean = adapterMean.reduce((a, b) => a + b, 0) / adapterMean.length;
    derived.adapters_vs_full = { mean_adapter_ms: round(mean, 2), full_ms: full, speedup: round(full / mean, 3), pct_faster: round((full / mean - 1) * 100, 1), seed_claim_pct_faster: 60 };
  }
  const pf = ms('pfeiffer'), ax = ms('adamix'), lo = ms('lora'), axl = ms('adamix_lora');
  if (pf && ax) derived.adamix_cost_vs_pfeiffer = round(ax / pf, 3);
  if (lo && axl) derived.adamix_lora_cost_vs_lora = round(axl / lo, 3);
  if (adapterdrop.length) {
    const t0 = adapterdrop[0].train_ms!, i0 = adapterdrop[0].infer_ms;
    derived.adapterdrop = adapterdrop.map((r) => ({
      n: r.n,
      train_speedup: r.train_ms ? round(t0 / r.train_ms, 3) : null,
      infer_speedup: round(i0 / r.infer_ms, 3),
    }));
  }

  const result: TrainBenchResult = {
    adapter,
    config: {
      ...bert,
      seqLen: c.seqLen,
      batchSize: c.batchSize,
      tokensPerStep,
      warmupSteps: c.warmupSteps,
      timedSteps: c.steps,
      rounds: c.rounds,
      inferBatches: Math.ceil(dev.length / c.batchSize),
      dataset: 'sentiment',
      base: 'random (HF init), real bert-base-uncased vocabulary',
      optimizer: 'AdamW',
      adapterDropMethod: houlsby,
    },
    methods,
    adapterdrop,
    derived,
    seconds: round((performance.now() - started) / 1000, 1),
  };
  engine.trainer?.destroy();
  engine.model?.destroy();
  gpu.device.destroy();
  return result;
}

declare global {
  interface Window {
    runTrainBench: typeof runTrainBench;
  }
}
window.runTrainBench = runTrainBench;
