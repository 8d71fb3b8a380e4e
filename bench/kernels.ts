// Kernel benchmark page: our matmul (the autotuner's choice) against tfjs-backend-webgpu's
// tf.matMul on the same adapter in the same page, plus the bandwidth of LayerNorm and GELU forward.
// Every timed result is checked against a float64 CPU computation on sampled entries, so a kernel
// that silently computes nothing (an invalid pipeline) cannot win. Driven by scripts/bench-kernels.mjs.

import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-webgpu';
import { Gpu } from '../src/gpu/runtime';
import { autotuneMatmul, getMatmulChoice, matmul, type MatmulVariant } from '../src/ops/matmul';
import { layerNormForward } from '../src/ops/layernorm';
import { geluForward } from '../src/ops/gelu';

export interface KernelBenchConfig {
  /** (m, n, k) products: out[m, n] = A[m, k] · B[k, n] */
  matmulShapes: [number, number, number][];
  /** each timing repeats the op until at least this long, at least twice */
  minMs: number;
  /** ours and the peer are timed alternately this many times; the fastest of each is kept */
  rounds: number;
  elementwise: { layernorm: [number, number][]; gelu: number[] };
  /** false: only the autotuner's timings of our variants (kernel development) */
  peer: boolean;
}

export interface MatmulRow {
  m: number;
  n: number;
  k: number;
  gflops: number;
  peer_gflops: number;
  ratio: number;
  variant: MatmulVariant;
  /** GFLOP/s of every variant as the autotuner measured it */
  variant_gflops: Partial<Record<MatmulVariant, number>>;
  max_error: number;
  peer_max_error: number;
}

export interface ElementwiseRow {
  op: string;
  n: number;
  gbps: number;
  shape: number[];
}

export interface KernelBenchResult {
  adapter: string;
  matmul: MatmulRow[];
  elementwise: ElementwiseRow[];
}

const defaultConfig: KernelBenchConfig = {
  matmulShapes: [
    [128, 128, 128],
    [256, 256, 256],
    [512, 512, 512],
    [1024, 1024, 1024],
    // a BERT layer's FFN at 2048 tokens, hidden 128: up (tokens × 4·hidden × hidden) and down
    [2048, 512, 128],
    [2048, 128, 512],
  ],
  minMs: 400,
  rounds: 2,
  peer: true,
  elementwise: {
    layernorm: [[2048, 128], [2048, 768]],
    gelu: [2048 * 512, 2048 * 3072],
  },
};

const log = (msg: string) => {
  console.log(msg);
  const el = document.getElementById('log');
  if (el) el.textContent += `\n${msg}`;
};

function randomArray(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 4294967296 - 0.5;
  }
  return out;
}

/** Max abs error of `got` against float64 dot products on `samples` pseudo-random entries. */
function sampledError(got: Float32Array, a: Float32Array, b: Float32Array, m: number, n: number, k: number, samples = 256): number {
  let worst = 0;
  for (let s = 0; s < samples; s++) {
    const i = s === 0 ? m - 1 : (s * 7919) % m;
    const j = s === 0 ? n - 1 : (s * 104729) % n;
    let acc = 0;
    for (let kk = 0; kk < k; kk++) acc += a[i * k + kk] * b[kk * n + j];
    const e = Math.abs(got[i * n + j] - acc);
    worst = Number.isNaN(e) ? Infinity : Math.max(worst, e);
  }
  return worst;
}

/** ms per call: one warm call, then enough calls for minMs (at least 2) and one sync at the end. */
async function timeOp(run: () => void, sync: () => Promise<void>, minMs: number): Promise<number> {
  const w0 = performance.now();
  run();
  await sync();
  const once = Math.max(performance.now() - w0, 0.01);
  const reps = Math.max(2, Math.min(200, Math.ceil(minMs / once)));
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) run();
  await sync();
  return (performance.now() - t0) / reps;
}

