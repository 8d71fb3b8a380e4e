// Matrix product with a fused epilogue:
//   out = [out +] [residual +] act(alpha · op(A) · op(B) + bias)
// A is (batch, M, K), stored (batch, K, M) when TRANS_A; B is (batch, K, N), stored (batch, N, K)
// when TRANS_B; bias is (N); out is (batch, M, N) at outOffset; residual and the pre-activation
// copy are compact (batch, M, N).
//
// Two entry points share the loaders and the epilogue:
//   main_direct — each thread computes (4·TM_BLOCKS)×(4·TN_BLOCKS) outputs straight from storage,
//                 no workgroup memory, no barriers (software rasterizers such as SwiftShader run a
//                 workgroup's invocations one SIMD group at a time, so a barrier is a costly switch);
//   main_tiled  — 64×64 output tile per 256-thread workgroup, K staged through workgroup memory in
//                 slices of 16 (8 KiB), each thread 4×4 outputs (what real GPUs reward).
//
// The inner step is one 4×4×4 block as mat4x4 arithmetic: with A4's columns the four A rows
// (each a vec4 over k) and B4's columns the four B rows (each a vec4 over n), B4 · A4 has as
// column i the contribution to output row i, so `acc += B4 * A4` is 64 multiply-adds.
// A transposed operand is loaded along its contiguous axis and turned with transpose().

struct Params {
  m: u32, n: u32, k: u32, batch: u32,
  aOffset: u32, bOffset: u32, biasOffset: u32, outOffset: u32,
  aBatchStride: u32, bBatchStride: u32, outBatchStride: u32, tilesN: u32,
  tilesM: u32, groupsX: u32, alpha: f32,
}

const TRANS_A = {{TRANS_A}};
const TRANS_B = {{TRANS_B}};
// the operand's contiguous axis, its batch stride and its offset are multiples of 4: vec4 loads
const A_VEC = {{A_VEC}};
const B_VEC = {{B_VEC}};
const HAS_BIAS = {{HAS_BIAS}};
const GELU = {{GELU}};
const STORE_PREACT = {{STORE_PREACT}};
const HAS_RESIDUAL = {{HAS_RESIDUAL}};
const ACCUMULATE = {{ACCUMULATE}};
const TM_BLOCKS = {{TM_BLOCKS}}u; // direct kernel: 4×4 blocks per thread along M (1 or 2)
const TN_BLOCKS = {{TN_BLOCKS}}u; // and along N (1 or 2)

@group(0) @binding(0) var<uniform> p: Params;
// A and B are bound as vec4 arrays (the binding is padded to 16 bytes on the host); the scalar
// path picks components, so one declaration serves both paths.
@group(0) @binding(1) var<storage, read> a: array<vec4f>;
@group(0) @binding(2) var<storage, read> b: array<vec4f>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> preact: array<f32>;

fn aScalar(i: u32) -> f32 { return a[i >> 2u][i & 3u]; }
fn bScalar(i: u32) -> f32 { return b[i >> 2u][i & 3u]; }

// A(row, k) of the logical (M, K) operand, 0 outside it
fn aElem(base: u32, row: u32, k: u32) -> f32 {
  if (row >= p.m || k >= p.k) { return 0.0; }
  if (TRANS_A) { return aScalar(base + k * p.m + row); }
  return aScalar(base + row * p.k + k);
}

// B(k, col) of the logical (K, N) operand, 0 outside it
fn bElem(base: u32, k: u32, col: u32) -> f32 {
  if (k >= p.k || col >= p.n) { return 0.0; }
  if (TRANS_B) { return bScalar(base + col * p.k + k); }
  return bScalar(base + k * p.n + col);
}

