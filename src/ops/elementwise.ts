// tanh for the pooler, forward and backward; x is any shape, n elements. (In-place accumulation
// dst += src is addInto(gpu, dst, src, dst) in add.ts.)
import type { Gpu } from '../gpu/runtime';
import { f32 } from '../gpu/runtime';
import type { Tensor } from '../gpu/tensor';
import code from '../../shaders/elementwise.wgsl?raw';
import tanhBackwardCode from '../../shaders/tanh_backward.wgsl?raw';

const WG = 256;

/** Grid for n elements with 256-thread workgroups, folded into y beyond the per-dimension limit. */
export function grid1d(gpu: Gpu, n: number): { wg: [number, number]; row: number } {
  const groups = Math.ceil(n / WG);
  const max = gpu.device.limits.maxComputeWorkgroupsPerDimension;
  const x = Math.min(groups, max);
  const y = Math.ceil(groups / x);
  return { wg: [x, y], row: x * WG };
}

export function tanhForward(gpu: Gpu, x: Tensor, out?: Tensor): Tensor {
  const y = out ?? gpu.empty(x.shape);
  const k = gpu.kernel({ name: 'tanh_forward', code, entryPoint: 'tanh_forward', bindings: ['read', 'write'] });
  const { wg, row } = grid1d(gpu, x.size);
  gpu.dispatch(k, [x, y], [x.size, f32(1), row], wg);
  return y;
}

/** dx = dy·(1 − y²) given y = tanh(x) */
export function tanhBackward(gpu: Gpu, y: Tensor, dy: Tensor, out?: Tensor): Tensor {
  const dx = out ?? gpu.empty(y.shape);
  const k = gpu.kernel({ name: 'tanh_backward', code: tanhBackwardCode, bindings: ['read', 'read', 'write'] });
  const { wg, row } = grid1d(gpu, y.size);
  gpu.dispatch(k, [y, dy, dx], [y.size, f32(1), row], wg);
  return dx;
}

export function tanhCpu(x: Float32Array): Float32Array {
  return x.map(Math.tanh);
}
export function tanhBackwardCpu(y: Float32Array, dy: Float32Array): Float32Array {
  return y.map((t, i) => dy[i] * (1 - t * t));
}
