// dx = dy · (1 − y²), with y = tanh(x) saved by the forward pass.
struct P { n: u32, alpha: f32, row: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3u) {
  let i = g.x + g.y * p.row;
  if (i < p.n) { let t = y[i]; dx[i] = dy[i] * (1.0 - t * t); }
}