// A rows row0..row0+3 × k..k+3 as a matrix whose column i is row row0+i (a vec4 over k).
// Rows past M are clamped (their results are never stored), so full K blocks need no branch.
fn loadA4(base: u32, row0: u32, k: u32) -> mat4x4f {
  let last = p.m - 1u;
  if (A_VEC) {
    if (TRANS_A) {
      // contiguous along M: M is a multiple of 4, so row0 < M means the whole quad is inside
      let r = min(row0, p.m - 4u);
      let w = p.m >> 2u;
      let q = (base + k * p.m + r) >> 2u;
      return transpose(mat4x4f(a[q], a[q + w], a[q + 2u * w], a[q + 3u * w]));
    }
    let w = p.k >> 2u;
    let q = (base + k) >> 2u;
    return mat4x4f(a[q + min(row0, last) * w], a[q + min(row0 + 1u, last) * w],
                   a[q + min(row0 + 2u, last) * w], a[q + min(row0 + 3u, last) * w]);
  }
  return loadA4Checked(base, row0, k);
}

// B k..k+3 × cols col0..col0+3 as a matrix whose column kk is row k+kk (a vec4 over n).
fn loadB4(base: u32, k: u32, col0: u32) -> mat4x4f {
  let last = p.n - 1u;
  if (B_VEC) {
    if (TRANS_B) {
      let w = p.k >> 2u;
      let q = (base + k) >> 2u;
      return transpose(mat4x4f(b[q + min(col0, last) * w], b[q + min(col0 + 1u, last) * w],
                               b[q + min(col0 + 2u, last) * w], b[q + min(col0 + 3u, last) * w]));
    }
    let c = min(col0, p.n - 4u);
    let w = p.n >> 2u;
    let q = (base + k * p.n + c) >> 2u;
    return mat4x4f(b[q], b[q + w], b[q + 2u * w], b[q + 3u * w]);
  }
  return loadB4Checked(base, k, col0);
}

// Every element bounds-checked: operands without vec4 alignment, and the last K block when K is
// not a multiple of 4.
fn loadA4Checked(base: u32, row0: u32, k: u32) -> mat4x4f {
  var m: mat4x4f;
  for (var i = 0u; i < 4u; i++) {
    let r = min(row0 + i, p.m - 1u);
    m[i] = vec4f(aElem(base, r, k), aElem(base, r, k + 1u), aElem(base, r, k + 2u), aElem(base, r, k + 3u));
  }
  return m;
}

fn loadB4Checked(base: u32, k: u32, col0: u32) -> mat4x4f {
  var m: mat4x4f;
  let last = p.n - 1u;
  for (var kk = 0u; kk < 4u; kk++) {
    m[kk] = vec4f(bElem(base, k + kk, min(col0, last)), bElem(base, k + kk, min(col0 + 1u, last)),
                  bElem(base, k + kk, min(col0 + 2u, last)), bElem(base, k + kk, min(col0 + 3u, last)));
  }
  return m;
}

// erf with |error| < 1.5e-7 (Abramowitz & Stegun 7.1.26): WGSL has no erf, and BERT's GELU is
// the exact erf form, not the tanh approximation.
fn erf(x: f32) -> f32 {
  let s = sign(x);
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * z);
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return s * (1.0 - poly * exp(-z * z));
}

fn epilogue(batchIndex: u32, row: u32, col: u32, value: f32) {
  if (row >= p.m || col >= p.n) { return; }
  var v = p.alpha * value;
  if (HAS_BIAS) { v += bias[p.biasOffset + col]; }
  let compact = (batchIndex * p.m + row) * p.n + col;
  if (GELU) {
    if (STORE_PREACT) { preact[compact] = v; }
    v = 0.5 * v * (1.0 + erf(v * 0.70710678118654752));
  }
  if (HAS_RESIDUAL) { v += residual[compact]; }
  let o = p.outOffset + batchIndex * p.outBatchStride + row * p.n + col;
  if (ACCUMULATE) { v += out[o]; }
  out[o] = v;
}

// acc's column i holds output row row0+i, cols col0..col0+3
fn storeBlock(batchIndex: u32, row0: u32, col0: u32, acc: mat4x4f) {
  for (var i = 0u; i < 4u; i++) {
    epilogue(batchIndex, row0 + i, col0, acc[i].x);
    epilogue(batchIndex, row0 + i, col0 + 1u, acc[i].y);
    epilogue(batchIndex, row0 + i, col0 + 2u, acc[i].z);
    epilogue(batchIndex, row0 + i, col0 + 3u, acc[i].w);
  }
}

