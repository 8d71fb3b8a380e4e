// Matrix products on the GPU with a fused epilogue, and their plain-TypeScript reference.
// a is (batch, M, K) or stored (batch, K, M) with transA; b is (batch, K, N) or stored (batch, N, K)
// with transB; bias is (N); out, residual and the pre-activation copy are (batch, M, N).
//
//   out = [out +] [residual +] act(alpha · op(A) · op(B) + bias)
//
// Which kernel variant runs is decided per (adapter, transposes, epilogue, size bucket): a forced
// variant (tests), else the autotuner's measured winner, else a heuristic. `matmul` only records a
// dispatch (no waiting inside a training step), so the timing runs are done by `tuneMatmuls`,
// which measures every problem `matmul` has seen but not yet tuned.

import { gelu64 } from './gelu';
import matmulSource from '../../shaders/matmul.wgsl?raw';
import { f32, type Gpu, type Kernel } from '../gpu/runtime';
import { Tensor } from '../gpu/tensor';

export interface MatmulOptions {
  /** A is stored [batch?, K, M] and used transposed */
  transA?: boolean;
  /** B is stored [batch?, N, K] and used transposed (PyTorch Linear y = x·Wᵀ uses transB) */
  transB?: boolean;
  /** number of independent products (default 1); each operand's batch stride is its own size */
  batch?: number;
  /** A is shared by all batches (stride 0) */
  aBroadcast?: boolean;
  /** B is shared by all batches (stride 0) */
  bBroadcast?: boolean;
  /** scale of the product, default 1 */
  alpha?: number;
  /** [N], added to every row after alpha·A·B */
  bias?: Tensor;
  /** exact erf GELU 0.5·x·(1+erf(x/√2)) applied after bias */
  activation?: 'none' | 'gelu';
  /** with activation 'gelu': the value before GELU is also written here ([batch, M, N]) */
  preActivationOut?: Tensor;
  /** [batch, M, N], added last (after activation); may be `out` itself (in-place residual add) */
  residual?: Tensor;
  /** out += result instead of out = result (gradient accumulation) */
  accumulate?: boolean;
  /** destination; allocated from the pool when absent */
  out?: Tensor;
  /** element offsets into the bound buffers (an expert's slice of a stacked [E, rows, cols] weight) */
  aOffset?: number;
  bOffset?: number;
  biasOffset?: number;
  outOffset?: number;
  /** explicit sizes (required with offsets); otherwise inferred from the shapes */
  m?: number;
  n?: number;
  k?: number;
}

// ---- variants ----------------------------------------------------------------------------------

interface VariantSpec {
  entryPoint: 'main_direct' | 'main_tiled';
  /** threads per workgroup along N (x) and M (y) */
  wgX: number;
  wgY: number;
  /** 4×4 blocks per thread along M and N */
  tmBlocks: number;
  tnBlocks: number;
}

const VARIANT_SPECS = {
  /** 64×64 tile staged through workgroup memory, 16×16 threads of 4×4 outputs */
  tiled: { entryPoint: 'main_tiled', wgX: 16, wgY: 16, tmBlocks: 1, tnBlocks: 1 },
  /** no workgroup memory: 8×8 threads of 4×4 outputs (32×32 tile) */
  direct4x4: { entryPoint: 'main_direct', wgX: 8, wgY: 8, tmBlocks: 1, tnBlocks: 1 },
  /** no workgroup memory: 8×8 threads of 8×8 outputs (64×64 tile) */
  direct8x8: { entryPoint: 'main_direct', wgX: 8, wgY: 8, tmBlocks: 2, tnBlocks: 2 },
  /** no workgroup memory: 4×4 threads of 8×8 outputs (32×32 tile: more workgroups for small problems) */
  direct8x8s: { entryPoint: 'main_direct', wgX: 4, wgY: 4, tmBlocks: 2, tnBlocks: 2 },
} satisfies Record<string, VariantSpec>;

export type MatmulVariant = keyof typeof VARIANT_SPECS;
export const matmulVariants = Object.keys(VARIANT_SPECS) as MatmulVariant[];

