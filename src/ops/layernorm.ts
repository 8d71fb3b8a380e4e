// LayerNorm over the last dimension (BERT post-LN, eps 1e-12 from the config).
// x, y, dy, dx are (rows, d); gamma, beta, dgamma, dbeta are (d); mean, rstd are (rows).

import { f32, type Gpu } from '../gpu/runtime';
import type { Tensor } from '../gpu/tensor';
import code from '../../shaders/layernorm.wgsl?raw';
import { allocLike, assertNoAlias, assertSize, scratchTensor, workgroupGrid, type FloatArray } from './nn-util';

/** Rows one paramGrads workgroup sums; more rows than this go through partial sums. */
const CHUNK_ROWS = 256;

function rowsOf(op: string, x: Tensor, d: number): number {
  if (d === 0 || x.size % d !== 0) throw new Error(`${op}: ${x} is not a multiple of d = ${d}`);
  return x.size / d;
}

export function layerNormForward(
  gpu: Gpu,
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  eps: number,
  out?: Tensor,
): { y: Tensor; mean: Tensor; rstd: Tensor } {
  const d = gamma.size;
  const rows = rowsOf('layerNormForward', x, d);
  assertSize('layerNormForward', beta, d, 'beta');
  const y = out ?? gpu.empty(x.shape);
  assertSize('layerNormForward', y, x.size, 'out');
  assertNoAlias('layerNormForward', y, x, gamma, beta);
  const mean = gpu.empty([rows]);
  const rstd = gpu.empty([rows]);
  const perThread = rowPerThread(gpu);
  const k = gpu.kernel({
    name: perThread ? 'layernorm.forwardRowPerThread' : 'layernorm.forward',
    code,
    entryPoint: perThread ? 'forwardRowPerThread' : 'forward',
    bindings: ['read', 'read', 'read', 'write', 'write', 'write'],
  });
  gpu.dispatch(k, [x, gamma, beta, y, mean, rstd], [rows, d, f32(eps)], rowGrid(gpu, rows));
  return { y, mean, rstd };
}

/**
 * Software adapters (SwiftShader) run a row per thread: their workgroup barriers cost far more
 * than a serial walk over d. Real GPUs run a 128-thread workgroup per row.
 */
let forceRowPerThread: boolean | null = null;
export function setLayerNormRowPerThread(v: boolean | null): void {
  forceRowPerThread = v;
}
function rowPerThread(gpu: Gpu): boolean {
  return forceRowPerThread ?? gpu.summary.isFallbackAdapter;
}
function rowGrid(gpu: Gpu, rows: number): [number, number] {
  return rowPerThread(gpu) ? workgroupGrid(gpu, Math.ceil(rows / 64)) : workgroupGrid(gpu, rows);
}

export interface LayerNormBackwardOptions {
  needDx: boolean;
  needParamGrads: boolean;
  /** where to write (or add) the gamma/beta gradients; allocated when absent */
  dgamma?: Tensor;
  dbeta?: Tensor;
  /** add the parameter gradients into dgamma/dbeta instead of overwriting them */
  accumulate?: boolean;
}

