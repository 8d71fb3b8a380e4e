// The shipped pretrained mini-BERT (public/models/mini-bert, written by scripts/pretrain.py):
// it loads through the project's Hugging Face importer, our engine's masked-LM loss on a fixed
// masked batch matches the loss PyTorch computed for it at export, and the restricted vocabulary
// tokenizes like bert-base-uncased wherever it holds the same pieces.
import { describe, expect, test } from 'vitest';
import { loadBertCheckpoint } from '../../src/io/hf';
import { readSafetensors } from '../../src/io/safetensors';
import { BertModel } from '../../src/model/bert';
import { mlmLoss, readMlmHead, MLM_IGNORE } from '../../src/model/mlm';
import { WordPieceTokenizer } from '../../src/data/wordpiece';
import { Rng } from '../../src/train/rng';
import { Trainer, DEFAULT_TRAIN } from '../../src/train/trainer';
import { getGpu, noGpuErrors } from './gpu';

/** float32 forward of a 4-layer model against PyTorch's float64 loss on the same float32 weights */
const LOSS_TOLERANCE = 1e-3;

// public/ is served at the root, as on the page: the files are found through models/index.json
async function fetchOk(url: string): Promise<Response> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`fetch ${url}: HTTP ${res.status}`);
  return res;
}

interface ModelIndexEntry {
  id: string;
  path: string;
  hidden: number;
  layers: number;
  vocab: number;
  params: number;
}

async function shippedModel() {
  const index = (await (await fetchOk('/models/index.json')).json()) as ModelIndexEntry[];
  const entry = index.find((m) => m.id === 'mini-bert');
  if (!entry) throw new Error('models/index.json has no mini-bert entry');
  const base = `/${entry.path}`;
  const [config, vocab, weights, check, fullVocab] = await Promise.all([
    fetchOk(`${base}config.json`).then((r) => r.json()),
    fetchOk(`${base}vocab.txt`).then((r) => r.text()),
    fetchOk(`${base}model.safetensors`).then((r) => r.arrayBuffer()),
    fetchOk(`${base}mlm_check.safetensors`).then((r) => r.arrayBuffer()),
    fetchOk('/vocab.txt').then((r) => r.text()),
  ]);
  return { entry, config, vocab, weights, check, fullVocab };
}

