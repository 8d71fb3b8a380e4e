// AdamW (decoupled weight decay, as torch.optim.AdamW) over one flat parameter buffer:
// params, grads, m, v are all (n). Optional global-norm clipping from a precomputed Σg²,
// and a skipped step (nothing written) when that norm is not finite.

struct AdamwParams {
  n: u32,
  lr: f32,
  beta1: f32,
  beta2: f32,
  // 1 − β1 and 1 − β2 from the host in float64: in float32, 1.0 − 0.999 is off by 1e-5 relative
  one_minus_beta1: f32,
  one_minus_beta2: f32,
  eps: f32,
  weight_decay: f32,
  // 1 − β1^t and 1 − β2^t, computed on the host in float64 for the 1-based step t
  bias_correction1: f32,
  bias_correction2: f32,
  // 0 = no clipping
  max_grad_norm: f32,
  // 1 when grad_norm_sq holds Σg² of this step's gradients
  has_grad_norm: u32,
}

@group(0) @binding(0) var<uniform> p: AdamwParams;
@group(0) @binding(1) var<storage, read_write> params: array<f32>;
@group(0) @binding(2) var<storage, read> grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<storage, read> grad_norm_sq: array<f32>;

const WG: u32 = 256u;

// Exponent bits all ones: NaN or ±Inf. A bit test, because compilers may fold `x != x` away.
fn is_finite(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  var clip = 1.0;
  if (p.has_grad_norm != 0u) {
    let norm = sqrt(grad_norm_sq[0]);
    // A NaN/Inf anywhere in the gradients reaches Σg²: skip the whole step so one bad batch
    // cannot poison the parameters or the moment estimates.
    if (!is_finite(norm)) {
      return;
    }
    if (p.max_grad_norm > 0.0) {
      // torch.nn.utils.clip_grad_norm_: coefficient max_norm / (‖g‖ + 1e-6), clamped to 1
      clip = min(1.0, p.max_grad_norm / (norm + 1e-6));
    }
  }
  for (var i = gid.x; i < p.n; i += nwg.x * WG) {
    let g = grads[i] * clip;
    var w = params[i];
    w -= p.lr * p.weight_decay * w;
    let mi = p.beta1 * m[i] + p.one_minus_beta1 * g;
    let vi = p.beta2 * v[i] + p.one_minus_beta2 * g * g;
    m[i] = mi;
    v[i] = vi;
    w -= p.lr * (mi / p.bias_correction1) / (sqrt(vi / p.bias_correction2) + p.eps);
    params[i] = w;
  }
}
