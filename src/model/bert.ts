// BERT encoder for sequence classification with the semantics of Hugging Face
// BertForSequenceClassification: post-LN layers, exact GELU, additive padding mask, pooler tanh
// over [CLS], classifier, mean cross-entropy. Parameters keep their Hugging Face names.
// PEFT methods hook in at three places (the linears, after the attention-output dense, after the
// FFN-output dense); which modules exist and which parameters train is the method's configuration.
import type { Gpu } from '../gpu/runtime';
import { Tensor } from '../gpu/tensor';
import { geluForward, geluBackward } from '../ops/gelu';
import type { Rng } from '../train/rng';
import { LORA_TARGETS, layerPrefix, type AdapterDropConfig, type BertConfig, type LoraTarget, type MethodConfig } from './config';
import { add, addGradTensor, attention, dropout, embedding, layerNorm, linear, tanh } from './layers';
import { ParamStore, isNoDecayName, type ParamGroup, type ParamSpec } from './params';
import { kadapterParamSpecs } from './peft/kadapter';
import { adapterNames, adapterParamSpecs, applyAdapter, type AdapterSite, type AdapterWeights } from './peft/adapter';
import { adamixLoraNames, adamixLoraParamSpecs, adamixNames, adamixParamSpecs, meanOfExperts, type Route } from './peft/adamix';
import { applyLora, loraNames, loraParamSpecs } from './peft/lora';
import { applyFusion, fusionNames, fusionParamSpecs, fusionRegularizer, taskAdapterNames } from './peft/fusion';
import { concat, kadapterLayer, type EncoderContext } from './peft/kadapter';
import { Var, type Tape } from './tape';

/** Base parameter names and shapes (REFERENCE.md, "Hugging Face BERT names"). */
export function bertParamShapes(c: BertConfig): Map<string, number[]> {
  const d = c.hiddenSize, f = c.intermediateSize;
  const s = new Map<string, number[]>([
    ['bert.embeddings.word_embeddings.weight', [c.vocabSize, d]],
    ['bert.embeddings.position_embeddings.weight', [c.maxPositions, d]],
    ['bert.embeddings.token_type_embeddings.weight', [c.typeVocabSize, d]],
    ['bert.embeddings.LayerNorm.weight', [d]],
    ['bert.embeddings.LayerNorm.bias', [d]],
  ]);
  for (let l = 0; l < c.numLayers; l++) {
    const p = layerPrefix(l);
    for (const x of ['query', 'key', 'value']) {
      s.set(`${p}.attention.self.${x}.weight`, [d, d]);
      s.set(`${p}.attention.self.${x}.bias`, [d]);
    }
    s.set(`${p}.attention.output.dense.weight`, [d, d]);
    s.set(`${p}.attention.output.dense.bias`, [d]);
    s.set(`${p}.attention.output.LayerNorm.weight`, [d]);
    s.set(`${p}.attention.output.LayerNorm.bias`, [d]);
    s.set(`${p}.intermediate.dense.weight`, [f, d]);
    s.set(`${p}.intermediate.dense.bias`, [f]);
    s.set(`${p}.output.dense.weight`, [d, f]);
    s.set(`${p}.output.dense.bias`, [d]);
    s.set(`${p}.output.LayerNorm.weight`, [d]);
    s.set(`${p}.output.LayerNorm.bias`, [d]);
  }
  s.set('bert.pooler.dense.weight', [d, d]);
  s.set('bert.pooler.dense.bias', [d]);
  s.set('classifier.weight', [c.numLabels, d]);
  s.set('classifier.bias', [c.numLabels]);
  return s;
}

function layerOf(name: string): number {
  const m = /^bert\.encoder\.layer\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : -1;
}

/** Layers whose PEFT modules are fixed off (specialised AdapterDrop): they run as the frozen model. */
export function specializedDrop(drop: AdapterDropConfig): number {
  return drop.mode === 'specialized' ? drop.n : 0;
}

/** Does a base parameter train under this method? (REFERENCE.md, "Which parameters train".) */
export function baseTrainable(method: MethodConfig, name: string, drop: AdapterDropConfig): boolean {
  if (name.startsWith('classifier.')) return true;
  switch (method.kind) {
    case 'full':
      return true;
    case 'headonly':
      return name.startsWith('bert.pooler.');
    case 'bitfit':
      return name.endsWith('.bias');
    case 'houlsby': {
      const l = layerOf(name);
      return l >= specializedDrop(drop) && /\.(attention\.output|output)\.LayerNorm\./.test(name);
    }
    default:
      return false;
  }
}