struct TileCoord { batchIndex: u32, tileRow: u32, tileCol: u32, valid: bool }

// The grid is folded into x and y (at most 65535 workgroups per dimension); tiles are numbered
// batch-major, then by row of tiles, so neighbouring workgroups share rows of A.
fn tileCoord(wg: vec3u) -> TileCoord {
  let tile = wg.y * p.groupsX + wg.x;
  let perBatch = p.tilesM * p.tilesN;
  let inBatch = tile % perBatch;
  return TileCoord(tile / perBatch, inBatch / p.tilesN, inBatch % p.tilesN, tile < perBatch * p.batch);
}

@compute @workgroup_size({{WG_X}}, {{WG_Y}})
fn main_direct(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let tc = tileCoord(wg);
  if (!tc.valid) { return; }
  let row0 = (tc.tileRow * {{WG_Y}}u + lid.y) * 4u * TM_BLOCKS;
  let col0 = (tc.tileCol * {{WG_X}}u + lid.x) * 4u * TN_BLOCKS;
  let aBase = p.aOffset + tc.batchIndex * p.aBatchStride;
  let bBase = p.bOffset + tc.batchIndex * p.bBatchStride;
  var acc00 = mat4x4f();
  var acc01 = mat4x4f();
  var acc10 = mat4x4f();
  var acc11 = mat4x4f();
  let kFull = p.k & ~3u;
  for (var k = 0u; k < kFull; k += 4u) {
    let a0 = loadA4(aBase, row0, k);
    let b0 = loadB4(bBase, k, col0);
    acc00 += b0 * a0;
    if (TN_BLOCKS == 2u) {
      let b1 = loadB4(bBase, k, col0 + 4u);
      acc01 += b1 * a0;
      if (TM_BLOCKS == 2u) {
        let a1 = loadA4(aBase, row0 + 4u, k);
        acc10 += b0 * a1;
        acc11 += b1 * a1;
      }
    } else if (TM_BLOCKS == 2u) {
      let a1 = loadA4(aBase, row0 + 4u, k);
      acc10 += b0 * a1;
    }
  }
  if (kFull < p.k) {
    let a0 = loadA4Checked(aBase, row0, kFull);
    let b0 = loadB4Checked(bBase, kFull, col0);
    acc00 += b0 * a0;
    if (TN_BLOCKS == 2u) {
      let b1 = loadB4Checked(bBase, kFull, col0 + 4u);
      acc01 += b1 * a0;
      if (TM_BLOCKS == 2u) {
        let a1 = loadA4Checked(aBase, row0 + 4u, kFull);
        acc10 += b0 * a1;
        acc11 += b1 * a1;
      }
    } else if (TM_BLOCKS == 2u) {
      let a1 = loadA4Checked(aBase, row0 + 4u, kFull);
      acc10 += b0 * a1;
    }
  }
  storeBlock(tc.batchIndex, row0, col0, acc00);
  if (TN_BLOCKS == 2u) { storeBlock(tc.batchIndex, row0, col0 + 4u, acc01); }
  if (TM_BLOCKS == 2u) { storeBlock(tc.batchIndex, row0 + 4u, col0, acc10); }
  if (TM_BLOCKS == 2u && TN_BLOCKS == 2u) { storeBlock(tc.batchIndex, row0 + 4u, col0 + 4u, acc11); }
}

// ---- shared-memory tiled kernel: 64×64 outputs per workgroup, K in slices of 16 -------------

const TILE = 64u;
const KSLICE = 16u;
// A slice: 64 rows × 4 vec4s over k; B slice: 16 k-rows × 16 vec4s over n. 2 × 4 KiB.
var<workgroup> aTile: array<vec4f, 256>;
var<workgroup> bTile: array<vec4f, 256>;

