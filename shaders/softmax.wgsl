// Attention softmax, row-wise: probs = softmax(scale·s) with padded keys' logits set to −1e9.
// scores, probs, dprobs, dscores are (batch·heads·tq) rows × tk columns; keyMask is (batch, tk),
// 1 = keep, 0 = padding. One 64-thread workgroup per row (grid folded into y past 65535 rows).
//
// Masked logits are replaced by −1e9 rather than having −1e9 added: in float32 the two agree
// (−1e9 + scale·s rounds to −1e9 for |scale·s| < 32, as Hugging Face's finfo.min does), and
// replacing makes the CPU reference in float64 agree too. A row whose keys are all masked then
// gets the uniform distribution, never NaN.

struct Params { rows: u32, cols: u32, rowsPerBatch: u32, scale: f32, hasMask: u32 }
@group(0) @binding(0) var<uniform> p: Params;

// forward: scores@1 keyMask@2 probs@3; backward: probsSaved@1 dprobs@2 dscores@3
@group(0) @binding(1) var<storage, read> scores: array<f32>;
@group(0) @binding(1) var<storage, read> probsSaved: array<f32>;
@group(0) @binding(2) var<storage, read> keyMask: array<f32>;
@group(0) @binding(2) var<storage, read> dprobs: array<f32>;
@group(0) @binding(3) var<storage, read_write> probs: array<f32>;
@group(0) @binding(3) var<storage, read_write> dscores: array<f32>;

const WG: u32 = 64u;
const MASKED_LOGIT: f32 = -1e9;
var<workgroup> lanes: array<f32, WG>;

fn sumAcross(v: f32, lid: u32) -> f32 {
  lanes[lid] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) { lanes[lid] = lanes[lid] + lanes[lid + stride]; }
    workgroupBarrier();
  }
  let total = lanes[0];
  workgroupBarrier();
  return total;
}

fn maxAcross(v: f32, lid: u32) -> f32 {
  lanes[lid] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) { lanes[lid] = max(lanes[lid], lanes[lid + stride]); }
    workgroupBarrier();
  }
  let total = lanes[0];
  workgroupBarrier();
  return total;
}

fn logit(base: u32, maskBase: u32, c: u32) -> f32 {
  if (p.hasMask != 0u && keyMask[maskBase + c] < 0.5) { return MASKED_LOGIT; }
  return p.scale * scores[base + c];
}

@compute @workgroup_size(64)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.y * nwg.x + wid.x;
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  let maskBase = (row / p.rowsPerBatch) * p.cols;
  var m = -3.0e38;
  for (var c = lid; c < p.cols; c += WG) { m = max(m, logit(base, maskBase, c)); }
  m = maxAcross(m, lid);
  var s = 0.0;
  for (var c = lid; c < p.cols; c += WG) { s += exp(logit(base, maskBase, c) - m); }
  let inv = 1.0 / sumAcross(s, lid);
  for (var c = lid; c < p.cols; c += WG) { probs[base + c] = exp(logit(base, maskBase, c) - m) * inv; }
}

// dscores = scale·probs·(dprobs − Σ probs·dprobs)
@compute @workgroup_size(64)
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.y * nwg.x + wid.x;
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  var dot = 0.0;
  for (var c = lid; c < p.cols; c += WG) { dot += probsSaved[base + c] * dprobs[base + c]; }
  dot = sumAcross(dot, lid);
  for (var c = lid; c < p.cols; c += WG) {
    dscores[base + c] = p.scale * probsSaved[base + c] * (dprobs[base + c] - dot);
  }
}