describe('shipped mini-BERT', () => {
  test('loads through loadBertCheckpoint with its restricted vocabulary and the index entry agrees', async () => {
    const { entry, config, vocab, weights } = await shippedModel();
    const ck = loadBertCheckpoint({ config, weights, vocab }, { numLabels: 2 });
    expect(ck.config.vocabSize).toBe(vocab.trimEnd().split('\n').length);
    // only the sequence-classification head is missing: every encoder weight and the pooler (trained
    // by next-sentence prediction) are in the file
    expect(ck.missing.sort()).toEqual(['classifier.bias', 'classifier.weight']);
    expect(ck.params.has('bert.pooler.dense.weight')).toBe(true);
    expect(entry.hidden).toBe(ck.config.hiddenSize);
    expect(entry.layers).toBe(ck.config.numLayers);
    expect(entry.vocab).toBe(ck.config.vocabSize);
    const headParams = readMlmHead(weights, ck.config.hiddenSize, ck.config.vocabSize);
    const headCount = Object.values(headParams).reduce((n, a) => n + a.length, 0);
    const encoderCount = [...ck.params.values()].reduce((n, a) => n + a.length, 0);
    expect(entry.params).toBe(encoderCount + headCount);
  });

  test('our engine’s MLM loss on the script’s masked batch matches PyTorch within 1e-3', async () => {
    const gpu = await getGpu();
    const { config, vocab, weights, check: checkBytes } = await shippedModel();
    const ck = loadBertCheckpoint({ config, weights, vocab }, { numLabels: 2 });
    const { tensors: check, metadata } = readSafetensors(checkBytes);
    const ids = check.get('input_ids')!, mask = check.get('attention_mask')!, labels = check.get('labels')!;
    const [batch, seq] = ids.shape;
    // the script's float64 loss (metadata) rather than its float32 rounding in the tensor
    const want = metadata.loss_f64 !== undefined ? Number(metadata.loss_f64) : check.get('loss')!.data[0];
    const model = BertModel.create(gpu, ck.config, ck.params, { kind: 'headonly' }, { mode: 'none', n: 0 }, new Rng(1));
    try {
      const head = readMlmHead(weights, ck.config.hiddenSize, ck.config.vocabSize);
      const got = await noGpuErrors(gpu, () =>
        mlmLoss(model, head, {
          batch, seq,
          inputIds: Uint32Array.from(ids.ints!),
          attentionMask: Float32Array.from(mask.ints!),
          labels: Int32Array.from(labels.ints!),
        }),
      );
      expect(got.targets).toBe(labels.ints!.filter((l) => l !== MLM_IGNORE).length);
      expect(Number.isFinite(got.loss)).toBe(true);
      console.log(`shipped mini-BERT, MLM loss on the check batch: engine ${got.loss}, PyTorch ${want}`); // the model card quotes both
      expect(Math.abs(got.loss - want), `engine ${got.loss} vs PyTorch ${want}`).toBeLessThan(LOSS_TOLERANCE);
      // a trained model predicts masked words far better than chance (ln V ≈ 9.3 for 10.9k pieces)
      expect(got.loss).toBeLessThan(Math.log(ck.config.vocabSize) - 1);
    } finally {
      model.store.destroy();
    }
  });

  // The fixtures (model-fixtures.test.ts) check every gradient with dropout off on small random
  // models; this checks the backward on the real shipped model with dropout on (0.1 in hidden
  // states and attention probabilities), full fine-tuning: for each tensor, the derivative of the
  // training loss along the normalised gradient, by central differences with the same dropout
  // masks (the trainer's RNG state is restored before every pass), equals the gradient's norm.
  test('with dropout on, the training loss changes along each gradient by the gradient’s norm (full fine-tuning)', async () => {
    const gpu = await getGpu();
    const { config, vocab, weights, check: checkBytes } = await shippedModel();
    const ck = loadBertCheckpoint({ config, weights, vocab }, { numLabels: 2 });
    const ids = readSafetensors(checkBytes).tensors.get('input_ids')!;
    const [rows, seq] = ids.shape;
    const batch = Math.min(rows, 8);
    const idData = Uint32Array.from(ids.ints!.slice(0, batch * seq));
    const host = {
      ids: idData,
      typeIds: new Uint32Array(batch * seq),
      mask: Float32Array.from(idData, (id) => (id === 0 ? 0 : 1)),
      labels: Uint32Array.from({ length: batch }, (_, i) => i % 2),
    };
    const cfg = { ...ck.config, hiddenDropout: 0.1, attentionDropout: 0.1 };
    const model = BertModel.create(gpu, cfg, ck.params, { kind: 'full' }, { mode: 'none', n: 0 }, new Rng(1));
    const classifier = Float32Array.from({ length: 2 * cfg.hiddenSize }, (_, i) => Math.sin(i) * 0.02);
    model.store.write('classifier.weight', classifier);
    model.store.write('classifier.bias', new Float32Array(2));
    const trainer = new Trainer(gpu, model, { ...DEFAULT_TRAIN, batchSize: batch, seqLen: seq });
    const state = trainer.rng.getState();
    const lossOfStep = async () => {
      trainer.rng.setState(state); // the same dropout masks every time
      trainer.trainStep(host, { train: true, skipOptimizer: true });
      return (await trainer.readMetrics()).records[0].loss;
    };
    try {
      await noGpuErrors(gpu, async () => {
        const l0 = await lossOfStep();
        const grads = await model.store.readGrads();
        // another pass with the same masks gives the same loss (dropout is a function of the seed)
        expect(await lossOfStep()).toBe(l0);
        const names = [
          'bert.embeddings.word_embeddings.weight', 'bert.embeddings.LayerNorm.weight',
          'bert.encoder.layer.0.attention.self.query.weight', 'bert.encoder.layer.0.attention.self.key.weight',
          'bert.encoder.layer.2.attention.self.value.weight', 'bert.encoder.layer.1.intermediate.dense.weight',
          'bert.encoder.layer.3.output.dense.weight', 'bert.pooler.dense.weight', 'classifier.weight',
        ];
        for (const name of names) {
          const g = grads.get(name)!;
          const w0 = name === 'classifier.weight' ? classifier : ck.params.get(name)!;
          const norm = Math.sqrt(g.reduce((s, v) => s + v * v, 0));
          expect(norm, name).toBeGreaterThan(1e-4);
          const h = 1e-2;
          const lossAt = async (sign: number) => {
            model.store.write(name, w0.map((w, i) => w + (sign * h * g[i]) / norm));
            return lossOfStep();
          };
          const slope = ((await lossAt(1)) - (await lossAt(-1))) / (2 * h);
          model.store.write(name, w0);
          expect(Math.abs(slope - norm) / norm, `${name}: |g| ${norm}, central difference ${slope}`).toBeLessThan(0.01);
        }
      });
    } finally {
      trainer.destroy();
      model.destroy();
    }
  });

  test('the restricted vocabulary tokenizes a sample like bert-base-uncased, and falls back to shorter pieces', async () => {
    const { vocab, fullVocab } = await shippedModel();
    const mini = WordPieceTokenizer.fromVocabText(vocab);
    const full = WordPieceTokenizer.fromVocabText(fullVocab);
    expect(mini.pieces.slice(0, 5)).toEqual(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
    const sample = 'Call me Ishmael. The whale swam toward the ship, and the captain was not pleased!';
    const enc = mini.encode(sample);
    expect(enc.tokens).toEqual(['[CLS]', ...full.tokenize(sample), '[SEP]']);
    expect(enc.ids).not.toContain(mini.unkId);
    // every id round-trips through the restricted vocabulary
    expect(enc.ids.map((id) => mini.idToToken(id))).toEqual(enc.tokens);
    // a word whose bert-base-uncased piece was left out still tokenizes, from smaller pieces
    const rare = 'pokemon';
    expect(full.tokenize(rare)).toEqual(['pokemon']);
    const pieces = mini.tokenize(rare);
    expect(pieces).not.toContain('[UNK]');
    expect(pieces.join('').replace(/##/g, '')).toBe(rare);
  });
});
