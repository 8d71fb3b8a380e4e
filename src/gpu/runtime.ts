// The GPU runtime every op dispatches through: kernels (pipelines created once, by name),
// a recorder that encodes every dispatch of a step into one command encoder and one compute pass,
// a uniform arena (each dispatch's small parameter block gets its own 256-byte slot of one buffer,
// bound with a dynamic offset, so bind groups are cached and nothing is allocated per step),
// and readback.

import { acquireDevice, type AcquiredDevice, type AdapterSummary } from './device';
import { BufferPool } from './pool';
import { Tensor, shapeSize, type DType } from './tensor';

/** Binding kinds after the uniform block at binding 0: read-only or read-write storage. */
export type BindingKind = 'read' | 'write';

export interface KernelSpec {
  /** unique name of this kernel variant (include the defines that make it distinct) */
  name: string;
  /** WGSL source; `{{KEY}}` placeholders are replaced by `defines` */
  code: string;
  entryPoint?: string;
  /** storage bindings 1..n in order; binding 0 is always the uniform parameter block */
  bindings: BindingKind[];
  defines?: Record<string, string | number>;
}

export interface Kernel {
  readonly id: number;
  readonly name: string;
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  readonly bindings: BindingKind[];
}

/** One parameter: a u32 (default), an i32 or an f32; packed into the uniform block in order. */
export type Param = number | { f32: number } | { i32: number };

export function f32(v: number): { f32: number } {
  return { f32: v };
}
export function i32(v: number): { i32: number } {
  return { i32: v };
}

const UNIFORM_SLOT = 256; // bytes per dispatch; also the usual minUniformBufferOffsetAlignment
const UNIFORM_SLOTS = 4096;

export function applyDefines(code: string, defines: Record<string, string | number> = {}): string {
  return code.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    if (!(key in defines)) throw new Error(`WGSL placeholder {{${key}}} has no define`);
    return String(defines[key]);
  });
}

export class Gpu {
  readonly device: GPUDevice;
  readonly adapter: GPUAdapter;
  readonly summary: AdapterSummary;
  readonly pool: BufferPool;
  readonly storageAlign: number;

  private kernels = new Map<string, Kernel>();
  private bindGroups = new Map<string, GPUBindGroup>();
  private bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 1;
  private nextKernelId = 1;

  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private uniformBuffer: GPUBuffer;
  private uniformMirror = new ArrayBuffer(UNIFORM_SLOT * UNIFORM_SLOTS);
  private uniformU32 = new Uint32Array(this.uniformMirror);
  private uniformF32 = new Float32Array(this.uniformMirror);
  private uniformI32 = new Int32Array(this.uniformMirror);
  private slotsUsed = 0;
  /** dispatches recorded since creation (for tests and the profiler) */
  dispatchCount = 0;
  /** queue submissions since creation: a training step must add exactly one */
  submitCount = 0;

  constructor(acquired: AcquiredDevice) {
    this.device = acquired.device;
    this.adapter = acquired.adapter;
    this.summary = acquired.summary;
    this.pool = new BufferPool(this.device);
    this.storageAlign = this.device.limits.minStorageBufferOffsetAlignment;
    this.uniformBuffer = this.device.createBuffer({
      size: UNIFORM_SLOT * UNIFORM_SLOTS,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      label: 'uniform-arena',
    });
  }

  static async create(gpu?: GPU): Promise<Gpu> {
    return new Gpu(await acquireDevice(gpu));
  }

  // ---- kernels -------------------------------------------------------------------------------