@compute @workgroup_size(16, 16)
fn main_tiled(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u,
              @builtin(local_invocation_index) t: u32) {
  let tc = tileCoord(wg);
  // uniform per workgroup: the whole workgroup leaves together, before any barrier
  if (!tc.valid) { return; }
  let m0 = tc.tileRow * TILE;
  let n0 = tc.tileCol * TILE;
  let aBase = p.aOffset + tc.batchIndex * p.aBatchStride;
  let bBase = p.bOffset + tc.batchIndex * p.bBatchStride;
  var acc = mat4x4f();
  for (var k0 = 0u; k0 < p.k; k0 += KSLICE) {
    // stage A(m0..m0+63, k0..k0+15): one vec4 per thread
    if (A_VEC && TRANS_A) {
      // contiguous along M: thread reads At[k0+kr][m0+4q..], scatters the four rows
      let kr = t / 16u;
      let q = t % 16u;
      let inside = k0 + kr < p.k && m0 + 4u * q < p.m;
      let idx = (aBase + min(k0 + kr, p.k - 1u) * p.m + min(m0 + 4u * q, p.m - 4u)) >> 2u;
      let v = select(vec4f(), a[idx], inside);
      for (var i = 0u; i < 4u; i++) { aTile[(4u * q + i) * 4u + kr / 4u][kr % 4u] = v[i]; }
    } else {
      let r = t / 4u;
      let kq = t % 4u;
      let row = m0 + r;
      let k = k0 + 4u * kq;
      if (A_VEC && !TRANS_A) {
        let idx = (aBase + min(row, p.m - 1u) * p.k + min(k, p.k - 4u)) >> 2u;
        aTile[t] = select(vec4f(), a[idx], row < p.m && k < p.k);
      } else {
        aTile[t] = vec4f(aElem(aBase, row, k), aElem(aBase, row, k + 1u), aElem(aBase, row, k + 2u), aElem(aBase, row, k + 3u));
      }
    }
    // stage B(k0..k0+15, n0..n0+63)
    if (B_VEC && TRANS_B) {
      // contiguous along K: thread reads Bt[n0+c][k0+4kq..], scatters the four k-rows
      let c = t / 4u;
      let kq = t % 4u;
      let inside = n0 + c < p.n && k0 + 4u * kq < p.k;
      let idx = (bBase + min(n0 + c, p.n - 1u) * p.k + min(k0 + 4u * kq, p.k - 4u)) >> 2u;
      let v = select(vec4f(), b[idx], inside);
      for (var i = 0u; i < 4u; i++) { bTile[(4u * kq + i) * 16u + c / 4u][c % 4u] = v[i]; }
    } else {
      let kr = t / 16u;
      let q = t % 16u;
      let k = k0 + kr;
      let col = n0 + 4u * q;
      if (B_VEC && !TRANS_B) {
        let idx = (bBase + min(k, p.k - 1u) * p.n + min(col, p.n - 4u)) >> 2u;
        bTile[t] = select(vec4f(), b[idx], k < p.k && col < p.n);
      } else {
        bTile[t] = vec4f(bElem(bBase, k, col), bElem(bBase, k, col + 1u), bElem(bBase, k, col + 2u), bElem(bBase, k, col + 3u));
      }
    }
    workgroupBarrier();
    for (var kq = 0u; kq < 4u; kq++) {
      let ar = lid.y * 16u + kq; // row 4·lid.y, vec4 kq
      let a4 = mat4x4f(aTile[ar], aTile[ar + 4u], aTile[ar + 8u], aTile[ar + 12u]);
      let br = kq * 64u + lid.x; // k-row 4·kq, vec4 lid.x
      let b4 = mat4x4f(bTile[br], bTile[br + 16u], bTile[br + 32u], bTile[br + 48u]);
      acc += b4 * a4;
    }
    workgroupBarrier();
  }
  storeBlock(tc.batchIndex, m0 + 4u * lid.y, n0 + 4u * lid.x, acc);
}
