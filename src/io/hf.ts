// Hugging Face BERT import: config.json → BertConfig, a model.safetensors under any of the name
// variants real checkpoints use → parameters by canonical HF name (REFERENCE.md "Hugging Face BERT
// names"), and the same from a URL or hub id with progress and clear network errors.
// DOM-free and Node-free: runs in the Web Worker (fetch, ArrayBuffer, TextDecoder only).

import type { BertConfig as ModelBertConfig } from '../model/config';
import { readSafetensors, SafetensorsError } from './safetensors';

/** The model's configuration (src/model/config.ts) plus what a Hugging Face config.json carries. */
export interface BertConfig extends ModelBertConfig {
  hiddenAct: 'gelu';
  /** label names, only when the checkpoint names them (not HF's default LABEL_0, LABEL_1, ...) */
  id2label?: Record<number, string>;
  modelType: 'bert';
}

export class HfImportError extends Error {
  override name = 'HfImportError';
}

export interface BertCheckpoint {
  config: BertConfig;
  /** canonical HF name (bert.embeddings..., classifier.weight) → values, row-major [out, in] */
  params: Map<string, Float32Array>;
  /** expected canonical names the file lacks: only pooler/classifier (initialised by the caller) */
  missing: string[];
  /** names in the file that are not parameters of BertForSequenceClassification (as written there) */
  unexpected: string[];
  vocab?: string;
}

