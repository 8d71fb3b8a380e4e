// Reductions: column sums (bias gradients), the sum of squares of many tensors (global gradient
// norm for clipping), and the non-finite flag (the trainer pauses on NaN/Inf).
// All float sums are deterministic: fixed-order two-level reductions, no float atomics.

import type { Gpu } from '../gpu/runtime';
import type { Tensor } from '../gpu/tensor';
import code from '../../shaders/reduce.wgsl?raw';

const WG = 256;
/** Workgroups one sumSquares input may use (each leaves one partial sum). */
const MAX_PARTIALS_PER_TENSOR = 256;
/** Grid cap for grid-strided element loops: enough to fill a large GPU, within every limit. */
const MAX_GRID = 4096;

/**
 * A buffer an op keeps for its own intermediate results, one per (gpu, key). It is never handed
 * back to the pool: a pooled buffer released mid-step could be re-acquired and written by a
 * `queue.writeBuffer`, which runs before this step's recorded dispatches and would be clobbered.
 * Sequential reuse inside one command encoder is safe because dispatches execute in order.
 */
const scratchBuffers = new WeakMap<Gpu, Map<string, Tensor>>();
export function opScratch(gpu: Gpu, key: string, shape: readonly number[]): Tensor {
  let perGpu = scratchBuffers.get(gpu);
  if (!perGpu) scratchBuffers.set(gpu, (perGpu = new Map()));
  const fullKey = `${key}:${shape.join('x')}`;
  let t = perGpu.get(fullKey);
  if (!t) perGpu.set(fullKey, (t = gpu.empty(shape, 'f32', key)));
  return t;
}

/** Number of 256-thread workgroups for a grid-strided loop over n elements. */
export function gridFor(n: number, cap = MAX_GRID): number {
  return Math.min(Math.ceil(n / WG), cap);
}

function checkSize(t: Tensor, size: number, what: string): void {
  if (t.size < size) throw new Error(`${what}: ${t} holds ${t.size} values, needs ${size}`);
}

// ---- colSum ----------------------------------------------------------------------------------

/**
 * x is (rows, cols) → out[outOffset .. outOffset+cols) = Σ_rows x; with `accumulate`, += instead.
 * `outOffset` (elements) addresses one expert's slice of a stacked bias gradient, which a tensor
 * view cannot: views must start on 256-byte boundaries.
 */
export function colSum(
  gpu: Gpu,
  x: Tensor,
  o: { rows: number; cols: number; outOffset?: number },
  out?: Tensor,
  accumulate = false,
): Tensor {
  const { rows, cols, outOffset = 0 } = o;
  checkSize(x, rows * cols, 'colSum x');
  const result = out ?? gpu.empty([cols], 'f32', 'colSum');
  checkSize(result, outOffset + cols, 'colSum out');
  if (accumulate && !out) throw new Error('colSum: accumulate needs an existing out tensor');
  const k = gpu.kernel({ name: 'reduce.col_sum', code, entryPoint: 'col_sum', bindings: ['read', 'write'] });
  gpu.dispatch(k, [x, result], [rows, cols, accumulate ? 1 : 0, outOffset], [Math.ceil(cols / 32)]);
  return result;
}

export function colSumCpu(x: ArrayLike<number>, o: { rows: number; cols: number }): Float32Array {
  const out = new Float32Array(o.cols);
  for (let c = 0; c < o.cols; c++) {
    let s = 0;
    for (let r = 0; r < o.rows; r++) s += x[r * o.cols + c];
    out[c] = s;
  }
  return out;
}

// ---- sumSquares ------------------------------------------------------------------------------

/** out[0] = Σ over all given tensors of Σ x² (overwrites out). */
export function sumSquares(gpu: Gpu, tensors: Tensor[], out: Tensor): Tensor {
  const plan = tensors.map((t) => ({ t, groups: t.size === 0 ? 0 : gridFor(t.size, MAX_PARTIALS_PER_TENSOR) }));
  const count = plan.reduce((s, p) => s + p.groups, 0);
  if (count === 0) {
    gpu.fill(out, 0);
    return out;
  }
  const partials = opScratch(gpu, 'sumSquares.partials', [count]);
  const partial = gpu.kernel({ name: 'reduce.sum_squares_partial', code, entryPoint: 'sum_squares_partial', bindings: ['read', 'write'] });
  const total = gpu.kernel({ name: 'reduce.sum_partials', code, entryPoint: 'sum_partials', bindings: ['read', 'write'] });
  let base = 0;
  for (const { t, groups } of plan) {
    gpu.dispatch(partial, [t, partials], [t.size, base], [groups]);
    base += groups;
  }
  gpu.dispatch(total, [partials, out], [count], [1]);
  return out;
}

export function sumSquaresCpu(arrays: ArrayLike<number>[]): number {
  let s = 0;
  for (const a of arrays) for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return s;
}

// ---- nonFiniteFlag ---------------------------------------------------------------------------

/** flag (u32 [1]) is set to 1 when x holds any NaN or ±Inf; it is never cleared here. */
export function nonFiniteFlag(gpu: Gpu, x: Tensor, flag: Tensor): void {
  if (flag.dtype !== 'u32') throw new Error(`nonFiniteFlag: flag must be u32, got ${flag}`);
  const k = gpu.kernel({ name: 'reduce.non_finite_flag', code, entryPoint: 'non_finite_flag', bindings: ['read', 'write'] });
  gpu.dispatch(k, [x, flag], [x.size], [gridFor(x.size)]);
}

export function nonFiniteCpu(x: ArrayLike<number>): boolean {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) return true;
  return false;
}
