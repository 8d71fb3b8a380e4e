// The page's whole configuration and its URL form: a link reproduces a setup (same data, model,
// method, hyper-parameters, seed — hence the same curves). Values read from a URL are checked and
// fall back to the default with a note, so a hand-edited link never breaks the page.
import { DEFAULT_METHODS, type AdapterDropConfig, type MethodConfig, type MethodKind } from '../model/config';
import { DEFAULT_TRAIN } from '../train/trainer';
import { HP_INFO, PICKER_METHODS, hyperParamsOf, isLoraTarget } from './methods';

export interface PageConfig {
  /** built-in dataset id, or `file:<name>` for an imported file (not reproducible from a link) */
  dataset: string;
  /** 'default' (the shipped model), a hub id or an http(s) URL */
  model: string;
  method: MethodConfig;
  adapterDrop: AdapterDropConfig;
  seed: number;
  lr: number;
  steps: number;
  batchSize: number;
  seqLen: number;
  evalEvery: number;
}

export const DEFAULT_CONFIG: PageConfig = {
  dataset: 'sentiment',
  model: 'default',
  method: DEFAULT_METHODS.lora,
  adapterDrop: { mode: 'none', n: 0 },
  seed: DEFAULT_TRAIN.seed,
  lr: DEFAULT_TRAIN.lr,
  steps: 200,
  batchSize: 16,
  seqLen: 48,
  evalEvery: 25,
};

const NUMERIC: { key: keyof PageConfig; param: string; min: number; max: number; int: boolean }[] = [
  { key: 'seed', param: 'seed', min: 0, max: 2 ** 31 - 1, int: true },
  { key: 'lr', param: 'lr', min: 1e-7, max: 1, int: false },
  { key: 'steps', param: 'steps', min: 1, max: 100_000, int: true },
  { key: 'batchSize', param: 'bs', min: 1, max: 512, int: true },
  { key: 'seqLen', param: 'seq', min: 4, max: 512, int: true },
  { key: 'evalEvery', param: 'eval', min: 0, max: 100_000, int: true },
];

export function methodWithDefaults(kind: MethodKind): MethodConfig {
  return structuredClone(DEFAULT_METHODS[kind]);
}

/** Checks one hyper-parameter value; returns the parsed value or an error message. */
export function parseHyperParam(name: string, raw: string): { value: unknown } | { error: string } {
  const info = HP_INFO[name];
  if (!info) return { error: `unknown hyper-parameter ${name}` };
  switch (info.type) {
    case 'bool':
      return raw === 'true' || raw === '1' ? { value: true } : raw === 'false' || raw === '0' ? { value: false } : { error: `${info.label} must be true or false` };
    case 'choice':
      return info.choices!.includes(raw) ? { value: raw } : { error: `${info.label} must be one of ${info.choices!.join(', ')}` };
    case 'targets': {
      const list = raw.split(',').map((s) => s.trim()).filter(Boolean);
      const bad = list.find((t) => !isLoraTarget(t));
      if (bad || list.length === 0) return { error: `${info.label}: "${bad ?? raw}" is not one of ${info.choices!.join(', ')}` };
      return { value: [...new Set(list)] };
    }
    default: {
      const v = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(v)) return { error: `${info.label} must be a number` };
      if (info.type === 'int' && !Number.isInteger(v)) return { error: `${info.label} must be a whole number` };
      if (v < info.min! || v > info.max!) return { error: `${info.label} must be between ${info.min} and ${info.max}` };
      return { value: v };
    }
  }
}

export function configToSearch(c: PageConfig): string {
  const p = new URLSearchParams();
  if (!c.dataset.startsWith('file:')) p.set('ds', c.dataset);
  p.set('model', c.model);
  p.set('method', c.method.kind);
  for (const name of hyperParamsOf(c.method.kind)) {
    const v = (c.method as unknown as Record<string, unknown>)[name];
    p.set(name, Array.isArray(v) ? v.join(',') : String(v));
  }
  p.set('drop', c.adapterDrop.mode === 'specialized' ? `specialized:${c.adapterDrop.n}` : c.adapterDrop.mode);
  for (const f of NUMERIC) p.set(f.param, String(c[f.key]));
  return `?${p.toString()}`;
}

/** The configuration a URL describes, plus a note for every value that was ignored. */
export function configFromSearch(search: string): { config: PageConfig; notes: string[] } {
  const p = new URLSearchParams(search);
  const notes: string[] = [];
  const c: PageConfig = structuredClone(DEFAULT_CONFIG);
  const ds = p.get('ds');
  if (ds) {
    if (/^[a-z0-9_-]+$/i.test(ds)) c.dataset = ds;
    else notes.push(`dataset "${ds}" is not a built-in id`);
  }
  const model = p.get('model');
  if (model) c.model = model;
  const kind = p.get('method');
  if (kind) {
    if ((PICKER_METHODS as readonly string[]).includes(kind)) c.method = methodWithDefaults(kind as MethodKind);
    else notes.push(`method "${kind}" is unknown; using ${c.method.kind}`);
  }
  const method = c.method as unknown as Record<string, unknown>;
  for (const name of hyperParamsOf(c.method.kind)) {
    const raw = p.get(name);
    if (raw === null) continue;
    const r = parseHyperParam(name, raw);
    if ('error' in r) notes.push(r.error);
    else method[name] = r.value;
  }
  const drop = p.get('drop');
  if (drop) {
    const m = /^specialized:(\d+)$/.exec(drop);
    if (m) c.adapterDrop = { mode: 'specialized', n: Number(m[1]) };
    else if (drop === 'none' || drop === 'robust') c.adapterDrop = { mode: drop, n: 0 };
    else notes.push(`AdapterDrop "${drop}" is not none, robust or specialized:n`);
  }
  for (const f of NUMERIC) {
    const raw = p.get(f.param);
    if (raw === null) continue;
    const v = Number(raw);
    if (!Number.isFinite(v) || v < f.min || v > f.max || (f.int && !Number.isInteger(v))) notes.push(`${f.param}=${raw} is out of range (${f.min}…${f.max})`);
    else (c as unknown as Record<string, number>)[f.key] = v;
  }
  return { config: c, notes };
}