function tileOf(v: MatmulVariant): { tileM: number; tileN: number } {
  const s: VariantSpec = VARIANT_SPECS[v];
  if (s.entryPoint === 'main_tiled') return { tileM: 64, tileN: 64 };
  return { tileM: s.wgY * 4 * s.tmBlocks, tileN: s.wgX * 4 * s.tnBlocks };
}

// ---- variant choice: forced, tuned, heuristic -------------------------------------------------

export type EpilogueKind = string;

export interface MatmulProblem {
  m: number;
  n: number;
  k: number;
  batch?: number;
  transA?: boolean;
  transB?: boolean;
  /** e.g. 'plain', 'bias+gelu'; see epilogueKind() */
  epilogue?: EpilogueKind;
}

export interface MatmulChoice {
  variant: MatmulVariant;
  source: 'forced' | 'tuned' | 'heuristic';
}

let autotuneEnabled = true;
let forcedVariant: MatmulVariant | null = null;
/** adapter key → problem key → measured winner */
const tuned = new Map<string, Map<string, MatmulVariant>>();
/** problems seen by matmul() and not yet tuned, per adapter key */
const pending = new Map<string, Map<string, MatmulProblem>>();
/** below this many multiply-adds a problem is not worth timing: the heuristic decides */
const AUTOTUNE_MIN_MACS = 1 << 21;

export function setMatmulAutotune(enabled: boolean): void {
  autotuneEnabled = enabled;
}

/** Force one variant for every matmul (tests, benchmarks); null returns to tuned/heuristic. */
export function forceMatmulVariant(variant: MatmulVariant | null): void {
  forcedVariant = variant;
}

function adapterKey(gpu: Gpu): string {
  const s = gpu.summary;
  return `${s.vendor}/${s.architecture}/${s.device}/${s.description}`;
}

function isSoftwareAdapter(gpu: Gpu): boolean {
  return gpu.summary.isFallbackAdapter || /swiftshader/i.test(gpu.summary.architecture + gpu.summary.description);
}

const bucket = (x: number) => Math.ceil(Math.log2(Math.max(1, x)));

function problemKey(p: MatmulProblem): string {
  return `${p.transA ? 'T' : 'N'}${p.transB ? 'T' : 'N'}|${p.epilogue ?? 'plain'}|${bucket(p.m)}|${bucket(p.n)}|${bucket(p.k)}|${bucket(p.batch ?? 1)}`;
}

export function epilogueKind(o: MatmulOptions): EpilogueKind {
  const parts: string[] = [];
  if (o.bias) parts.push('bias');
  if (o.activation === 'gelu') parts.push(o.preActivationOut ? 'gelu+pre' : 'gelu');
  if (o.residual) parts.push('residual');
  if (o.accumulate) parts.push('acc');
  return parts.length ? parts.join('+') : 'plain';
}

/**
 * Measured on SwiftShader (bench/kernels.json, `--no-peer`): the direct kernels beat the tiled one
 * 2-4× at every size, 8×8 outputs per thread beat 4×4 from 256 up, and a 32×32 tile keeps both
 * host threads busy on small products. Real GPUs want the tiled kernel once there are enough
 * tiles to fill them.
 */
function heuristicVariant(gpu: Gpu, p: MatmulProblem): MatmulVariant {
  if (isSoftwareAdapter(gpu)) {
    if (p.m >= 128 && p.n >= 128) return 'direct8x8';
    return p.m >= 32 && p.n >= 32 ? 'direct8x8s' : 'direct4x4';
  }
  return p.m >= 64 && p.n >= 64 && p.k >= 16 ? 'tiled' : 'direct4x4';
}

export function getMatmulChoice(gpu: Gpu, p: MatmulProblem): MatmulChoice {
  if (forcedVariant) return { variant: forcedVariant, source: 'forced' };
  const won = tuned.get(adapterKey(gpu))?.get(problemKey(p));
  if (won) return { variant: won, source: 'tuned' };
  return { variant: heuristicVariant(gpu, p), source: 'heuristic' };
}