export function groupFor(name: string, trainable: boolean): ParamGroup {
  return !trainable ? 'frozen' : isNoDecayName(name) ? 'noDecay' : 'decay';
}

/** HF's initialisation for weights a checkpoint lacks (pooler, classifier): N(0, 0.02), biases 0. */
export function initBaseParam(name: string, shape: number[], rng: Rng): Float32Array {
  const size = shape.reduce((a, b) => a * b, 1);
  if (name.endsWith('.bias')) return new Float32Array(size);
  if (name.endsWith('LayerNorm.weight')) return new Float32Array(size).fill(1);
  return rng.fillNormal(new Float32Array(size), 0.02);
}

/** Every parameter of the model under a method: base (by name, from `base` or initialised) + modules. */
export function buildParamSpecs(c: BertConfig, base: Map<string, Float32Array>, method: MethodConfig, drop: AdapterDropConfig, rng: Rng): ParamSpec[] {
  const specs: ParamSpec[] = [];
  // A checkpoint without a pooler (an MLM-only pretraining, e.g. a BertForMaskedLM export) gets a
  // freshly initialised one; frozen, that random projection would sit between every PEFT method
  // and its classifier, so it trains with the head instead.
  const freshPooler = !base.has('bert.pooler.dense.weight');
  for (const [name, shape] of bertParamShapes(c)) {
    let data = base.get(name);
    const size = shape.reduce((a, b) => a * b, 1);
    if (data && data.length !== size) throw new Error(`${name}: ${data.length} values, expected shape [${shape}]`);
    if (!data) {
      if (!/^(bert\.pooler|classifier)\./.test(name)) throw new Error(`the base model lacks ${name}`);
      data = initBaseParam(name, shape, rng);
    }
    const trainable = baseTrainable(method, name, drop) || (freshPooler && name.startsWith('bert.pooler.'));
    specs.push({ name, shape, group: groupFor(name, trainable), data: Float32Array.from(data) });
  }
  const d = c.hiddenSize;
  const from = specializedDrop(drop);
  const moduleGroup = (l: number): ParamGroup => (l >= from ? 'decay' : 'frozen');
  for (let l = 0; l < c.numLayers; l++) {
    switch (method.kind) {
      case 'houlsby':
        specs.push(...adapterParamSpecs(l, 'attention.output', d, method.bottleneck, rng, moduleGroup(l)));
        specs.push(...adapterParamSpecs(l, 'output', d, method.bottleneck, rng, moduleGroup(l)));
        break;
      case 'pfeiffer':
        specs.push(...adapterParamSpecs(l, 'output', d, Math.max(1, Math.floor(d / method.reductionFactor)), rng, moduleGroup(l)));
        break;
      case 'lora':
        for (const t of method.targets) {
          const [dIn, dOut] = loraDims(c, t);
          specs.push(...loraParamSpecs(l, t, dIn, dOut, method.r, rng, moduleGroup(l)));
        }
        break;
      case 'adamix':
        specs.push(...adamixParamSpecs(l, d, method.bottleneck, method.experts, method.sharedUp, rng, moduleGroup(l)));
        break;
      case 'adamix_lora':
        for (const t of method.targets) {
          const [dIn, dOut] = loraDims(c, t);
          specs.push(...adamixLoraParamSpecs(l, t, dIn, dOut, method.r, method.experts, method.sharedB, rng, moduleGroup(l)));
        }
        break;
      case 'fusion':
        for (const task of method.tasks) {
          for (const [key, name] of Object.entries(taskAdapterNames(l, task))) {
            const data = base.get(name);
            if (!data) throw new Error(`AdapterFusion needs the trained adapter of task "${task}": ${name} is missing`);
            const shape = key === 'wDown' ? [method.bottleneck, d] : key === 'bDown' ? [method.bottleneck] : key === 'wUp' ? [d, method.bottleneck] : [d];
            if (data.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`${name}: ${data.length} values, expected shape [${shape}]`);
            specs.push({ name, shape, group: 'frozen', data: Float32Array.from(data) });
          }
        }
        specs.push(...fusionParamSpecs(l, d, rng, moduleGroup(l)));
        break;
      default:
        break;
    }
  }
  if (method.kind === 'kadapter') {
    for (const plugin of method.plugins) {
      if (plugin.layers.some((x, i) => !(x >= 0 && x < c.numLayers) || (i > 0 && x <= plugin.layers[i - 1]))) {
        throw new Error(`K-Adapter plug-in layers [${plugin.layers}] must be increasing indices in 0…${c.numLayers - 1}`);
      }
    }
    specs.push(...kadapterParamSpecs(c, method, rng, 'decay'));
  }
  // biases of modules never decay (names end in .bias); others keep the group chosen above
  return specs.map((s) => (s.group === 'decay' && isNoDecayName(s.name) ? { ...s, group: 'noDecay' } : s));
}

