// Feature concatenation of two row-major matrices and its backward (the split), for K-Adapter's
// Linear(concat[h_base, h_adapter]): out (rows, d1 + d2) = [a (rows, d1) | b (rows, d2)].
struct P { rows: u32, d1: u32, d2: u32, total: u32 }
@group(0) @binding(0) var<uniform> p: P;

// concat_forward: a@1 b@2 out@3;  concat_backward: dout@1 da@2 db@3
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read_write> da: array<f32>;
@group(0) @binding(3) var<storage, read_write> db: array<f32>;

fn index(gid: vec3u, nwg: vec3u) -> u32 { return gid.y * nwg.x * 64u + gid.x; }

@compute @workgroup_size(64)
fn concat_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.total) { return; }
  let w = p.d1 + p.d2;
  let r = i / w;
  let c = i % w;
  if (c < p.d1) { out[i] = a[r * p.d1 + c]; } else { out[i] = b[r * p.d2 + c - p.d1]; }
}

@compute @workgroup_size(64)
fn concat_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.total) { return; }
  let w = p.d1 + p.d2;
  let r = i / w;
  let c = i % w;
  if (c < p.d1) { da[r * p.d1 + c] = dout[i]; } else { db[r * p.d2 + c - p.d1] = dout[i]; }
}