function fail(msg: string): never {
  throw new HfImportError(msg);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---------------------------------------------------------------------------------------------
// config.json

/** HF BertConfig defaults (transformers/models/bert/configuration_bert.py), i.e. bert-base. */
const HF_DEFAULTS = {
  vocab_size: 30522,
  hidden_size: 768,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  intermediate_size: 3072,
  max_position_embeddings: 512,
  type_vocab_size: 2,
  layer_norm_eps: 1e-12,
  hidden_dropout_prob: 0.1,
  attention_probs_dropout_prob: 0.1,
  hidden_act: 'gelu',
  position_embedding_type: 'absolute',
};

/** A field's value, or HF's default when absent; an explicit null is kept (and then refused). */
function field(json: Record<string, unknown>, key: keyof typeof HF_DEFAULTS): unknown {
  return json[key] === undefined ? HF_DEFAULTS[key] : json[key];
}

function positiveInteger(json: Record<string, unknown>, key: keyof typeof HF_DEFAULTS): number {
  const v = field(json, key);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
    fail(`config.json: ${key} must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

function probability(json: Record<string, unknown>, key: keyof typeof HF_DEFAULTS): number {
  const v = field(json, key);
  if (typeof v !== 'number' || !(v >= 0 && v < 1)) fail(`config.json: ${key} must be a number in [0, 1), got ${JSON.stringify(v)}`);
  return v;
}

function isDefaultLabels(id2label: Record<number, string>, n: number): boolean {
  for (let i = 0; i < n; i++) if (id2label[i] !== `LABEL_${i}`) return false;
  return true;
}

/**
 * Parse a BERT config.json (defaults as HF's BertConfig). Rejects, with the reason, what our
 * encoder does not implement rather than silently computing something else.
 */
export function parseBertConfig(json: unknown): BertConfig {
  if (!isPlainObject(json)) fail('config.json is not a JSON object');
  // Old checkpoints such as prajjwal1/bert-tiny predate `model_type`: absent means BERT.
  const modelType = json.model_type ?? 'bert';
  if (modelType !== 'bert') {
    fail(`config.json: ${String(modelType)} is not supported: only BERT encoders (model_type "bert") can be loaded`);
  }
  if (json.is_decoder === true || json.add_cross_attention === true) {
    fail('config.json: is_decoder / add_cross_attention is set: only bidirectional BERT encoders are supported');
  }
  const positionType = field(json, 'position_embedding_type');
  if (positionType !== 'absolute') {
    fail(`config.json: position_embedding_type "${String(positionType)}" is not supported: only "absolute" position embeddings`);
  }
  const act = field(json, 'hidden_act');
  // HF's "gelu" is the exact erf form, which is what our kernels compute; "gelu_new" and
  // "gelu_pytorch_tanh" are the tanh approximation, and relu/silu are different functions.
  if (act !== 'gelu') {
    fail(`config.json: hidden_act ${JSON.stringify(act)} is not supported: only "gelu" (exact erf GELU, as in BERT)`);
  }

  const hiddenSize = positiveInteger(json, 'hidden_size');
  const numHeads = positiveInteger(json, 'num_attention_heads');
  if (hiddenSize % numHeads !== 0) {
    fail(`config.json: hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads}`);
  }
  const eps = field(json, 'layer_norm_eps');
  if (typeof eps !== 'number' || !(eps > 0 && eps < 1)) fail(`config.json: layer_norm_eps must be a small positive number, got ${JSON.stringify(eps)}`);

  // Like PretrainedConfig: id2label, when present, decides the number of labels.
  let numLabels: number;
  let id2label: Record<number, string> | undefined;
  if (json.id2label !== undefined && json.id2label !== null) {
    if (!isPlainObject(json.id2label)) fail('config.json: id2label must be an object {"0": "label", ...}');
    const entries = Object.entries(json.id2label);
    numLabels = entries.length;
    if (numLabels === 0) fail('config.json: id2label is empty');
    id2label = {};
    for (const [key, label] of entries) {
      const index = Number(key);
      if (!Number.isInteger(index) || index < 0 || index >= numLabels || String(index) !== key) {
        fail(`config.json: id2label keys must be 0..${numLabels - 1}, got ${JSON.stringify(key)}`);
      }
      if (typeof label !== 'string') fail(`config.json: id2label["${key}"] must be a string, got ${JSON.stringify(label)}`);
      id2label[index] = label;
    }
    if (isDefaultLabels(id2label, numLabels)) id2label = undefined;
  } else {
    const n = json.num_labels ?? 2;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n <= 0) fail(`config.json: num_labels must be a positive integer, got ${JSON.stringify(n)}`);
    numLabels = n;
  }

  const config: BertConfig = {
    vocabSize: positiveInteger(json, 'vocab_size'),
    hiddenSize,
    numLayers: positiveInteger(json, 'num_hidden_layers'),
    numHeads,
    intermediateSize: positiveInteger(json, 'intermediate_size'),
    maxPositions: positiveInteger(json, 'max_position_embeddings'),
    typeVocabSize: positiveInteger(json, 'type_vocab_size'),
    layerNormEps: eps,
    numLabels,
    hiddenAct: 'gelu',
    hiddenDropout: probability(json, 'hidden_dropout_prob'),
    attentionDropout: probability(json, 'attention_probs_dropout_prob'),
    modelType: 'bert',
  };
  if (id2label) config.id2label = id2label;
  return config;
}

/** BertConfig → config.json fields as transformers writes them for BertForSequenceClassification. */
export function configToHf(c: BertConfig): Record<string, unknown> {
  const id2label: Record<string, string> = {};
  const label2id: Record<string, number> = {};
  for (let i = 0; i < c.numLabels; i++) {
    const label = c.id2label?.[i] ?? `LABEL_${i}`;
    id2label[String(i)] = label;
    label2id[label] = i;
  }
  return {
    architectures: ['BertForSequenceClassification'],
    model_type: 'bert',
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    intermediate_size: c.intermediateSize,
    hidden_act: c.hiddenAct,
    hidden_dropout_prob: c.hiddenDropout,
    attention_probs_dropout_prob: c.attentionDropout,
    max_position_embeddings: c.maxPositions,
    type_vocab_size: c.typeVocabSize,
    initializer_range: 0.02,
    layer_norm_eps: c.layerNormEps,
    pad_token_id: 0,
    position_embedding_type: 'absolute',
    use_cache: true,
    classifier_dropout: null,
    id2label,
    label2id,
    torch_dtype: 'float32',
  };
}

// ---------------------------------------------------------------------------------------------
// parameter names

/**
 * Map a checkpoint tensor name to our canonical name, or null for entries a sequence classifier
 * ignores: the MLM/NSP heads (`cls.*`) and buffers (`position_ids`, `token_type_ids`). Adds the
 * `bert.` prefix that BertModel checkpoints lack and renames legacy LayerNorm gamma/beta (from
 * TF-converted checkpoints) to weight/bias. Anything else is returned unchanged, so the caller can
 * report it as unexpected.
 */
export function canonicalBertName(name: string): string | null {
  if (name.startsWith('cls.')) return null;
  if (/(^|\.)(position_ids|token_type_ids)$/.test(name)) return null;
  let canonical = /^(embeddings|encoder|pooler)\./.test(name) ? `bert.${name}` : name;
  canonical = canonical.replace(/\.LayerNorm\.gamma$/, '.LayerNorm.weight').replace(/\.LayerNorm\.beta$/, '.LayerNorm.bias');
  return canonical;
}

/** Every parameter of BertForSequenceClassification by canonical name, in model order, with its shape. */
export function expectedBertParams(
  c: BertConfig,
  opts: { withPooler?: boolean; withClassifier?: boolean } = {},
): Map<string, number[]> {
  const { withPooler = true, withClassifier = true } = opts;
  const d = c.hiddenSize, ffn = c.intermediateSize;
  const shapes = new Map<string, number[]>();
  const linear = (prefix: string, out: number, inp: number) => {
    shapes.set(`${prefix}.weight`, [out, inp]); // PyTorch stores Linear weights [out, in]
    shapes.set(`${prefix}.bias`, [out]);
  };
  const layerNorm = (prefix: string) => {
    shapes.set(`${prefix}.weight`, [d]);
    shapes.set(`${prefix}.bias`, [d]);
  };
  shapes.set('bert.embeddings.word_embeddings.weight', [c.vocabSize, d]);
  shapes.set('bert.embeddings.position_embeddings.weight', [c.maxPositions, d]);
  shapes.set('bert.embeddings.token_type_embeddings.weight', [c.typeVocabSize, d]);
  layerNorm('bert.embeddings.LayerNorm');
  for (let l = 0; l < c.numLayers; l++) {
    const layer = `bert.encoder.layer.${l}`;
    linear(`${layer}.attention.self.query`, d, d);
    linear(`${layer}.attention.self.key`, d, d);
    linear(`${layer}.attention.self.value`, d, d);
    linear(`${layer}.attention.output.dense`, d, d);
    layerNorm(`${layer}.attention.output.LayerNorm`);
    linear(`${layer}.intermediate.dense`, ffn, d);
    linear(`${layer}.output.dense`, d, ffn);
    layerNorm(`${layer}.output.LayerNorm`);
  }
  if (withPooler) linear('bert.pooler.dense', d, d);
  if (withClassifier) linear('classifier', c.numLabels, d);
  return shapes;
}

/** The parameters a checkpoint may lack: the caller initialises them (a pretrained BERT has no classifier). */
function isHeadParam(name: string): boolean {
  return name.startsWith('bert.pooler.') || name.startsWith('classifier.');
}

function fmt(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** vocab.txt: one token per line; ids beyond the embedding table would index out of bounds. */
function checkVocab(vocab: string, config: BertConfig): void {
  const lines = vocab.split(/\r?\n/);
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  if (lines.length === 0) fail('vocab.txt is empty');
  if (lines.length > config.vocabSize) {
    fail(`vocab.txt has ${lines.length} tokens but the model's vocab_size is ${config.vocabSize}: they do not belong together`);
  }
}

