// Exports: PEFT LoRA (and back), the full HF checkpoint (read back by our own importer), adapter
// modules (and back), and RFC 4180 CSV of metrics.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import {
  exportAdapterModules,
  exportHfCheckpoint,
  exportPeftLora,
  ExportError,
  importAdapterModules,
  importPeftLora,
  metricsToCsv,
} from '../../src/io/export';
import { expectedBertParams, loadBertCheckpoint, parseBertConfig, type BertConfig } from '../../src/io/hf';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors';
import { expectClose, randomArray } from '../util/compare';

const config: BertConfig = parseBertConfig({
  vocab_size: 20, hidden_size: 8, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 16,
  max_position_embeddings: 12, id2label: { 0: 'negative', 1: 'positive' },
});

let seed = 1;
function param(shape: number[]): Float32Array {
  return randomArray(shape.reduce((a, b) => a * b, 1), seed++);
}

/** The base model, every parameter by canonical name. */
function baseModel(): { params: Map<string, Float32Array>; shapes: Map<string, number[]> } {
  const shapes = expectedBertParams(config);
  const params = new Map<string, Float32Array>();
  for (const [name, shape] of shapes) params.set(name, param(shape));
  return { params, shapes };
}

/** The base model plus LoRA factors (rank r) on `modules` of every layer: A [r, d_in], B [d_out, r]. */
function withLora(r: number, modules: Array<[string, number, number]>) {
  const { params, shapes } = baseModel();
  for (let l = 0; l < config.numLayers; l++) {
    for (const [path, dOut, dIn] of modules) {
      const prefix = `bert.encoder.layer.${l}.${path}`;
      shapes.set(`${prefix}.lora_A.weight`, [r, dIn]);
      params.set(`${prefix}.lora_A.weight`, param([r, dIn]));
      shapes.set(`${prefix}.lora_B.weight`, [dOut, r]);
      params.set(`${prefix}.lora_B.weight`, param([dOut, r]));
    }
  }
  return { params, shapes };
}

