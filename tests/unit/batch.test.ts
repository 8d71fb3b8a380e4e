import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BatchIterator, type EncodedSplit, type Tokenizer, encodeSplit, evalBatches } from '../../src/data/batch';
import { type DatasetInfo, type Example, parseJsonlDataset } from '../../src/data/datasets';
import { WordPieceTokenizer } from '../../src/data/wordpiece';

const CLS = 101;
const SEP = 102;

/**
 * Whitespace tokenizer with the WordPiece tokenizer's encode() contract: [CLS] a [SEP] (b [SEP]),
 * type ids 0 then 1, truncation to maxLength, padding with 0.
 */
class WhitespaceTokenizer implements Tokenizer {
  private vocab = new Map<string, number>();
  id(word: string): number {
    if (!this.vocab.has(word)) this.vocab.set(word, 1000 + this.vocab.size);
    return this.vocab.get(word)!;
  }
  encode(text: string, pair?: string | null, opts: { maxLength?: number; padding?: boolean } = {}) {
    const a = text.split(/\s+/).filter(Boolean).map((w) => this.id(w));
    const b = pair ? pair.split(/\s+/).filter(Boolean).map((w) => this.id(w)) : null;
    const special = b ? 3 : 2;
    if (opts.maxLength !== undefined) {
      // Hugging Face's longest_first: drop from the longer segment, from the pair on a tie
      while (a.length + (b?.length ?? 0) + special > opts.maxLength) (b && b.length >= a.length ? b : a).pop();
    }
    const ids = [CLS, ...a, SEP, ...(b ? [...b, SEP] : [])];
    const typeIds = [...new Array(a.length + 2).fill(0), ...(b ? new Array(b.length + 1).fill(1) : [])];
    const mask = new Array(ids.length).fill(1);
    if (opts.padding && opts.maxLength !== undefined) {
      while (ids.length < opts.maxLength) {
        ids.push(0);
        typeIds.push(0);
        mask.push(0);
      }
    }
    return { ids, typeIds, mask };
  }
}

/** n examples, example i has i % 5 + 1 words and label i % 3: rows are easy to tell apart. */
function examples(n: number): Example[] {
  return Array.from({ length: n }, (_, i) => ({
    text: Array.from({ length: (i % 5) + 1 }, (_, k) => `w${i}_${k}`).join(' '),
    label: i % 3,
  }));
}

const seqLen = 8;
const encoded = (n: number) => encodeSplit(examples(n), new WhitespaceTokenizer(), seqLen);

/** The (seqLen) slice of row r. */
const rowOf = (a: Uint32Array | Float32Array, r: number, L = seqLen) => Array.from(a.subarray(r * L, (r + 1) * L));

/** Checks every batch row is a verbatim copy of the split row its hostId names. */
function expectRowsMatchSplit(split: EncodedSplit, batch: ReturnType<BatchIterator['next']>, rows: number) {
  for (let r = 0; r < rows; r++) {
    const from = batch.hostIds[r];
    const where = `batch row ${r} (split row ${from})`;
    expect(rowOf(batch.ids, r), where).toEqual(rowOf(split.ids, from));
    expect(rowOf(batch.typeIds, r), where).toEqual(rowOf(split.typeIds, from));
    expect(rowOf(batch.mask, r), where).toEqual(rowOf(split.mask, from));
    expect(batch.labels[r], where).toBe(split.labels[from]);
  }
}

