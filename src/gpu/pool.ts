// Buffer pool: exact-size free lists. A training step asks for the same sizes in the same order
// every time, so after the first step every request is served from the free lists and the
// steady state allocates nothing (DESIGN.md, performance rules). `totalBytes` is what tests watch.

// read lazily: GPUBufferUsage does not exist in hosts without WebGPU (Node unit tests import ops)
const storageUsage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  private sizes = new WeakMap<GPUBuffer, number>();
  /** bytes of every buffer this pool has created and not destroyed, in use or free */
  totalBytes = 0;
  /** number of GPUBuffers created so far (steady state: stops growing) */
  created = 0;

  constructor(private device: GPUDevice) {}

  acquire(byteLength: number, label = ''): GPUBuffer {
    // storage bindings must be non-empty and 4-byte multiples; round to 16 for vec4 access
    const size = Math.max(16, Math.ceil(byteLength / 16) * 16);
    const list = this.free.get(size);
    const reused = list?.pop();
    if (reused) return reused;
    const buffer = this.device.createBuffer({ size, usage: storageUsage(), label });
    this.sizes.set(buffer, size);
    this.totalBytes += size;
    this.created++;
    return buffer;
  }

  release(buffer: GPUBuffer): void {
    const size = this.sizes.get(buffer);
    if (size === undefined) throw new Error('BufferPool.release: buffer does not belong to this pool');
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(buffer);
  }

  /** Destroy the free buffers (in-use ones stay). */
  trim(): void {
    for (const [size, list] of this.free) {
      for (const b of list) {
        b.destroy();
        this.totalBytes -= size;
      }
    }
    this.free.clear();
  }
}
