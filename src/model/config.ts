// The model's configuration (Hugging Face BertConfig fields, camelCase) and the PEFT method
// configurations. A method is a configuration of modules, not a copy of the model.

export interface BertConfig {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  maxPositions: number;
  typeVocabSize: number;
  layerNormEps: number;
  numLabels: number;
  hiddenDropout: number;
  attentionDropout: number;
}

/** Linear layers LoRA can target, by their Hugging Face module suffix inside a layer. */
export const LORA_TARGETS = {
  query: 'attention.self.query',
  key: 'attention.self.key',
  value: 'attention.self.value',
  'attention.output': 'attention.output.dense',
  intermediate: 'intermediate.dense',
  output: 'output.dense',
} as const;
export type LoraTarget = keyof typeof LORA_TARGETS;

/** The module name Hugging Face PEFT's `target_modules` uses for a target ('query', 'output.dense', …). */
export function peftTargetName(t: LoraTarget): string {
  return LORA_TARGETS[t].replace(/^attention\.self\./, '');
}

export type MethodConfig =
  | { kind: 'full' }
  | { kind: 'headonly' }
  | { kind: 'bitfit' }
  | { kind: 'houlsby'; bottleneck: number }
  | { kind: 'pfeiffer'; reductionFactor: number }
  | { kind: 'lora'; r: number; alpha: number; targets: LoraTarget[] }
  | { kind: 'adamix'; experts: number; bottleneck: number; sharedUp: boolean; consistencyWeight: number; inference: 'merged' | 'sampled' }
  | {
      kind: 'adamix_lora';
      experts: number;
      r: number;
      alpha: number;
      targets: LoraTarget[];
      sharedB: boolean;
      consistencyWeight: number;
      inference: 'merged' | 'sampled';
    }
  | {
      /** AdapterFusion stage 2: frozen task adapters (Pfeiffer placement) combined by per-layer attention */
      kind: 'fusion';
      tasks: string[];
      bottleneck: number;
      temperature: number;
      /** λ of the λ·Σ‖I − V‖² regulariser (REFERENCE.md: 0.01) */
      regWeight: number;
    }
  | {
      /** K-Adapter: knowledge plug-ins outside the frozen model, combined by Linear(concat) */
      kind: 'kadapter';
      plugins: { layers: number[] }[];
      bottleneck: number;
      adapterLayers: number;
      adapterHeads: number;
      adapterIntermediate: number;
    };

export type MethodKind = MethodConfig['kind'];

/** AdapterDrop: adapters of the lowest n layers are dropped (those layers run as the frozen model). */
export interface AdapterDropConfig {
  mode: 'none' | 'specialized' | 'robust';
  /** specialized: the fixed n; robust: ignored for training (n ~ U{0…L−1} per step) */
  n: number;
}

export const DEFAULT_METHODS: Record<MethodKind, MethodConfig> = {
  full: { kind: 'full' },
  headonly: { kind: 'headonly' },
  bitfit: { kind: 'bitfit' },
  houlsby: { kind: 'houlsby', bottleneck: 16 },
  pfeiffer: { kind: 'pfeiffer', reductionFactor: 16 },
  lora: { kind: 'lora', r: 8, alpha: 16, targets: ['query', 'value'] },
  adamix: { kind: 'adamix', experts: 4, bottleneck: 16, sharedUp: true, consistencyWeight: 1, inference: 'merged' },
  adamix_lora: {
    kind: 'adamix_lora', experts: 4, r: 4, alpha: 32, targets: ['query', 'value'], sharedB: true, consistencyWeight: 1, inference: 'merged',
  },
  fusion: { kind: 'fusion', tasks: [], bottleneck: 8, temperature: 1, regWeight: 0.01 },
  kadapter: { kind: 'kadapter', plugins: [{ layers: [0, 3] }], bottleneck: 64, adapterLayers: 2, adapterHeads: 2, adapterIntermediate: 256 },
};

export function layerPrefix(layer: number): string {
  return `bert.encoder.layer.${layer}`;
}
