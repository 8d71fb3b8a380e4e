// Elementwise add and scale: a, b, out are any shape with the same number of elements.
// out may be a or b itself (in place); any other sharing of a buffer with the output is refused.

import { f32, type Gpu } from '../gpu/runtime';
import type { Tensor } from '../gpu/tensor';
import code from '../../shaders/add.wgsl?raw';
import { allocLike, assertSize, workgroupGrid, type FloatArray } from './nn-util';

const WG = 256;

function sameView(x: Tensor, y: Tensor): boolean {
  return x.buffer === y.buffer && x.offset === y.offset && x.size === y.size;
}

/** out = a + b. */
export function addInto(gpu: Gpu, a: Tensor, b: Tensor, out?: Tensor): Tensor {
  assertSize('addInto', b, a.size, 'b');
  const y = out ?? gpu.empty(a.shape);
  assertSize('addInto', y, a.size, 'out');
  const grid = workgroupGrid(gpu, Math.ceil(a.size / WG));
  const inPlaceOf = sameView(y, a) ? b : sameView(y, b) ? a : null;
  if (inPlaceOf) {
    if (inPlaceOf.buffer === y.buffer && !sameView(inPlaceOf, y)) {
      throw new Error(`addInto: in-place output ${y} shares a buffer with the other input ${inPlaceOf}`);
    }
    if (sameView(inPlaceOf, y)) {
      scaleInto(gpu, y, 2, y); // a + a
      return y;
    }
    const k = gpu.kernel({ name: 'add.addInPlace', code, entryPoint: 'addInPlace', bindings: ['read', 'write'] });
    gpu.dispatch(k, [inPlaceOf, y], [a.size, f32(1)], grid);
    return y;
  }
  if (y.buffer === a.buffer || y.buffer === b.buffer) {
    throw new Error(`addInto: output ${y} overlaps the buffer of an input without being that input`);
  }
  const k = gpu.kernel({ name: 'add.add', code, entryPoint: 'add', bindings: ['read', 'read', 'write'] });
  gpu.dispatch(k, [a, b, y], [a.size, f32(1)], grid);
  return y;
}

/** out = s · a (out may be a itself). */
export function scaleInto(gpu: Gpu, a: Tensor, s: number, out?: Tensor): Tensor {
  const y = out ?? gpu.empty(a.shape);
  assertSize('scaleInto', y, a.size, 'out');
  const grid = workgroupGrid(gpu, Math.ceil(a.size / WG));
  if (sameView(y, a)) {
    const k = gpu.kernel({ name: 'add.scaleInPlace', code, entryPoint: 'scaleInPlace', bindings: ['write'] });
    gpu.dispatch(k, [y], [a.size, f32(s)], grid);
    return y;
  }
  if (y.buffer === a.buffer) throw new Error(`scaleInto: output ${y} overlaps the buffer of input ${a}`);
  // binding 2 of the `scale` entry point is the read-write destination; binding 1 is a
  const k = gpu.kernel({ name: 'add.scale', code, entryPoint: 'scale', bindings: ['read', 'write'] });
  gpu.dispatch(k, [a, y], [a.size, f32(s)], grid);
  return y;
}

export function addCpu<A extends FloatArray>(a: A, b: ArrayLike<number>): A {
  if (a.length !== b.length) throw new Error(`addCpu: ${a.length} vs ${b.length} values`);
  const out = allocLike(a, a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] + b[i];
  return out;
}

export function scaleCpu<A extends FloatArray>(a: A, s: number): A {
  const out = allocLike(a, a.length);
  for (let i = 0; i < a.length; i++) out[i] = s * a[i];
  return out;
}
