/**
 * Exports of a trained model, each a small set of named files (string or bytes) the page offers
 * for download. DOM-free and Node-free: runs in the Web Worker.
 *
 * - `exportPeftLora` / `importPeftLora`: a LoRA in Hugging Face PEFT's file layout, loadable with
 *   `PeftModel.from_pretrained(BertForSequenceClassification.from_pretrained(base), dir)`.
 * - `exportHfCheckpoint`: the whole model as a transformers checkpoint (config.json,
 *   model.safetensors, vocab.txt), loadable with `BertForSequenceClassification.from_pretrained`.
 * - `exportAdapterModules` / `importAdapterModules`: bottleneck adapters (Houlsby, Pfeiffer,
 *   AdaMix) in the playground's own layout, documented below.
 * - `metricsToCsv`: a run's metric series as RFC 4180 CSV.
 *
 * ## Adapter export (`adapter_config.json` + `adapter_model.safetensors`)
 *
 * `adapter_model.safetensors` holds only what was trained: the adapter modules (AdaMix: every
 * expert, or the merged average when `merged` is true) and the classification head, as float32
 * under the playground's parameter names; `__metadata__` is `{"format": "pt"}`. The frozen base
 * model is not included: load `base_model` first. `adapter_config.json` keys:
 *
 * | key | type | meaning |
 * |---|---|---|
 * | `format` | `"peft-playground-adapter"` | identifies this layout |
 * | `format_version` | `1` | bumped on incompatible changes |
 * | `method` | `"houlsby"` \| `"pfeiffer"` \| `"adamix"` | which adapter method trained the modules |
 * | `base_model` | string | the frozen base model (hub id or URL) the modules belong to |
 * | `hidden_size` | integer | `d` of the base model |
 * | `num_layers` | integer | encoder layers of the base model |
 * | `bottleneck` | integer | `m`, the adapter's hidden width (`W_down: [m, d]`, `W_up: [d, m]`) |
 * | `reduction_factor` | number | `d / m` (written from the two above when omitted) |
 * | `non_linearity` | `"gelu"` | the adapter activation `f` |
 * | `placement` | string[] | where adapters sit in each layer: `"attention_output"` (after the attention-output dense, Houlsby only) and/or `"ffn_output"` (after the FFN-output dense) |
 * | `experts` | integer | AdaMix: number of experts `M` (1 for Houlsby/Pfeiffer) |
 * | `shared_up` | boolean | AdaMix: one up-projection shared by all experts |
 * | `merged` | boolean | AdaMix: true when the file holds the expert average (one adapter per place), false when it holds all `M` experts |
 * | `dropped_layers` | integer | AdapterDrop: adapters of layers `0 … n-1` were skipped (0 = none) |
 * | `num_labels` | integer | classes of the classification head |
 * | `labels` | string[] | class names by index (optional) |
 *
 * Any further keys given in `meta` are kept as they are.
 */

import { writeSafetensors, readSafetensors, SafetensorsError, type StWriteTensor } from './safetensors';
import { configToHf, expectedBertParams, type BertConfig } from './hf';

export class ExportError extends Error {
  override name = 'ExportError';
}

function fail(msg: string): never {
  throw new ExportError(msg);
}

