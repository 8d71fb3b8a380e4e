// tanh for the pooler (its backward is tanh_backward.wgsl); n elements, 1-D grid folded into y.

struct P { n: u32, alpha: f32, row: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

fn index(g: vec3u) -> u32 { return g.x + g.y * p.row; }

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
