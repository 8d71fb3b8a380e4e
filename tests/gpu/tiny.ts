// A tiny randomly initialised BERT and a small learnable classification task for training tests.
import { bertParamShapes, initBaseParam } from '../../src/model/bert';
import type { BertConfig } from '../../src/model/config';
import type { Dataset, Example } from '../../src/data/datasets';
import { Rng } from '../../src/train/rng';

const SPECIAL = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
const POSITIVE = ['good', 'great', 'fine', 'nice', 'love'];
const NEGATIVE = ['bad', 'awful', 'poor', 'hate', 'worst'];
const NEUTRAL = ['the', 'a', 'movie', 'film', 'was', 'is', 'plot', 'actor', 'very', 'and', 'it', 'story'];

export function tinyVocab(): string {
  return [...SPECIAL, ...POSITIVE, ...NEGATIVE, ...NEUTRAL].join('\n') + '\n';
}

export function tinyConfig(over: Partial<BertConfig> = {}): BertConfig {
  return {
    vocabSize: SPECIAL.length + POSITIVE.length + NEGATIVE.length + NEUTRAL.length,
    hiddenSize: 32, numLayers: 2, numHeads: 2, intermediateSize: 64, maxPositions: 32, typeVocabSize: 2,
    layerNormEps: 1e-12, numLabels: 2, hiddenDropout: 0.1, attentionDropout: 0.1, ...over,
  };
}

/** Randomly initialised base weights (HF init), by name. */
export function tinyBase(seed = 7, over: Partial<BertConfig> = {}) {
  const config = tinyConfig(over);
  const rng = new Rng(seed);
  const params = new Map<string, Float32Array>();
  for (const [name, shape] of bertParamShapes(config)) {
    const d = initBaseParam(name, shape, rng);
    // a wider init than HF's 0.02 so a random base carries token identity to [CLS]
    if (!name.endsWith('.bias') && !name.includes('LayerNorm')) for (let i = 0; i < d.length; i++) d[i] *= 5;
    params.set(name, d);
  }
  return { config, params, vocab: tinyVocab() };
}

/** Label 1 when the sentence holds a positive word, 0 for a negative one; the rest is filler. */
export function tinyDataset(seed = 11, n = 160): Dataset {
  const rng = new Rng(seed);
  const make = (count: number): Example[] =>
    Array.from({ length: count }, () => {
      const label = rng.int(2);
      const words = Array.from({ length: 3 + rng.int(6) }, () => NEUTRAL[rng.int(NEUTRAL.length)]);
      const key = (label ? POSITIVE : NEGATIVE)[rng.int(5)];
      words.splice(rng.int(words.length + 1), 0, key);
      return { text: words.join(' '), label };
    });
  return { id: 'tiny', name: 'tiny sentiment', description: 'synthetic', classes: ['negative', 'positive'], train: make(n), dev: make(48), test: make(48) };
}