function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function fmt(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** The shape of `name` from `shapes`, checked against its data length. */
function shapeOf(name: string, data: Float32Array, shapes: Map<string, number[]>): number[] {
  const shape = shapes.get(name);
  if (!shape) fail(`no shape given for parameter ${name}`);
  if (elementCount(shape) !== data.length) fail(`parameter ${name}: shape ${fmt(shape)} has ${elementCount(shape)} elements but its data has ${data.length}`);
  return shape;
}

function parseJson(text: string, file: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    fail(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail(`${file} is not a JSON object`);
  return json as Record<string, unknown>;
}

function readWeights(bytes: ArrayBuffer | Uint8Array, file: string) {
  try {
    return readSafetensors(bytes).tensors;
  } catch (e) {
    if (e instanceof SafetensorsError) fail(`${file}: ${e.message}`);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// LoRA in Hugging Face PEFT layout

/**
 * The linears of a BERT layer LoRA can wrap, by the name our configs use. Each maps to its
 * module path inside `bert.encoder.layer.N`.
 */
export const LORA_TARGETS = ['query', 'key', 'value', 'attention.output.dense', 'intermediate.dense', 'output.dense'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

const TARGET_PATH: Record<LoraTarget, string> = {
  query: 'attention.self.query',
  key: 'attention.self.key',
  value: 'attention.self.value',
  'attention.output.dense': 'attention.output.dense',
  'intermediate.dense': 'intermediate.dense',
  'output.dense': 'output.dense', // the FFN output, bert.encoder.layer.N.output.dense
};

const PEFT_PREFIX = 'base_model.model.';

// `attention.output.dense` is listed before `output.dense` and the match is anchored right after
// `layer.N.`, so the two never get confused.
const LORA_NAME = /^bert\.encoder\.layer\.(\d+)\.(attention\.self\.(?:query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)\.lora_([AB])\.weight$/;

function targetOfPath(path: string): LoraTarget {
  return LORA_TARGETS.find((t) => TARGET_PATH[t] === path)!;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * PEFT's `target_modules`. As a list, PEFT matches a module whose name equals an entry or ends
 * with `.entry`: `query`, `key`, `value`, `attention.output.dense` and `intermediate.dense` are
 * unambiguous that way, but the FFN output `output.dense` would also catch
 * `attention.output.dense` (and a bare `dense` would catch every dense, pooler included). So when
 * the FFN output is targeted we write a string instead, which PEFT applies with `re.fullmatch` to
 * the full module name: `.*\.layer\.\d+\.(attention\.self\.query|output\.dense)` and so on.
 */
function peftTargetModules(targets: LoraTarget[]): string[] | string {
  if (!targets.includes('output.dense')) return targets.slice();
  return `.*\\.layer\\.\\d+\\.(${targets.map((t) => escapeRegExp(TARGET_PATH[t])).join('|')})`;
}

/** Whether PEFT would wrap `bert.encoder.layer.N.<path>` given this `target_modules`. */
function peftMatches(targetModules: string[] | string, moduleName: string): boolean {
  if (typeof targetModules === 'string') {
    try {
      return new RegExp(`^(?:${targetModules})$`).test(moduleName);
    } catch {
      return true; // a Python-only regex we cannot evaluate: trust the weights
    }
  }
  return targetModules.some((t) => moduleName === t || moduleName.endsWith(`.${t}`));
}

export interface LoraExportOptions {
  r: number;
  alpha: number;
  targetModules: string[];
  /** hub id or URL of the frozen base model, written as base_model_name_or_path */
  baseModel: string;
  /** lora_dropout recorded in the config (default 0) */
  dropout?: number;
}

/**
 * A trained LoRA as PEFT files. Takes the factors (`bert.encoder.layer.N.<module>.lora_A.weight`
 * `[r, d_in]`, `...lora_B.weight` `[d_out, r]`) and `classifier.{weight,bias}` from `params`;
 * everything else there (the frozen base) is left out.
 */
export function exportPeftLora(
  params: Map<string, Float32Array>,
  shapes: Map<string, number[]>,
  o: LoraExportOptions,
): { 'adapter_config.json': string; 'adapter_model.safetensors': Uint8Array<ArrayBuffer> } {
  if (!Number.isSafeInteger(o.r) || o.r <= 0) fail(`LoRA rank r must be a positive integer, got ${o.r}`);
  if (!Number.isFinite(o.alpha) || o.alpha <= 0) fail(`LoRA alpha must be a positive number, got ${o.alpha}`);
  for (const t of o.targetModules) {
    if (!(LORA_TARGETS as readonly string[]).includes(t)) fail(`unknown LoRA target "${t}" (known: ${LORA_TARGETS.join(', ')})`);
  }
  const targets = LORA_TARGETS.filter((t) => o.targetModules.includes(t));
  if (targets.length === 0) fail('targetModules is empty');

  const tensors = new Map<string, StWriteTensor>();
  const factors = new Map<string, { A?: number[]; B?: number[] }>(); // module name → factor shapes
  const foundTargets = new Set<LoraTarget>();
  for (const [name, data] of params) {
    const m = LORA_NAME.exec(name);
    if (!m) continue;
    const target = targetOfPath(m[2]);
    foundTargets.add(target);
    if (!targets.includes(target)) fail(`parameter ${name} is a LoRA factor on "${target}", which is not in targetModules [${o.targetModules.join(', ')}]`);
    const shape = shapeOf(name, data, shapes);
    const moduleName = name.slice(0, name.lastIndexOf('.lora_'));
    const entry = factors.get(moduleName) ?? {};
    entry[m[3] as 'A' | 'B'] = shape;
    factors.set(moduleName, entry);
    tensors.set(PEFT_PREFIX + name, { shape, data });
  }
  if (factors.size === 0) fail('params hold no LoRA factors (names like bert.encoder.layer.0.attention.self.query.lora_A.weight)');
  for (const [moduleName, { A, B }] of factors) {
    if (!A || !B) fail(`${moduleName} has lora_${A ? 'A' : 'B'} but no lora_${A ? 'B' : 'A'}`);
    if (A.length !== 2 || A[0] !== o.r) fail(`${moduleName}.lora_A.weight has shape ${fmt(A)}, expected [r = ${o.r}, d_in]`);
    if (B.length !== 2 || B[1] !== o.r) fail(`${moduleName}.lora_B.weight has shape ${fmt(B)}, expected [d_out, r = ${o.r}]`);
  }
  for (const target of targets) {
    if (!foundTargets.has(target)) fail(`targetModules lists "${target}" but params hold no LoRA factors for it`);
  }
  for (const name of ['classifier.weight', 'classifier.bias']) {
    const data = params.get(name);
    if (!data) fail(`params lack ${name}: the trained classification head is saved with the LoRA (modules_to_save)`);
    tensors.set(PEFT_PREFIX + name, { shape: shapeOf(name, data, shapes), data });
  }

  // PEFT writes its config with sorted keys (PeftConfig.to_json_string(sort_keys=True)).
  const config = {
    base_model_name_or_path: o.baseModel,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    lora_alpha: o.alpha,
    lora_dropout: o.dropout ?? 0,
    modules_to_save: ['classifier'],
    peft_type: 'LORA',
    r: o.r,
    target_modules: peftTargetModules(targets),
    task_type: 'SEQ_CLS',
  };
  return {
    'adapter_config.json': JSON.stringify(config, null, 2) + '\n',
    'adapter_model.safetensors': writeSafetensors(tensors, { format: 'pt' }),
  };
}

/**
 * Read a PEFT LoRA (ours, or one trained with PEFT on a BertForSequenceClassification) back into
 * our names. `targetModules` lists the targets that have factors in the file, in LORA_TARGETS order.
 */
export function importPeftLora(files: { config: string; weights: ArrayBuffer | Uint8Array }): {
  r: number;
  alpha: number;
  targetModules: LoraTarget[];
  baseModel: string;
  dropout: number;
  params: Map<string, Float32Array>;
  shapes: Map<string, number[]>;
} {
  const config = parseJson(files.config, 'adapter_config.json');
  if (config.peft_type !== 'LORA') fail(`adapter_config.json: peft_type is ${JSON.stringify(config.peft_type)}, only "LORA" can be loaded`);
  const { r, lora_alpha: alpha } = config;
  if (typeof r !== 'number' || !Number.isSafeInteger(r) || r <= 0) fail(`adapter_config.json: r must be a positive integer, got ${JSON.stringify(r)}`);
  if (typeof alpha !== 'number' || !(alpha > 0)) fail(`adapter_config.json: lora_alpha must be a positive number, got ${JSON.stringify(alpha)}`);
  if (config.fan_in_fan_out === true) fail('adapter_config.json: fan_in_fan_out is true (Conv1D layout), BERT linears are [out, in]');
  if (config.bias !== undefined && config.bias !== 'none') fail(`adapter_config.json: bias "${String(config.bias)}" is not supported: only "none" (no trained LoRA biases)`);
  if (config.use_dora === true) fail('adapter_config.json: use_dora is set: DoRA is not supported');
  if (config.use_rslora === true) fail('adapter_config.json: use_rslora is set: only the α/r scaling of plain LoRA is supported');
  for (const key of ['rank_pattern', 'alpha_pattern']) {
    const v = config[key];
    if (v && typeof v === 'object' && Object.keys(v).length > 0) fail(`adapter_config.json: ${key} (per-module ranks/alphas) is not supported`);
  }
  const targetModules = config.target_modules;
  if (!(typeof targetModules === 'string' || (Array.isArray(targetModules) && targetModules.every((t) => typeof t === 'string')))) {
    fail('adapter_config.json: target_modules must be a list of module names or a regex string');
  }
  const dropout = typeof config.lora_dropout === 'number' ? config.lora_dropout : 0;
  const baseModel = typeof config.base_model_name_or_path === 'string' ? config.base_model_name_or_path : '';

  const params = new Map<string, Float32Array>();
  const shapes = new Map<string, number[]>();
  const found = new Set<LoraTarget>();
  for (const [key, tensor] of readWeights(files.weights, 'adapter_model.safetensors')) {
    if (!key.startsWith(PEFT_PREFIX)) fail(`adapter_model.safetensors: key "${key}" lacks the "${PEFT_PREFIX}" prefix of a PEFT model`);
    // older PEFT versions kept the adapter name ("default") and the modules_to_save wrapper in keys
    const name = key
      .slice(PEFT_PREFIX.length)
      .replace(/\.lora_([AB])\.default\.weight$/, '.lora_$1.weight')
      .replace(/^classifier\.(?:modules_to_save\.)?default\./, 'classifier.');
    const m = LORA_NAME.exec(name);
    if (m) {
      const target = targetOfPath(m[2]);
      const moduleName = name.slice(0, name.lastIndexOf('.lora_'));
      if (!peftMatches(targetModules as string[] | string, moduleName)) {
        fail(`adapter_model.safetensors: "${key}" is on a module that target_modules ${JSON.stringify(targetModules)} does not select`);
      }
      const rankAxis = m[3] === 'A' ? 0 : 1;
      if (tensor.shape.length !== 2 || tensor.shape[rankAxis] !== r) fail(`adapter_model.safetensors: "${key}" has shape ${fmt(tensor.shape)}, inconsistent with r = ${r}`);
      found.add(target);
    } else if (name !== 'classifier.weight' && name !== 'classifier.bias') {
      fail(`adapter_model.safetensors: "${key}" is neither a LoRA factor of a BERT layer nor the classifier`);
    }
    if (tensor.ints) fail(`adapter_model.safetensors: "${key}" has integer dtype ${tensor.dtype}`);
    params.set(name, tensor.data);
    shapes.set(name, tensor.shape);
  }
  for (const name of params.keys()) {
    const pair = name.endsWith('.lora_A.weight') ? name.replace(/\.lora_A\.weight$/, '.lora_B.weight') : name.endsWith('.lora_B.weight') ? name.replace(/\.lora_B\.weight$/, '.lora_A.weight') : null;
    if (pair && !params.has(pair)) fail(`adapter_model.safetensors: ${name} has no matching ${pair}`);
  }
  if (found.size === 0) fail('adapter_model.safetensors holds no LoRA factors');
  return { r, alpha, targetModules: LORA_TARGETS.filter((t) => found.has(t)), baseModel, dropout, params, shapes };
}

// ---------------------------------------------------------------------------------------------
// full Hugging Face checkpoint

/**
 * The whole BertForSequenceClassification as transformers files. `params` must hold exactly the
 * HF parameters (expectedBertParams): a LoRA must be merged first (W' = W + (α/r)·B·A), and
 * adapters, which transformers' BERT cannot represent, go through exportAdapterModules instead.
 */
export function exportHfCheckpoint(
  config: BertConfig,
  params: Map<string, Float32Array>,
  shapes: Map<string, number[]>,
  vocab?: string,
): { 'config.json': string; 'model.safetensors': Uint8Array<ArrayBuffer>; 'vocab.txt'?: string } {
  const expected = expectedBertParams(config);
  const extra = [...params.keys()].filter((name) => !expected.has(name));
  if (extra.length > 0) {
    fail(
      `${extra.slice(0, 3).join(', ')}${extra.length > 3 ? ` and ${extra.length - 3} more` : ''} ` +
        'not part of a Hugging Face BertForSequenceClassification: merge LoRA into the base weights first, ' +
        'or export LoRA/adapters with exportPeftLora / exportAdapterModules',
    );
  }
  const tensors = new Map<string, StWriteTensor>();
  for (const [name, shape] of expected) {
    const data = params.get(name);
    if (!data) fail(`params lack ${name}`);
    const given = shapeOf(name, data, shapes);
    if (!sameShape(given, shape)) fail(`parameter ${name} has shape ${fmt(given)} but the config needs ${fmt(shape)}`);
    tensors.set(name, { shape, data });
  }
  const files: { 'config.json': string; 'model.safetensors': Uint8Array<ArrayBuffer>; 'vocab.txt'?: string } = {
    'config.json': JSON.stringify(configToHf(config), null, 2) + '\n',
    // transformers refuses a safetensors checkpoint whose metadata lacks format "pt"
    'model.safetensors': writeSafetensors(tensors, { format: 'pt' }),
  };
  if (vocab !== undefined) files['vocab.txt'] = vocab;
  return files;
}

// ---------------------------------------------------------------------------------------------
// bottleneck adapters (Houlsby, Pfeiffer, AdaMix): the layout documented at the top of this file

export const ADAPTER_FORMAT = 'peft-playground-adapter';
export const ADAPTER_FORMAT_VERSION = 1;
const ADAPTER_METHODS = ['houlsby', 'pfeiffer', 'adamix'] as const;
const ADAPTER_PLACEMENTS = ['attention_output', 'ffn_output'] as const;

export interface AdapterExportMeta {
  method: (typeof ADAPTER_METHODS)[number];
  base_model: string;
  hidden_size: number;
  num_layers: number;
  bottleneck: number;
  num_labels: number;
  reduction_factor?: number;
  non_linearity?: 'gelu';
  placement?: Array<(typeof ADAPTER_PLACEMENTS)[number]>;
  experts?: number;
  shared_up?: boolean;
  merged?: boolean;
  dropped_layers?: number;
  labels?: string[];
  [key: string]: unknown;
}

/** Check the documented keys, fill the derivable ones; the result is what adapter_config.json holds. */
function normalizeAdapterMeta(meta: Record<string, unknown>, file: string): Record<string, unknown> {
  const bad = (key: string, want: string): never => fail(`${file}: ${key} must be ${want}, got ${JSON.stringify(meta[key])}`);
  const positiveInt = (key: string): number => {
    const v = meta[key];
    return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : bad(key, 'a positive integer');
  };
  const method = meta.method;
  if (!(ADAPTER_METHODS as readonly unknown[]).includes(method)) bad('method', `one of ${ADAPTER_METHODS.join(', ')}`);
  if (typeof meta.base_model !== 'string') bad('base_model', 'a string');
  const hidden = positiveInt('hidden_size');
  positiveInt('num_layers');
  const bottleneck = positiveInt('bottleneck');
  const numLabels = positiveInt('num_labels');
  const defaultPlacement = method === 'houlsby' ? ['attention_output', 'ffn_output'] : ['ffn_output'];
  const placement = meta.placement ?? defaultPlacement;
  if (!Array.isArray(placement) || placement.length === 0 || !placement.every((p) => (ADAPTER_PLACEMENTS as readonly unknown[]).includes(p))) {
    bad('placement', `a non-empty list of ${ADAPTER_PLACEMENTS.join(', ')}`);
  }
  const experts = meta.experts ?? 1;
  if (typeof experts !== 'number' || !Number.isSafeInteger(experts) || experts <= 0) bad('experts', 'a positive integer');
  if (method !== 'adamix' && experts !== 1) bad('experts', `1 for ${String(method)}`);
  if (method === 'adamix' && typeof meta.merged !== 'boolean') bad('merged', 'true or false for adamix (expert average or all experts)');
  if (meta.shared_up !== undefined && typeof meta.shared_up !== 'boolean') bad('shared_up', 'a boolean');
  const dropped = meta.dropped_layers ?? 0;
  if (typeof dropped !== 'number' || !Number.isSafeInteger(dropped) || dropped < 0) bad('dropped_layers', 'a non-negative integer');
  if (meta.labels !== undefined && !(Array.isArray(meta.labels) && meta.labels.length === numLabels && meta.labels.every((l) => typeof l === 'string'))) {
    bad('labels', `a list of ${numLabels} strings`);
  }
  const reduction = meta.reduction_factor ?? hidden / bottleneck;
  if (typeof reduction !== 'number' || !(reduction > 0)) bad('reduction_factor', 'a positive number');
  const nonLinearity = meta.non_linearity ?? 'gelu';
  if (nonLinearity !== 'gelu') bad('non_linearity', '"gelu"');

  const { format: _format, format_version: _version, ...rest } = meta;
  return {
    format: ADAPTER_FORMAT,
    format_version: ADAPTER_FORMAT_VERSION,
    ...rest,
    reduction_factor: reduction,
    non_linearity: nonLinearity,
    placement,
    experts,
    dropped_layers: dropped,
  };
}

/**
 * The trained adapter modules and head (the caller passes exactly those in `params`), with the
 * adapter_config.json documented at the top of this file.
 */
export function exportAdapterModules(
  params: Map<string, Float32Array>,
  shapes: Map<string, number[]>,
  meta: AdapterExportMeta | Record<string, unknown>,
): { 'adapter_config.json': string; 'adapter_model.safetensors': Uint8Array<ArrayBuffer> } {
  const config = normalizeAdapterMeta(meta, 'adapter export');
  if (params.size === 0) fail('no adapter parameters to export');
  const tensors = new Map<string, StWriteTensor>();
  for (const [name, data] of params) tensors.set(name, { shape: shapeOf(name, data, shapes), data });
  return {
    'adapter_config.json': JSON.stringify(config, null, 2) + '\n',
    'adapter_model.safetensors': writeSafetensors(tensors, { format: 'pt' }),
  };
}

/** The inverse of exportAdapterModules: the config (validated) and the tensors by name. */
export function importAdapterModules(files: { config: string; weights: ArrayBuffer | Uint8Array }): {
  meta: Record<string, unknown>;
  params: Map<string, Float32Array>;
  shapes: Map<string, number[]>;
} {
  const json = parseJson(files.config, 'adapter_config.json');
  if (json.format !== ADAPTER_FORMAT) fail(`adapter_config.json: format is ${JSON.stringify(json.format)}, expected "${ADAPTER_FORMAT}"`);
  if (json.format_version !== ADAPTER_FORMAT_VERSION) fail(`adapter_config.json: format_version ${JSON.stringify(json.format_version)} is not supported (this build reads ${ADAPTER_FORMAT_VERSION})`);
  const meta = normalizeAdapterMeta(json, 'adapter_config.json');
  const params = new Map<string, Float32Array>();
  const shapes = new Map<string, number[]>();
  for (const [name, tensor] of readWeights(files.weights, 'adapter_model.safetensors')) {
    if (tensor.ints) fail(`adapter_model.safetensors: "${name}" has integer dtype ${tensor.dtype}`);
    params.set(name, tensor.data);
    shapes.set(name, tensor.shape);
  }
  return { meta, params, shapes };
}

// ---------------------------------------------------------------------------------------------
// metrics

function csvField(value: string): string {
  // RFC 4180: fields with a comma, quote or line break are quoted, inner quotes doubled; we also
  // quote leading/trailing spaces, which some readers would otherwise trim.
  return /[",\r\n]|^\s|\s$/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

function csvValue(value: number | string | null | undefined): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return String(value); // shortest round-trip form; NaN, Infinity, -Infinity as such
  return csvField(value);
}

/**
 * Metric rows as RFC 4180 CSV: the header is the union of the rows' keys in first-seen order, a
 * missing or null value is an empty field, lines end with CRLF.
 */
export function metricsToCsv(rows: Array<Record<string, number | string | null>>): string {
  const columns: string[] = [];
  const seen = new Set<string>();
  for (const row of rows) {
    for (const key of Object.keys(row)) {
      if (!seen.has(key)) {
        seen.add(key);
        columns.push(key);
      }
    }
  }
  if (columns.length === 0) return '';
  const lines = [columns.map(csvField).join(',')];
  for (const row of rows) lines.push(columns.map((c) => csvValue(row[c])).join(','));
  return lines.join('\r\n') + '\r\n';
}
