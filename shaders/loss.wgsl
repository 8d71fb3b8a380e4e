// Classification losses: mean cross-entropy and AdaMix's consistency regulariser
// (REFERENCE.md, AdaMix): w·[KL(sg(p2)‖p1) + KL(sg(p1)‖p2)], batch mean.
//
// Every softmax goes through the log-sum-exp with the row maximum subtracted, so large logits
// neither overflow exp nor lose the log. The batch means are sums in a fixed order (one
// workgroup, strided rows, then a fixed tree), so the loss is bit-reproducible.
// Each entry point declares its own variables; entry points never share a binding.

const WG: u32 = 256u;

// A quiet NaN. The bits sit in a `var` so the expression is not a constant: WGSL rejects a
// constant NaN at shader creation.
fn nan() -> f32 {
  var bits = 0x7fc00000u;
  return bitcast<f32>(bits);
}

// ---- ce_forward: logits (B, C), labels u32 (B) → loss [1] (mean), probs (B, C) ---------------
// A label outside [0, C) makes the loss NaN: the trainer's NaN guard then stops the run and says
// so, instead of the kernel reading past the row.

struct CeParams { batch: u32, classes: u32 }
@group(0) @binding(0) var<uniform> ce: CeParams;
@group(0) @binding(1) var<storage, read> ce_logits: array<f32>;
@group(0) @binding(2) var<storage, read> ce_labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> ce_loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> ce_probs: array<f32>;

var<workgroup> ce_tree: array<f32, WG>;

@compute @workgroup_size(WG)
fn ce_forward(@builtin(local_invocation_id) lid: vec3u) {
  let C = ce.classes;
  var acc = 0.0;
  for (var r = lid.x; r < ce.batch; r += WG) {
    let row = r * C;
    var mx = ce_logits[row];
    for (var c = 1u; c < C; c++) {
      mx = max(mx, ce_logits[row + c]);
    }
    var sum = 0.0;
    for (var c = 0u; c < C; c++) {
      sum += exp(ce_logits[row + c] - mx);
    }
    let inv = 1.0 / sum;
    for (var c = 0u; c < C; c++) {
      ce_probs[row + c] = exp(ce_logits[row + c] - mx) * inv;
    }
    let label = ce_labels[r];
    if (label < C) {
      // −log p[label] = log Σ exp(l − max) − (l[label] − max)
      acc += log(sum) - (ce_logits[row + label] - mx);
    } else {
      acc += nan();
    }
  }
  ce_tree[lid.x] = acc;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half >>= 1u) {
    if (lid.x < half) {
      ce_tree[lid.x] += ce_tree[lid.x + half];
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    ce_loss[0] = ce_tree[0] / f32(ce.batch);
  }
}

// ---- ce_backward: probs (B, C), labels (B) → dlogits (B, C) = scale·(probs − onehot)/B -------

struct CeBackParams { batch: u32, classes: u32, scale: f32, accumulate: u32 }
@group(0) @binding(0) var<uniform> cb: CeBackParams;
@group(0) @binding(1) var<storage, read> cb_probs: array<f32>;
@group(0) @binding(2) var<storage, read> cb_labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> cb_dlogits: array<f32>;

@compute @workgroup_size(WG)
fn ce_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let n = cb.batch * cb.classes;
  let k = cb.scale / f32(cb.batch);
  for (var i = gid.x; i < n; i += nwg.x * WG) {
    let r = i / cb.classes;
    let c = i - r * cb.classes;
    let onehot = select(0.0, 1.0, cb_labels[r] == c);
    var d = k * (cb_probs[i] - onehot);
    if (cb.accumulate != 0u) {
      d += cb_dlogits[i];
    }
    cb_dlogits[i] = d;
  }
}

// ---- consistency_forward: logits1, logits2 (B, C) → loss [1] -------------------------------
// KL(p2‖p1) + KL(p1‖p2) = Σ_c (p2 − p1)·(log p2 − log p1): one pass over the log-softmaxes.