export function layerNormBackward(
  gpu: Gpu,
  dy: Tensor,
  x: Tensor,
  mean: Tensor,
  rstd: Tensor,
  gamma: Tensor,
  opts: LayerNormBackwardOptions,
): { dx?: Tensor; dgamma?: Tensor; dbeta?: Tensor } {
  const op = 'layerNormBackward';
  const d = gamma.size;
  const rows = rowsOf(op, x, d);
  assertSize(op, dy, x.size, 'dy');
  assertSize(op, mean, rows, 'mean');
  assertSize(op, rstd, rows, 'rstd');
  const result: { dx?: Tensor; dgamma?: Tensor; dbeta?: Tensor } = {};

  if (opts.needDx) {
    const dx = gpu.empty(x.shape);
    const perThread = rowPerThread(gpu);
    const k = gpu.kernel({
      name: perThread ? 'layernorm.backwardInputRowPerThread' : 'layernorm.backwardInput',
      code,
      entryPoint: perThread ? 'backwardInputRowPerThread' : 'backwardInput',
      bindings: ['read', 'read', 'read', 'read', 'read', 'write'],
    });
    gpu.dispatch(k, [x, gamma, dy, mean, rstd, dx], [rows, d, f32(0)], rowGrid(gpu, rows));
    result.dx = dx;
  }

  if (opts.needParamGrads) {
    if (opts.accumulate && (!opts.dgamma || !opts.dbeta)) {
      throw new Error(`${op}: accumulate needs the dgamma and dbeta tensors to add into`);
    }
    const dgamma = opts.dgamma ?? gpu.empty([d]);
    const dbeta = opts.dbeta ?? gpu.empty([d]);
    assertSize(op, dgamma, d, 'dgamma');
    assertSize(op, dbeta, d, 'dbeta');
    assertNoAlias(op, dgamma, x, dy, mean, rstd);
    assertNoAlias(op, dbeta, x, dy, mean, rstd);
    const accumulate = opts.accumulate ? 1 : 0;
    const chunks = Math.ceil(rows / CHUNK_ROWS);
    const grads = gpu.kernel({
      name: 'layernorm.paramGrads',
      code,
      entryPoint: 'paramGrads',
      bindings: ['read', 'write', 'read', 'read', 'read', 'write'],
    });
    const columnBlocks = Math.ceil(d / 64);
    if (chunks <= 1) {
      gpu.dispatch(grads, [x, dgamma, dy, mean, rstd, dbeta], [rows, d, f32(0), accumulate, CHUNK_ROWS, 1], [columnBlocks, 1]);
    } else {
      const gammaPartials = scratchTensor(gpu, 'layernorm.gammaPartials', chunks * d);
      const betaPartials = scratchTensor(gpu, 'layernorm.betaPartials', chunks * d);
      gpu.dispatch(grads, [x, gammaPartials, dy, mean, rstd, betaPartials], [rows, d, f32(0), 0, CHUNK_ROWS, chunks], [columnBlocks, chunks]);
      const finish = gpu.kernel({
        name: 'layernorm.paramGradsFinish',
        code,
        entryPoint: 'paramGradsFinish',
        bindings: ['read', 'write', 'write', 'read'],
      });
      gpu.dispatch(finish, [gammaPartials, dgamma, dbeta, betaPartials], [rows, d, f32(0), accumulate, CHUNK_ROWS, chunks], [Math.ceil(d / 64)]);
    }
    result.dgamma = dgamma;
    result.dbeta = dbeta;
  }
  return result;
}

// ---- CPU reference (float64 inside; outputs keep x's precision) ------------------------------

export function layerNormForwardCpu<A extends FloatArray>(
  x: A,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  eps: number,
): { y: A; mean: A; rstd: A } {
  const d = gamma.length;
  const rows = x.length / d;
  const y = allocLike(x, x.length);
  const mean = allocLike(x, rows);
  const rstd = allocLike(x, rows);
  for (let r = 0; r < rows; r++) {
    const base = r * d;
    let s = 0;
    for (let c = 0; c < d; c++) s += x[base + c];
    const mu = s / d;
    let q = 0;
    for (let c = 0; c < d; c++) q += (x[base + c] - mu) ** 2;
    const rs = 1 / Math.sqrt(q / d + eps);
    for (let c = 0; c < d; c++) y[base + c] = (x[base + c] - mu) * rs * gamma[c] + beta[c];
    mean[r] = mu;
    rstd[r] = rs;
  }
  return { y, mean, rstd };
}

export function layerNormBackwardCpu<A extends FloatArray>(
  dy: ArrayLike<number>,
  x: A,
  mean: ArrayLike<number>,
  rstd: ArrayLike<number>,
  gamma: ArrayLike<number>,
): { dx: A; dgamma: A; dbeta: A } {
  const d = gamma.length;
  const rows = x.length / d;
  const dx = allocLike(x, x.length);
  const dgamma = new Float64Array(d);
  const dbeta = new Float64Array(d);
  for (let r = 0; r < rows; r++) {
    const base = r * d;
    let sumG = 0, sumGX = 0;
    for (let c = 0; c < d; c++) {
      const xhat = (x[base + c] - mean[r]) * rstd[r];
      const g = dy[base + c] * gamma[c];
      sumG += g;
      sumGX += g * xhat;
      dgamma[c] += dy[base + c] * xhat;
      dbeta[c] += dy[base + c];
    }
    for (let c = 0; c < d; c++) {
      const xhat = (x[base + c] - mean[r]) * rstd[r];
      dx[base + c] = rstd[r] * (dy[base + c] * gamma[c] - sumG / d - (xhat * sumGX) / d);
    }
  }
  const out = { dx, dgamma: allocLike(x, d), dbeta: allocLike(x, d) };
  out.dgamma.set(dgamma);
  out.dbeta.set(dbeta);
  return out;
}
