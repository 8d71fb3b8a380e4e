// Parameters by Hugging Face name, packed into a few flat GPU buffers ("arenas"):
//   frozen   — the base model's weights that do not train (no gradient at all)
//   decay    — trainable weights that take weight decay
//   noDecay  — trainable biases and LayerNorm parameters (no weight decay, as HF's Trainer)
// Each trainable arena has a gradient arena of the same layout and AdamW moment arenas, so one
// optimizer dispatch, one gradient clear and one norm reduction cover every parameter. Each
// tensor starts at a 256-byte boundary so it can be bound as its own view; the padding holds
// zeros, whose gradient is zero, so the optimizer leaves it zero.
import type { Gpu } from '../gpu/runtime';
import { Tensor, shapeSize } from '../gpu/tensor';
import { Var } from './tape';

export type ParamGroup = 'frozen' | 'decay' | 'noDecay';

export interface ParamSpec {
  name: string;
  shape: number[];
  group: ParamGroup;
  data: Float32Array;
}

export interface Arena {
  group: ParamGroup;
  /** floats, including alignment padding */
  length: number;
  values: Tensor;
  grads?: Tensor;
  m?: Tensor;
  v?: Tensor;
}

export interface Param {
  name: string;
  shape: number[];
  group: ParamGroup;
  size: number;
  /** float offset into its arena */
  offset: number;
  variable: Var;
}

export function isNoDecayName(name: string): boolean {
  return /\.bias$|LayerNorm\./.test(name);
}

export class ParamStore {
  readonly params = new Map<string, Param>();
  readonly arenas = new Map<ParamGroup, Arena>();

  constructor(private gpu: Gpu, specs: ParamSpec[]) {
    const alignFloats = Math.max(64, gpu.storageAlign / 4);
    const layout = new Map<ParamGroup, { spec: ParamSpec; offset: number }[]>();
    const lengths = new Map<ParamGroup, number>();
    for (const spec of specs) {
      if (this.params.has(spec.name) || layout.get(spec.group)?.some((e) => e.spec.name === spec.name)) {
        throw new Error(`parameter ${spec.name} defined twice`);
      }
      const size = shapeSize(spec.shape);
      if (spec.data.length !== size) throw new Error(`parameter ${spec.name}: ${spec.data.length} values for shape [${spec.shape}]`);
      const offset = lengths.get(spec.group) ?? 0;
      lengths.set(spec.group, offset + Math.ceil(Math.max(size, 1) / alignFloats) * alignFloats);
      if (!layout.has(spec.group)) layout.set(spec.group, []);
      layout.get(spec.group)!.push({ spec, offset });
    }
    for (const [group, entries] of layout) {
      const length = lengths.get(group)!;
      const host = new Float32Array(length);
      for (const { spec, offset } of entries) host.set(spec.data, offset);
      const values = gpu.upload(host, [length], 'f32', `params.${group}`);
      const arena: Arena = { group, length, values };
      if (group !== 'frozen') {
        arena.grads = gpu.zeros([length], 'f32', `grads.${group}`);
        arena.m = gpu.zeros([length], 'f32', `adam_m.${group}`);
        arena.v = gpu.zeros([length], 'f32', `adam_v.${group}`);
      }
      this.arenas.set(group, arena);
      for (const { spec, offset } of entries) {
        const value = new Tensor(values.buffer, spec.shape, 'f32', offset * 4, spec.name);
        const grad = arena.grads ? new Tensor(arena.grads.buffer, spec.shape, 'f32', offset * 4, `grad.${spec.name}`) : null;
        this.params.set(spec.name, {
          name: spec.name,
          shape: spec.shape,
          group,
          size: shapeSize(spec.shape),
          offset,
          variable: new Var(value, group !== 'frozen', true, grad, spec.name),
        });
      }
    }
  }

  get(name: string): Var {
    const p = this.params.get(name);
    if (!p) throw new Error(`no parameter named ${name}`);
    return p.variable;
  }

  has(name: string): boolean {
    return this.params.has(name);
  }

  trainable(): Param[] {
    return [...this.params.values()].filter((p) => p.group !== 'frozen');
  }

  trainableCount(): number {
    return this.trainable().reduce((s, p) => s + p.size, 0);
  }

  totalCount(): number {
    return [...this.params.values()].reduce((s, p) => s + p.size, 0);
  }

  /** Zero every gradient (one clear per trainable arena). */
  zeroGrads(): void {
    for (const a of this.arenas.values()) if (a.grads) this.gpu.fill(a.grads, 0);
  }

  /** Read every parameter back to the host, by name. */
  async read(filter?: (p: Param) => boolean): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    const hosts = new Map<ParamGroup, Float32Array>();
    for (const [g, a] of this.arenas) hosts.set(g, await this.gpu.read(a.values));
    for (const p of this.params.values()) {
      if (filter && !filter(p)) continue;
      out.set(p.name, hosts.get(p.group)!.slice(p.offset, p.offset + p.size));
    }
    return out;
  }

  async readGrads(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const [g, a] of this.arenas) {
      if (!a.grads) continue;
      const host = await this.gpu.read(a.grads);
      for (const p of this.params.values()) if (p.group === g) out.set(p.name, host.slice(p.offset, p.offset + p.size));
    }
    return out;
  }

  /** Overwrite one parameter's values. */
  write(name: string, data: Float32Array): void {
    const p = this.params.get(name);
    if (!p) throw new Error(`no parameter named ${name}`);
    this.gpu.write(p.variable.value, data);
  }

  destroy(): void {
    for (const a of this.arenas.values()) {
      for (const t of [a.values, a.grads, a.m, a.v]) if (t) this.gpu.release(t);
    }
  }
}
