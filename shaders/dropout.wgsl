// Inverted dropout: y = x·keep/(1 − p). The keep decision of element i is a hash of (seed, i),
// so the backward pass recomputes the same mask instead of storing it, and the CPU reference
// (dropoutMaskCpu in src/ops/dropout.ts) reproduces it bit for bit. x, y are flat, n values.

struct Params {
  n: u32,
  seed: u32,
  threshold: u32, // drop when hash < threshold = ⌊p·2³²⌋, so P(keep) = 1 − p; 0 keeps everything
  scale: f32,     // 1/(1 − p)
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

// "lowbias32" integer finaliser (C. Wellons, hash-prospector): a bijection with full avalanche.
fn lowbias32(v: u32) -> u32 {
  var h = v;
  h ^= h >> 16u;
  h *= 0x7feb352du;
  h ^= h >> 15u;
  h *= 0x846ca68bu;
  h ^= h >> 16u;
  return h;
}

// hash(hash(i) ^ hash(seed)): the outer round mixes seed and index so that masks of nearby
// seeds are unrelated
fn keepElement(i: u32) -> bool {
  return lowbias32(lowbias32(i) ^ lowbias32(p.seed)) >= p.threshold;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (i < p.n) {
    y[i] = select(0.0, x[i] * p.scale, keepElement(i));
  }
}
