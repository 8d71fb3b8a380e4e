// Small elementwise kernels the model needs beside the op families: in-place accumulation
// (a buffer may not be bound read-only and read-write in one dispatch, so `dst += src` needs its
// own kernel) and tanh for the pooler. One entry point per op; n elements, 1-D grid folded into y.

struct P { n: u32, alpha: f32, row: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

fn index(g: vec3u) -> u32 { return g.x + g.y * p.row; }

// dst += alpha · src
@compute @workgroup_size(256) fn accumulate(@builtin(global_invocation_id) g: vec3u) {
  let i = index(g);
  if (i < p.n) { dst[i] = dst[i] + p.alpha * src[i]; }
}

// dst = tanh(src)
@compute @workgroup_size(256) fn tanh_forward(@builtin(global_invocation_id) g: vec3u) {
  let i = index(g);
  if (i < p.n) {
    // tanh via exp of a negative argument: no overflow for large |x|
    let x = src[i];
    let e = exp(-2.0 * abs(x));
    dst[i] = sign(x) * (1.0 - e) / (1.0 + e);
  }
}
