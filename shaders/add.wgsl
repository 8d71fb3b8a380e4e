// Elementwise sum and scale of flat f32 arrays (BERT's embedding sum word + position + token type,
// residual sums). One thread per element; the grid may be folded into y (see workgroupGrid), so
// the flat index is rebuilt from workgroup_id and num_workgroups.

struct Params { n: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: Params;

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> sum: array<f32>;

// in-place variants bind the destination read-write at 2 (a buffer may not be bound read-only
// and read-write in one dispatch)
@group(0) @binding(2) var<storage, read_write> acc: array<f32>;
// scaleInPlace binds only its read-write operand, at 1
@group(0) @binding(1) var<storage, read_write> values: array<f32>;

fn flatIndex(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * 256u + lid;
}

// sum = a + b
@compute @workgroup_size(256)
fn add(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flatIndex(wid, nwg, lid);
  if (i < p.n) { sum[i] = a[i] + b[i]; }
}

// acc = acc + a
@compute @workgroup_size(256)
fn addInPlace(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flatIndex(wid, nwg, lid);
  if (i < p.n) { acc[i] = acc[i] + a[i]; }
}

// acc = scale · a
@compute @workgroup_size(256)
fn scale(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flatIndex(wid, nwg, lid);
  if (i < p.n) { acc[i] = p.scale * a[i]; }
}

// values = scale · values
@compute @workgroup_size(256)
fn scaleInPlace(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flatIndex(wid, nwg, lid);
  if (i < p.n) { values[i] = p.scale * values[i]; }
}
