// Masked-language-model loss of a BERT in our engine, forward only: Hugging Face
// BertForMaskedLM's head (cls.predictions) on top of BertModel's encoder. Used to check a shipped
// pretrained checkpoint (public/models/mini-bert) against the loss its pretraining script computed.
//
//   hidden (B·T, d) ─gather target rows→ (n, d) ─dense+GELU→ ─LayerNorm→ ─·Eᵀ + bias→ logits (n, V)
//
// The decoder is tied to the word embeddings E (V, d), so it is a linear with W = E. Only the
// target rows go through the head: with 15 % of positions masked that is 1/7 of the vocabulary
// projection's work. The softmax runs on the host in float64: crossEntropyForward uses one
// workgroup per row over ~10k classes, and this is a check, not a hot path.

import { readSafetensors } from '../io/safetensors';
import type { BertModel } from './bert';
import { createInputs, destroyInputs, writeInputs } from './bert';
import { embedding, layerNorm, linear } from './layers';
import { Tape, constant } from './tape';

/** label of a position that is not a prediction target (PyTorch's ignore_index) */
export const MLM_IGNORE = -100;

/** cls.predictions.* of BertForMaskedLM (the decoder weight is the tied word embedding). */
export interface MlmHead {
  /** transform.dense: (d, d) [out, in] and (d) */
  denseWeight: Float32Array;
  denseBias: Float32Array;
  /** transform.LayerNorm */
  lnWeight: Float32Array;
  lnBias: Float32Array;
  /** cls.predictions.bias: (vocab) */
  decoderBias: Float32Array;
}

/** A masked batch, row-major (batch, seq). */
export interface MlmBatch {
  batch: number;
  seq: number;
  inputIds: Uint32Array;
  /** 1 real token, 0 padding */
  attentionMask: Float32Array;
  /** the original id at a target position, MLM_IGNORE elsewhere */
  labels: Int32Array;
}

const HEAD_NAMES = {
  denseWeight: 'cls.predictions.transform.dense.weight',
  denseBias: 'cls.predictions.transform.dense.bias',
  lnWeight: 'cls.predictions.transform.LayerNorm.weight',
  lnBias: 'cls.predictions.transform.LayerNorm.bias',
  decoderBias: 'cls.predictions.bias',
} as const;

/**
 * The MLM head from a BertForMaskedLM model.safetensors (loadBertCheckpoint skips cls.*, so it is
 * read here). Older checkpoints name LayerNorm parameters gamma/beta; both spellings are accepted.
 */
export function readMlmHead(weights: ArrayBuffer | Uint8Array, hiddenSize: number, vocabSize: number): MlmHead {
  const tensors = readSafetensors(weights).tensors;
  const get = (name: string, shape: number[]): Float32Array => {
    const alt = name.replace(/LayerNorm\.weight$/, 'LayerNorm.gamma').replace(/LayerNorm\.bias$/, 'LayerNorm.beta');
    const t = tensors.get(name) ?? tensors.get(alt);
    if (!t) throw new Error(`model.safetensors has no ${name}: not a BertForMaskedLM checkpoint (no MLM head)`);
    if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])) {
      throw new Error(`${name} has shape [${t.shape}], expected [${shape}]`);
    }
    if (t.ints) throw new Error(`${name} is an integer tensor (${t.dtype}), expected floats`);
    return t.data;
  };
  const d = hiddenSize;
  return {
    denseWeight: get(HEAD_NAMES.denseWeight, [d, d]),
    denseBias: get(HEAD_NAMES.denseBias, [d]),
    lnWeight: get(HEAD_NAMES.lnWeight, [d]),
    lnBias: get(HEAD_NAMES.lnBias, [d]),
    decoderBias: get(HEAD_NAMES.decoderBias, [vocabSize]),
  };
}

/**
 * Mean cross-entropy over the target positions of one masked batch (dropout off), as
 * BertForMaskedLM computes it. `model` may hold any method: the classifier is never run.
 */
