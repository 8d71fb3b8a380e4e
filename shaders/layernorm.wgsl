// LayerNorm over the last dimension: y = (x − mean)·rstd·gamma + beta, rstd = 1/√(var + eps).
// x, y, dy, dx are (rows, d); gamma, beta, dgamma, dbeta are (d); mean, rstd are (rows).
// Row kernels use one 128-thread workgroup per row (grid folded into y past 65535 rows).
// The parameter gradients are column sums over rows, reduced in a fixed order (no atomics), so
// they are bit-identical from run to run.

struct Params {
  rows: u32,
  d: u32,
  eps: f32,
  accumulate: u32,  // paramGrads (single chunk) and paramGradsFinish: add into dgamma/dbeta
  chunkRows: u32,   // paramGrads: rows summed by one workgroup
  chunks: u32,      // paramGradsFinish: number of row chunks
}
@group(0) @binding(0) var<uniform> p: Params;

// Bindings per entry point (one name per access mode and binding):
//   forward           x@1 gamma@2 beta@3 y@4 meanOut@5 rstdOut@6
//   backwardInput     x@1 gamma@2 dy@3 mean@4 rstd@5 dx@6
//   paramGrads        x@1 dgamma@2 dy@3 mean@4 rstd@5 dbeta@6
//   paramGradsFinish  gammaPartials@1 dgamma@2 dbetaFinal@3 betaPartials@4
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gammaPartials: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dbetaFinal: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read> betaPartials: array<f32>;
@group(0) @binding(5) var<storage, read_write> meanOut: array<f32>;
@group(0) @binding(5) var<storage, read> rstd: array<f32>;
@group(0) @binding(6) var<storage, read_write> rstdOut: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<storage, read_write> dbeta: array<f32>;

const WG: u32 = 128u;
var<workgroup> lanes: array<f32, WG>;
var<workgroup> lanes2: array<vec2f, WG>;

// Tree sum over the workgroup; every thread gets the total. Call from uniform control flow.
fn sumAcross(v: f32, lid: u32) -> f32 {
  lanes[lid] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) { lanes[lid] = lanes[lid] + lanes[lid + stride]; }
    workgroupBarrier();
  }
  let total = lanes[0];
  workgroupBarrier(); // lanes is reused by the next call
  return total;
}

fn sumAcross2(v: vec2f, lid: u32) -> vec2f {
  lanes2[lid] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) { lanes2[lid] = lanes2[lid] + lanes2[lid + stride]; }
    workgroupBarrier();
  }
  let total = lanes2[0];
  workgroupBarrier();
  return total;
}

@compute @workgroup_size(128)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.y * nwg.x + wid.x;
  if (row >= p.rows) { return; }
  let base = row * p.d;
  var s = 0.0;
  for (var c = lid; c < p.d; c += WG) { s += x[base + c]; }
  let mu = sumAcross(s, lid) / f32(p.d);
  // the variance from centred values (two passes): E[x²] − mean² cancels badly when |mean| ≫ std
  var q = 0.0;
  for (var c = lid; c < p.d; c += WG) {
    let t = x[base + c] - mu;
    q += t * t;
  }
  let r = 1.0 / sqrt(sumAcross(q, lid) / f32(p.d) + p.eps);
  for (var c = lid; c < p.d; c += WG) {
    y[base + c] = (x[base + c] - mu) * r * gamma[c] + beta[c];
  }
  if (lid == 0u) {
    meanOut[row] = mu;
    rstdOut[row] = r;
  }
}

// dx = rstd·(g − mean(g) − x̂·mean(g·x̂)), g = dy·gamma, x̂ = (x − mean)·rstd
@compute @workgroup_size(128)
fn backwardInput(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.y * nwg.x + wid.x;
  if (row >= p.rows) { return; }
  let base = row * p.d;
  let mu = mean[row];
  let r = rstd[row];
  var acc = vec2f(0.0);
  for (var c = lid; c < p.d; c += WG) {
    let g = dy[base + c] * gamma[c];
    acc += vec2f(g, g * (x[base + c] - mu) * r);
  }
  let means = sumAcross2(acc, lid) / f32(p.d);
  for (var c = lid; c < p.d; c += WG) {
    let xhat = (x[base + c] - mu) * r;
    dx[base + c] = r * (dy[base + c] * gamma[c] - means.x - xhat * means.y);
  }
}

