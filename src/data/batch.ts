// Token batches for training and evaluation. A split is tokenised once into flat padded arrays;
// batches are then copied out of those arrays into buffers that are allocated once, and every batch
// has the same number of rows, so the GPU input buffers and bind groups never change size.
// ids, typeIds, mask are (rows, seqLen) row-major; labels is (rows).

import type { Example } from './datasets';
import { Rng } from '../train/rng';

/** What batching needs from a tokenizer; src/data/wordpiece.ts provides it. */
export interface Tokenizer {
  encode(
    text: string,
    pair?: string | null,
    opts?: { maxLength?: number; padding?: boolean },
  ): { ids: number[]; typeIds: number[]; mask: number[] };
}

/** A whole split, tokenised: (n, seqLen) row-major, padded ([PAD] id from the tokenizer, else 0; mask 0). */
export interface EncodedSplit {
  n: number;
  seqLen: number;
  ids: Uint32Array;
  typeIds: Uint32Array;
  mask: Float32Array;
  labels: Uint32Array;
}

/** One batch. The arrays belong to the iterator and are overwritten by the next batch. */
export interface Batch {
  /** (batchSize, seqLen) token ids */
  ids: Uint32Array;
  /** (batchSize, seqLen) segment ids: 0 for the first text, 1 for the pair */
  typeIds: Uint32Array;
  /** (batchSize, seqLen) 1 for a real token, 0 for padding */
  mask: Float32Array;
  /** (batchSize) class index */
  labels: Uint32Array;
  /** rows that are new in this pass; the rest repeat earlier rows to keep the batch full */
  size: number;
  /** pass over the split this batch belongs to, from 0 */
  epoch: number;
  /** (batchSize) index in the split of the example each row holds (for per-example displays) */
  hostIds: Uint32Array;
}

/** Tokenises every example to exactly `seqLen` tokens (the tokenizer truncates and pads; rows it
 *  returns shorter are padded here with id 0). */
export function encodeSplit(examples: Example[], tok: Tokenizer, seqLen: number): EncodedSplit {
  if (!(Number.isInteger(seqLen) && seqLen >= 2)) throw new Error(`seqLen must be an integer ≥ 2 (got ${seqLen})`);
  const n = examples.length;
  const ids = new Uint32Array(n * seqLen);
  const typeIds = new Uint32Array(n * seqLen);
  const mask = new Float32Array(n * seqLen);
  const labels = new Uint32Array(n);
  for (let r = 0; r < n; r++) {
    const example = examples[r];
    const encoded = tok.encode(example.text, example.textPair ?? null, { maxLength: seqLen, padding: true });
    const length = encoded.ids.length;
    if (length > seqLen) {
      // cutting here would drop the final [SEP]; truncation is the tokenizer's job
      throw new Error(`tokenizer returned ${length} tokens for example ${r}, more than maxLength ${seqLen}`);
    }
    const row = r * seqLen;
    for (let t = 0; t < length; t++) {
      ids[row + t] = encoded.ids[t];
      typeIds[row + t] = encoded.typeIds[t];
      mask[row + t] = encoded.mask[t];
    }
    // positions past `length` stay 0: id 0 ([PAD] in BERT vocabularies), type 0, mask 0
    labels[r] = example.label;
  }
  return { n, seqLen, ids, typeIds, mask, labels };
}

function allocateBatch(batchSize: number, seqLen: number): Batch {
  return {
    ids: new Uint32Array(batchSize * seqLen),
    typeIds: new Uint32Array(batchSize * seqLen),
    mask: new Float32Array(batchSize * seqLen),
    labels: new Uint32Array(batchSize),
    size: 0,
    epoch: 0,
    hostIds: new Uint32Array(batchSize),
  };
}

/** Copies split row `from` into batch row `to`. */
function copyRow(split: EncodedSplit, from: number, batch: Batch, to: number): void {
  const L = split.seqLen;
  batch.ids.set(split.ids.subarray(from * L, (from + 1) * L), to * L);
  batch.typeIds.set(split.typeIds.subarray(from * L, (from + 1) * L), to * L);
  batch.mask.set(split.mask.subarray(from * L, (from + 1) * L), to * L);
  batch.labels[to] = split.labels[from];
  batch.hostIds[to] = from;
}

