// The model's GPU forward and backward against PyTorch reference numbers (tests/fixtures/bert,
// written by tests/fixtures/make_fixtures.py in float64): logits, loss and the gradient of every
// trainable parameter, for every PEFT method. Tolerances are stated per quantity below.
import { describe, expect, test } from 'vitest';
import { readSafetensors, type StTensor } from '../../src/io/safetensors';
import { BertModel } from '../../src/model/bert';
import { LORA_TARGETS, type BertConfig, type LoraTarget, type MethodConfig, type AdapterDropConfig } from '../../src/model/config';
import type { Route } from '../../src/model/peft/adamix';
import { Trainer, DEFAULT_TRAIN } from '../../src/train/trainer';
import { Rng } from '../../src/train/rng';
import { expectClose } from '../util/compare';
import { getGpu, noGpuErrors } from './gpu';

const jsons = import.meta.glob('../fixtures/bert/*.json', { eager: true, import: 'default' }) as Record<string, FixtureJson>;
const urls = import.meta.glob('../fixtures/bert/*.safetensors', { eager: true, query: '?url', import: 'default' }) as Record<string, string>;

interface FixtureJson {
  config: Record<string, number>;
  method: Record<string, unknown> & { kind: string };
  routes: { layer: number; module: string; down: number; up: number }[][];
  trainable: string[];
  trainable_count: number;
  total_count: number;
  has_gradients: boolean;
}

/** logits: float32 forward of a 3-layer model vs float64 PyTorch */
const LOGIT_ATOL = 1e-4;
/** gradients: absolute 2e-4 plus 1 % relative (float32 accumulation over a batch of 3×8 tokens) */
const GRAD_ATOL = 2e-4;
const GRAD_RTOL = 1e-2;

const targetByPath = Object.fromEntries(Object.entries(LORA_TARGETS).map(([k, v]) => [v, k])) as Record<string, LoraTarget>;

function methodOf(j: FixtureJson): { method: MethodConfig; drop: AdapterDropConfig } {
  const m = j.method;
  const dropped = (m.dropped_layers as number[] | undefined) ?? [];
  const drop: AdapterDropConfig = dropped.length ? { mode: 'specialized', n: dropped.length } : { mode: 'none', n: 0 };
  const targets = ((m.targets as string[] | undefined) ?? []).map((t) => targetByPath[t]);
  switch (m.kind) {
    case 'full':
    case 'headonly':
    case 'bitfit':
      return { method: { kind: m.kind }, drop };
    case 'houlsby':
      return { method: { kind: 'houlsby', bottleneck: m.bottleneck as number }, drop };
    case 'pfeiffer':
      return { method: { kind: 'pfeiffer', reductionFactor: j.config.hidden_size / (m.bottleneck as number) }, drop };
    case 'lora':
      return { method: { kind: 'lora', r: m.r as number, alpha: m.alpha as number, targets }, drop };
    case 'adamix':
      return {
        method: {
          kind: 'adamix', experts: m.experts as number, bottleneck: m.bottleneck as number, sharedUp: m.shared_up as boolean,
          consistencyWeight: m.consistency_weight as number, inference: m.merged ? 'merged' : 'sampled',
        },
        drop,
      };
    case 'adamix_lora':
      return {
        method: {
          kind: 'adamix_lora', experts: m.experts as number, r: m.r as number, alpha: m.alpha as number, targets, sharedB: m.shared_b as boolean,
          consistencyWeight: (m.consistency_weight as number | undefined) ?? 0, inference: m.merged ? 'merged' : 'sampled',
        },
        drop,
      };
    case 'fusion':
      return {
        method: { kind: 'fusion', tasks: m.tasks as string[], bottleneck: m.bottleneck as number, temperature: m.temperature as number, regWeight: m.reg_weight as number },
        drop,
      };
    case 'kadapter':
      return {
        method: {
          kind: 'kadapter', plugins: m.plugins as { layers: number[] }[], bottleneck: m.bottleneck as number, adapterLayers: m.adapter_layers as number,
          adapterHeads: m.adapter_heads as number, adapterIntermediate: m.adapter_intermediate as number,
        },
        drop,
      };
    default:
      throw new Error(`unknown fixture method ${m.kind}`);
  }
}

function routesOf(j: FixtureJson, layers: number): Route[] {
  return j.routes.map((pass) => {
    const route: Route = {};
    for (const r of pass) {
      if (r.module.endsWith('.adamix')) {
        route.adapter ??= new Array(layers);
        route.adapter[r.layer] = { down: r.down, up: r.up };
      } else {
        const path = r.module.replace(/^bert\.encoder\.layer\.\d+\./, '').replace(/\.adamix_lora$/, '');
        route.lora ??= Array.from({ length: layers }, () => ({}));
        route.lora[r.layer][targetByPath[path]] = { down: r.down, up: r.up };
      }
    }
    return route;
  });
}

