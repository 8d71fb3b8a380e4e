// AdapterFusion attention (per token, over N adapters), its regulariser, and feature concat.
// q, h, out, dq are (rows, d); kz, vz, dkz, dvz stack N adapters as (N, rows, d); probs (rows, N).
import type { Gpu } from '../gpu/runtime';
import { f32 } from '../gpu/runtime';
import type { Tensor } from '../gpu/tensor';
import fusionCode from '../../shaders/fusion.wgsl?raw';
import concatCode from '../../shaders/concat.wgsl?raw';
import { workgroupGrid } from './nn-util';

export interface FusionShape {
  rows: number;
  d: number;
  /** adapters being fused */
  n: number;
  temperature: number;
}

const MAX_ADAPTERS = 16;
const grid = (gpu: Gpu, threads: number) => workgroupGrid(gpu, Math.ceil(threads / 64));

function params(o: FusionShape, extra: { lambda?: number } = {}) {
  return [o.rows, o.d, o.n, f32(1 / o.temperature), 0, 0, f32(extra.lambda ?? 0), 0];
}

export function fusionForward(gpu: Gpu, q: Tensor, kz: Tensor, vz: Tensor, h: Tensor, o: FusionShape): { out: Tensor; probs: Tensor } {
  if (o.n > MAX_ADAPTERS) throw new Error(`AdapterFusion over ${o.n} adapters: at most ${MAX_ADAPTERS}`);
  const out = gpu.empty([o.rows, o.d], 'f32', 'fusion.out');
  const probs = gpu.empty([o.rows, o.n], 'f32', 'fusion.probs');
  const k = gpu.kernel({ name: 'fusion.forward', code: fusionCode, entryPoint: 'fusion_forward', bindings: ['read', 'read', 'read', 'read', 'write', 'write'] });
  gpu.dispatch(k, [q, kz, vz, h, out, probs], params(o), grid(gpu, o.rows));
  return { out, probs };
}

export function fusionBackward(gpu: Gpu, q: Tensor, kz: Tensor, vz: Tensor, probs: Tensor, dout: Tensor, o: FusionShape): { dq: Tensor; dkz: Tensor; dvz: Tensor } {
  const dq = gpu.empty([o.rows, o.d], 'f32', 'fusion.dq');
  const dkz = gpu.empty([o.n, o.rows, o.d], 'f32', 'fusion.dkz');
  const dvz = gpu.empty([o.n, o.rows, o.d], 'f32', 'fusion.dvz');
  const k = gpu.kernel({
    name: 'fusion.backward', code: fusionCode, entryPoint: 'fusion_backward',
    bindings: ['read', 'read', 'read', 'read', 'read', 'write', 'write', 'write'],
  });
  gpu.dispatch(k, [q, kz, vz, probs, dout, dq, dkz, dvz], params(o), grid(gpu, o.rows));
  return { dq, dkz, dvz };
}

/** dV += 2λ(V − I) for a (d, d) V. */
export function identityRegBackward(gpu: Gpu, v: Tensor, dv: Tensor, d: number, lambda: number): void {
  const k = gpu.kernel({ name: 'fusion.identity_reg_backward', code: fusionCode, entryPoint: 'identity_reg_backward', bindings: ['read', 'write'] });
  gpu.dispatch(k, [v, dv], params({ rows: 0, d, n: 0, temperature: 1 }, { lambda }), grid(gpu, d * d));
}

/** loss[0] += λ‖V − I‖²_F */
export function identityRegValue(gpu: Gpu, v: Tensor, loss: Tensor, d: number, lambda: number): void {
  const k = gpu.kernel({ name: 'fusion.identity_reg_value', code: fusionCode, entryPoint: 'identity_reg_value', bindings: ['read', 'write'] });
  gpu.dispatch(k, [v, loss], params({ rows: 0, d, n: 0, temperature: 1 }, { lambda }), [1]);
}