function noteUntuned(gpu: Gpu, p: MatmulProblem): void {
  if (!autotuneEnabled || forcedVariant) return;
  if (p.m * p.n * p.k * (p.batch ?? 1) < AUTOTUNE_MIN_MACS) return;
  const ak = adapterKey(gpu);
  const key = problemKey(p);
  if (tuned.get(ak)?.has(key)) return;
  let list = pending.get(ak);
  if (!list) pending.set(ak, (list = new Map()));
  if (!list.has(key)) list.set(key, { ...p });
}

/** Problems recorded by matmul() that still run on the heuristic's choice. */
export function untunedMatmuls(gpu: Gpu): MatmulProblem[] {
  return [...(pending.get(adapterKey(gpu))?.values() ?? [])];
}

export interface TuneResult {
  problem: MatmulProblem;
  variant: MatmulVariant;
  /** milliseconds per product of every variant that computed the right result (far slower ones:
   * their single checking run, readback included) */
  ms: Partial<Record<MatmulVariant, number>>;
}

/**
 * Time every variant on `problem` (random operands of its shape, fresh tensors) and cache the
 * winner for this adapter. A variant whose result disagrees with the others' (an invalid pipeline
 * "runs" fast and computes nothing) is disqualified. The timed product has no epilogue: the
 * epilogue costs the same per output in every variant, so it separates the cache keys but does
 * not change the ranking. Waits on the GPU: never call inside a step.
 */
export async function autotuneMatmul(gpu: Gpu, problem: MatmulProblem, opts: { minMs?: number; maxReps?: number } = {}): Promise<TuneResult> {
  const { minMs = 40, maxReps = 8 } = opts;
  const { m, n, k } = problem;
  const batch = problem.batch ?? 1;
  const fill = (len: number, seed: number) => {
    const x = new Float32Array(len);
    for (let i = 0; i < len; i++) x[i] = (((i * 2654435761 + seed) >>> 0) % 1000) / 1000 - 0.5;
    return x;
  };
  const a = gpu.upload(fill(batch * m * k, 1));
  const b = gpu.upload(fill(batch * k * n, 2));
  const out = gpu.empty([batch, m, n]);
  const base = { m, n, k, batch, transA: problem.transA, transB: problem.transB, out };
  const ms: Partial<Record<MatmulVariant, number>> = {};
  let reference: Float32Array | null = null;
  let bestOnce = Infinity;
  const first = heuristicVariant(gpu, problem);
  for (const variant of [first, ...matmulVariants.filter((v) => v !== first)]) {
    try {
      await gpu.kernelChecked(kernelSpec(variant, flagsFor(problem.transA, problem.transB, a, b, 0, 0, m, n, k)));
    } catch {
      continue; // variant does not compile on this adapter
    }
    // the first run checks the result, compiles the pipeline and gives a rough time: a variant far
    // behind the best so far is not timed again (a slow one can cost seconds per run in software)
    const w0 = performance.now();
    recordMatmul(gpu, a, b, base, variant);
    const result = await gpu.read(out);
    const once = performance.now() - w0;
    if (!reference) reference = result;
    else if (!agrees(result, reference, k)) continue;
    bestOnce = Math.min(bestOnce, once);
    if (once > 3 * bestOnce && once > 20) {
      ms[variant] = once;
      continue;
    }
    // several products, one wait: the round trip to the GPU is not part of the kernel's time
    const reps = Math.max(1, Math.min(maxReps, Math.ceil(minMs / Math.max(once, 0.1))));
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) recordMatmul(gpu, a, b, base, variant);
    await gpu.sync();
    ms[variant] = (performance.now() - t0) / reps;
  }
  for (const t of [a, b, out]) gpu.release(t);
  const winner = (Object.entries(ms) as [MatmulVariant, number][]).sort((x, y) => x[1] - y[1])[0];
  if (!winner) throw new Error(`autotuneMatmul: no variant produced a valid result for ${JSON.stringify(problem)}`);
  const ak = adapterKey(gpu);
  let map = tuned.get(ak);
  if (!map) tuned.set(ak, (map = new Map()));
  map.set(problemKey(problem), winner[0]);
  pending.get(ak)?.delete(problemKey(problem));
  return { problem, variant: winner[0], ms };
}

