// AdapterFusion attention over N adapters, per token (REFERENCE.md, "AdapterFusion"):
//   s_t = softmax_t(q·k_t / T),  out = Σ_t s_t·v_t + h
// q, h are (rows, d); kz, vz stack the N adapters' keys and values as (N, rows, d); probs (rows, N).
// One thread per row: N is small (the tasks being fused) and d a few hundred at most.
// Also here: the fusion regulariser λ·‖I − V‖².

struct P { rows: u32, d: u32, n: u32, invT: f32, d1: u32, d2: u32, lambda: f32, total: u32 }
@group(0) @binding(0) var<uniform> p: P;

const MAX_ADAPTERS: u32 = 16u;

// fusion_forward:  q@1 kz@2 vz@3 h@4 out@5 probs@6
// fusion_backward: q@1 kz@2 vz@3 probs@4 dout@5 dq@6 dkz@7 dvz@8
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> kz: array<f32>;
@group(0) @binding(3) var<storage, read> vz: array<f32>;
@group(0) @binding(4) var<storage, read> h: array<f32>;
@group(0) @binding(4) var<storage, read> probsIn: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> dout: array<f32>;
@group(0) @binding(6) var<storage, read_write> probs: array<f32>;
@group(0) @binding(6) var<storage, read_write> dq: array<f32>;
@group(0) @binding(7) var<storage, read_write> dkz: array<f32>;
@group(0) @binding(8) var<storage, read_write> dvz: array<f32>;

fn rowIndex(gid: vec3u, nwg: vec3u) -> u32 { return gid.y * nwg.x * 64u + gid.x; }

@compute @workgroup_size(64)
fn fusion_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = rowIndex(gid, nwg);
  if (r >= p.rows) { return; }
  let base = r * p.d;
  var s: array<f32, MAX_ADAPTERS>;
  var mx = -3.4e38;
  for (var t = 0u; t < p.n; t++) {
    let kb = (t * p.rows + r) * p.d;
    var dot = 0.0;
    for (var j = 0u; j < p.d; j++) { dot += q[base + j] * kz[kb + j]; }
    s[t] = dot * p.invT;
    mx = max(mx, s[t]);
  }
  var sum = 0.0;
  for (var t = 0u; t < p.n; t++) { s[t] = exp(s[t] - mx); sum += s[t]; }
  for (var t = 0u; t < p.n; t++) { s[t] = s[t] / sum; probs[r * p.n + t] = s[t]; }
  for (var j = 0u; j < p.d; j++) {
    var acc = h[base + j];
    for (var t = 0u; t < p.n; t++) { acc += s[t] * vz[(t * p.rows + r) * p.d + j]; }
    out[base + j] = acc;
  }
}

// ds_t = Σ_j dout·v_t;  dscore_t = s_t·(ds_t − Σ_u s_u·ds_u)/T;  dq = Σ_t dscore_t·k_t;
// dk_t = dscore_t·q;  dv_t = s_t·dout  (the residual's gradient, dout itself, is added by the caller)
@compute @workgroup_size(64)
fn fusion_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = rowIndex(gid, nwg);
  if (r >= p.rows) { return; }
  let base = r * p.d;
  var ds: array<f32, MAX_ADAPTERS>;
  var mean = 0.0;
  for (var t = 0u; t < p.n; t++) {
    let vb = (t * p.rows + r) * p.d;
    var dot = 0.0;
    for (var j = 0u; j < p.d; j++) { dot += dout[base + j] * vz[vb + j]; }
    ds[t] = dot;
    mean += probsIn[r * p.n + t] * dot;
  }
  for (var t = 0u; t < p.n; t++) { ds[t] = probsIn[r * p.n + t] * (ds[t] - mean) * p.invT; }
  for (var j = 0u; j < p.d; j++) {
    var acc = 0.0;
    for (var t = 0u; t < p.n; t++) {
      let at = (t * p.rows + r) * p.d + j;
      acc += ds[t] * kz[at];
      dkz[at] = ds[t] * q[base + j];
      dvz[at] = probsIn[r * p.n + t] * dout[base + j];
    }
    dq[base + j] = acc;
  }
}

// identity_reg_backward: v@1 dv@2 (dV += 2λ(V − I));  identity_reg_value: v@1 loss@2 (loss += λ‖V − I‖²)
@group(0) @binding(1) var<storage, read> v: array<f32>;
@group(0) @binding(2) var<storage, read_write> dv: array<f32>;

@compute @workgroup_size(64)
fn identity_reg_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = rowIndex(gid, nwg);
  if (i >= p.d * p.d) { return; }
  let eye = select(0.0, 1.0, i / p.d == i % p.d);
  dv[i] = dv[i] + 2.0 * p.lambda * (v[i] - eye);
}

@compute @workgroup_size(1)
fn identity_reg_value() {
  var acc = 0.0;
  for (var i = 0u; i < p.d * p.d; i++) {
    let eye = select(0.0, 1.0, i / p.d == i % p.d);
    let e = v[i] - eye;
    acc += e * e;
  }
  dv[0] = dv[0] + p.lambda * acc;
}