/**
 * Load a BERT checkpoint from the contents of its files. Every embedding and encoder weight must be
 * present with its exact shape; the pooler and classifier may be missing (listed in `missing`).
 * `opts.numLabels` replaces the checkpoint's label count; a classifier of another size is then
 * dropped (listed in both `unexpected` and `missing`) instead of being an error, as with HF's
 * `ignore_mismatched_sizes`.
 */
export function loadBertCheckpoint(
  files: { config: unknown | string; weights: ArrayBuffer | Uint8Array; vocab?: string },
  opts: { numLabels?: number } = {},
): BertCheckpoint {
  let configJson = files.config;
  if (typeof configJson === 'string') {
    try {
      configJson = JSON.parse(configJson);
    } catch (e) {
      fail(`config.json is not valid JSON: ${(e as Error).message}`);
    }
  }
  const config = parseBertConfig(configJson);
  const checkpointLabels = config.numLabels;
  if (opts.numLabels !== undefined) {
    if (!Number.isSafeInteger(opts.numLabels) || opts.numLabels <= 0) fail(`numLabels must be a positive integer, got ${opts.numLabels}`);
    if (opts.numLabels !== config.numLabels) {
      config.numLabels = opts.numLabels;
      delete config.id2label;
    }
  }

  let tensors;
  try {
    tensors = readSafetensors(files.weights).tensors;
  } catch (e) {
    if (e instanceof SafetensorsError) fail(`model.safetensors is not a valid safetensors file: ${e.message}`);
    throw e;
  }

  const expected = expectedBertParams(config);
  const params = new Map<string, Float32Array>();
  const sourceName = new Map<string, string>();
  const unexpected: string[] = [];
  for (const [name, tensor] of tensors) {
    const canonical = canonicalBertName(name);
    if (canonical === null) continue;
    const shape = expected.get(canonical);
    if (!shape) {
      unexpected.push(name);
      continue;
    }
    if (sourceName.has(canonical)) {
      fail(`model.safetensors has both "${sourceName.get(canonical)}" and "${name}", which are the same parameter ${canonical}`);
    }
    if (tensor.ints) fail(`model.safetensors: tensor "${name}" has integer dtype ${tensor.dtype}; BERT weights are floating point`);
    if (!sameShape(tensor.shape, shape)) {
      if (canonical.startsWith('classifier.') && opts.numLabels !== undefined && opts.numLabels !== checkpointLabels) {
        unexpected.push(name); // a head for another label set: re-initialised by the caller
        continue;
      }
      const what = canonical === name ? '' : ` (${canonical})`;
      fail(`model.safetensors: tensor "${name}"${what} has shape ${fmt(tensor.shape)} but the config expects ${fmt(shape)}`);
    }
    sourceName.set(canonical, name);
    params.set(canonical, tensor.data);
  }

  const missing = [...expected.keys()].filter((name) => !params.has(name));
  const missingBody = missing.filter((name) => !isHeadParam(name));
  if (missingBody.length > 0) {
    const shown = missingBody.slice(0, 5).join(', ') + (missingBody.length > 5 ? `, … (${missingBody.length} in all)` : '');
    fail(`model.safetensors lacks BERT weights the config requires: ${shown}. Is it a BERT checkpoint matching this config.json?`);
  }
  if (files.vocab !== undefined) checkVocab(files.vocab, config);
  const result: BertCheckpoint = { config, params, missing, unexpected };
  if (files.vocab !== undefined) result.vocab = files.vocab;
  return result;
}