function expectExportError(fn: () => unknown, message: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected an ExportError matching ${message}`).toBeInstanceOf(ExportError);
  expect((caught as Error).message).toMatch(message);
}

describe('PEFT LoRA export', () => {
  it('writes PEFT keys and config, leaves the frozen base out, and importPeftLora gives back identical tensors and settings', () => {
    const { params, shapes } = withLora(4, [['attention.self.query', 8, 8], ['attention.self.value', 8, 8]]);
    const files = exportPeftLora(params, shapes, { r: 4, alpha: 16, targetModules: ['value', 'query'], baseModel: 'prajjwal1/bert-tiny', dropout: 0.1 });

    const config = JSON.parse(files['adapter_config.json']);
    expect(config).toMatchObject({
      peft_type: 'LORA', task_type: 'SEQ_CLS', r: 4, lora_alpha: 16, lora_dropout: 0.1, target_modules: ['query', 'value'],
      base_model_name_or_path: 'prajjwal1/bert-tiny', modules_to_save: ['classifier'], bias: 'none', fan_in_fan_out: false, inference_mode: true,
    });
    expect(Object.keys(config)).toEqual(Object.keys(config).sort());

    const stored = readSafetensors(files['adapter_model.safetensors']);
    expect(stored.metadata).toEqual({ format: 'pt' });
    expect([...stored.tensors.keys()].sort()).toEqual([
      'base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight',
      'base_model.model.bert.encoder.layer.0.attention.self.query.lora_B.weight',
      'base_model.model.bert.encoder.layer.0.attention.self.value.lora_A.weight',
      'base_model.model.bert.encoder.layer.0.attention.self.value.lora_B.weight',
      'base_model.model.bert.encoder.layer.1.attention.self.query.lora_A.weight',
      'base_model.model.bert.encoder.layer.1.attention.self.query.lora_B.weight',
      'base_model.model.bert.encoder.layer.1.attention.self.value.lora_A.weight',
      'base_model.model.bert.encoder.layer.1.attention.self.value.lora_B.weight',
      'base_model.model.classifier.bias',
      'base_model.model.classifier.weight',
    ]);
    expect(stored.tensors.get('base_model.model.bert.encoder.layer.1.attention.self.value.lora_A.weight')!.shape).toEqual([4, 8]);

    const back = importPeftLora({ config: files['adapter_config.json'], weights: files['adapter_model.safetensors'] });
    expect({ r: back.r, alpha: back.alpha, targetModules: back.targetModules, baseModel: back.baseModel, dropout: back.dropout }).toEqual({
      r: 4, alpha: 16, targetModules: ['query', 'value'], baseModel: 'prajjwal1/bert-tiny', dropout: 0.1,
    });
    expect(back.params.size).toBe(10);
    for (const [name, data] of back.params) {
      expect(back.shapes.get(name), name).toEqual(shapes.get(name));
      expectClose(data, params.get(name)!, { atol: 0, rtol: 0, label: name });
    }
  });

  it('targets the FFN output with a regex, since PEFT list entry "output.dense" would also catch attention.output.dense', () => {
    const { params, shapes } = withLora(2, [['attention.self.key', 8, 8], ['intermediate.dense', 16, 8], ['output.dense', 8, 16]]);
    const files = exportPeftLora(params, shapes, { r: 2, alpha: 4, targetModules: ['key', 'intermediate.dense', 'output.dense'], baseModel: 'x' });
    const target = JSON.parse(files['adapter_config.json']).target_modules;
    expect(typeof target).toBe('string');
    // PEFT applies a string with re.fullmatch to every module name; JS regex semantics agree here
    const selects = (name: string) => new RegExp(`^(?:${target})$`).test(name);
    expect(selects('bert.encoder.layer.0.output.dense')).toBe(true);
    expect(selects('bert.encoder.layer.11.intermediate.dense')).toBe(true);
    expect(selects('bert.encoder.layer.1.attention.self.key')).toBe(true);
    expect(selects('bert.encoder.layer.0.attention.output.dense')).toBe(false);
    expect(selects('bert.encoder.layer.0.attention.self.query')).toBe(false);
    expect(selects('bert.pooler.dense')).toBe(false);
    const back = importPeftLora({ config: files['adapter_config.json'], weights: files['adapter_model.safetensors'] });
    expect(back.targetModules).toEqual(['key', 'intermediate.dense', 'output.dense']);
    expectClose(back.params.get('bert.encoder.layer.1.output.dense.lora_B.weight')!, params.get('bert.encoder.layer.1.output.dense.lora_B.weight')!, { atol: 0, rtol: 0 });

    const attentionOutput = withLora(2, [['attention.output.dense', 8, 8]]);
    const listed = exportPeftLora(attentionOutput.params, attentionOutput.shapes, { r: 2, alpha: 4, targetModules: ['attention.output.dense'], baseModel: 'x' });
    expect(JSON.parse(listed['adapter_config.json']).target_modules).toEqual(['attention.output.dense']);
    expect(importPeftLora({ config: listed['adapter_config.json'], weights: listed['adapter_model.safetensors'] }).targetModules).toEqual(['attention.output.dense']);
  });

  it('refuses inconsistent LoRA parameters, naming the module', () => {
    const opts = { r: 4, alpha: 8, targetModules: ['query'], baseModel: 'x' };
    const lonely = withLora(4, [['attention.self.query', 8, 8]]);
    lonely.params.delete('bert.encoder.layer.1.attention.self.query.lora_B.weight');
    expectExportError(() => exportPeftLora(lonely.params, lonely.shapes, opts), /bert.encoder.layer.1.attention.self.query has lora_A but no lora_B/);
    const rank2 = withLora(2, [['attention.self.query', 8, 8]]);
    expectExportError(() => exportPeftLora(rank2.params, rank2.shapes, opts), /lora_A.weight has shape \[2, 8\], expected \[r = 4, d_in\]/);
    const onValue = withLora(4, [['attention.self.value', 8, 8]]);
    expectExportError(() => exportPeftLora(onValue.params, onValue.shapes, opts), /LoRA factor on "value", which is not in targetModules \[query\]/);
    const headless = withLora(4, [['attention.self.query', 8, 8]]);
    headless.params.delete('classifier.bias');
    expectExportError(() => exportPeftLora(headless.params, headless.shapes, opts), /params lack classifier.bias/);
    const ok = withLora(4, [['attention.self.query', 8, 8]]);
    expectExportError(() => exportPeftLora(ok.params, ok.shapes, { ...opts, targetModules: ['query', 'value'] }), /targetModules lists "value" but params hold no LoRA factors/);
    expectExportError(() => exportPeftLora(ok.params, ok.shapes, { ...opts, targetModules: ['dense'] }), /unknown LoRA target "dense"/);
  });

  it('importPeftLora reads older PEFT key forms and refuses LoRA variants we do not compute', () => {
    const A = new Float32Array(2 * 8).fill(0.5), B = new Float32Array(8 * 2).fill(-1);
    const weights = writeSafetensors({
      'base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.default.weight': { shape: [2, 8], data: A },
      'base_model.model.bert.encoder.layer.0.attention.self.query.lora_B.default.weight': { shape: [8, 2], data: B },
      'base_model.model.classifier.modules_to_save.default.weight': { shape: [2, 8], data: new Float32Array(16) },
    });
    const peftConfig = { peft_type: 'LORA', r: 2, lora_alpha: 16, target_modules: ['query', 'value'], task_type: 'SEQ_CLS', bias: 'none' };
    const back = importPeftLora({ config: JSON.stringify(peftConfig), weights });
    expect([...back.params.keys()].sort()).toEqual([
      'bert.encoder.layer.0.attention.self.query.lora_A.weight', 'bert.encoder.layer.0.attention.self.query.lora_B.weight', 'classifier.weight',
    ]);
    expect(back.targetModules).toEqual(['query']);
    const refused: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...peftConfig, peft_type: 'IA3' }, /peft_type is "IA3", only "LORA"/],
      [{ ...peftConfig, use_dora: true }, /DoRA is not supported/],
      [{ ...peftConfig, use_rslora: true }, /use_rslora/],
      [{ ...peftConfig, bias: 'all' }, /bias "all" is not supported/],
      [{ ...peftConfig, r: 4 }, /has shape \[2, 8\], inconsistent with r = 4/],
      [{ ...peftConfig, target_modules: ['value'] }, /is on a module that target_modules \["value"\] does not select/],
      [{ ...peftConfig, rank_pattern: { query: 4 } }, /rank_pattern/],
    ];
    for (const [cfg, message] of refused) expectExportError(() => importPeftLora({ config: JSON.stringify(cfg), weights }), message);
    const bare = writeSafetensors({ 'bert.encoder.layer.0.attention.self.query.lora_A.weight': { shape: [2, 8], data: A } });
    expectExportError(() => importPeftLora({ config: JSON.stringify(peftConfig), weights: bare }), /lacks the "base_model.model." prefix/);
    expectExportError(() => importPeftLora({ config: '{r: 2}', weights }), /adapter_config.json is not valid JSON/);
  });
});

describe('Hugging Face checkpoint export', () => {
  it('loadBertCheckpoint reads the export back with identical tensors, config and vocab', () => {
    const { params, shapes } = baseModel();
    const vocab = Array.from({ length: 20 }, (_, i) => `t${i}`).join('\n') + '\n';
    const files = exportHfCheckpoint(config, params, shapes, vocab);
    const hfConfig = JSON.parse(files['config.json']);
    expect(hfConfig.architectures).toEqual(['BertForSequenceClassification']);
    expect(hfConfig.id2label).toEqual({ 0: 'negative', 1: 'positive' });
    expect(readSafetensors(files['model.safetensors']).metadata).toEqual({ format: 'pt' });
    const back = loadBertCheckpoint({ config: files['config.json'], weights: files['model.safetensors'], vocab: files['vocab.txt'] });
    expect(back.config).toEqual(config);
    expect(back.missing).toEqual([]);
    expect(back.unexpected).toEqual([]);
    expect(back.vocab).toBe(vocab);
    expect(back.params.size).toBe(params.size);
    for (const [name, data] of params) expectClose(back.params.get(name)!, data, { atol: 0, rtol: 0, label: name, shape: shapes.get(name) });
  });

  it('round-trips the script-made fixture once a classifier is added', () => {
    const dir = new URL('../fixtures/tiny-hf/', import.meta.url);
    const loaded = loadBertCheckpoint({
      config: readFileSync(new URL('config.json', dir), 'utf8'),
      weights: new Uint8Array(readFileSync(new URL('model.safetensors', dir))),
    });
    const shapes = expectedBertParams(loaded.config);
    for (const name of loaded.missing) loaded.params.set(name, param(shapes.get(name)!));
    const files = exportHfCheckpoint(loaded.config, loaded.params, shapes);
    expect(files['vocab.txt']).toBeUndefined();
    const back = loadBertCheckpoint({ config: files['config.json'], weights: files['model.safetensors'] });
    expect(back.missing).toEqual([]);
    for (const [name, data] of loaded.params) expectClose(back.params.get(name)!, data, { atol: 0, rtol: 0, label: name });
  });

  it('refuses parameters a transformers BERT cannot hold, missing ones, and wrong shapes', () => {
    const lora = withLora(2, [['attention.self.query', 8, 8]]);
    expectExportError(() => exportHfCheckpoint(config, lora.params, lora.shapes), /lora_A.weight.*not part of a Hugging Face BertForSequenceClassification: merge LoRA/);
    const partial = baseModel();
    partial.params.delete('bert.pooler.dense.bias');
    expectExportError(() => exportHfCheckpoint(config, partial.params, partial.shapes), /params lack bert.pooler.dense.bias/);
    const transposed = baseModel();
    transposed.shapes.set('bert.encoder.layer.0.intermediate.dense.weight', [8, 16]);
    expectExportError(() => exportHfCheckpoint(config, transposed.params, transposed.shapes), /bert.encoder.layer.0.intermediate.dense.weight has shape \[8, 16\] but the config needs \[16, 8\]/);
    const short = baseModel();
    short.params.set('classifier.bias', new Float32Array(1));
    expectExportError(() => exportHfCheckpoint(config, short.params, short.shapes), /classifier.bias: shape \[2\] has 2 elements but its data has 1/);
  });
});

describe('adapter module export', () => {
  const adapterParams = () => {
    const params = new Map<string, Float32Array>();
    const shapes = new Map<string, number[]>();
    for (let l = 0; l < 2; l++) {
      for (let e = 0; e < 3; e++) {
        const p = `bert.encoder.layer.${l}.output.adamix.expert.${e}`;
        shapes.set(`${p}.down.weight`, [2, 8]).set(`${p}.down.bias`, [2]);
        params.set(`${p}.down.weight`, param([2, 8])).set(`${p}.down.bias`, param([2]));
      }
      shapes.set(`bert.encoder.layer.${l}.output.adamix.up.weight`, [8, 2]);
      params.set(`bert.encoder.layer.${l}.output.adamix.up.weight`, param([8, 2]));
    }
    shapes.set('classifier.weight', [2, 8]).set('classifier.bias', [2]);
    params.set('classifier.weight', param([2, 8])).set('classifier.bias', param([2]));
    return { params, shapes };
  };
  const meta = {
    method: 'adamix', base_model: 'prajjwal1/bert-tiny', hidden_size: 8, num_layers: 2, bottleneck: 2, num_labels: 2,
    experts: 3, shared_up: true, merged: false, labels: ['negative', 'positive'], seed: 42,
  };

  it('writes the documented config (derived keys filled in) and reads back identical tensors', () => {
    const { params, shapes } = adapterParams();
    const files = exportAdapterModules(params, shapes, meta);
    const written = JSON.parse(files['adapter_config.json']);
    expect(written).toEqual({
      format: 'peft-playground-adapter', format_version: 1, ...meta,
      reduction_factor: 4, non_linearity: 'gelu', placement: ['ffn_output'], dropped_layers: 0,
    });
    const back = importAdapterModules({ config: files['adapter_config.json'], weights: files['adapter_model.safetensors'] });
    expect(back.meta).toEqual(written);
    expect(back.params.size).toBe(params.size);
    for (const [name, data] of params) {
      expect(back.shapes.get(name)).toEqual(shapes.get(name));
      expectClose(back.params.get(name)!, data, { atol: 0, rtol: 0, label: name });
    }
  });

  it('Houlsby defaults to both placements; bad meta is refused, naming the key', () => {
    const { params, shapes } = adapterParams();
    const houlsby = exportAdapterModules(params, shapes, { ...meta, method: 'houlsby', experts: undefined, merged: undefined, shared_up: undefined });
    expect(JSON.parse(houlsby['adapter_config.json']).placement).toEqual(['attention_output', 'ffn_output']);
    expectExportError(() => exportAdapterModules(params, shapes, { ...meta, method: 'prefix' }), /method must be one of houlsby, pfeiffer, adamix, got "prefix"/);
    expectExportError(() => exportAdapterModules(params, shapes, { ...meta, merged: undefined }), /merged must be true or false for adamix/);
    expectExportError(() => exportAdapterModules(params, shapes, { ...meta, method: 'pfeiffer' }), /experts must be 1 for pfeiffer, got 3/);
    expectExportError(() => exportAdapterModules(params, shapes, { ...meta, bottleneck: 0 }), /bottleneck must be a positive integer, got 0/);
    expectExportError(() => exportAdapterModules(params, shapes, { ...meta, labels: ['only-one'] }), /labels must be a list of 2 strings/);
    expectExportError(() => exportAdapterModules(params, shapes, { ...meta, placement: ['attention_input'] }), /placement must be a non-empty list/);
    shapes.delete('classifier.bias');
    expectExportError(() => exportAdapterModules(params, shapes, meta), /no shape given for parameter classifier.bias/);
    expectExportError(() => importAdapterModules({ config: JSON.stringify({ ...meta, format: 'other' }), weights: new Uint8Array(16) }), /format is "other"/);
  });
});

describe('metricsToCsv', () => {
  it('takes the header from the union of keys and quotes per RFC 4180', () => {
    const csv = metricsToCsv([
      { step: 1, loss: 0.6931471805599453, method: 'lora' },
      { step: 2, loss: null, accuracy: 0.5, method: 'adapter, "houlsby"' },
      { step: 3, loss: NaN, note: 'line one\nline two', method: ' padded' },
      { step: 4, loss: Infinity, accuracy: -0, method: 'crlf\r\n' },
    ]);
    expect(csv).toBe(
      'step,loss,method,accuracy,note\r\n' +
        '1,0.6931471805599453,lora,,\r\n' +
        '2,,"adapter, ""houlsby""",0.5,\r\n' +
        '3,NaN," padded",,"line one\nline two"\r\n' +
        '4,Infinity,"crlf\r\n",0,\r\n',
    );
    expect(metricsToCsv([])).toBe('');
    expect(metricsToCsv([{ 'a,b': 1, 'say "hi"': 'x' }])).toBe('"a,b","say ""hi"""\r\n1,x\r\n');
  });
});
