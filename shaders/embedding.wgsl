// Embedding lookup and its gradient. table, dTable are (vocab, d); ids are u32 (n);
// out, dOut are (n, d). One thread per output element (grid folded into y when large).
//
// The backward is a gather, not a scatter: the host groups the token positions by id (CSR:
// the distinct ids, where each id's positions start, the positions sorted by id, stably), and
// one thread per (distinct id, column) adds that id's rows of dOut in token order. No float
// atomics, so the result is the same bit for bit on every run.

struct Params {
  n: u32,          // forward: n·d output elements; backward: distinct ids · d
  d: u32,
  vocab: u32,
  startsBase: u32, // backward: offset of the starts array in `grouping`
  orderBase: u32,  // backward: offset of the sorted positions in `grouping`
  accumulate: u32, // backward: add into dTable instead of overwriting the rows
}
@group(0) @binding(0) var<uniform> p: Params;

// forward: table@1 ids@2 out@3; backward: dOut@1 grouping@2 dTable@3
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(1) var<storage, read> dOut: array<f32>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
// [distinct ids (u) | starts (u + 1) | token positions sorted by id (n)]
@group(0) @binding(2) var<storage, read> grouping: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> dTable: array<f32>;

@compute @workgroup_size(256)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (i >= p.n) { return; }
  let id = ids[i / p.d];
  // an id outside the table reads as a zero row (the host validates ids; this keeps reads in bounds)
  var v = 0.0;
  if (id < p.vocab) { v = table[id * p.d + i % p.d]; }
  out[i] = v;
}

@compute @workgroup_size(256)
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (i >= p.n) { return; }
  let k = i / p.d;
  let c = i % p.d;
  let row = grouping[k];
  let first = grouping[p.startsBase + k];
  let end = grouping[p.startsBase + k + 1u];
  var sum = 0.0;
  for (var j = first; j < end; j++) {
    sum += dOut[grouping[p.orderBase + j] * p.d + c];
  }
  let at = row * p.d + c;
  if (p.accumulate != 0u) {
    dTable[at] = dTable[at] + sum;
  } else {
    dTable[at] = sum;
  }
}