// ---------------------------------------------------------------------------------------------
// from a URL or a hub id

const HUB_HOSTS = new Set(['huggingface.co', 'www.huggingface.co', 'hf.co']);
const REPO_PART = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const HUB_ACTIONS = new Set(['tree', 'blob', 'resolve', 'commit', 'commits', 'discussions', 'raw']);

function hubResolveUrl(repoId: string, revision: string): string {
  return `https://huggingface.co/${repoId}/resolve/${encodeURIComponent(revision)}`;
}

/**
 * Turn what a user pastes into the base URL the files live under:
 *  - a hub id `owner/name` (or a legacy `name`) → https://huggingface.co/<id>/resolve/main
 *  - a hub page https://huggingface.co/<id>[/tree/<rev>|/blob/<rev>/file|/resolve/<rev>] → …/resolve/<rev>
 *  - any other http(s) URL, or a path on this site (/models/tiny) → itself, without a trailing slash
 */
export function resolveHfModelUrl(input: string): string {
  const text = input.trim();
  if (text === '') fail('empty model id or URL');
  if (text.startsWith('/') || text.startsWith('./') || text.startsWith('../')) return text.replace(/\/+$/, '');
  const withScheme = /^(www\.)?(huggingface\.co|hf\.co)\//i.test(text) ? `https://${text}` : text;
  if (/^https?:\/\//i.test(withScheme)) {
    let url: URL;
    try {
      url = new URL(withScheme);
    } catch {
      fail(`"${text}" is not a valid URL`);
    }
    if (!HUB_HOSTS.has(url.hostname.toLowerCase())) return withScheme.replace(/\/+$/, '');
    const parts = url.pathname.split('/').filter((p) => p !== '').map(decodeURIComponent);
    if (parts[0] === 'datasets' || parts[0] === 'spaces') fail(`${text} is a Hugging Face ${parts[0].slice(0, -1)}, not a model`);
    // owner/name, or a legacy single-segment id (bert-base-uncased) followed by an action
    const idLength = parts.length >= 2 && !HUB_ACTIONS.has(parts[1]) ? 2 : 1;
    const id = parts.slice(0, idLength);
    if (id.length === 0 || !id.every((p) => REPO_PART.test(p))) fail(`${text} does not name a model on the Hugging Face hub`);
    const rest = parts.slice(idLength);
    const revision = rest.length >= 2 && HUB_ACTIONS.has(rest[0]) ? rest[1] : 'main';
    return hubResolveUrl(id.join('/'), revision);
  }
  const parts = text.split('/');
  if (parts.length <= 2 && parts.every((p) => REPO_PART.test(p))) return hubResolveUrl(text, 'main');
  fail(`"${text}" is neither a Hugging Face model id (owner/name) nor an http(s) URL`);
}