export async function runKernelBench(partial: Partial<KernelBenchConfig> = {}): Promise<KernelBenchResult> {
  const config = { ...defaultConfig, ...partial };
  const gpu = await Gpu.create();
  gpu.device.addEventListener('uncapturederror', (e) => log(`WebGPU error: ${(e as GPUUncapturedErrorEvent).error.message}`));
  const s = gpu.summary;
  const adapter = [s.vendor, s.architecture, s.device, s.description].filter(Boolean).join(' / ') + (s.isFallbackAdapter ? ' (fallback adapter)' : '');
  log(`adapter: ${adapter}`);

  tf.env().set('WEBGPU_CPU_FORWARD', false); // small tensors would otherwise run on the CPU
  if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs could not start its webgpu backend');
  await tf.ready();
  // tfjs-backend-webgpu keeps a compute pass open between ops: end it and submit, as its own
  // readback does, then wait for the queue (no readback inside the timed loop, as for ours)
  const backend = tf.backend() as unknown as {
    ensureCommandEncoderReady(): void;
    endComputePassEncoder(): void;
    submitQueue(): void;
    device: GPUDevice;
  };
  const tfSync = async () => {
    backend.ensureCommandEncoderReady();
    backend.endComputePassEncoder();
    backend.submitQueue();
    await backend.device.queue.onSubmittedWorkDone();
  };

  const matmulRows: MatmulRow[] = [];
  for (const [m, n, k] of config.matmulShapes) {
    const flop = 2 * m * n * k;
    const aHost = randomArray(m * k, m * 31 + k);
    const bHost = randomArray(k * n, n * 17 + k);
    const tol = 1e-4 * Math.sqrt(k) * 4;

    // ours: let the autotuner pick, then time its choice
    const tune = await autotuneMatmul(gpu, { m, n, k, epilogue: 'plain' }, config.peer ? {} : { minMs: config.minMs, maxReps: 50 });
    if (!config.peer) {
      log(`matmul ${m}×${n}×${k}: ${Object.entries(tune.ms).map(([v, ms]) => `${v} ${(flop / ms / 1e6).toFixed(3)}`).join(', ')} GFLOP/s`);
      continue;
    }
    const choice = getMatmulChoice(gpu, { m, n, k, epilogue: 'plain' }).variant;
    const a = gpu.upload(aHost, [m, k]);
    const b = gpu.upload(bHost, [k, n]);
    const out = gpu.empty([m, n]);
    const ours = () => void matmul(gpu, a, b, { out });
    ours();
    const maxError = sampledError(await gpu.read(out), aHost, bHost, m, n, k);
    if (!(maxError <= tol)) throw new Error(`our matmul ${m}×${n}×${k} (${choice}) is wrong: max error ${maxError}`);

    // peer
    const ta = tf.tensor2d(aHost, [m, k]);
    const tb = tf.tensor2d(bHost, [k, n]);
    let tc: tf.Tensor | null = null;
    const peer = () => {
      const next = tf.matMul(ta, tb);
      tc?.dispose();
      tc = next;
    };
    peer();
    const peerError = sampledError((await tc!.data()) as Float32Array, aHost, bHost, m, n, k);
    if (!(peerError <= tol)) log(`warning: tfjs matMul ${m}×${n}×${k} max error ${peerError}`);

    let best = Infinity, peerBest = Infinity;
    for (let r = 0; r < config.rounds; r++) {
      best = Math.min(best, await timeOp(ours, () => gpu.sync(), config.minMs));
      peerBest = Math.min(peerBest, await timeOp(peer, tfSync, config.minMs));
    }
    const row: MatmulRow = {
      m, n, k,
      gflops: flop / best / 1e6,
      peer_gflops: flop / peerBest / 1e6,
      ratio: peerBest / best,
      variant: choice,
      variant_gflops: Object.fromEntries(Object.entries(tune.ms).map(([v, ms]) => [v, +(flop / ms / 1e6).toFixed(3)])),
      max_error: maxError,
      peer_max_error: peerError,
    };
    matmulRows.push(row);
    log(`matmul ${m}×${n}×${k}: ours ${row.gflops.toFixed(3)} GFLOP/s (${choice}), tfjs ${row.peer_gflops.toFixed(3)}, ratio ${row.ratio.toFixed(2)}; variants ${JSON.stringify(row.variant_gflops)}`);
    ta.dispose();
    tb.dispose();
    (tc as tf.Tensor | null)?.dispose();
    for (const t of [a, b, out]) gpu.release(t);
  }

  const elementwise: ElementwiseRow[] = [];
  for (const [rows, d] of config.elementwise.layernorm) {
    const xHost = randomArray(rows * d, rows + d);
    const x = gpu.upload(xHost, [rows, d]);
    const gamma = gpu.upload(new Float32Array(d).fill(1));
    const beta = gpu.upload(new Float32Array(d));
    const y = gpu.empty([rows, d]);
    const run = () => {
      const r = layerNormForward(gpu, x, gamma, beta, 1e-12, y);
      gpu.release(r.mean);
      gpu.release(r.rstd);
    };
    run();
    // check one row: a normalized row has mean 0 and variance 1
    const row0 = (await gpu.read(y)).subarray(0, d);
    const mean = row0.reduce((s, v) => s + v, 0) / d;
    const variance = row0.reduce((s, v) => s + (v - mean) ** 2, 0) / d;
    if (!(Math.abs(mean) < 1e-3 && Math.abs(variance - 1) < 1e-2)) throw new Error(`layerNormForward result is wrong: mean ${mean}, variance ${variance}`);
    const ms = await timeOp(run, () => gpu.sync(), config.minMs);
    const bytes = (2 * rows * d + 2 * d + 2 * rows) * 4; // x in, y out, gamma/beta, mean/rstd
    elementwise.push({ op: 'layernorm_forward', n: rows * d, shape: [rows, d], gbps: bytes / ms / 1e6 });
    log(`layernorm forward [${rows}, ${d}]: ${(bytes / ms / 1e6).toFixed(3)} GB/s`);
    for (const t of [x, gamma, beta, y]) gpu.release(t);
  }
  for (const n of config.elementwise.gelu) {
    const xHost = randomArray(n, n);
    const x = gpu.upload(xHost);
    const y = gpu.empty([n]);
    const run = () => void geluForward(gpu, x, y);
    run();
    const got = await gpu.read(y);
    // gelu(x) ≈ x·Φ(x): spot-check against the tanh form, which is within 1e-3 of the erf form
    for (const i of [0, n >> 1, n - 1]) {
      const v = xHost[i];
      const approx = 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
      if (!(Math.abs(got[i] - approx) < 1e-3)) throw new Error(`geluForward result is wrong at ${i}: ${got[i]} vs ≈${approx}`);
    }
    const ms = await timeOp(run, () => gpu.sync(), config.minMs);
    const bytes = 2 * n * 4;
    elementwise.push({ op: 'gelu_forward', n, shape: [n], gbps: bytes / ms / 1e6 });
    log(`gelu forward [${n}]: ${(bytes / ms / 1e6).toFixed(3)} GB/s`);
    gpu.release(x);
    gpu.release(y);
  }
  gpu.device.destroy();
  return { adapter, matmul: matmulRows, elementwise };
}

declare global {
  interface Window {
    runKernelBench: typeof runKernelBench;
  }
}
window.runKernelBench = runKernelBench;