export async function mlmLoss(model: BertModel, head: MlmHead, b: MlmBatch): Promise<{ loss: number; targets: number }> {
  const gpu = model.gpu;
  const c = model.config;
  const n = b.batch * b.seq;
  if (b.inputIds.length !== n || b.attentionMask.length !== n || b.labels.length !== n) {
    throw new Error(`mlmLoss: ids/mask/labels must each hold batch·seq = ${n} values`);
  }
  if (b.seq > c.maxPositions) throw new Error(`mlmLoss: ${b.seq} positions, the model has ${c.maxPositions}`);
  const targetRows: number[] = [];
  const targetIds: number[] = [];
  b.labels.forEach((label, i) => {
    if (label === MLM_IGNORE) return;
    if (!(label >= 0 && label < c.vocabSize)) throw new Error(`mlmLoss: label ${label} at position ${i} is outside the vocabulary (size ${c.vocabSize})`);
    targetRows.push(i);
    targetIds.push(label);
  });
  if (targetRows.length === 0) throw new Error('mlmLoss: the batch has no target positions');

  const inp = createInputs(gpu, b.batch, b.seq);
  const tape = new Tape(gpu);
  tape.enabled = false; // forward only: nothing is recorded, no gradient buffers are allocated
  const uploads = [
    gpu.upload(Uint32Array.from(targetRows), [targetRows.length], 'u32', 'mlm_target_rows'),
    gpu.upload(head.denseWeight, [c.hiddenSize, c.hiddenSize], 'f32', 'cls.transform.dense.weight'),
    gpu.upload(head.denseBias, [c.hiddenSize], 'f32', 'cls.transform.dense.bias'),
    gpu.upload(head.lnWeight, [c.hiddenSize], 'f32', 'cls.transform.LayerNorm.weight'),
    gpu.upload(head.lnBias, [c.hiddenSize], 'f32', 'cls.transform.LayerNorm.bias'),
    gpu.upload(head.decoderBias, [c.vocabSize], 'f32', 'cls.predictions.bias'),
  ];
  const [rowsTensor, denseW, denseB, lnW, lnB, decoderB] = uploads;
  try {
    writeInputs(gpu, inp, { ids: b.inputIds, typeIds: new Uint32Array(n), mask: b.attentionMask, labels: new Uint32Array(b.batch) });
    const state = model.embed(tape, inp, { train: false, seed: 0, droppedLayers: 0 });
    model.encode(tape, state, 0, c.numLayers);
    // the embedding op as a row gather, as BertModel does for [CLS]
    const targets = embedding(tape, state.h, rowsTensor, Uint32Array.from(targetRows), 'mlm.targets');
    const transformed = layerNorm(
      tape,
      linear(tape, targets, constant(denseW), constant(denseB), { gelu: true, name: 'cls.predictions.transform.dense' }),
      constant(lnW), constant(lnB), c.layerNormEps, 'cls.predictions.transform.LayerNorm',
    );
    const wordEmbeddings = model.store.get('bert.embeddings.word_embeddings.weight');
    const logits = linear(tape, transformed, wordEmbeddings, constant(decoderB), { name: 'cls.predictions.decoder' });
    gpu.flush();
    const values = await gpu.read(logits.value);
    const vocab = c.vocabSize;
    let total = 0;
    for (let r = 0; r < targetRows.length; r++) {
      // log-softmax in float64, max-shifted
      const base = r * vocab;
      let max = -Infinity;
      for (let v = 0; v < vocab; v++) if (values[base + v] > max) max = values[base + v];
      let sum = 0;
      for (let v = 0; v < vocab; v++) sum += Math.exp(values[base + v] - max);
      total += max + Math.log(sum) - values[base + targetIds[r]];
    }
    return { loss: total / targetRows.length, targets: targetRows.length };
  } finally {
    tape.reset();
    destroyInputs(gpu, inp);
    for (const t of uploads) gpu.release(t);
  }
}
