// K-Adapter (REFERENCE.md): knowledge plug-ins outside the frozen model. Plug-in p has adapter
// layers k = 0…K−1 plugged at base layer indices; adapter layer k takes x_k = h_{plug[k]} + o_{k−1}
// and computes o_k = x_k + up(TL_N(…TL_1(down(x_k)))) — a down projection, N small transformer
// layers (BERT post-LN), an up projection and a skip connection. The base's last hidden state and
// every plug-in's last output are concatenated and mixed back to d by one Linear; no information
// flows between plug-ins, so plug-ins trained independently combine.
import type { Tensor } from '../../gpu/tensor';
import { concatBackward, concatForward } from '../../ops/fusion';
import type { Rng } from '../../train/rng';
import type { BertConfig, MethodConfig } from '../config';
import { add, addGradTensor, attention, dropout, layerNorm, linear } from '../layers';
import type { ParamGroup, ParamSpec } from '../params';
import { Var, type Tape } from '../tape';

type KAdapterConfig = Extract<MethodConfig, { kind: 'kadapter' }>;

/** The sub-layer names of a BERT encoder layer, relative to its prefix. */
const LAYER_LINEARS: [string, 'h' | 'f', 'h' | 'f'][] = [
  ['attention.self.query', 'h', 'h'],
  ['attention.self.key', 'h', 'h'],
  ['attention.self.value', 'h', 'h'],
  ['attention.output.dense', 'h', 'h'],
  ['intermediate.dense', 'h', 'f'],
  ['output.dense', 'f', 'h'],
];

export function kadapterLayerPrefix(plugin: number, k: number): string {
  return `kadapter.${plugin}.layer.${k}`;
}

export function kadapterParamSpecs(c: BertConfig, m: KAdapterConfig, rng: Rng, group: ParamGroup): ParamSpec[] {
  const d = c.hiddenSize, a = m.bottleneck, f = m.adapterIntermediate;
  const specs: ParamSpec[] = [];
  const biasGroup: ParamGroup = group === 'frozen' ? 'frozen' : 'noDecay';
  const weight = (name: string, rows: number, cols: number) => specs.push({ name, shape: [rows, cols], group, data: rng.fillNormal(new Float32Array(rows * cols), 0.02) });
  const zeros = (name: string, n: number) => specs.push({ name, shape: [n], group: biasGroup, data: new Float32Array(n) });
  const ones = (name: string, n: number) => specs.push({ name, shape: [n], group: biasGroup, data: new Float32Array(n).fill(1) });
  m.plugins.forEach((plugin, p) => {
    plugin.layers.forEach((_, k) => {
      const pre = kadapterLayerPrefix(p, k);
      weight(`${pre}.down.weight`, a, d);
      zeros(`${pre}.down.bias`, a);
      for (let j = 0; j < m.adapterLayers; j++) {
        const e = `${pre}.encoder.${j}`;
        for (const [name, inDim, outDim] of LAYER_LINEARS) {
          const [i, o] = [inDim === 'h' ? a : f, outDim === 'h' ? a : f];
          weight(`${e}.${name}.weight`, o, i);
          zeros(`${e}.${name}.bias`, o);
        }
        for (const ln of ['attention.output.LayerNorm', 'output.LayerNorm']) {
          ones(`${e}.${ln}.weight`, a);
          zeros(`${e}.${ln}.bias`, a);
        }
      }
      weight(`${pre}.up.weight`, d, a);
      zeros(`${pre}.up.bias`, d);
    });
  });
  weight('kadapter.combine.weight', d, (1 + m.plugins.length) * d);
  zeros('kadapter.combine.bias', d);
  return specs;
}

export interface EncoderContext {
  keyMask: Tensor;
  batch: number;
  seq: number;
  heads: number;
  eps: number;
  hiddenDropout: number;
  attentionDropout: number;
  seed: (k: number) => number;
}

/** One BERT encoder layer (post-LN, exact GELU) whose parameters are `get(prefix + suffix)`. */
export function encoderLayer(tape: Tape, prefix: string, get: (name: string) => Var, x: Var, c: EncoderContext, seedBase: number): Var {
  const p = (s: string) => get(`${prefix}.${s}`);
  const lin = (name: string, input: Var, gelu = false) => linear(tape, input, p(`${name}.weight`), p(`${name}.bias`), { gelu, name: `${prefix}.${name}` });
  const d = x.shape[x.shape.length - 1];
  const q = lin('attention.self.query', x), k = lin('attention.self.key', x), v = lin('attention.self.value', x);
  const ctx = attention(tape, q, k, v, c.keyMask, { batch: c.batch, seq: c.seq, heads: c.heads, headDim: d / c.heads }, c.attentionDropout, c.seed(seedBase), `${prefix}.attention`);
  const ao = dropout(tape, lin('attention.output.dense', ctx), c.hiddenDropout, c.seed(seedBase + 1));
  const a = layerNorm(tape, add(tape, x, ao), p('attention.output.LayerNorm.weight'), p('attention.output.LayerNorm.bias'), c.eps, `${prefix}.attention.output.LayerNorm`);
  const out = dropout(tape, lin('output.dense', lin('intermediate.dense', a, true)), c.hiddenDropout, c.seed(seedBase + 2));
  return layerNorm(tape, add(tape, a, out), p('output.LayerNorm.weight'), p('output.LayerNorm.bias'), c.eps, `${prefix}.output.LayerNorm`);
}

/** o = x + up(TL…(down(x))) for adapter layer k of plug-in p. */
export function kadapterLayer(tape: Tape, m: KAdapterConfig, p: number, k: number, get: (name: string) => Var, x: Var, c: EncoderContext): Var {
  const pre = kadapterLayerPrefix(p, k);
  let u = linear(tape, x, get(`${pre}.down.weight`), get(`${pre}.down.bias`), { name: `${pre}.down` });
  const inner: EncoderContext = { ...c, heads: m.adapterHeads };
  for (let j = 0; j < m.adapterLayers; j++) u = encoderLayer(tape, `${pre}.encoder.${j}`, get, u, inner, 1000 + 100 * p + 10 * k + 3 * j);
  const up = linear(tape, u, get(`${pre}.up.weight`), get(`${pre}.up.bias`), { name: `${pre}.up` });
  return add(tape, x, up, `${pre}.out`);
}

/** [a | b] along features: (rows, d1) and (rows, d2) → (rows, d1 + d2). */
export function concat(tape: Tape, a: Var, b: Var, name = ''): Var {
  const gpu = tape.gpu;
  const d1 = a.shape[a.shape.length - 1], d2 = b.shape[b.shape.length - 1];
  const rows = a.value.size / d1;
  const y = tape.own(concatForward(gpu, a.value, b.value, rows, d1, d2));
  const needs = tape.needsGrad(a, b);
  const result = new Var(y, needs, false, null, name);
  if (needs) {
    tape.record(`concat:${name}`, () => {
      const { da, db } = concatBackward(gpu, result.grad!, rows, d1, d2);
      tape.own(da);
      tape.own(db);
      addGradTensor(tape, a, da.reshape(a.shape));
      addGradTensor(tape, b, db.reshape(b.shape));
    });
  }
  return result;
}