interface FetchedFile {
  ok: boolean;
  status: number;
  bytes?: Uint8Array;
}

async function fetchFile(
  url: string,
  fetchFn: typeof fetch,
  onProgress?: (loaded: number, total: number) => void,
): Promise<FetchedFile> {
  let response: Response;
  try {
    response = await fetchFn(url);
  } catch (e) {
    fail(
      `could not fetch ${url}: ${(e as Error).message}. The network is offline, the host is unreachable, ` +
        'or the server does not allow cross-origin requests (CORS).',
    );
  }
  if (!response.ok) {
    // drain so the connection can be reused; the body of an error page is not needed
    await response.body?.cancel().catch(() => undefined);
    return { ok: false, status: response.status };
  }
  const header = response.headers.get('content-length');
  const total = header !== null && /^\d+$/.test(header) ? Number(header) : 0;
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  try {
    if (!response.body) {
      const whole = new Uint8Array(await response.arrayBuffer());
      chunks.push(whole);
      loaded = whole.byteLength;
    } else {
      const reader = response.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        loaded += value.byteLength;
        onProgress?.(loaded, total);
      }
    }
  } catch (e) {
    const of = total ? ` of ${total}` : '';
    fail(`download of ${url} was cut off after ${loaded}${of} bytes: ${(e as Error).message}`);
  }
  // A compressed body decodes to more bytes than Content-Length, never fewer: fewer means cut off.
  if (total && loaded < total) fail(`download of ${url} was cut off after ${loaded} of ${total} bytes`);
  onProgress?.(loaded, total || loaded);
  const bytes = new Uint8Array(loaded);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return { ok: true, status: response.status, bytes };
}

function httpProblem(status: number, url: string, what: string): string {
  if (status === 401 || status === 403) {
    return `${url} needs authorization (HTTP ${status}): the model is private or gated; only public models can be loaded`;
  }
  if (status === 404) return `no ${what} at ${url} (HTTP 404): check the model id or URL`;
  return `fetching ${url} failed with HTTP ${status}`;
}

/**
 * Fetch `${base}/config.json`, `${base}/model.safetensors` and (optional) `${base}/vocab.txt` and
 * load them as `loadBertCheckpoint` does. `base` is anything `resolveHfModelUrl` accepts.
 * `onProgress(loaded, total)` follows the weights download (total 0 while unknown).
 */
export async function fetchBertCheckpoint(
  baseUrl: string,
  fetchFn: typeof fetch = (input, init) => fetch(input, init),
  onProgress?: (loaded: number, total: number) => void,
  opts: { numLabels?: number } = {},
): Promise<BertCheckpoint> {
  const base = resolveHfModelUrl(baseUrl);
  const configUrl = `${base}/config.json`;
  const config = await fetchFile(configUrl, fetchFn);
  if (!config.ok) fail(httpProblem(config.status, configUrl, 'config.json'));
  const configText = new TextDecoder().decode(config.bytes);

  const weightsUrl = `${base}/model.safetensors`;
  const weights = await fetchFile(weightsUrl, fetchFn, onProgress);
  if (!weights.ok) {
    if (weights.status === 404) {
      fail(
        `no model.safetensors at ${weightsUrl} (HTTP 404). Only safetensors checkpoints can be loaded: ` +
          'pytorch_model.bin (a PyTorch pickle) is not supported, nor are sharded checkpoints. ' +
          'Pick a model that has a model.safetensors file, or convert it with safetensors.torch.save_file.',
      );
    }
    fail(httpProblem(weights.status, weightsUrl, 'model.safetensors'));
  }

  const vocabUrl = `${base}/vocab.txt`;
  const vocabFile = await fetchFile(vocabUrl, fetchFn);
  let vocab: string | undefined;
  if (vocabFile.ok) vocab = new TextDecoder().decode(vocabFile.bytes);
  else if (vocabFile.status !== 404) fail(httpProblem(vocabFile.status, vocabUrl, 'vocab.txt'));

  return loadBertCheckpoint({ config: configText, weights: weights.bytes!, vocab }, opts);
}
