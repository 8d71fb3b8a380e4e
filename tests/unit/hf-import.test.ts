// Hugging Face BERT import: config parsing and its refusals, checkpoint-name variants, shape checks,
// the script-made fixture in tests/fixtures/tiny-hf, and the URL path against a real local HTTP
// server (no internet here: the hub is only exercised through the id → URL resolution).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import {
  canonicalBertName,
  configToHf,
  expectedBertParams,
  fetchBertCheckpoint,
  HfImportError,
  loadBertCheckpoint,
  parseBertConfig,
  resolveHfModelUrl,
  type BertConfig,
} from '../../src/io/hf';
import { readSafetensors, writeSafetensors, type StWriteTensor } from '../../src/io/safetensors';
import { expectClose, randomArray } from '../util/compare';

const FIXTURE = new URL('../fixtures/tiny-hf/', import.meta.url);

/** hidden 8, 2 layers, 2 heads, vocab 20: the shape of every hand-built checkpoint below. */
const tinyConfigJson = {
  model_type: 'bert',
  vocab_size: 20,
  hidden_size: 8,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  intermediate_size: 16,
  max_position_embeddings: 12,
  type_vocab_size: 2,
};
const tinyConfig = parseBertConfig(tinyConfigJson);

/** Canonical name → deterministic values, for every parameter of the model. */
function canonicalWeights(config: BertConfig): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  let seed = 1;
  for (const [name, shape] of expectedBertParams(config)) {
    out.set(name, { shape, data: randomArray(shape.reduce((a, b) => a * b, 1), seed++) });
  }
  return out;
}

/**
 * The names a BertModel / TF-converted checkpoint uses for a canonical name: no `bert.` prefix,
 * and legacy gamma/beta on the LayerNorms of layer 1.
 */
function legacyName(canonical: string): string {
  let name = canonical.replace(/^bert\./, '');
  if (name.startsWith('encoder.layer.1.') || name.startsWith('embeddings.LayerNorm')) {
    name = name.replace(/LayerNorm\.weight$/, 'LayerNorm.gamma').replace(/LayerNorm\.bias$/, 'LayerNorm.beta');
  }
  return name;
}

function expectHfError(fn: () => unknown, message: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected an HfImportError matching ${message}`).toBeInstanceOf(HfImportError);
  expect((caught as Error).message).toMatch(message);
}

async function expectHfRejection(promise: Promise<unknown>, message: RegExp): Promise<void> {
  let caught: unknown;
  try {
    await promise;
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected an HfImportError matching ${message}`).toBeInstanceOf(HfImportError);
  expect((caught as Error).message).toMatch(message);
}