function agrees(x: Float32Array, y: Float32Array, k: number): boolean {
  const tol = 1e-3 * Math.sqrt(k);
  for (let i = 0; i < x.length; i++) if (!(Math.abs(x[i] - y[i]) <= tol)) return false;
  return true;
}

/** Tune every problem matmul() has met since the last call (e.g. after a model's first step). */
export async function tuneMatmuls(gpu: Gpu): Promise<TuneResult[]> {
  const results: TuneResult[] = [];
  for (const p of untunedMatmuls(gpu)) results.push(await autotuneMatmul(gpu, p));
  return results;
}

// ---- dispatch ----------------------------------------------------------------------------------

interface KernelFlags {
  transA: boolean;
  transB: boolean;
  aVec: boolean;
  bVec: boolean;
  bias: boolean;
  gelu: boolean;
  preact: boolean;
  residual: boolean;
  accumulate: boolean;
}

function flagsFor(transA = false, transB = false, a: Tensor, b: Tensor, aOffset: number, bOffset: number, m: number, n: number, k: number, epi?: Partial<KernelFlags>): KernelFlags {
  // vec4 loads need the contiguous axis, each batch's stride and the offset to be multiples of 4,
  // and a binding that can be padded to whole vec4s
  const aAxis = transA ? m : k;
  const bAxis = transB ? k : n;
  return {
    transA,
    transB,
    aVec: aAxis % 4 === 0 && aOffset % 4 === 0 && canPadToVec4(a),
    bVec: bAxis % 4 === 0 && bOffset % 4 === 0 && canPadToVec4(b),
    bias: false,
    gelu: false,
    preact: false,
    residual: false,
    accumulate: false,
    ...epi,
  };
}

function kernelSpec(variant: MatmulVariant, f: KernelFlags) {
  const s: VariantSpec = VARIANT_SPECS[variant];
  const bit = (x: boolean) => (x ? 1 : 0);
  const name =
    `matmul-${variant}-${f.transA ? 'T' : 'N'}${f.transB ? 'T' : 'N'}-v${bit(f.aVec)}${bit(f.bVec)}` +
    `-e${bit(f.bias)}${bit(f.gelu)}${bit(f.preact)}${bit(f.residual)}${bit(f.accumulate)}`;
  return {
    name,
    code: matmulSource,
    entryPoint: s.entryPoint,
    bindings: ['read', 'read', 'read', 'read', 'write', 'write'] as ('read' | 'write')[],
    defines: {
      TRANS_A: String(f.transA),
      TRANS_B: String(f.transB),
      A_VEC: String(f.aVec),
      B_VEC: String(f.bVec),
      HAS_BIAS: String(f.bias),
      GELU: String(f.gelu),
      STORE_PREACT: String(f.preact),
      HAS_RESIDUAL: String(f.residual),
      ACCUMULATE: String(f.accumulate),
      TM_BLOCKS: s.tmBlocks,
      TN_BLOCKS: s.tnBlocks,
      WG_X: s.wgX,
      WG_Y: s.wgY,
    },
  };
}

const roundUp4 = (x: number) => Math.ceil(x / 4) * 4;

function canPadToVec4(t: Tensor): boolean {
  return t.offset % 16 === 0 && t.offset + roundUp4(t.size) * 4 <= t.buffer.size;
}

/** A and B are bound as arrays of vec4: the binding must cover whole vec4s (pool buffers do). */
function vec4Binding(t: Tensor): Tensor {
  if (t.size % 4 === 0) return t;
  if (!canPadToVec4(t)) {
    throw new Error(`matmul: ${t} cannot be bound as vec4s (its buffer ends inside the last vec4); allocate it from the pool`);
  }
  return new Tensor(t.buffer, [roundUp4(t.size)], t.dtype, t.offset, t.name);
}