export function loraDims(c: BertConfig, t: LoraTarget): [number, number] {
  if (t === 'intermediate') return [c.hiddenSize, c.intermediateSize];
  if (t === 'output') return [c.intermediateSize, c.hiddenSize];
  return [c.hiddenSize, c.hiddenSize];
}

/** Model inputs as persistent GPU tensors (rewritten each step) plus host copies of the ids. */
export interface ModelInputs {
  batch: number;
  seq: number;
  ids: Tensor;
  typeIds: Tensor;
  posIds: Tensor;
  clsIds: Tensor;
  keyMask: Tensor;
  labels: Tensor;
  hostIds: Uint32Array;
  hostTypeIds: Uint32Array;
  hostPosIds: Uint32Array;
  hostClsIds: Uint32Array;
}

export function createInputs(gpu: Gpu, batch: number, seq: number): ModelInputs {
  const n = batch * seq;
  const hostPosIds = new Uint32Array(n);
  const hostClsIds = new Uint32Array(batch);
  for (let b = 0; b < batch; b++) {
    hostClsIds[b] = b * seq;
    for (let t = 0; t < seq; t++) hostPosIds[b * seq + t] = t;
  }
  return {
    batch,
    seq,
    ids: gpu.zeros([n], 'u32', 'input_ids'),
    typeIds: gpu.zeros([n], 'u32', 'token_type_ids'),
    posIds: gpu.upload(hostPosIds, [n], 'u32', 'position_ids'),
    clsIds: gpu.upload(hostClsIds, [batch], 'u32', 'cls_rows'),
    keyMask: gpu.zeros([n], 'f32', 'attention_mask'),
    labels: gpu.zeros([batch], 'u32', 'labels'),
    hostIds: new Uint32Array(n),
    hostTypeIds: new Uint32Array(n),
    hostPosIds,
    hostClsIds,
  };
}

/** Write one batch into the persistent input tensors (queued writes, no allocation). */
export function writeInputs(gpu: Gpu, inp: ModelInputs, b: { ids: Uint32Array; typeIds: Uint32Array; mask: Float32Array; labels: Uint32Array }): void {
  inp.hostIds.set(b.ids);
  inp.hostTypeIds.set(b.typeIds);
  gpu.write(inp.ids, b.ids);
  gpu.write(inp.typeIds, b.typeIds);
  gpu.write(inp.keyMask, b.mask);
  gpu.write(inp.labels, b.labels);
}

export function destroyInputs(gpu: Gpu, inp: ModelInputs): void {
  for (const t of [inp.ids, inp.typeIds, inp.posIds, inp.clsIds, inp.keyMask, inp.labels]) gpu.release(t);
}

export interface PassOptions {
  /** dropout on (training) */
  train: boolean;
  /** base of this pass's dropout seeds */
  seed: number;
  /** AdaMix route of this pass (training, or evaluation with a sampled route) */
  route?: Route;
  /** AdaMix evaluation with averaged experts */
  merged?: boolean;
  /** AdapterDrop: PEFT modules of layers below this are skipped */
  droppedLayers: number;
}

/** A forward pass in progress: the hidden state and what the later stages need. */
export interface PassState {
  h: Var;
  inp: ModelInputs;
  o: PassOptions;
  seed: (k: number) => number;
  plugins: { next: number; out: Var | null }[];
  encoder: EncoderContext;
}

export class BertModel {
  private mergedCache = new Map<string, Tensor>();
  /** Observe intermediate activations (tests use it to localise a mismatch): embeddings, hidden.N. */
  tap: ((name: string, v: Var) => void) | null = null;
  /** AdapterFusion: receives each layer's attention over the task adapters, (rows, tasks) */
  onFusionAttention: ((layer: number, probs: Tensor) => void) | null = null;
  private ones: Tensor | null = null;