/** out (rows, d1 + d2) = [a | b] */
export function concatForward(gpu: Gpu, a: Tensor, b: Tensor, rows: number, d1: number, d2: number): Tensor {
  const out = gpu.empty([rows, d1 + d2], 'f32', 'concat.out');
  const k = gpu.kernel({ name: 'concat.forward', code: concatCode, entryPoint: 'concat_forward', bindings: ['read', 'read', 'write'] });
  const total = rows * (d1 + d2);
  gpu.dispatch(k, [a, b, out], [rows, d1, d2, total], grid(gpu, total));
  return out;
}

export function concatBackward(gpu: Gpu, dout: Tensor, rows: number, d1: number, d2: number): { da: Tensor; db: Tensor } {
  const da = gpu.empty([rows, d1], 'f32', 'concat.da');
  const db = gpu.empty([rows, d2], 'f32', 'concat.db');
  const k = gpu.kernel({ name: 'concat.backward', code: concatCode, entryPoint: 'concat_backward', bindings: ['read', 'write', 'write'] });
  const total = rows * (d1 + d2);
  gpu.dispatch(k, [dout, da, db], [rows, d1, d2, total], grid(gpu, total));
  return { da, db };
}

// ---- CPU references (float64 inside) --------------------------------------------------------

export function fusionForwardCpu(q: ArrayLike<number>, kz: ArrayLike<number>, vz: ArrayLike<number>, h: ArrayLike<number>, o: FusionShape): { out: Float64Array; probs: Float64Array } {
  const { rows, d, n, temperature } = o;
  const out = new Float64Array(rows * d);
  const probs = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) {
    const s = new Float64Array(n);
    let mx = -Infinity;
    for (let t = 0; t < n; t++) {
      let dot = 0;
      for (let j = 0; j < d; j++) dot += q[r * d + j] * kz[(t * rows + r) * d + j];
      s[t] = dot / temperature;
      mx = Math.max(mx, s[t]);
    }
    let sum = 0;
    for (let t = 0; t < n; t++) sum += (s[t] = Math.exp(s[t] - mx));
    for (let t = 0; t < n; t++) probs[r * n + t] = s[t] / sum;
    for (let j = 0; j < d; j++) {
      let acc = h[r * d + j];
      for (let t = 0; t < n; t++) acc += probs[r * n + t] * vz[(t * rows + r) * d + j];
      out[r * d + j] = acc;
    }
  }
  return { out, probs };
}

/** Gradients w.r.t. q, kz, vz (the residual h receives dout unchanged). */
export function fusionBackwardCpu(q: ArrayLike<number>, kz: ArrayLike<number>, vz: ArrayLike<number>, probs: ArrayLike<number>, dout: ArrayLike<number>, o: FusionShape) {
  const { rows, d, n, temperature } = o;
  const dq = new Float64Array(rows * d), dkz = new Float64Array(n * rows * d), dvz = new Float64Array(n * rows * d);
  for (let r = 0; r < rows; r++) {
    const ds = new Float64Array(n);
    let mean = 0;
    for (let t = 0; t < n; t++) {
      let dot = 0;
      for (let j = 0; j < d; j++) dot += dout[r * d + j] * vz[(t * rows + r) * d + j];
      ds[t] = dot;
      mean += probs[r * n + t] * dot;
    }
    for (let t = 0; t < n; t++) ds[t] = (probs[r * n + t] * (ds[t] - mean)) / temperature;
    for (let j = 0; j < d; j++) {
      let acc = 0;
      for (let t = 0; t < n; t++) {
        const at = (t * rows + r) * d + j;
        acc += ds[t] * kz[at];
        dkz[at] = ds[t] * q[r * d + j];
        dvz[at] = probs[r * n + t] * dout[r * d + j];
      }
      dq[r * d + j] = acc;
    }
  }
  return { dq, dkz, dvz };
}

export function concatCpu(a: ArrayLike<number>, b: ArrayLike<number>, rows: number, d1: number, d2: number): Float32Array {
  const out = new Float32Array(rows * (d1 + d2));
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < d1; c++) out[r * (d1 + d2) + c] = a[r * d1 + c];
    for (let c = 0; c < d2; c++) out[r * (d1 + d2) + d1 + c] = b[r * d2 + c];
  }
  return out;
}