/** Zero-filled placeholders for the bindings an epilogue does not use. */
const placeholders = new WeakMap<Gpu, { read: Tensor; write: Tensor }>();
function placeholder(gpu: Gpu): { read: Tensor; write: Tensor } {
  let p = placeholders.get(gpu);
  if (!p) placeholders.set(gpu, (p = { read: gpu.zeros([4], 'f32', 'matmul-unused-read'), write: gpu.zeros([4], 'f32', 'matmul-unused-write') }));
  return p;
}

interface Resolved {
  m: number;
  n: number;
  k: number;
  batch: number;
  out: Tensor;
}

function resolve(gpu: Gpu, a: Tensor, b: Tensor, o: MatmulOptions): Resolved {
  const batch = o.batch ?? 1;
  const last2 = (t: Tensor) => (t.shape.length >= 2 ? [t.shape[t.shape.length - 2], t.shape[t.shape.length - 1]] : [1, t.shape[0] ?? 1]);
  const [b0, b1] = last2(b);
  const k = o.k ?? (o.transB ? b1 : b0);
  const n = o.n ?? (o.transB ? b0 : b1);
  let m = o.m;
  if (m === undefined) {
    // with one product every leading dimension of A folds into M (a [B, T, H] activation times a
    // [H, N] weight is one (B·T)×H×N product)
    const aPerBatch = o.aBroadcast ? a.size : a.size / batch;
    m = aPerBatch / k;
    if (!Number.isInteger(m)) throw new Error(`matmul: ${a} does not hold ${batch} products with K = ${k}`);
  }
  for (const [name, v] of [['m', m], ['n', n], ['k', k], ['batch', batch]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`matmul: ${name} = ${v} must be a positive integer`);
  }
  const need = (t: Tensor, what: string, offset: number, perBatch: number, broadcast: boolean) => {
    const end = offset + (broadcast ? 1 : batch) * perBatch;
    if (end > t.size) throw new Error(`matmul: ${what} ${t} holds ${t.size} values, the product needs ${end} (offset ${offset})`);
  };
  need(a, 'A', o.aOffset ?? 0, m * k, !!o.aBroadcast);
  need(b, 'B', o.bOffset ?? 0, k * n, !!o.bBroadcast);
  if (o.bias) need(o.bias, 'bias', o.biasOffset ?? 0, n, true);
  if (o.residual && o.residual !== o.out) need(o.residual, 'residual', 0, m * n, false);
  if (o.preActivationOut) need(o.preActivationOut, 'preActivationOut', 0, m * n, false);
  let out = o.out;
  if (out) need(out, 'out', o.outOffset ?? 0, m * n, false);
  else {
    const keepLeading = batch === 1 && !o.transA && a.shape.length > 2 && o.m === undefined;
    out = gpu.empty(keepLeading ? [...a.shape.slice(0, -1), n] : batch > 1 ? [batch, m, n] : [m, n], 'f32', 'matmul-out');
  }
  return { m, n, k, batch, out };
}

function sameRange(x: Tensor, y: Tensor): boolean {
  return x.buffer === y.buffer && x.offset === y.offset && x.size === y.size;
}

function recordMatmul(gpu: Gpu, a: Tensor, b: Tensor, o: MatmulOptions & Resolved, variant: MatmulVariant): void {
  const { m, n, k, batch, out } = o;
  const aOffset = o.aOffset ?? 0;
  const bOffset = o.bOffset ?? 0;
  const outOffset = o.outOffset ?? 0;
  let residual = o.residual;
  let accumulate = !!o.accumulate;
  // x = x + W·h written in place: one read-write binding cannot also be bound read-only, so the
  // residual becomes an accumulation into out
  if (residual && residual.buffer === out.buffer) {
    if (!sameRange(residual, out) || outOffset !== 0 || accumulate) {
      throw new Error('matmul: residual overlaps out; only residual === out (in-place add) is supported');
    }
    residual = undefined;
    accumulate = true;
  }
  const gelu = o.activation === 'gelu';
  if (o.preActivationOut && !gelu) throw new Error("matmul: preActivationOut needs activation 'gelu'");
  const flags = flagsFor(o.transA, o.transB, a, b, aOffset, bOffset, m, n, k, {
    bias: !!o.bias,
    gelu,
    preact: !!o.preActivationOut,
    residual: !!residual,
    accumulate,
  });
  const kernel: Kernel = gpu.kernel(kernelSpec(variant, flags));
  const { tileM, tileN } = tileOf(variant);
  const tilesM = Math.ceil(m / tileM);
  const tilesN = Math.ceil(n / tileN);
  const groups = tilesM * tilesN * batch;
  // fold the grid into y when it exceeds the per-dimension limit
  const maxX = gpu.device.limits.maxComputeWorkgroupsPerDimension;
  const groupsX = Math.min(groups, maxX);
  const groupsY = Math.ceil(groups / groupsX);
  const unused = placeholder(gpu);
  gpu.dispatch(
    kernel,
    [vec4Binding(a), vec4Binding(b), o.bias ?? unused.read, residual ?? unused.read, out, o.preActivationOut ?? unused.write],
    [
      m, n, k, batch,
      aOffset, bOffset, o.biasOffset ?? 0, outOffset,
      o.aBroadcast ? 0 : m * k, o.bBroadcast ? 0 : k * n, m * n, tilesN,
      tilesM, groupsX, f32(o.alpha ?? 1),
    ],
    [groupsX, groupsY],
  );
}

