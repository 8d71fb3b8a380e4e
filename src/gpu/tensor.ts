// A tensor is a float32 (or u32/i32) view into a GPU buffer: buffer + byte offset + shape.
// Views let parameters live packed in one buffer (one AdamW dispatch over all of them) while each
// op still binds exactly its own range.

export type DType = 'f32' | 'u32' | 'i32';

let nextTensorId = 1;

export class Tensor {
  readonly id = nextTensorId++;
  constructor(
    readonly buffer: GPUBuffer,
    readonly shape: readonly number[],
    readonly dtype: DType = 'f32',
    /** byte offset into `buffer`; a multiple of the device's minStorageBufferOffsetAlignment */
    readonly offset = 0,
    readonly name = '',
  ) {}

  get size(): number {
    return shapeSize(this.shape);
  }

  get byteLength(): number {
    return this.size * 4;
  }

  /** Same storage, another shape of the same size. */
  reshape(shape: readonly number[]): Tensor {
    if (shapeSize(shape) !== this.size) {
      throw new Error(`reshape ${fmtShape(this.shape)} → ${fmtShape(shape)}: sizes differ`);
    }
    return new Tensor(this.buffer, shape, this.dtype, this.offset, this.name);
  }

  toString(): string {
    return `Tensor(${this.name || '#' + this.id} ${this.dtype}${fmtShape(this.shape)})`;
  }
}

export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}