// dgamma = Σ_rows dy·x̂, dbeta = Σ_rows dy. Workgroup (64 columns × 4 row lanes) per (column
// block, row chunk): threads along x read adjacent columns (coalesced). With one chunk the sums
// go straight to dgamma/dbeta; otherwise dgamma and dbeta bind two (chunks, d) scratch buffers,
// each chunk writes its row of partial sums there, and paramGradsFinish adds them up.
var<workgroup> columnLanes: array<vec2f, 256>;

@compute @workgroup_size(64, 4)
fn paramGrads(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let c = wid.x * 64u + lid.x;
  let chunk = wid.y;
  let r0 = chunk * p.chunkRows;
  let r1 = min(p.rows, r0 + p.chunkRows);
  var acc = vec2f(0.0);
  if (c < p.d) {
    for (var r = r0 + lid.y; r < r1; r += 4u) {
      let g = dy[r * p.d + c];
      acc += vec2f(g * (x[r * p.d + c] - mean[r]) * rstd[r], g);
    }
  }
  columnLanes[lid.y * 64u + lid.x] = acc;
  workgroupBarrier();
  if (lid.y == 0u && c < p.d) {
    let total = ((columnLanes[lid.x] + columnLanes[64u + lid.x]) + columnLanes[128u + lid.x]) + columnLanes[192u + lid.x];
    let at = chunk * p.d + c;
    if (p.accumulate != 0u) {
      dgamma[at] = dgamma[at] + total.x;
      dbeta[at] = dbeta[at] + total.y;
    } else {
      dgamma[at] = total.x;
      dbeta[at] = total.y;
    }
  }
}

// gammaPartials, betaPartials: (chunks, d), added in chunk order
@compute @workgroup_size(64)
fn paramGradsFinish(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= p.d) { return; }
  var g = 0.0;
  var b = 0.0;
  for (var k = 0u; k < p.chunks; k++) {
    g += gammaPartials[k * p.d + c];
    b += betaPartials[k * p.d + c];
  }
  if (p.accumulate != 0u) {
    dgamma[c] = dgamma[c] + g;
    dbetaFinal[c] = dbetaFinal[c] + b;
  } else {
    dgamma[c] = g;
    dbetaFinal[c] = b;
  }
}

// Row-per-thread variants (no workgroup memory, no barriers): on software adapters (SwiftShader)
// barriers dominate, and one thread walking a row of d ≤ a few thousand values is much faster —
// measured 3.2 ms → well under 0.1 ms for a (32, 16) forward. One thread per row, 64 per workgroup.
@compute @workgroup_size(64)
fn forwardRowPerThread(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.y * nwg.x * 64u + gid.x;
  if (row >= p.rows) { return; }
  let base = row * p.d;
  var s = 0.0;
  for (var c = 0u; c < p.d; c++) { s += x[base + c]; }
  let mu = s / f32(p.d);
  var q = 0.0;
  for (var c = 0u; c < p.d; c++) {
    let t = x[base + c] - mu;
    q += t * t;
  }
  let r = 1.0 / sqrt(q / f32(p.d) + p.eps);
  for (var c = 0u; c < p.d; c++) {
    y[base + c] = (x[base + c] - mu) * r * gamma[c] + beta[c];
  }
  meanOut[row] = mu;
  rstdOut[row] = r;
}

@compute @workgroup_size(64)
fn backwardInputRowPerThread(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.y * nwg.x * 64u + gid.x;
  if (row >= p.rows) { return; }
  let base = row * p.d;
  let mu = mean[row];
  let r = rstd[row];
  var acc = vec2f(0.0);
  for (var c = 0u; c < p.d; c++) {
    let g = dy[base + c] * gamma[c];
    acc += vec2f(g, g * (x[base + c] - mu) * r);
  }
  let means = acc / f32(p.d);
  for (var c = 0u; c < p.d; c++) {
    let xhat = (x[base + c] - mu) * r;
    dx[base + c] = r * (dy[base + c] * gamma[c] - means.x - xhat * means.y);
  }
}