  constructor(
    readonly gpu: Gpu,
    readonly config: BertConfig,
    readonly method: MethodConfig,
    readonly adapterDrop: AdapterDropConfig,
    readonly store: ParamStore,
  ) {}

  static create(gpu: Gpu, c: BertConfig, base: Map<string, Float32Array>, method: MethodConfig, drop: AdapterDropConfig, rng: Rng): BertModel {
    if (c.hiddenSize % c.numHeads !== 0) throw new Error(`hidden size ${c.hiddenSize} is not divisible by ${c.numHeads} heads`);
    return new BertModel(gpu, c, method, drop, new ParamStore(gpu, buildParamSpecs(c, base, method, drop, rng)));
  }

  private p(name: string): Var {
    return this.store.get(name);
  }

  /** Logits (batch, labels) of one forward pass. */
  forward(tape: Tape, inp: ModelInputs, o: PassOptions): Var {
    const state = this.embed(tape, inp, o);
    this.encode(tape, state, 0, this.config.numLayers);
    return this.classify(tape, state);
  }

  /**
   * The three stages of a forward pass, exposed so that multi-task inference can run the shared
   * frozen lower layers once and the task-specific upper layers per task (train/multitask.ts).
   */
  embed(tape: Tape, inp: ModelInputs, o: PassOptions): PassState {
    const c = this.config;
    const pDrop = o.train ? c.hiddenDropout : 0;
    const seed = (k: number) => (o.seed * 7919 + k * 104729) >>> 0;
    const word = embedding(tape, this.p('bert.embeddings.word_embeddings.weight'), inp.ids, inp.hostIds, 'word');
    const pos = embedding(tape, this.p('bert.embeddings.position_embeddings.weight'), inp.posIds, inp.hostPosIds, 'position');
    const type = embedding(tape, this.p('bert.embeddings.token_type_embeddings.weight'), inp.typeIds, inp.hostTypeIds, 'token_type');
    let h = add(tape, add(tape, word, pos, 'emb'), type, 'emb');
    h = layerNorm(tape, h, this.p('bert.embeddings.LayerNorm.weight'), this.p('bert.embeddings.LayerNorm.bias'), c.layerNormEps, 'emb');
    h = dropout(tape, h, pDrop, seed(1), 'emb');
    this.tap?.('embeddings', h);
    const m = this.method;
    return {
      h, inp, o, seed,
      plugins: m.kind === 'kadapter' ? m.plugins.map(() => ({ next: 0, out: null })) : [],
      encoder: {
        keyMask: inp.keyMask, batch: inp.batch, seq: inp.seq, heads: c.numHeads, eps: c.layerNormEps,
        hiddenDropout: pDrop, attentionDropout: o.train ? c.attentionDropout : 0, seed,
      },
    };
  }

  /** Encoder layers [from, to) over state.h. */
  encode(tape: Tape, state: PassState, from: number, to: number): void {
    const m = this.method;
    for (let l = from; l < to; l++) {
      state.h = this.layer(tape, l, state.h, state.inp, state.o, state.seed);
      this.tap?.(`hidden.${l}`, state.h);
      if (m.kind === 'kadapter') {
        state.plugins.forEach((st, p) => {
          if (m.plugins[p].layers[st.next] !== l) return;
          const x = st.out ? add(tape, state.h, st.out, `kadapter.${p}.in`) : state.h;
          st.out = kadapterLayer(tape, m, p, st.next, (n) => this.p(n), x, state.encoder);
          this.tap?.(`kadapter.${p}.${st.next}`, st.out);
          st.next++;
        });
      }
    }
  }

  /** K-Adapter's combination, the pooler and the classifier: logits (batch, labels). */
  classify(tape: Tape, state: PassState): Var {
    let h = state.h;
    if (this.method.kind === 'kadapter') {
      // Linear((1+P)·d → d)(concat[h_last, o⁽⁰⁾_last, …]) replaces the last hidden state
      let cat = h;
      state.plugins.forEach((st, p) => (cat = concat(tape, cat, st.out!, `kadapter.${p}.concat`)));
      h = linear(tape, cat, this.p('kadapter.combine.weight'), this.p('kadapter.combine.bias'), { name: 'kadapter.combine' });
    }
    const inp = state.inp;
    const cls = embedding(tape, h, inp.clsIds, inp.hostClsIds, 'cls');
    let pooled = tanh(tape, linear(tape, cls, this.p('bert.pooler.dense.weight'), this.p('bert.pooler.dense.bias'), { name: 'pooler' }), 'pooler');
    this.tap?.('pooled', pooled);
    pooled = dropout(tape, pooled, state.o.train ? this.config.hiddenDropout : 0, state.seed(2), 'pooler');
    return linear(tape, pooled, this.p('classifier.weight'), this.p('classifier.bias'), { name: 'classifier' });
  }