/** out = [out +] [residual +] act(alpha·op(A)·op(B) + bias); returns out ([batch?, M, N]). */
export function matmul(gpu: Gpu, a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const r = resolve(gpu, a, b, opts);
  const problem: MatmulProblem = { m: r.m, n: r.n, k: r.k, batch: r.batch, transA: !!opts.transA, transB: !!opts.transB, epilogue: epilogueKind(opts) };
  const choice = getMatmulChoice(gpu, problem);
  if (choice.source === 'heuristic') noteUntuned(gpu, problem);
  recordMatmul(gpu, a, b, { ...opts, ...r }, choice.variant);
  return r.out;
}

// ---- CPU reference -----------------------------------------------------------------------------

export interface MatmulCpuOptions {
  transA?: boolean;
  transB?: boolean;
  batch?: number;
  aBroadcast?: boolean;
  bBroadcast?: boolean;
  alpha?: number;
  bias?: Float32Array;
  activation?: 'none' | 'gelu';
  residual?: Float32Array;
  /** the result is added into this array (which is also returned) */
  accumulateInto?: Float32Array;
  /** receives the value before GELU */
  preActivationOut?: Float32Array;
}


/** Plain reference: float64 accumulation, same layouts and epilogue order as the GPU kernel. */
export function matmulCpu(a: Float32Array, b: Float32Array, m: number, n: number, k: number, opts: MatmulCpuOptions = {}): Float32Array {
  const batch = opts.batch ?? 1;
  const alpha = opts.alpha ?? 1;
  const out = opts.accumulateInto ?? new Float32Array(batch * m * n);
  if (out.length < batch * m * n) throw new Error('matmulCpu: accumulateInto is too small');
  const row = new Float64Array(n);
  for (let bt = 0; bt < batch; bt++) {
    const aBase = opts.aBroadcast ? 0 : bt * m * k;
    const bBase = opts.bBroadcast ? 0 : bt * k * n;
    for (let i = 0; i < m; i++) {
      row.fill(0);
      for (let kk = 0; kk < k; kk++) {
        const av = opts.transA ? a[aBase + kk * m + i] : a[aBase + i * k + kk];
        if (av === 0) continue;
        if (opts.transB) for (let j = 0; j < n; j++) row[j] += av * b[bBase + j * k + kk];
        else {
          const bRow = bBase + kk * n;
          for (let j = 0; j < n; j++) row[j] += av * b[bRow + j];
        }
      }
      for (let j = 0; j < n; j++) {
        const o = (bt * m + i) * n + j;
        let v = alpha * row[j] + (opts.bias ? opts.bias[j] : 0);
        if (opts.activation === 'gelu') {
          if (opts.preActivationOut) opts.preActivationOut[o] = v;
          v = gelu64(v);
        }
        if (opts.residual) v += opts.residual[o];
        out[o] = opts.accumulateInto ? out[o] + v : v;
      }
    }
  }
  return out;
}
