// Embedding lookup: table is (vocab, d), ids are u32 (n), out is (n, d).
// The backward adds dOut's rows into dTable grouped by id, deterministically (see the shader).

import type { Gpu } from '../gpu/runtime';
import { Tensor } from '../gpu/tensor';
import code from '../../shaders/embedding.wgsl?raw';
import { allocLike, assertNoAlias, assertSize, workgroupGrid, type FloatArray } from './nn-util';

const WG = 256;

export function embeddingForward(gpu: Gpu, table: Tensor, ids: Tensor, out?: Tensor): Tensor {
  const op = 'embeddingForward';
  const vocab = table.shape[0];
  const d = table.size / vocab;
  if (ids.dtype !== 'u32') throw new Error(`${op}: ids ${ids} must be u32`);
  const n = ids.size;
  const y = out ?? gpu.empty([n, d]);
  assertSize(op, y, n * d, 'out');
  assertNoAlias(op, y, table, ids);
  const k = gpu.kernel({ name: 'embedding.forward', code, entryPoint: 'forward', bindings: ['read', 'read', 'write'] });
  gpu.dispatch(k, [table, ids, y], [n * d, d, vocab, 0, 0, 0], workgroupGrid(gpu, Math.ceil((n * d) / WG)));
  return y;
}

/**
 * The token positions grouped by id, as the backward kernel reads them:
 * [distinct ids ascending (u) | starts (u + 1) | positions sorted by id, stable (n)].
 * A counting sort: O(n + vocab).
 */
export function groupTokensById(hostIds: Uint32Array, vocab: number): { grouping: Uint32Array; distinct: number } {
  const counts = new Uint32Array(vocab);
  for (let i = 0; i < hostIds.length; i++) {
    const id = hostIds[i];
    if (id >= vocab) throw new Error(`embedding: token ${i} has id ${id}, outside the table of ${vocab} rows`);
    counts[id]++;
  }
  let distinct = 0;
  for (let v = 0; v < vocab; v++) if (counts[v] > 0) distinct++;
  const n = hostIds.length;
  const grouping = new Uint32Array(distinct + (distinct + 1) + n);
  const startsBase = distinct;
  const orderBase = 2 * distinct + 1;
  // counts → each id's first slot in the order array (reusing counts as the write cursor)
  let k = 0, next = 0;
  for (let v = 0; v < vocab; v++) {
    const c = counts[v];
    if (c === 0) continue;
    grouping[k] = v;
    grouping[startsBase + k] = next;
    counts[v] = next;
    next += c;
    k++;
  }
  grouping[startsBase + distinct] = n;
  for (let i = 0; i < n; i++) grouping[orderBase + counts[hostIds[i]]++] = i;
  return { grouping, distinct };
}

/**
 * Host-written u32 buffers, one per backward call in flight. A slot is reused only after the
 * submit that read it: queue.writeBuffer runs ahead of the commands recorded but not yet
 * submitted, so refilling a buffer an earlier (unsubmitted) dispatch still reads would corrupt it.
 * Buffers grow to the largest grouping seen, so the steady state allocates nothing.
 */
interface UploadSlot {
  tensor: Tensor;
  /** gpu.submitCount right after the dispatch that reads it: free once submitCount exceeds it */
  lastUse: number;
}
const uploadSlots = new WeakMap<Gpu, UploadSlot[]>();

function acquireUploadSlot(gpu: Gpu, data: Uint32Array): UploadSlot {
  let slots = uploadSlots.get(gpu);
  if (!slots) uploadSlots.set(gpu, (slots = []));
  let slot: UploadSlot | undefined;
  for (const s of slots) {
    if (gpu.submitCount > s.lastUse && s.tensor.size >= data.length && (!slot || s.tensor.size < slot.tensor.size)) slot = s;
  }
  if (!slot) {
    const capacity = Math.max(1024, 2 ** Math.ceil(Math.log2(data.length)));
    slot = { tensor: gpu.empty([capacity], 'u32', 'embedding.grouping'), lastUse: Infinity };
    slots.push(slot);
  }
  slot.lastUse = Infinity; // in use until the dispatch is recorded
  gpu.writeAhead(new Tensor(slot.tensor.buffer, [data.length], 'u32', slot.tensor.offset), data);
  return slot;
}

export interface EmbeddingBackwardOptions {
  /** add into dTable; otherwise dTable is overwritten and rows no token uses become 0 */
  accumulate?: boolean;
}

/**
 * dTable[v] (+)= Σ over positions i with ids[i] = v of dOut[i], summed in token order.
 * hostIds must hold the same ids as `ids` (the batcher has them on the host).
 */
export function embeddingBackward(
  gpu: Gpu,
  dOut: Tensor,
  ids: Tensor,
  hostIds: Uint32Array,
  vocab: number,
  dTable: Tensor,
  opts: EmbeddingBackwardOptions = {},
): Tensor {
  const op = 'embeddingBackward';
  const n = hostIds.length;
  if (ids.size !== n) throw new Error(`${op}: ${n} host ids for ids tensor ${ids}`);
  const d = dTable.size / vocab;
  if (!Number.isInteger(d)) throw new Error(`${op}: dTable ${dTable} is not (vocab = ${vocab}, d)`);
  assertSize(op, dOut, n * d, 'dOut');
  assertNoAlias(op, dTable, dOut);
  const { grouping, distinct } = groupTokensById(hostIds, vocab);
  if (!opts.accumulate) gpu.fill(dTable, 0);
  if (distinct === 0) return dTable;
  const slot = acquireUploadSlot(gpu, grouping);
  const k = gpu.kernel({ name: 'embedding.backward', code, entryPoint: 'backward', bindings: ['read', 'read', 'write'] });
  gpu.dispatch(
    k,
    [dOut, slot.tensor, dTable],
    [distinct * d, d, vocab, distinct, 2 * distinct + 1, opts.accumulate ? 1 : 0],
    workgroupGrid(gpu, Math.ceil((distinct * d) / WG)),
  );
  slot.lastUse = gpu.submitCount;
  return dTable;
}

// ---- CPU reference -----------------------------------------------------------------------------

export function embeddingForwardCpu<A extends FloatArray>(table: A, ids: ArrayLike<number>, d: number): A {
  const out = allocLike(table, ids.length * d);
  for (let i = 0; i < ids.length; i++) out.set(table.subarray(ids[i] * d, ids[i] * d + d), i * d);
  return out;
}

/** dTable (vocab, d) from dOut (n, d): float64 sums in token order, in dOut's precision. */
export function embeddingBackwardCpu<A extends FloatArray>(dOut: A, ids: ArrayLike<number>, vocab: number, d: number): A {
  const sums = new Float64Array(vocab * d);
  for (let i = 0; i < ids.length; i++) {
    for (let c = 0; c < d; c++) sums[ids[i] * d + c] += dOut[i * d + c];
  }
  const dTable = allocLike(dOut, vocab * d);
  dTable.set(sums);
  return dTable;
}
