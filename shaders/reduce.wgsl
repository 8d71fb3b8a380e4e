// Reductions: column sums (bias gradients), sums of squares (global gradient norm), and a
// non-finite detector (the trainer's NaN/Inf guard).
//
// Determinism: every float sum runs in an order fixed by the shapes alone (per-thread strided
// loops, then a shared-memory tree in a fixed pairing); no float atomics. The same inputs give
// bit-identical results on every run, so two training runs with the same seed agree exactly.
// Each entry point declares its own variables; entry points never share a binding.

const WG: u32 = 256u;

// ---- col_sum: x is (rows, cols), out is (cols) ---------------------------------------------
// A workgroup owns 32 adjacent columns (coalesced reads along a row) and 8 row lanes; lane r
// sums rows r, r+8, r+16, … of its column, then the 8 lane sums are added in a fixed order.

// out_offset: element offset into out (one expert's slice of a stacked bias gradient)
struct ColSumParams { rows: u32, cols: u32, accumulate: u32, out_offset: u32 }
@group(0) @binding(0) var<uniform> cs: ColSumParams;
@group(0) @binding(1) var<storage, read> cs_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> cs_out: array<f32>;

var<workgroup> cs_lanes: array<array<f32, 32>, 8>;

@compute @workgroup_size(32, 8)
fn col_sum(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let col = wid.x * 32u + lid.x;
  var acc = 0.0;
  if (col < cs.cols) {
    for (var r = lid.y; r < cs.rows; r += 8u) {
      acc += cs_x[r * cs.cols + col];
    }
  }
  cs_lanes[lid.y][lid.x] = acc;
  workgroupBarrier();
  if (lid.y == 0u && col < cs.cols) {
    var total = 0.0;
    for (var l = 0u; l < 8u; l++) {
      total += cs_lanes[l][lid.x];
    }
    let o = cs.out_offset + col;
    if (cs.accumulate != 0u) {
      total += cs_out[o];
    }
    cs_out[o] = total;
  }
}

// ---- sum_squares_partial: x is (n); partials[base + workgroup] = Σ x² over that workgroup's ---
// grid-strided elements. One dispatch per input tensor, each writing its own range of partials.

struct PartialParams { n: u32, base: u32 }
@group(0) @binding(0) var<uniform> sp: PartialParams;
@group(0) @binding(1) var<storage, read> sp_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> sp_partials: array<f32>;

var<workgroup> sp_tree: array<f32, WG>;

@compute @workgroup_size(WG)
fn sum_squares_partial(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                       @builtin(local_invocation_id) lid: vec3u) {
  let stride = nwg.x * WG;
  var acc = 0.0;
  for (var i = wid.x * WG + lid.x; i < sp.n; i += stride) {
    let v = sp_x[i];
    acc += v * v;
  }
  sp_tree[lid.x] = acc;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half >>= 1u) {
    if (lid.x < half) {
      sp_tree[lid.x] += sp_tree[lid.x + half];
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    sp_partials[sp.base + wid.x] = sp_tree[0];
  }
}

// ---- sum_partials: out[0] = Σ partials[0..count), one workgroup ---------------------------

struct SumParams { count: u32 }
@group(0) @binding(0) var<uniform> sf: SumParams;
@group(0) @binding(1) var<storage, read> sf_partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> sf_out: array<f32>;

var<workgroup> sf_tree: array<f32, WG>;

@compute @workgroup_size(WG)
fn sum_partials(@builtin(local_invocation_id) lid: vec3u) {
  var acc = 0.0;
  for (var i = lid.x; i < sf.count; i += WG) {
    acc += sf_partials[i];
  }
  sf_tree[lid.x] = acc;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half >>= 1u) {
    if (lid.x < half) {
      sf_tree[lid.x] += sf_tree[lid.x + half];
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    sf_out[0] = sf_tree[0];
  }
}

// ---- non_finite_flag: flag[0] = 1 if any element of x is NaN or ±Inf (never cleared here) -----
// The test is on the bit pattern (exponent all ones) because compilers may assume floats are
// never NaN and fold `x != x` to false.

struct FlagParams { n: u32 }
@group(0) @binding(0) var<uniform> nf: FlagParams;
@group(0) @binding(1) var<storage, read> nf_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> nf_flag: array<atomic<u32>>;

@compute @workgroup_size(WG)
fn non_finite_flag(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let stride = nwg.x * WG;
  var bad = false;
  for (var i = gid.x; i < nf.n; i += stride) {
    bad = bad || (bitcast<u32>(nf_x[i]) & 0x7f800000u) == 0x7f800000u;
  }
  if (bad) {
    atomicMax(&nf_flag[0], 1u);
  }
}
