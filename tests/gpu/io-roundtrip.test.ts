// Files in and out, through the real model on WebGPU: a Hugging Face checkpoint made by a script
// loads and matches PyTorch; a LoRA exported in PEFT's layout and a fully fine-tuned model exported
// as an HF checkpoint load back with identical logits.
import { describe, expect, test } from 'vitest';
import { loadBertCheckpoint } from '../../src/io/hf';
import { exportHfCheckpoint, exportPeftLora, importPeftLora } from '../../src/io/export';
import { BertModel, writeInputs } from '../../src/model/bert';
import { peftTargetName, type BertConfig, type MethodConfig } from '../../src/model/config';
import { encodeSplit, BatchIterator } from '../../src/data/batch';
import { WordPieceTokenizer } from '../../src/data/wordpiece';
import { Trainer, DEFAULT_TRAIN } from '../../src/train/trainer';
import { Rng } from '../../src/train/rng';
import type { Tensor } from '../../src/gpu/tensor';
import { expectClose } from '../util/compare';
import { getGpu } from './gpu';
import { tinyBase, tinyDataset } from './tiny';
import configUrl from '../fixtures/tiny-hf/config.json?url';
import weightsUrl from '../fixtures/tiny-hf/model.safetensors?url';
import vocabUrl from '../fixtures/tiny-hf/vocab.txt?url';
import reference from '../fixtures/tiny-hf/reference.json';

const TRAIN = { ...DEFAULT_TRAIN, batchSize: 8, seqLen: 16, lr: 5e-3, warmupFraction: 0, totalSteps: 100 };

async function trained(method: MethodConfig) {
  const gpu = await getGpu();
  const { config, params, vocab } = tinyBase(7, { hiddenDropout: 0, attentionDropout: 0 });
  const split = encodeSplit(tinyDataset().train, WordPieceTokenizer.fromVocabText(vocab), TRAIN.seqLen);
  const model = BertModel.create(gpu, config, params, method, { mode: 'none', n: 0 }, new Rng(3));
  const trainer = new Trainer(gpu, model, TRAIN);
  const it = new BatchIterator(split, TRAIN.batchSize, 1);
  for (let i = 0; i < 3; i++) trainer.trainStep(it.next());
  await trainer.readMetrics();
  const b = it.next();
  const batch = { ids: b.ids.slice(), typeIds: b.typeIds.slice(), mask: b.mask.slice(), labels: b.labels.slice() };
  return { gpu, config, params, vocab, model, trainer, batch };
}

describe('model files round trip', () => {
  test('a tiny HF-layout checkpoint written by a script loads and matches its PyTorch forward', async () => {
    const gpu = await getGpu();
    const [config, weights, vocab] = await Promise.all([
      fetch(configUrl).then((r) => r.text()), fetch(weightsUrl).then((r) => r.arrayBuffer()), fetch(vocabUrl).then((r) => r.text()),
    ]);
    const ckpt = loadBertCheckpoint({ config, weights, vocab });
    expect(ckpt.unexpected.some((n) => n.startsWith('cls.'))).toBe(false); // the MLM head is ignored, not unexpected
    const c: BertConfig = { ...ckpt.config, numLabels: 2 };
    const model = BertModel.create(gpu, c, ckpt.params, { kind: 'headonly' }, { mode: 'none', n: 0 }, new Rng(1));
    const [batch, seq] = [reference.input_ids.length, reference.input_ids[0].length];
    const trainer = new Trainer(gpu, model, { ...DEFAULT_TRAIN, batchSize: batch, seqLen: seq });
    const taps = new Map<string, Tensor>();
    model.tap = (name, v) => taps.set(name, v.value);
    try {
      const tok = WordPieceTokenizer.fromVocabText(vocab);
      expect(tok.vocabSize).toBe(c.vocabSize);
      const host = {
        ids: Uint32Array.from(reference.input_ids.flat()), typeIds: Uint32Array.from(reference.token_type_ids.flat()),
        mask: Float32Array.from(reference.attention_mask.flat()), labels: new Uint32Array(batch),
      };
      writeInputs(gpu, trainer.inputs, host);
      trainer.tape.enabled = false;
      const logits = model.forward(trainer.tape, trainer.inputs, { train: false, seed: 0, droppedLayers: 0 });
      const last = await gpu.read(taps.get(`hidden.${c.numLayers - 1}`)!);
      const pooled = await gpu.read(taps.get('pooled')!);
      expectClose(last, reference.last_hidden_state.flat(2), { atol: 1e-4, rtol: 0, label: 'last_hidden_state', shape: reference.last_hidden_state_shape });
      expectClose(pooled, reference.pooler_output.flat(), { atol: 1e-4, rtol: 0, label: 'pooler_output' });
      expect((await gpu.read(logits.value)).every(Number.isFinite)).toBe(true); // and it predicts
    } finally {
      trainer.tape.enabled = true;
      trainer.tape.reset();
      trainer.destroy();
      model.destroy();
    }
  });

  test('a LoRA exported in Hugging Face PEFT layout loads back with identical logits', async () => {
    const method: MethodConfig = { kind: 'lora', r: 4, alpha: 8, targets: ['query', 'value', 'output'] };
    const s = await trained(method);
    const values = await s.model.store.read((p) => p.group !== 'frozen');
    const shapes = new Map([...values.keys()].map((n) => [n, s.model.store.params.get(n)!.shape]));
    const files = exportPeftLora(values, shapes, { r: 4, alpha: 8, targetModules: method.targets.map(peftTargetName), baseModel: 'tiny' });
    expect(JSON.parse(files['adapter_config.json']).peft_type).toBe('LORA');
    const back = importPeftLora({ config: files['adapter_config.json'], weights: files['adapter_model.safetensors'] });
    expect([...back.params.keys()].sort()).toEqual([...values.keys()].sort());
    const again = BertModel.create(s.gpu, s.config, s.params, { ...method, r: back.r, alpha: back.alpha }, { mode: 'none', n: 0 }, new Rng(99));
    for (const [n, v] of back.params) again.store.write(n, v);
    const t2 = new Trainer(s.gpu, again, TRAIN);
    try {
      const a = await s.trainer.predictBatch(s.batch), b = await t2.predictBatch(s.batch);
      expect(b.logits).toEqual(a.logits);
    } finally {
      t2.destroy();
      again.destroy();
      s.trainer.destroy();
      s.model.destroy();
    }
  });

  test('a fully fine-tuned model exported as a Hugging Face checkpoint loads back with identical logits', async () => {
    const s = await trained({ kind: 'full' });
    const values = await s.model.store.read();
    const shapes = new Map([...values.keys()].map((n) => [n, s.model.store.params.get(n)!.shape]));
    const files = exportHfCheckpoint({ ...s.config, hiddenAct: 'gelu', modelType: 'bert' }, values, shapes, s.vocab);
    const ckpt = loadBertCheckpoint({ config: files['config.json'], weights: files['model.safetensors'], vocab: files['vocab.txt'] });
    expect(ckpt.missing).toEqual([]);
    const again = BertModel.create(s.gpu, { ...ckpt.config, hiddenDropout: 0, attentionDropout: 0 }, ckpt.params, { kind: 'full' }, { mode: 'none', n: 0 }, new Rng(5));
    const t2 = new Trainer(s.gpu, again, TRAIN);
    try {
      const a = await s.trainer.predictBatch(s.batch), b = await t2.predictBatch(s.batch);
      expect(b.logits).toEqual(a.logits);
    } finally {
      t2.destroy();
      again.destroy();
      s.trainer.destroy();
      s.model.destroy();
    }
  });
});