  kernel(spec: KernelSpec): Kernel {
    const cached = this.kernels.get(spec.name);
    if (cached) return cached;
    const code = applyDefines(spec.code, spec.defines);
    const module = this.device.createShaderModule({ code, label: spec.name });
    const entries: GPUBindGroupLayoutEntry[] = [
      { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform', hasDynamicOffset: true } },
      ...spec.bindings.map((kind, i) => ({
        binding: i + 1,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: (kind === 'read' ? 'read-only-storage' : 'storage') as GPUBufferBindingType },
      })),
    ];
    const layout = this.device.createBindGroupLayout({ entries, label: spec.name });
    const pipeline = this.device.createComputePipeline({
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: spec.entryPoint ?? 'main' },
      label: spec.name,
    });
    const kernel: Kernel = { id: this.nextKernelId++, name: spec.name, pipeline, layout, bindings: spec.bindings };
    this.kernels.set(spec.name, kernel);
    return kernel;
  }

  /** Compile a kernel and report WGSL errors as an exception (tests, autotune). */
  async kernelChecked(spec: KernelSpec): Promise<Kernel> {
    this.device.pushErrorScope('validation');
    const k = this.kernel(spec);
    const err = await this.device.popErrorScope();
    if (err) {
      this.kernels.delete(spec.name);
      throw new Error(`kernel ${spec.name}: ${err.message}`);
    }
    return k;
  }

  // ---- tensors -------------------------------------------------------------------------------

  /** A pooled tensor (contents undefined until written). */
  empty(shape: readonly number[], dtype: DType = 'f32', name = ''): Tensor {
    return new Tensor(this.pool.acquire(shapeSize(shape) * 4, name), shape, dtype, 0, name);
  }

  zeros(shape: readonly number[], dtype: DType = 'f32', name = ''): Tensor {
    const t = this.empty(shape, dtype, name);
    this.fill(t, 0);
    return t;
  }

  /** Upload host data into a new pooled tensor. */
  upload(data: Float32Array | Uint32Array | Int32Array | number[], shape?: readonly number[], dtype?: DType, name = ''): Tensor {
    const arr = Array.isArray(data) ? new Float32Array(data) : data;
    const dt: DType = dtype ?? (arr instanceof Uint32Array ? 'u32' : arr instanceof Int32Array ? 'i32' : 'f32');
    const t = this.empty(shape ?? [arr.length], dt, name);
    if (t.size !== arr.length) throw new Error(`upload: ${arr.length} values for shape [${t.shape}]`);
    this.write(t, arr);
    return t;
  }

  /**
   * Overwrite a tensor's contents from the host, in program order: queue.writeBuffer runs ahead of
   * commands recorded but not yet submitted, so those are submitted first (a clear or a kernel
   * recorded earlier must not land after this write).
   */
  write(t: Tensor, data: Float32Array | Uint32Array | Int32Array): void {
    if (this.encoder) this.flush();
    this.writeAhead(t, data);
  }

  /**
   * Queue a host write that takes effect before every command not yet submitted. Only for buffers
   * no recorded-but-unsubmitted command uses (per-step inputs written before the step records,
   * or upload slots reserved per submit); everything else uses write().
   */
  writeAhead(t: Tensor, data: Float32Array | Uint32Array | Int32Array): void {
    if (data.length !== t.size) throw new Error(`write: ${data.length} values into ${t}`);
    this.device.queue.writeBuffer(t.buffer, t.offset, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Fill with a constant (0 uses clearBuffer; others write a host array). */
  fill(t: Tensor, value: number): void {
    if (value === 0) {
      this.endPass();
      this.ensureEncoder().clearBuffer(t.buffer, t.offset, Math.ceil(t.byteLength / 4) * 4);
      return;
    }
    this.write(t, t.dtype === 'f32' ? new Float32Array(t.size).fill(value) : new Uint32Array(t.size).fill(value));
  }

  copy(src: Tensor, dst: Tensor): void {
    if (src.size !== dst.size) throw new Error(`copy: ${src} → ${dst} sizes differ`);
    this.endPass();
    this.ensureEncoder().copyBufferToBuffer(src.buffer, src.offset, dst.buffer, dst.offset, src.byteLength);
  }

  release(t: Tensor): void {
    if (t.offset !== 0) throw new Error(`release: ${t} is a view; release the buffer that holds it`);
    this.pool.release(t.buffer);
  }

  // ---- recording -----------------------------------------------------------------------------

  private ensureEncoder(): GPUCommandEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    return this.encoder;
  }

  private ensurePass(): GPUComputePassEncoder {
    if (!this.pass) this.pass = this.ensureEncoder().beginComputePass();
    return this.pass;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  private bufferId(b: GPUBuffer): number {
    let id = this.bufferIds.get(b);
    if (id === undefined) this.bufferIds.set(b, (id = this.nextBufferId++));
    return id;
  }

  private bindGroup(kernel: Kernel, tensors: readonly Tensor[]): GPUBindGroup {
    let key = String(kernel.id);
    for (const t of tensors) key += `|${this.bufferId(t.buffer)}:${t.offset}:${t.byteLength}`;
    let bg = this.bindGroups.get(key);
    if (!bg) {
      if (this.bindGroups.size > 20000) this.bindGroups.clear();
      bg = this.device.createBindGroup({
        layout: kernel.layout,
        entries: [
          { binding: 0, resource: { buffer: this.uniformBuffer, offset: 0, size: UNIFORM_SLOT } },
          ...tensors.map((t, i) => ({
            binding: i + 1,
            resource: { buffer: t.buffer, offset: t.offset, size: Math.max(4, t.byteLength) },
          })),
        ],
      });
      this.bindGroups.set(key, bg);
    }
    return bg;
  }

  /**
   * Record one dispatch. `params` fill the kernel's uniform block in order (u32 unless wrapped in
   * f32()/i32()); `tensors` bind to 1..n in the order of the kernel's `bindings`.
   */
  dispatch(kernel: Kernel, tensors: readonly Tensor[], params: readonly Param[], workgroups: readonly [number, number?, number?]): void {
    if (tensors.length !== kernel.bindings.length) {
      throw new Error(`${kernel.name}: ${tensors.length} tensors for ${kernel.bindings.length} bindings`);
    }
    if (params.length > UNIFORM_SLOT / 4) throw new Error(`${kernel.name}: too many params`);
    const [x, y = 1, z = 1] = workgroups;
    if (x === 0 || y === 0 || z === 0) return; // empty problem: nothing to do
    const maxWg = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxWg || y > maxWg || z > maxWg) {
      throw new Error(`${kernel.name}: workgroup grid [${x},${y},${z}] exceeds ${maxWg} per dimension`);
    }
    if (this.slotsUsed === UNIFORM_SLOTS) this.flush(); // arena full: submit what we have, start over
    const slot = this.slotsUsed++;
    const base = (slot * UNIFORM_SLOT) / 4;
    for (let i = 0; i < params.length; i++) {
      const p = params[i];
      if (typeof p === 'number') this.uniformU32[base + i] = p >>> 0;
      else if ('f32' in p) this.uniformF32[base + i] = p.f32;
      else this.uniformI32[base + i] = p.i32;
    }
    const pass = this.ensurePass();
    pass.setPipeline(kernel.pipeline);
    pass.setBindGroup(0, this.bindGroup(kernel, tensors), [slot * UNIFORM_SLOT]);
    pass.dispatchWorkgroups(x, y, z);
    this.dispatchCount++;
  }

  /** Submit everything recorded so far in one queue submission. */
  flush(): void {
    if (!this.encoder) return;
    this.endPass();
    if (this.slotsUsed > 0) {
      this.device.queue.writeBuffer(this.uniformBuffer, 0, this.uniformMirror, 0, this.slotsUsed * UNIFORM_SLOT);
    }
    this.device.queue.submit([this.encoder.finish()]);
    this.submitCount++;
    this.encoder = null;
    this.slotsUsed = 0;
  }

  /** Submit pending work and read a tensor back to the host. */
  async read(t: Tensor): Promise<Float32Array> {
    const bytes = await this.readBytes(t);
    return new Float32Array(bytes);
  }

  async readU32(t: Tensor): Promise<Uint32Array> {
    return new Uint32Array(await this.readBytes(t));
  }

  private async readBytes(t: Tensor): Promise<ArrayBuffer> {
    const size = Math.ceil(t.byteLength / 4) * 4;
    const staging = this.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.endPass();
    this.ensureEncoder().copyBufferToBuffer(t.buffer, t.offset, staging, 0, size);
    this.flush();
    await staging.mapAsync(GPUMapMode.READ);
    const out = staging.getMappedRange().slice(0, t.byteLength);
    staging.unmap();
    staging.destroy();
    return out;
  }

  /** Wait until the GPU has finished everything submitted. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
  }
}