  private layer(tape: Tape, l: number, x: Var, inp: ModelInputs, o: PassOptions, seed: (k: number) => number): Var {
    const c = this.config;
    const pre = layerPrefix(l);
    const active = l >= o.droppedLayers;
    const pDrop = o.train ? c.hiddenDropout : 0;
    const proj = (target: LoraTarget, input: Var, gelu = false): Var => {
      const base = `${pre}.${LORA_TARGETS[target]}`;
      const w = this.p(`${base}.weight`), b = this.p(`${base}.bias`);
      const lora = active ? this.loraFor(l, target, o) : null;
      if (!lora) return linear(tape, input, w, b, { gelu, name: base });
      // LoRA's delta enters before the activation: gelu(W·x + b + s·B·A·x)
      const y = applyLora(tape, input, linear(tape, input, w, b, { name: base }), lora.a, lora.b, lora.scale, lora.experts, `${base}.lora`);
      return gelu ? this.gelu(tape, y, base) : y;
    };
    const q = proj('query', x), k = proj('key', x), v = proj('value', x);
    const heads = c.numHeads, headDim = c.hiddenSize / heads;
    const ctx = attention(tape, q, k, v, inp.keyMask, { batch: inp.batch, seq: inp.seq, heads, headDim }, o.train ? c.attentionDropout : 0, seed(100 + l * 10), `${pre}.attention`);
    let ao = dropout(tape, proj('attention.output', ctx), pDrop, seed(101 + l * 10), `${pre}.attention.output`);
    if (active && this.method.kind === 'houlsby') ao = applyAdapter(tape, ao, this.adapterWeights(l, 'attention.output'), undefined, `${pre}.attention.output.adapter`);
    const a = layerNorm(tape, add(tape, x, ao, `${pre}.attention.residual`), this.p(`${pre}.attention.output.LayerNorm.weight`), this.p(`${pre}.attention.output.LayerNorm.bias`), c.layerNormEps, `${pre}.attention.output.LayerNorm`);
    const inter = proj('intermediate', a, true);
    let out = dropout(tape, proj('output', inter), pDrop, seed(102 + l * 10), `${pre}.output`);
    if (active && (this.method.kind === 'houlsby' || this.method.kind === 'pfeiffer')) {
      out = applyAdapter(tape, out, this.adapterWeights(l, 'output'), undefined, `${pre}.output.adapter`);
    } else if (active && this.method.kind === 'adamix') {
      out = this.adamixAdapter(tape, l, out, o);
    } else if (active && this.method.kind === 'fusion') {
      const m = this.method;
      const adapters = m.tasks.map((t) => {
        const n = taskAdapterNames(l, t);
        return { wDown: this.p(n.wDown), bDown: this.p(n.bDown), wUp: this.p(n.wUp), bUp: this.p(n.bUp) };
      });
      const f = fusionNames(l);
      const fused = applyFusion(tape, out, adapters, { q: this.p(f.q), k: this.p(f.k), v: this.p(f.v) }, m.temperature, `${pre}.output.adapter_fusion`);
      this.onFusionAttention?.(l, fused.probs);
      out = fused.out;
    }
    return layerNorm(tape, add(tape, a, out, `${pre}.output.residual`), this.p(`${pre}.output.LayerNorm.weight`), this.p(`${pre}.output.LayerNorm.bias`), c.layerNormEps, `${pre}.output.LayerNorm`);
  }

  private gelu(tape: Tape, x: Var, name: string): Var {
    const gpu = tape.gpu;
    const y = tape.own(geluForward(gpu, x.value));
    const needs = tape.needsGrad(x);
    const result = new Var(y, needs, false, null, `${name}.gelu`);
    if (needs) tape.record(`gelu:${name}`, () => addGradTensor(tape, x, tape.own(geluBackward(gpu, x.value, result.grad!))));
    return result;
  }