describe('encodeSplit', () => {
  it('gives (n, seqLen) row-major arrays: [CLS] words [SEP], then padding with id 0 and mask 0', () => {
    const split = encoded(7);
    expect(split.n).toBe(7);
    expect(split.seqLen).toBe(seqLen);
    expect(split.ids).toBeInstanceOf(Uint32Array);
    expect(split.mask).toBeInstanceOf(Float32Array);
    expect([split.ids.length, split.typeIds.length, split.mask.length, split.labels.length]).toEqual([56, 56, 56, 7]);
    // example 2 has 3 words: CLS w w w SEP + 3 pads
    expect(rowOf(split.ids, 2)).toEqual([CLS, 1003, 1004, 1005, SEP, 0, 0, 0]);
    expect(rowOf(split.mask, 2)).toEqual([1, 1, 1, 1, 1, 0, 0, 0]);
    expect(Array.from(split.labels)).toEqual([0, 1, 2, 0, 1, 2, 0]);
  });

  it('sentence pairs get type id 1 on the second segment and are truncated to seqLen', () => {
    const pairs: Example[] = [{ text: 'a b c d e f', textPair: 'x y z', label: 1 }];
    const split = encodeSplit(pairs, new WhitespaceTokenizer(), seqLen);
    expect(rowOf(split.ids, 0)).toEqual([CLS, 1000, 1001, 1002, SEP, 1006, 1007, SEP]);
    expect(rowOf(split.typeIds, 0)).toEqual([0, 0, 0, 0, 0, 1, 1, 1]);
    expect(rowOf(split.mask, 0)).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
  });

  it('pads itself when the tokenizer does not, and refuses more tokens than seqLen', () => {
    const noPadding: Tokenizer = { encode: () => ({ ids: [CLS, 7, SEP], typeIds: [0, 0, 0], mask: [1, 1, 1] }) };
    const split = encodeSplit([{ text: 'x', label: 0 }], noPadding, 5);
    expect(Array.from(split.ids)).toEqual([CLS, 7, SEP, 0, 0]);
    expect(Array.from(split.mask)).toEqual([1, 1, 1, 0, 0]);
    const tooLong: Tokenizer = { encode: () => ({ ids: [1, 2, 3, 4, 5, 6], typeIds: [0, 0, 0, 0, 0, 0], mask: [1, 1, 1, 1, 1, 1] }) };
    expect(() => encodeSplit([{ text: 'x', label: 0 }], tooLong, 5)).toThrow(/returned 6 tokens for example 0, more than maxLength 5/);
  });
});

describe('BatchIterator', () => {
  it('every batch has batchSize rows; an epoch covers each example once, the last batch wrapping around', () => {
    const split = encoded(10);
    const it4 = new BatchIterator(split, 4, 123);
    expect(it4.stepsPerEpoch).toBe(3);
    for (let epoch = 0; epoch < 3; epoch++) {
      const seen: number[] = [];
      let order: number[] = [];
      for (let step = 0; step < 3; step++) {
        const batch = it4.next();
        expect(batch.epoch).toBe(epoch);
        expect(batch.ids.length).toBe(4 * seqLen);
        expect(batch.labels.length).toBe(4);
        expect(batch.size).toBe(step < 2 ? 4 : 2);
        expectRowsMatchSplit(split, batch, 4);
        seen.push(...Array.from(batch.hostIds.subarray(0, batch.size)));
        if (step === 0) order = Array.from(batch.hostIds);
        // the two padding rows of the last batch repeat the epoch's first two examples
        if (step === 2) expect(Array.from(batch.hostIds.subarray(2))).toEqual(order.slice(0, 2));
      }
      expect(seen.slice().sort((a, b) => a - b), `epoch ${epoch}`).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    }
  });

  it('reuses its output arrays: no allocation per step', () => {
    const iterator = new BatchIterator(encoded(10), 4, 1);
    const first = iterator.next();
    const arrays = [first.ids, first.typeIds, first.mask, first.labels, first.hostIds];
    for (let step = 0; step < 7; step++) {
      const batch = iterator.next();
      expect([batch.ids, batch.typeIds, batch.mask, batch.labels, batch.hostIds].every((a, i) => a === arrays[i])).toBe(true);
    }
  });

  it('reshuffles every epoch, deterministically from the seed', () => {
    const split = encoded(40);
    const orders = (seed: number) => {
      const iterator = new BatchIterator(split, 8, seed);
      return Array.from({ length: 3 }, () =>
        Array.from({ length: 5 }, () => Array.from(iterator.next().hostIds)).flat(),
      );
    };
    const a = orders(9);
    expect(orders(9)).toEqual(a);
    expect(a[1]).not.toEqual(a[0]);
    expect(a[2]).not.toEqual(a[1]);
    expect(a[0]).not.toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(orders(10)[0]).not.toEqual(a[0]);
    for (const order of a) expect(order.slice().sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, i) => i));
  });

  it('without shuffle it walks the split in order', () => {
    const iterator = new BatchIterator(encoded(6), 4, 5, { shuffle: false });
    expect(Array.from(iterator.next().hostIds)).toEqual([0, 1, 2, 3]);
    const last = iterator.next();
    expect(Array.from(last.hostIds)).toEqual([4, 5, 0, 1]);
    expect(last.size).toBe(2);
    expect(Array.from(iterator.next().hostIds)).toEqual([0, 1, 2, 3]);
  });

  it('dropLast skips the partial batch: floor(n / batchSize) full batches an epoch', () => {
    const iterator = new BatchIterator(encoded(10), 4, 3, { dropLast: true });
    expect(iterator.stepsPerEpoch).toBe(2);
    const epochs = Array.from({ length: 6 }, () => {
      const batch = iterator.next();
      expect(batch.size).toBe(4);
      return batch.epoch;
    });
    expect(epochs).toEqual([0, 0, 1, 1, 2, 2]);
    expect(() => new BatchIterator(encoded(3), 4, 3, { dropLast: true })).toThrow(/leaves no batch/);
  });

  it('a split smaller than one batch repeats its rows to fill it', () => {
    const split = encoded(3);
    const iterator = new BatchIterator(split, 8, 2);
    const batch = iterator.next();
    expect(batch.size).toBe(3);
    const ids = Array.from(batch.hostIds);
    expect(ids.slice(3)).toEqual([...ids.slice(0, 3), ...ids.slice(0, 2)]);
    expectRowsMatchSplit(split, batch, 8);
    expect(iterator.next().epoch).toBe(1);
  });

  it('seek(k) makes the next batch the one the k-th step of a fresh iterator gets', () => {
    const split = encoded(23);
    const reference = new BatchIterator(split, 5, 77);
    const batches = Array.from({ length: 17 }, () => {
      const b = reference.next();
      return { hostIds: Array.from(b.hostIds), epoch: b.epoch, size: b.size };
    });
    const seeking = new BatchIterator(split, 5, 77);
    for (const k of [16, 3, 0, 10, 5]) {
      seeking.seek(k);
      expect(seeking.step).toBe(k);
      const b = seeking.next();
      expect({ hostIds: Array.from(b.hostIds), epoch: b.epoch, size: b.size }, `step ${k}`).toEqual(batches[k]);
    }
  });

  it('rejects a bad batch size and an empty split', () => {
    expect(() => new BatchIterator(encoded(4), 0, 1)).toThrow(/batchSize must be a positive integer/);
    expect(() => new BatchIterator(encoded(0), 2, 1)).toThrow(/empty split/);
  });
});