struct KlParams { batch: u32, classes: u32, weight: f32 }
@group(0) @binding(0) var<uniform> kl: KlParams;
@group(0) @binding(1) var<storage, read> kl_logits1: array<f32>;
@group(0) @binding(2) var<storage, read> kl_logits2: array<f32>;
@group(0) @binding(3) var<storage, read_write> kl_loss: array<f32>;

var<workgroup> kl_tree: array<f32, WG>;

fn kl_lse1(row: u32, C: u32) -> f32 {
  var mx = kl_logits1[row];
  for (var c = 1u; c < C; c++) { mx = max(mx, kl_logits1[row + c]); }
  var sum = 0.0;
  for (var c = 0u; c < C; c++) { sum += exp(kl_logits1[row + c] - mx); }
  return mx + log(sum);
}

fn kl_lse2(row: u32, C: u32) -> f32 {
  var mx = kl_logits2[row];
  for (var c = 1u; c < C; c++) { mx = max(mx, kl_logits2[row + c]); }
  var sum = 0.0;
  for (var c = 0u; c < C; c++) { sum += exp(kl_logits2[row + c] - mx); }
  return mx + log(sum);
}

@compute @workgroup_size(WG)
fn consistency_forward(@builtin(local_invocation_id) lid: vec3u) {
  let C = kl.classes;
  var acc = 0.0;
  for (var r = lid.x; r < kl.batch; r += WG) {
    let row = r * C;
    let lse1 = kl_lse1(row, C);
    let lse2 = kl_lse2(row, C);
    for (var c = 0u; c < C; c++) {
      let logp1 = kl_logits1[row + c] - lse1;
      let logp2 = kl_logits2[row + c] - lse2;
      acc += (exp(logp2) - exp(logp1)) * (logp2 - logp1);
    }
  }
  kl_tree[lid.x] = acc;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half >>= 1u) {
    if (lid.x < half) {
      kl_tree[lid.x] += kl_tree[lid.x + half];
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    kl_loss[0] = kl.weight * kl_tree[0] / f32(kl.batch);
  }
}

// ---- consistency_backward: d1 = w·(p1 − p2)/B, d2 = w·(p2 − p1)/B (one thread per row) --------
// With the stop-gradient, logits1 sees only KL(sg(p2)‖p1) = Σ p2·(log p2 − log p1), whose
// gradient through log-softmax is p1·Σp2 − p2 = p1 − p2; symmetrically for logits2.

struct KlBackParams { batch: u32, classes: u32, weight: f32, accumulate: u32 }
@group(0) @binding(0) var<uniform> kb: KlBackParams;
@group(0) @binding(1) var<storage, read> kb_logits1: array<f32>;
@group(0) @binding(2) var<storage, read> kb_logits2: array<f32>;
@group(0) @binding(3) var<storage, read_write> kb_d1: array<f32>;
@group(0) @binding(4) var<storage, read_write> kb_d2: array<f32>;

@compute @workgroup_size(64)
fn consistency_backward(@builtin(global_invocation_id) gid: vec3u) {
  let r = gid.x;
  if (r >= kb.batch) {
    return;
  }
  let C = kb.classes;
  let row = r * C;
  var mx1 = kb_logits1[row];
  var mx2 = kb_logits2[row];
  for (var c = 1u; c < C; c++) {
    mx1 = max(mx1, kb_logits1[row + c]);
    mx2 = max(mx2, kb_logits2[row + c]);
  }
  var sum1 = 0.0;
  var sum2 = 0.0;
  for (var c = 0u; c < C; c++) {
    sum1 += exp(kb_logits1[row + c] - mx1);
    sum2 += exp(kb_logits2[row + c] - mx2);
  }
  let k = kb.weight / f32(kb.batch);
  for (var c = 0u; c < C; c++) {
    let p1 = exp(kb_logits1[row + c] - mx1) / sum1;
    let p2 = exp(kb_logits2[row + c] - mx2) / sum2;
    var g1 = k * (p1 - p2);
    var g2 = -g1;
    if (kb.accumulate != 0u) {
      g1 += kb_d1[row + c];
      g2 += kb_d2[row + c];
    }
    kb_d1[row + c] = g1;
    kb_d2[row + c] = g2;
  }
}