  private adapterWeights(l: number, site: AdapterSite): AdapterWeights {
    const n = adapterNames(l, site);
    // plain adapters are a stack of one expert: view (m, d) as (1, m, d)
    return { wDown: this.p(n.wDown), bDown: this.p(n.bDown), wUp: this.p(n.wUp), bUp: this.p(n.bUp) };
  }

  private adamixAdapter(tape: Tape, l: number, x: Var, o: PassOptions): Var {
    if (this.method.kind !== 'adamix') throw new Error('unreachable');
    const n = adamixNames(l);
    const w: AdapterWeights = { wDown: this.p(n.wDown), bDown: this.p(n.bDown), wUp: this.p(n.wUp), bUp: this.p(n.bUp) };
    if (o.merged) {
      const merged: AdapterWeights = {
        wDown: new Var(this.merged(n.wDown), false),
        bDown: new Var(this.merged(n.bDown), false),
        wUp: new Var(this.merged(n.wUp), false),
        bUp: new Var(this.merged(n.bUp), false),
      };
      return applyAdapter(tape, x, merged, { down: 0, up: 0 }, `${layerPrefix(l)}.output.adamix.merged`);
    }
    const choice = o.route?.adapter?.[l];
    if (!choice) throw new Error(`AdaMix pass without a route for layer ${l}`);
    return applyAdapter(tape, x, w, choice, `${layerPrefix(l)}.output.adamix`);
  }

  private loraFor(l: number, t: LoraTarget, o: PassOptions): { a: Var; b: Var; scale: number; experts: { a: number; b: number } } | null {
    const m = this.method;
    if (m.kind === 'lora' && m.targets.includes(t)) {
      const n = loraNames(l, t);
      return { a: this.p(n.a), b: this.p(n.b), scale: m.alpha / m.r, experts: { a: 0, b: 0 } };
    }
    if (m.kind === 'adamix_lora' && m.targets.includes(t)) {
      const n = adamixLoraNames(l, t);
      if (o.merged) return { a: new Var(this.merged(n.a), false), b: new Var(this.merged(n.b), false), scale: m.alpha / m.r, experts: { a: 0, b: 0 } };
      const choice = o.route?.lora?.[l]?.[t];
      if (!choice) throw new Error(`AdaMix-LoRA pass without a route for layer ${l} ${t}`);
      return { a: this.p(n.a), b: this.p(n.b), scale: m.alpha / m.r, experts: { a: choice.down, b: choice.up } };
    }
    return null;
  }

  /** The average of a stacked expert parameter (module merging), recomputed once per evaluation. */
  private merged(name: string): Tensor {
    let t = this.mergedCache.get(name);
    const src = this.p(name).value;
    if (!t) {
      t = this.gpu.empty(src.shape.slice(1), 'f32', `${name}.merged`).reshape([1, ...src.shape.slice(1)]);
      this.mergedCache.set(name, t);
    }
    if (!this.mergedFresh.has(name)) {
      const e = src.shape[0];
      if (!this.ones || this.ones.size < e) {
        if (this.ones) this.gpu.release(this.ones);
        this.ones = this.gpu.upload(new Float32Array(Math.max(e, 8)).fill(1), undefined, 'f32', 'ones');
      }
      meanOfExperts(this.gpu, src, this.ones.size === e ? this.ones : viewPrefix(this.ones, e), t);
      this.mergedFresh.add(name);
    }
    return t;
  }
  private mergedFresh = new Set<string>();

  /**
   * Loss terms on the parameters themselves, after the backward pass: AdapterFusion's
   * λ·Σ‖I − V‖² (its gradient into V, its value into `loss`).
   */
  regularize(tape: Tape, loss: Tensor): void {
    const m = this.method;
    if (m.kind !== 'fusion' || m.regWeight === 0) return;
    for (let l = 0; l < this.config.numLayers; l++) fusionRegularizer(tape, this.p(fusionNames(l).v), m.regWeight, loss);
  }

  /** Call after the weights change (each training step) so merged experts are recomputed when next used. */
  invalidateMerged(): void {
    this.mergedFresh.clear();
  }

  destroy(): void {
    this.store.destroy();
    for (const t of this.mergedCache.values()) this.gpu.release(t);
    if (this.ones) this.gpu.release(this.ones);
  }
}

function viewPrefix(t: Tensor, n: number): Tensor {
  return new Tensor(t.buffer, [n], t.dtype, t.offset, t.name);
}
