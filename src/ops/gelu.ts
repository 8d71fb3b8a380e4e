// GELU, exact erf form as in BERT: gelu(x) = 0.5·x·(1 + erf(x/√2)). x, y, dy, dx: any shape, n values.

import type { Gpu } from '../gpu/runtime';
import type { Tensor } from '../gpu/tensor';
import code from '../../shaders/gelu.wgsl?raw';
import { allocLike, assertNoAlias, assertSize, workgroupGrid, type FloatArray } from './nn-util';

const WG = 256;

export function geluForward(gpu: Gpu, x: Tensor, out?: Tensor): Tensor {
  const y = out ?? gpu.empty(x.shape);
  assertSize('geluForward', y, x.size, 'out');
  assertNoAlias('geluForward', y, x);
  const k = gpu.kernel({ name: 'gelu.forward', code, entryPoint: 'forward', bindings: ['read', 'write'] });
  gpu.dispatch(k, [x, y], [x.size], workgroupGrid(gpu, Math.ceil(x.size / WG)));
  return y;
}

/** dx = dy·gelu'(x); x is the forward input. */
export function geluBackward(gpu: Gpu, x: Tensor, dy: Tensor, out?: Tensor): Tensor {
  assertSize('geluBackward', dy, x.size, 'dy');
  const dx = out ?? gpu.empty(x.shape);
  assertSize('geluBackward', dx, x.size, 'out');
  assertNoAlias('geluBackward', dx, x, dy);
  const k = gpu.kernel({ name: 'gelu.backward', code, entryPoint: 'backward', bindings: ['read', 'read', 'write'] });
  gpu.dispatch(k, [x, dy, dx], [x.size], workgroupGrid(gpu, Math.ceil(x.size / WG)));
  return dx;
}

/** y = erf(x) with the kernels' float32 erf (for tests of the approximation itself). */
export function erfForward(gpu: Gpu, x: Tensor, out?: Tensor): Tensor {
  const y = out ?? gpu.empty(x.shape);
  assertSize('erfForward', y, x.size, 'out');
  assertNoAlias('erfForward', y, x);
  const k = gpu.kernel({ name: 'gelu.erf', code, entryPoint: 'erf', bindings: ['read', 'write'] });
  gpu.dispatch(k, [x, y], [x.size], workgroupGrid(gpu, Math.ceil(x.size / WG)));
  return y;
}

// ---- CPU reference (float64 inside; the output keeps the input's precision) -------------------

const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

/**
 * erf in float64 (JavaScript has none), within ~2e-15 of the exact value. |x| < 2: the
 * Maclaurin series summed until its terms vanish (the largest is ~3 at x = 2, so cancellation
 * costs little); 2 ≤ |x| < 6.5: erfc from its continued fraction, evaluated bottom-up with 120
 * levels; beyond, erfc < 1e-19.
 */
export function erf64(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const z = Math.abs(x);
  let r: number;
  if (z < 2) {
    const s = z * z;
    let power = z; // (−1)ⁿ z^(2n+1) / n!
    let sum = z;
    for (let n = 1; n < 200; n++) {
      power *= -s / n;
      const term = power / (2 * n + 1);
      sum += term;
      if (Math.abs(term) < 1e-17 * Math.abs(sum)) break;
    }
    r = TWO_OVER_SQRT_PI * sum;
  } else if (z < 6.5) {
    // erfc(z) = exp(−z²)/√π · 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + 2/(z + …)))))
    let tail = 0;
    for (let k = 120; k >= 1; k--) tail = k / 2 / (z + tail);
    r = 1 - Math.exp(-z * z) / Math.sqrt(Math.PI) / (z + tail);
  } else {
    r = 1;
  }
  return x < 0 ? -r : r;
}

export function gelu64(x: number): number {
  return 0.5 * x * (1 + erf64(x / Math.SQRT2));
}

export function geluDerivative64(x: number): number {
  return 0.5 * (1 + erf64(x / Math.SQRT2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI);
}

export function geluCpu<A extends FloatArray>(x: A): A {
  const y = allocLike(x, x.length);
  for (let i = 0; i < x.length; i++) y[i] = gelu64(x[i]);
  return y;
}

export function geluBackwardCpu<A extends FloatArray>(x: A, dy: ArrayLike<number>): A {
  const dx = allocLike(x, x.length);
  for (let i = 0; i < x.length; i++) dx[i] = dy[i] * geluDerivative64(x[i]);
  return dx;
}
