// Attention head layout: tokens (batch, t, heads·dh) ⇄ heads (batch, heads, t, dh).
// One thread per element, indexed in the heads layout; split gathers from the token layout,
// merge scatters back to it (each is the other's inverse and its backward).

struct Params { n: u32, t: u32, heads: u32, dh: u32, split: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 256u + lid; // index in (batch, heads, t, dh)
  if (i >= p.n) { return; }
  let e = i % p.dh;
  let tok = (i / p.dh) % p.t;
  let bh = i / (p.dh * p.t);
  let h = bh % p.heads;
  let b = bh / p.heads;
  let j = ((b * p.t + tok) * p.heads + h) * p.dh + e; // index in (batch, t, heads·dh)
  if (p.split != 0u) {
    dst[i] = src[j];
  } else {
    dst[j] = src[i];
  }
}