describe('evalBatches', () => {
  it('yields the split in order; the last batch is padded with real rows and size counts the valid ones', () => {
    const split = encoded(10);
    const sizes: number[] = [];
    const hostIds: number[][] = [];
    const validIds: number[] = [];
    for (const batch of evalBatches(split, 4)) {
      expect(batch.ids.length).toBe(4 * seqLen);
      expectRowsMatchSplit(split, batch, 4);
      sizes.push(batch.size);
      hostIds.push(Array.from(batch.hostIds));
      validIds.push(...Array.from(batch.ids.subarray(0, batch.size * seqLen)));
      // no row is all padding: attention over a fully masked row would divide 0 by 0
      for (let r = 0; r < 4; r++) expect(batch.mask[r * seqLen], `row ${r}`).toBe(1);
    }
    expect(sizes).toEqual([4, 4, 2]);
    expect(hostIds).toEqual([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1]]);
    expect(validIds).toEqual(Array.from(split.ids));
  });

  it('an exact multiple has no padding; an empty split yields nothing', () => {
    expect([...evalBatches(encoded(8), 4)].length).toBe(2);
    expect([...evalBatches(encoded(0), 4)]).toEqual([]);
  });
});

describe('with the real WordPiece tokenizer and a built-in dataset', () => {
  it('every row of the sentiment dev split is [CLS] … [SEP] then padding, ids inside the vocabulary', () => {
    const root = join(__dirname, '..', '..');
    const tok = WordPieceTokenizer.fromVocabText(readFileSync(join(root, 'public', 'vocab.txt'), 'utf8'));
    const index: DatasetInfo[] = JSON.parse(readFileSync(join(root, 'public', 'data', 'index.json'), 'utf8'));
    const info = index.find((d) => d.id === 'sentiment')!;
    const dataset = parseJsonlDataset(readFileSync(join(root, 'public', 'data', info.file), 'utf8'), info, 3);
    const L = 32;
    const split = encodeSplit(dataset.dev, tok, L);
    expect(split.n).toBe(dataset.dev.length);
    for (let r = 0; r < split.n; r++) {
      const ids = rowOf(split.ids, r, L);
      const mask = rowOf(split.mask, r, L);
      const length = mask.reduce((a, b) => a + b, 0);
      const where = `row ${r}: ${dataset.dev[r].text}`;
      expect(ids[0], where).toBe(CLS);
      expect(ids[length - 1], where).toBe(SEP);
      expect(ids.slice(length).every((id) => id === 0), where).toBe(true);
      expect(mask.slice(0, length).every((m) => m === 1), where).toBe(true);
      expect(ids.every((id) => id < 30522), where).toBe(true);
      expect(rowOf(split.typeIds, r, L).every((t) => t === 0), where).toBe(true);
      expect(split.labels[r]).toBe(dataset.dev[r].label);
    }
  });
});