/**
 * Endless training batches. Each epoch visits every example once in an order drawn from
 * (seed, epoch), so any step can be reproduced without replaying the ones before (`seek`).
 * An epoch has ceil(n / batchSize) batches; the last one is filled up by wrapping around to the
 * start of the same epoch's order (its `size` counts only the new rows). With dropLast the partial
 * batch is skipped instead: floor(n / batchSize) batches an epoch.
 */
export class BatchIterator {
  readonly batchSize: number;
  readonly stepsPerEpoch: number;
  private readonly split: EncodedSplit;
  private readonly seed: number;
  private readonly shuffle: boolean;
  private readonly order: Uint32Array;
  private readonly batch: Batch;
  private epoch = 0;
  private stepInEpoch = 0;

  constructor(split: EncodedSplit, batchSize: number, seed: number, opts: { shuffle?: boolean; dropLast?: boolean } = {}) {
    if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new Error(`batchSize must be a positive integer (got ${batchSize})`);
    if (split.n === 0) throw new Error('cannot batch an empty split');
    const dropLast = opts.dropLast ?? false;
    if (dropLast && split.n < batchSize) {
      throw new Error(`dropLast with ${split.n} examples and batch size ${batchSize} leaves no batch`);
    }
    this.split = split;
    this.batchSize = batchSize;
    this.seed = seed >>> 0;
    this.shuffle = opts.shuffle ?? true;
    this.stepsPerEpoch = dropLast ? Math.floor(split.n / batchSize) : Math.ceil(split.n / batchSize);
    this.order = new Uint32Array(split.n);
    this.batch = allocateBatch(batchSize, split.seqLen);
    this.drawOrder();
  }

  /** Epoch the next batch belongs to. */
  get currentEpoch(): number {
    return this.epoch;
  }

  /** Batches handed out so far (the global step). */
  get step(): number {
    return this.epoch * this.stepsPerEpoch + this.stepInEpoch;
  }

  /** Positions the iterator so that the next batch is the one global step `step` would get. */
  seek(step: number): void {
    if (!(Number.isInteger(step) && step >= 0)) throw new Error(`step must be a non-negative integer (got ${step})`);
    this.epoch = Math.floor(step / this.stepsPerEpoch);
    this.stepInEpoch = step % this.stepsPerEpoch;
    this.drawOrder();
  }

  /** The next batch; its arrays are reused by the following call, so copy what must be kept. */
  next(): Batch {
    if (this.stepInEpoch === this.stepsPerEpoch) {
      this.epoch++;
      this.stepInEpoch = 0;
      this.drawOrder();
    }
    const { split, batch, batchSize, order } = this;
    const start = this.stepInEpoch * batchSize;
    for (let row = 0; row < batchSize; row++) {
      // past the end of the order: wrap to its start (modulo also covers n < batchSize)
      copyRow(split, order[(start + row) % split.n], batch, row);
    }
    batch.size = Math.min(batchSize, split.n - start);
    batch.epoch = this.epoch;
    this.stepInEpoch++;
    return batch;
  }

  private drawOrder(): void {
    const order = this.order;
    for (let i = 0; i < order.length; i++) order[i] = i;
    if (!this.shuffle) return;
    // one generator per epoch, seeded from (seed, epoch): epochs differ and can be recreated alone
    const rng = new Rng((this.seed ^ Math.imul(this.epoch + 1, 0x9e3779b1)) >>> 0);
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      const t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
  }
}

/**
 * Evaluation batches in split order, each exactly `batchSize` rows. The last batch is filled up
 * with copies of the split's first rows (real inputs, so no row is all padding, which would turn
 * attention's softmax into 0/0); `size` says how many leading rows count. Yields one reused Batch.
 */
export function* evalBatches(split: EncodedSplit, batchSize: number): Generator<Batch> {
  if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new Error(`batchSize must be a positive integer (got ${batchSize})`);
  if (split.n === 0) return;
  const batch = allocateBatch(batchSize, split.seqLen);
  for (let start = 0; start < split.n; start += batchSize) {
    for (let row = 0; row < batchSize; row++) copyRow(split, (start + row) % split.n, batch, row);
    batch.size = Math.min(batchSize, split.n - start);
    batch.epoch = 0;
    yield batch;
  }
}
