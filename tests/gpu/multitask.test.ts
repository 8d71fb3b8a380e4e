// Multi-task AdapterDrop inference: running the shared frozen lower layers once for all tasks gives
// exactly what each task's own model gives, for every number of dropped layers n = 0…L.
import { describe, expect, test } from 'vitest';
import { BertModel } from '../../src/model/bert';
import { encodeSplit, BatchIterator } from '../../src/data/batch';
import { WordPieceTokenizer } from '../../src/data/wordpiece';
import { MultiTaskInference } from '../../src/train/multitask';
import { Trainer, DEFAULT_TRAIN } from '../../src/train/trainer';
import { Rng } from '../../src/train/rng';
import { expectClose } from '../util/compare';
import { getGpu, noGpuErrors } from './gpu';
import { tinyBase, tinyDataset } from './tiny';

describe('multi-task AdapterDrop inference', () => {
  test('shared lower layers give each task the same probabilities as its own model, for n = 0…L', async () => {
    const gpu = await getGpu();
    const { config, params, vocab } = tinyBase(7, { numLayers: 3, hiddenDropout: 0, attentionDropout: 0 });
    const tok = WordPieceTokenizer.fromVocabText(vocab);
    const split = encodeSplit(tinyDataset().train, tok, 16);
    const batch = new BatchIterator(split, 8, 1).next();
    const host = { ids: batch.ids.slice(), typeIds: batch.typeIds.slice(), mask: batch.mask.slice(), labels: batch.labels.slice() };
    // three tasks: different adapters (seeds) and heads (label counts) over one base
    const base = new Map(params);
    base.delete('classifier.weight');
    base.delete('classifier.bias');
    const tasks = [2, 3, 4].map((labels, i) => {
      const m = BertModel.create(gpu, { ...config, numLabels: labels }, base, { kind: 'pfeiffer', reductionFactor: 4 }, { mode: 'none', n: 0 }, new Rng(10 + i));
      // make the adapters matter: near-identity init would hide a wrong wiring
      for (const p of m.store.params.values()) {
        if (p.name.includes('.adapter.')) m.store.write(p.name, new Rng(99 + i).fillNormal(new Float32Array(p.size), 0.3));
      }
      return m;
    });
    const multi = new MultiTaskInference(gpu, tasks, 8, 16);
    const own = tasks.map((m) => new Trainer(gpu, m, { ...DEFAULT_TRAIN, batchSize: 8, seqLen: 16 }));
    try {
      for (let n = 0; n <= config.numLayers; n++) {
        const shared = await noGpuErrors(gpu, () => multi.run(host, n, true));
        const separate = await multi.run(host, n, false);
        for (let t = 0; t < tasks.length; t++) {
          const single = await own[t].predictBatch(host, { droppedLayers: n });
          expectClose(shared[t], single.probs, { atol: 1e-6, rtol: 1e-5, label: `task ${t}, n = ${n}, shared` });
          expectClose(separate[t], single.probs, { atol: 1e-6, rtol: 1e-5, label: `task ${t}, n = ${n}, separate` });
        }
        if (n < config.numLayers) {
          // the adapters above n change the result: the comparison above is not vacuous
          const noAdapters = await own[0].predictBatch(host, { droppedLayers: config.numLayers });
          expect(Math.max(...shared[0].map((x, i) => Math.abs(x - noAdapters.probs[i])))).toBeGreaterThan(1e-4);
        }
      }
    } finally {
      multi.destroy();
      own.forEach((t) => t.destroy());
      tasks.forEach((m) => m.destroy());
    }
  });
});