function configOf(j: FixtureJson): BertConfig {
  const c = j.config;
  return {
    vocabSize: c.vocab_size, hiddenSize: c.hidden_size, numLayers: c.num_hidden_layers, numHeads: c.num_attention_heads,
    intermediateSize: c.intermediate_size, maxPositions: c.max_position_embeddings, typeVocabSize: c.type_vocab_size,
    layerNormEps: c.layer_norm_eps, numLabels: c.num_labels, hiddenDropout: 0, attentionDropout: 0,
  };
}

async function loadCase(name: string) {
  const j = jsons[`../fixtures/bert/${name}.json`];
  const bytes = await (await fetch(urls[`../fixtures/bert/${name}.safetensors`])).arrayBuffer();
  const t = readSafetensors(bytes).tensors;
  const get = (k: string): StTensor => {
    const v = t.get(k);
    if (!v) throw new Error(`${name}: fixture lacks ${k}`);
    return v;
  };
  return { j, t, get };
}

const CASES = Object.keys(jsons).map((k) => k.replace(/^.*\/(.*)\.json$/, '$1')).sort();

describe('BERT + PEFT methods match PyTorch (forward and backward)', () => {
  test('there is a fixture for every method the issue lists', () => {
    for (const c of ['full', 'houlsby', 'pfeiffer', 'lora', 'adamix_route', 'adamix_merged', 'adamix_consistency', 'adapterdrop_n1', 'fusion', 'kadapter', 'kadapter2']) {
      expect(CASES).toContain(c);
    }
  });

  test.each(CASES)('%s: parameters, trainable set, logits, loss and every gradient', async (name) => {
    const gpu = await getGpu();
    const { j, t, get } = await loadCase(name);
    const config = configOf(j);
    const { method, drop } = methodOf(j);
    const params = new Map<string, Float32Array>();
    for (const [k, v] of t) if (k.startsWith('param.')) params.set(k.slice(6), v.data);

    const model = BertModel.create(gpu, config, params, method, drop, new Rng(1));
    // every parameter of the fixture exists in the model under the same name, and nothing else
    expect([...model.store.params.keys()].sort()).toEqual([...params.keys()].sort());
    for (const [k, v] of params) model.store.write(k, v);
    expect(model.store.trainable().map((p) => p.name).sort()).toEqual([...j.trainable].sort());
    expect(model.store.trainableCount()).toBe(j.trainable_count);
    expect(model.store.totalCount()).toBe(j.total_count);

    const ids = get('input.input_ids').data, types = get('input.token_type_ids').data, mask = get('input.attention_mask').data, labels = get('input.labels').data;
    const [batch, seq] = get('input.input_ids').shape;
    const trainer = new Trainer(gpu, model, { ...DEFAULT_TRAIN, batchSize: batch, seqLen: seq });
    const host = { ids: Uint32Array.from(ids), typeIds: Uint32Array.from(types), mask: Float32Array.from(mask), labels: Uint32Array.from(labels) };
    const routes = routesOf(j, config.numLayers);
    try {
      await noGpuErrors(gpu, async () => {
        // forward: logits of pass 1 (merged experts for adamix_merged)
        const pred = await trainer.predictBatch(host, { route: routes[0], merged: method.kind.startsWith('adamix') && (j.method.merged as boolean), droppedLayers: drop.n });
        const logits = get('out.logits').data;
        expectClose(pred.logits, logits, { atol: LOGIT_ATOL, rtol: 0, label: `${name} logits`, shape: [batch, config.numLabels] });
        expectClose(pred.probs, softmaxRows(logits, batch, config.numLabels), { atol: LOGIT_ATOL, rtol: 0, label: `${name} probabilities` });
        if (!j.has_gradients) {
          expect(pred.loss).toBeCloseTo(get('out.loss').data[0], 4);
          return;
        }
        trainer.trainStep(host, { routes, train: false, skipOptimizer: true });
        const { records } = await trainer.readMetrics();
        // the ring holds CE (+ AdapterFusion's regulariser); AdaMix's consistency term separately
        const wantLoss = t.has('out.fusion_reg') ? get('out.loss') : (t.get('out.ce') ?? get('out.loss'));
        expect(Math.abs(records[0].loss - wantLoss.data[0])).toBeLessThan(1e-4);
        if (t.has('out.consistency')) {
          expect(Math.abs(records[0].consistency - get('out.consistency').data[0] * (j.method.consistency_weight as number))).toBeLessThan(1e-5);
        }
        const grads = await model.store.readGrads();
        for (const p of model.store.trainable()) {
          const want = get(`grad.${p.name}`);
          expectClose(grads.get(p.name)!, want.data, { atol: GRAD_ATOL, rtol: GRAD_RTOL, label: `${name} grad ${p.name}`, shape: want.shape });
        }
      });
    } finally {
      trainer.destroy();
      model.destroy();
    }
  });
});

function softmaxRows(x: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) {
    let mx = -Infinity;
    for (let c = 0; c < cols; c++) mx = Math.max(mx, x[r * cols + c]);
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(x[r * cols + c] - mx);
    for (let c = 0; c < cols; c++) out[r * cols + c] = Math.exp(x[r * cols + c] - mx) / s;
  }
  return out;
}