describe('parseBertConfig', () => {
  it('fills HF BertConfig defaults for an old config without model_type (as prajjwal1/bert-tiny ships)', () => {
    const c = parseBertConfig({
      hidden_size: 128, hidden_act: 'gelu', initializer_range: 0.02, vocab_size: 30522, hidden_dropout_prob: 0.1,
      num_attention_heads: 2, type_vocab_size: 2, max_position_embeddings: 512, num_hidden_layers: 2,
      intermediate_size: 512, attention_probs_dropout_prob: 0.1,
    });
    expect(c).toEqual({
      vocabSize: 30522, hiddenSize: 128, numLayers: 2, numHeads: 2, intermediateSize: 512, maxPositions: 512,
      typeVocabSize: 2, layerNormEps: 1e-12, numLabels: 2, hiddenAct: 'gelu', hiddenDropout: 0.1,
      attentionDropout: 0.1, modelType: 'bert',
    });
    // bert-tiny's published size: 4,385,920 parameters without the classifier (about 4.4 M)
    let count = 0;
    for (const shape of expectedBertParams(c, { withClassifier: false }).values()) count += shape.reduce((a, b) => a * b, 1);
    expect(count).toBe(4_385_920);
  });

  it('takes the label count and names from id2label, which wins over num_labels as in HF', () => {
    const c = parseBertConfig({ ...tinyConfigJson, num_labels: 5, id2label: { 0: 'negative', 1: 'neutral', 2: 'positive' } });
    expect(c.numLabels).toBe(3);
    expect(c.id2label).toEqual({ 0: 'negative', 1: 'neutral', 2: 'positive' });
    const defaults = parseBertConfig({ ...tinyConfigJson, id2label: { 0: 'LABEL_0', 1: 'LABEL_1', 2: 'LABEL_2' } });
    expect(defaults.numLabels).toBe(3);
    expect(defaults.id2label).toBeUndefined();
    expect(parseBertConfig({ ...tinyConfigJson, num_labels: 4 }).numLabels).toBe(4);
  });

  it('configToHf writes HF field names that parse back to the same config', () => {
    const c: BertConfig = { ...tinyConfig, numLabels: 3, id2label: { 0: 'neg', 1: 'neu', 2: 'pos' } };
    const hf = configToHf(c);
    expect(hf.architectures).toEqual(['BertForSequenceClassification']);
    expect(hf.model_type).toBe('bert');
    expect(hf.num_hidden_layers).toBe(2);
    expect(hf.label2id).toEqual({ neg: 0, neu: 1, pos: 2 });
    expect(parseBertConfig(JSON.parse(JSON.stringify(hf)))).toEqual(c);
    expect(parseBertConfig(configToHf(tinyConfig))).toEqual(tinyConfig);
  });

  it('refuses what the encoder does not implement, saying why', () => {
    expectHfError(() => parseBertConfig({ ...tinyConfigJson, model_type: 'roberta' }), /roberta is not supported: only BERT encoders/);
    expectHfError(() => parseBertConfig({ ...tinyConfigJson, model_type: 'distilbert' }), /distilbert is not supported/);
    expectHfError(() => parseBertConfig({ ...tinyConfigJson, hidden_act: 'gelu_new' }), /hidden_act "gelu_new" is not supported: only "gelu" \(exact erf/);
    expectHfError(() => parseBertConfig({ ...tinyConfigJson, hidden_act: 'relu' }), /hidden_act "relu" is not supported/);
    expectHfError(() => parseBertConfig({ ...tinyConfigJson, hidden_size: 10, num_attention_heads: 4 }), /hidden_size 10 is not divisible by num_attention_heads 4/);
    expectHfError(() => parseBertConfig({ ...tinyConfigJson, position_embedding_type: 'relative_key' }), /position_embedding_type "relative_key" is not supported/);
    expectHfError(() => parseBertConfig({ ...tinyConfigJson, is_decoder: true }), /only bidirectional BERT encoders/);
  });

  it('refuses missing or invalid numbers, naming the field', () => {
    expectHfError(() => parseBertConfig({ ...tinyConfigJson, hidden_size: '8' }), /hidden_size must be a positive integer, got "8"/);
    expectHfError(() => parseBertConfig({ ...tinyConfigJson, num_hidden_layers: -2 }), /num_hidden_layers must be a positive integer, got -2/);
    expectHfError(() => parseBertConfig({ ...tinyConfigJson, vocab_size: 20.5 }), /vocab_size must be a positive integer, got 20.5/);
    expectHfError(() => parseBertConfig({ ...tinyConfigJson, intermediate_size: null }), /intermediate_size must be a positive integer, got null/);
    expectHfError(() => parseBertConfig({ ...tinyConfigJson, layer_norm_eps: 0 }), /layer_norm_eps must be a small positive number/);
    expectHfError(() => parseBertConfig({ ...tinyConfigJson, hidden_dropout_prob: 1.5 }), /hidden_dropout_prob must be a number in \[0, 1\)/);
    expectHfError(() => parseBertConfig({ ...tinyConfigJson, id2label: { 0: 'a', 2: 'b' } }), /id2label keys must be 0..1, got "2"/);
    expectHfError(() => parseBertConfig([1, 2]), /not a JSON object/);
    expectHfError(() => loadBertCheckpoint({ config: '{"hidden_size": 8,', weights: new ArrayBuffer(0) }), /config.json is not valid JSON/);
  });
});

describe('checkpoint names', () => {
  it('canonicalBertName adds the bert. prefix, renames gamma/beta, and drops heads and buffers', () => {
    const cases: Array<[string, string | null]> = [
      ['embeddings.word_embeddings.weight', 'bert.embeddings.word_embeddings.weight'],
      ['encoder.layer.3.attention.self.query.bias', 'bert.encoder.layer.3.attention.self.query.bias'],
      ['pooler.dense.weight', 'bert.pooler.dense.weight'],
      ['bert.encoder.layer.0.output.LayerNorm.gamma', 'bert.encoder.layer.0.output.LayerNorm.weight'],
      ['embeddings.LayerNorm.beta', 'bert.embeddings.LayerNorm.bias'],
      ['bert.embeddings.LayerNorm.weight', 'bert.embeddings.LayerNorm.weight'],
      ['classifier.weight', 'classifier.weight'],
      ['cls.predictions.transform.dense.weight', null],
      ['cls.seq_relationship.bias', null],
      ['bert.embeddings.position_ids', null],
      ['embeddings.token_type_ids', null],
      ['qa_outputs.weight', 'qa_outputs.weight'],
    ];
    for (const [name, canonical] of cases) expect(canonicalBertName(name), name).toBe(canonical);
  });

  it('expectedBertParams lists the HF names with [out, in] Linear shapes, pooler and classifier optional', () => {
    const shapes = expectedBertParams(tinyConfig);
    expect(shapes.get('bert.embeddings.word_embeddings.weight')).toEqual([20, 8]);
    expect(shapes.get('bert.embeddings.position_embeddings.weight')).toEqual([12, 8]);
    expect(shapes.get('bert.encoder.layer.1.intermediate.dense.weight')).toEqual([16, 8]);
    expect(shapes.get('bert.encoder.layer.1.output.dense.weight')).toEqual([8, 16]);
    expect(shapes.get('bert.encoder.layer.0.attention.output.LayerNorm.bias')).toEqual([8]);
    expect(shapes.get('classifier.weight')).toEqual([2, 8]);
    expect(shapes.size).toBe(5 + 2 * 16 + 2 + 2);
    const body = expectedBertParams(tinyConfig, { withPooler: false, withClassifier: false });
    expect([...body.keys()].some((n) => n.includes('pooler') || n.startsWith('classifier'))).toBe(false);
    expect(body.size).toBe(5 + 2 * 16);
  });
});

describe('loadBertCheckpoint', () => {
  it('loads a checkpoint with name variants (no bert. prefix, gamma/beta, cls.* heads, position_ids) by canonical name', () => {
    const weights = canonicalWeights(tinyConfig);
    const file: Record<string, StWriteTensor> = {};
    for (const [name, t] of weights) if (!name.startsWith('classifier.')) file[legacyName(name)] = t;
    file['cls.predictions.bias'] = { shape: [20], data: randomArray(20, 99) };
    file['cls.predictions.transform.dense.weight'] = { shape: [8, 8], data: randomArray(64, 98) };
    file['embeddings.position_ids'] = { shape: [1, 12], data: new Int32Array(12).map((_, i) => i), dtype: 'I64' };
    expect(Object.keys(file)).toContain('encoder.layer.1.output.LayerNorm.gamma');

    const result = loadBertCheckpoint({ config: JSON.stringify(tinyConfigJson), weights: writeSafetensors(file).buffer as ArrayBuffer });
    expect(result.config).toEqual(tinyConfig);
    expect(result.missing).toEqual(['classifier.weight', 'classifier.bias']);
    expect(result.unexpected).toEqual([]);
    expect(result.vocab).toBeUndefined();
    expect([...result.params.keys()].sort()).toEqual([...weights.keys()].filter((n) => !n.startsWith('classifier.')).sort());
    for (const [name, param] of result.params) {
      expectClose(param, weights.get(name)!.data, { atol: 0, rtol: 0, label: name, shape: weights.get(name)!.shape });
    }
  });

  it('reports tensors that are not BERT parameters as unexpected, and loads a full classifier checkpoint', () => {
    const file: Record<string, StWriteTensor> = Object.fromEntries(canonicalWeights(tinyConfig));
    file['qa_outputs.weight'] = { shape: [2, 8], data: randomArray(16, 5) };
    const result = loadBertCheckpoint({ config: tinyConfigJson, weights: writeSafetensors(file) });
    expect(result.missing).toEqual([]);
    expect(result.unexpected).toEqual(['qa_outputs.weight']);
    expect(result.params.get('classifier.weight')!.length).toBe(16);
  });

  it('a tensor of the wrong shape is an error naming it and both shapes', () => {
    const file: Record<string, StWriteTensor> = {};
    for (const [name, t] of canonicalWeights(tinyConfig)) file[legacyName(name)] = t;
    file['encoder.layer.1.intermediate.dense.weight'] = { shape: [8, 16], data: new Float32Array(128) };
    expectHfError(
      () => loadBertCheckpoint({ config: tinyConfigJson, weights: writeSafetensors(file) }),
      /tensor "encoder.layer.1.intermediate.dense.weight" \(bert.encoder.layer.1.intermediate.dense.weight\) has shape \[8, 16\] but the config expects \[16, 8\]/,
    );
  });

  it('a missing encoder weight is an error; a missing pooler is allowed and listed', () => {
    const weights = canonicalWeights(tinyConfig);
    const withoutValue: Record<string, StWriteTensor> = Object.fromEntries(weights);
    delete withoutValue['bert.encoder.layer.0.attention.self.value.bias'];
    expectHfError(
      () => loadBertCheckpoint({ config: tinyConfigJson, weights: writeSafetensors(withoutValue) }),
      /lacks BERT weights the config requires: bert.encoder.layer.0.attention.self.value.bias/,
    );
    const withoutPooler: Record<string, StWriteTensor> = Object.fromEntries(weights);
    delete withoutPooler['bert.pooler.dense.weight'];
    delete withoutPooler['bert.pooler.dense.bias'];
    expect(loadBertCheckpoint({ config: tinyConfigJson, weights: writeSafetensors(withoutPooler) }).missing).toEqual([
      'bert.pooler.dense.weight', 'bert.pooler.dense.bias',
    ]);
  });

  it('the same parameter under two names, an integer weight, or a bad safetensors file is an error', () => {
    const file: Record<string, StWriteTensor> = Object.fromEntries(canonicalWeights(tinyConfig));
    file['pooler.dense.bias'] = file['bert.pooler.dense.bias'];
    expectHfError(() => loadBertCheckpoint({ config: tinyConfigJson, weights: writeSafetensors(file) }), /both "bert.pooler.dense.bias" and "pooler.dense.bias"/);
    const ints: Record<string, StWriteTensor> = Object.fromEntries(canonicalWeights(tinyConfig));
    ints['bert.pooler.dense.bias'] = { shape: [8], data: new Int32Array(8) };
    expectHfError(() => loadBertCheckpoint({ config: tinyConfigJson, weights: writeSafetensors(ints) }), /tensor "bert.pooler.dense.bias" has integer dtype I32/);
    expectHfError(() => loadBertCheckpoint({ config: tinyConfigJson, weights: new Uint8Array(4) }), /model.safetensors is not a valid safetensors file: .*shorter than the 8-byte/);
  });

  it('numLabels replaces a classifier of another size (re-initialised by the caller), keeps one of the same size', () => {
    const threeLabels = { ...tinyConfigJson, id2label: { 0: 'a', 1: 'b', 2: 'c' } };
    const config = parseBertConfig(threeLabels);
    const file = writeSafetensors(Object.fromEntries(canonicalWeights(config)));
    const result = loadBertCheckpoint({ config: threeLabels, weights: file }, { numLabels: 2 });
    expect(result.config.numLabels).toBe(2);
    expect(result.config.id2label).toBeUndefined();
    expect(result.missing).toEqual(['classifier.weight', 'classifier.bias']);
    expect(result.unexpected.sort()).toEqual(['classifier.bias', 'classifier.weight']);
    const same = loadBertCheckpoint({ config: threeLabels, weights: file }, { numLabels: 3 });
    expect(same.missing).toEqual([]);
    expect(same.config.id2label).toEqual({ 0: 'a', 1: 'b', 2: 'c' });
    // without the override a mismatched classifier is a plain shape error
    const wrongHead = writeSafetensors({ ...Object.fromEntries(canonicalWeights(tinyConfig)), 'classifier.bias': { shape: [3], data: new Float32Array(3) } });
    expectHfError(() => loadBertCheckpoint({ config: tinyConfigJson, weights: wrongHead }), /tensor "classifier.bias" has shape \[3\] but the config expects \[2\]/);
  });

  it('a vocab.txt with more tokens than vocab_size is refused', () => {
    const weights = writeSafetensors(Object.fromEntries(canonicalWeights(tinyConfig)));
    const vocab21 = Array.from({ length: 21 }, (_, i) => `tok${i}`).join('\n') + '\n';
    expectHfError(() => loadBertCheckpoint({ config: tinyConfigJson, weights, vocab: vocab21 }), /vocab.txt has 21 tokens but the model's vocab_size is 20/);
    const vocab20 = Array.from({ length: 20 }, (_, i) => `tok${i}`).join('\r\n') + '\r\n';
    expect(loadBertCheckpoint({ config: tinyConfigJson, weights, vocab: vocab20 }).vocab).toBe(vocab20);
  });
});

describe('the tiny HF-layout checkpoint made by scripts/make-tiny-hf-checkpoint.py', () => {
  const configText = readFileSync(new URL('config.json', FIXTURE), 'utf8');
  const weightBytes = new Uint8Array(readFileSync(new URL('model.safetensors', FIXTURE)));
  const vocab = readFileSync(new URL('vocab.txt', FIXTURE), 'utf8');

  it('loads: every encoder weight present, pooler included, only the classifier missing, heads ignored', () => {
    const result = loadBertCheckpoint({ config: configText, weights: weightBytes, vocab });
    expect(result.config).toMatchObject({ vocabSize: 30, hiddenSize: 8, numLayers: 2, numHeads: 2, intermediateSize: 16, maxPositions: 16 });
    expect(result.missing).toEqual(['classifier.weight', 'classifier.bias']);
    expect(result.unexpected).toEqual([]);
    expect(result.params.size).toBe(expectedBertParams(result.config).size - 2);
    expect(result.vocab!.split('\n')[2]).toBe('[CLS]');
    // values agree with the raw file (the script wrote them under exactly these names)
    const raw = readSafetensors(weightBytes).tensors;
    for (const [name, param] of result.params) expectClose(param, raw.get(name)!.data, { atol: 0, rtol: 0, label: name });
    expect(raw.get('bert.embeddings.position_ids')!.dtype).toBe('I64');
  });

  it('our writer reproduces the Python-written file byte for byte', () => {
    const { tensors, metadata } = readSafetensors(weightBytes);
    const again = new Map<string, StWriteTensor>();
    for (const [name, t] of tensors) again.set(name, t.ints ? { shape: t.shape, data: t.ints, dtype: 'I64' } : { shape: t.shape, data: t.data });
    const bytes = writeSafetensors(again, metadata);
    expect(bytes.length).toBe(weightBytes.length);
    const firstDifference = bytes.findIndex((b, i) => b !== weightBytes[i]);
    expect(firstDifference, `first differing byte at ${firstDifference}`).toBe(-1);
  });
});

describe('resolveHfModelUrl', () => {
  it('resolves hub ids and model pages to the resolve/<revision> base', () => {
    const cases: Array<[string, string]> = [
      ['prajjwal1/bert-tiny', 'https://huggingface.co/prajjwal1/bert-tiny/resolve/main'],
      ['  prajjwal1/bert-tiny  ', 'https://huggingface.co/prajjwal1/bert-tiny/resolve/main'],
      ['bert-base-uncased', 'https://huggingface.co/bert-base-uncased/resolve/main'],
      ['https://huggingface.co/prajjwal1/bert-tiny', 'https://huggingface.co/prajjwal1/bert-tiny/resolve/main'],
      ['https://huggingface.co/prajjwal1/bert-tiny/', 'https://huggingface.co/prajjwal1/bert-tiny/resolve/main'],
      ['huggingface.co/prajjwal1/bert-tiny', 'https://huggingface.co/prajjwal1/bert-tiny/resolve/main'],
      ['https://hf.co/google/bert_uncased_L-2_H-128_A-2', 'https://huggingface.co/google/bert_uncased_L-2_H-128_A-2/resolve/main'],
      ['https://huggingface.co/prajjwal1/bert-tiny/tree/v1.0', 'https://huggingface.co/prajjwal1/bert-tiny/resolve/v1.0'],
      ['https://huggingface.co/prajjwal1/bert-tiny/blob/main/config.json', 'https://huggingface.co/prajjwal1/bert-tiny/resolve/main'],
      ['https://huggingface.co/prajjwal1/bert-tiny/resolve/abc123/', 'https://huggingface.co/prajjwal1/bert-tiny/resolve/abc123'],
      ['https://huggingface.co/bert-base-uncased/tree/main', 'https://huggingface.co/bert-base-uncased/resolve/main'],
      ['http://127.0.0.1:8080/models/tiny/', 'http://127.0.0.1:8080/models/tiny'],
      ['/models/tiny-hf', '/models/tiny-hf'],
    ];
    for (const [input, base] of cases) expect(resolveHfModelUrl(input), input).toBe(base);
  });

  it('refuses what is neither a model id nor a URL', () => {
    expectHfError(() => resolveHfModelUrl(''), /empty model id or URL/);
    expectHfError(() => resolveHfModelUrl('a/b/c'), /neither a Hugging Face model id/);
    expectHfError(() => resolveHfModelUrl('bert tiny'), /neither a Hugging Face model id/);
    expectHfError(() => resolveHfModelUrl('https://huggingface.co/datasets/glue'), /is a Hugging Face dataset, not a model/);
    expectHfError(() => resolveHfModelUrl('https://huggingface.co/'), /does not name a model/);
  });
});

describe('fetchBertCheckpoint from a local HTTP server', () => {
  let server: Server;
  let base: string;
  const requests: string[] = [];
  const configText = JSON.stringify(tinyConfigJson);
  const weights = canonicalWeights(tinyConfig);
  const modelBytes = writeSafetensors(Object.fromEntries(weights), { format: 'pt' });
  const vocab = Array.from({ length: 20 }, (_, i) => (i === 0 ? '[PAD]' : `w${i}`)).join('\n') + '\n';

  beforeAll(async () => {
    server = createServer((req, res) => {
      const path = req.url ?? '';
      requests.push(path);
      const [, dir, file] = path.split('/');
      const send = (body: string | Uint8Array, type: string) => {
        res.writeHead(200, { 'content-type': type, 'content-length': String(typeof body === 'string' ? Buffer.byteLength(body) : body.length) });
        res.end(body);
      };
      const notFound = () => {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('Entry not found');
      };
      if (dir === 'private') {
        res.writeHead(401);
        return res.end('unauthorized');
      }
      if (file === 'config.json') return dir === 'noconfig' ? notFound() : send(configText, 'application/json');
      if (file === 'vocab.txt') {
        if (dir === 'good') return send(vocab, 'text/plain');
        if (dir === 'broken-vocab') {
          res.writeHead(500);
          return res.end('oops');
        }
        return notFound();
      }
      if (file === 'model.safetensors') {
        if (dir === 'good' || dir === 'novocab' || dir === 'broken-vocab') {
          // three writes, so the client sees more than one chunk
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(modelBytes.length) });
          const third = Math.floor(modelBytes.length / 3);
          res.write(modelBytes.subarray(0, third));
          setTimeout(() => {
            res.write(modelBytes.subarray(third, 2 * third));
            setTimeout(() => res.end(modelBytes.subarray(2 * third)), 5);
          }, 5);
          return;
        }
        if (dir === 'cut-connection') {
          // promises the whole file, sends half, drops the connection: an interrupted download
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(modelBytes.length) });
          res.write(modelBytes.subarray(0, 1000));
          setTimeout(() => res.socket?.destroy(), 20);
          return;
        }
        if (dir === 'cut-file') return send(modelBytes.subarray(0, modelBytes.length - 100), 'application/octet-stream');
        return notFound();
      }
      notFound();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('downloads config, weights and vocab, reports progress up to the full size, and loads them', async () => {
    const progress: Array<[number, number]> = [];
    const result = await fetchBertCheckpoint(`${base}/good/`, undefined, (loaded, total) => progress.push([loaded, total]));
    expect(requests).toEqual(expect.arrayContaining(['/good/config.json', '/good/model.safetensors', '/good/vocab.txt']));
    expect(result.config).toEqual(tinyConfig);
    expect(result.vocab).toBe(vocab);
    expect(result.missing).toEqual([]);
    for (const [name, t] of weights) expectClose(result.params.get(name)!, t.data, { atol: 0, rtol: 0, label: name });
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress[progress.length - 1]).toEqual([modelBytes.length, modelBytes.length]);
    for (let i = 1; i < progress.length; i++) expect(progress[i][0]).toBeGreaterThanOrEqual(progress[i - 1][0]);
    expect(progress.every(([, total]) => total === modelBytes.length)).toBe(true);
  });

  it('treats vocab.txt as optional (404), but not a server error on it', async () => {
    const result = await fetchBertCheckpoint(`${base}/novocab`);
    expect(result.vocab).toBeUndefined();
    expect(result.params.size).toBe(weights.size);
    await expectHfRejection(fetchBertCheckpoint(`${base}/broken-vocab`), /vocab.txt failed with HTTP 500/);
  });

  it('a 404 on model.safetensors says so and that pytorch_model.bin is not supported', async () => {
    await expectHfRejection(
      fetchBertCheckpoint(`${base}/bin-only`),
      new RegExp(`no model.safetensors at ${base}/bin-only/model.safetensors \\(HTTP 404\\).*pytorch_model.bin .*is not supported`),
    );
  });

  it('a 404 on config.json and a 401 get their own messages', async () => {
    await expectHfRejection(fetchBertCheckpoint(`${base}/noconfig`), /no config.json at http:\/\/127.0.0.1:\d+\/noconfig\/config.json \(HTTP 404\)/);
    await expectHfRejection(fetchBertCheckpoint(`${base}/private`), /needs authorization \(HTTP 401\): the model is private or gated/);
  });

  it('a download cut off mid-way is reported as such, with how far it got', async () => {
    await expectHfRejection(fetchBertCheckpoint(`${base}/cut-connection`), /download of .*\/cut-connection\/model.safetensors was cut off after 1000 of \d+ bytes/);
  });

  it('a body that ends cleanly before its Content-Length is reported as cut off', async () => {
    const shortBody: typeof fetch = async (input) => {
      const url = String(input);
      if (!url.endsWith('model.safetensors')) return fetch(url.replace('/short/', '/good/'));
      return new Response(modelBytes.subarray(0, 500), { headers: { 'content-length': String(modelBytes.length) } });
    };
    await expectHfRejection(fetchBertCheckpoint(`${base}/short`, shortBody), new RegExp(`model.safetensors was cut off after 500 of ${modelBytes.length} bytes$`));
  });

  it('a file that arrives whole but is itself truncated fails the safetensors check', async () => {
    await expectHfRejection(fetchBertCheckpoint(`${base}/cut-file`), /model.safetensors is not a valid safetensors file: .*lie outside the data section/);
  });

  it('an unreachable server is reported as a network failure (offline or CORS)', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await expectHfRejection(fetchBertCheckpoint(`http://127.0.0.1:${port}/gone`), /could not fetch http:\/\/127.0.0.1:\d+\/gone\/config.json: .*offline.*CORS/);
  });

  it('uses the fetch function it is given (the hub id resolves to the hub URL)', async () => {
    const asked: string[] = [];
    const redirectToLocal: typeof fetch = (input) => {
      const url = String(input);
      asked.push(url);
      return fetch(url.replace('https://huggingface.co/prajjwal1/bert-tiny/resolve/main', `${base}/good`));
    };
    const result = await fetchBertCheckpoint('prajjwal1/bert-tiny', redirectToLocal);
    expect(asked[0]).toBe('https://huggingface.co/prajjwal1/bert-tiny/resolve/main/config.json');
    expect(result.vocab).toBe(vocab);
  });
});
