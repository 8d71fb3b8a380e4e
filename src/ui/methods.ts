// What the page says about each method and each hyper-parameter: a label and one line each, so a
// student can tell what a knob does without leaving the page (REFERENCE.md has the equations).
import { DEFAULT_METHODS, LORA_TARGETS, type LoraTarget, type MethodKind } from '../model/config';

/** the methods the picker offers (K-Adapter is engine-only; AdapterFusion fuses the task adapters the Compose panel saved) */
export const PICKER_METHODS = ['full', 'headonly', 'bitfit', 'houlsby', 'pfeiffer', 'lora', 'adamix', 'adamix_lora', 'fusion'] as const satisfies readonly MethodKind[];

export const METHOD_INFO: Partial<Record<MethodKind, { label: string; line: string }>> = {
  full: { label: 'Full fine-tuning', line: 'every weight of BERT and the head trains: the reference every PEFT method is compared with' },
  headonly: { label: 'Head only', line: 'BERT is frozen; only the pooler and the classifier on top of [CLS] train' },
  bitfit: { label: 'BitFit', line: 'only the bias vectors (and the head) train, about 0.1 % of the weights' },
  houlsby: { label: 'Houlsby adapters', line: 'a small bottleneck MLP after attention and after the FFN of every layer; LayerNorms train too' },
  pfeiffer: { label: 'Pfeiffer adapter', line: 'one bottleneck adapter per layer, after the FFN only: half the modules of Houlsby' },
  lora: { label: 'LoRA', line: 'a trainable low-rank update W + (α/r)·B·A beside frozen linears; mergeable into W for free inference' },
  adamix: { label: 'AdaMix (adapters)', line: 'M adapter experts per layer, one picked at random per pass; averaged into one adapter for inference' },
  adamix_lora: { label: 'AdaMix (LoRA)', line: 'AdaMix with LoRA experts: random A/B experts per pass, averaged for inference' },
  fusion: { label: 'AdapterFusion', line: 'stage 2: frozen task adapters (saved in the Compose panel) combined per layer by attention; only the fusion and the head train' },
};

/** the six methods of "compare methods", in the order they are queued */
export const COMPARED_METHODS: MethodKind[] = ['full', 'headonly', 'houlsby', 'pfeiffer', 'lora', 'adamix'];

export interface HyperParamInfo {
  label: string;
  line: string;
  type: 'int' | 'number' | 'bool' | 'choice' | 'targets';
  min?: number;
  max?: number;
  step?: number;
  choices?: string[];
}

export const HP_INFO: Record<string, HyperParamInfo> = {
  bottleneck: { label: 'bottleneck m', line: 'hidden width of each adapter (W_down: m×d); larger = more capacity and parameters', type: 'int', min: 1, max: 1024 },
  reductionFactor: { label: 'reduction factor', line: 'adapter width is d / factor (16 in the paper)', type: 'number', min: 1, max: 512 },
  r: { label: 'rank r', line: 'rank of the update B·A; parameters grow linearly with r', type: 'int', min: 1, max: 256 },
  alpha: { label: 'alpha α', line: 'the update is scaled by α/r, so changing r keeps the step size comparable', type: 'number', min: 0.001, max: 4096 },
  targets: { label: 'target linears', line: 'which linears of each layer get a LoRA update (q and v in the paper)', type: 'targets', choices: Object.keys(LORA_TARGETS) },
  experts: { label: 'experts M', line: 'adaptation modules per site; one is sampled per forward pass', type: 'int', min: 1, max: 16 },
  sharedUp: { label: 'share up-projection', line: 'all experts share one W_up (the released recipe): fewer parameters, same accuracy', type: 'bool' },
  sharedB: { label: 'share B', line: 'all experts share one B matrix, as sharing W_up in the adapter variant', type: 'bool' },
  consistencyWeight: { label: 'consistency weight', line: 'weight of the symmetric KL between two routed passes; keeps experts in agreement so merging works', type: 'number', min: 0, max: 100 },
  temperature: { label: 'temperature T', line: 'AdapterFusion: softmax over the task adapters of q·k / T; larger T spreads the weight more evenly', type: 'number', min: 0.01, max: 100 },
  regWeight: { label: 'identity regulariser λ', line: 'AdapterFusion: λ·Σ‖I − V‖² keeps the value projection near the identity (0.01 in the paper)', type: 'number', min: 0, max: 10 },
  inference: { label: 'inference', line: 'merged: average the experts (one module, no extra cost); sampled: one random route', type: 'choice', choices: ['merged', 'sampled'] },
};

/** AdapterFusion's tasks and width come from the saved adapters the Compose panel fuses, not from knobs */
const SET_BY_COMPOSE: Partial<Record<MethodKind, string[]>> = { fusion: ['tasks', 'bottleneck'] };

export function hyperParamsOf(kind: MethodKind): string[] {
  return Object.keys(DEFAULT_METHODS[kind]).filter((k) => k !== 'kind' && !SET_BY_COMPOSE[kind]?.includes(k));
}

export function isLoraTarget(s: string): s is LoraTarget {
  return s in LORA_TARGETS;
}

export function methodLabel(kind: MethodKind): string {
  return METHOD_INFO[kind]?.label ?? kind;
}
