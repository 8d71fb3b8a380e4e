// GELU in BERT's exact erf form: gelu(x) = x·Φ(x) = 0.5·x·(1 + erf(x/√2)),
// gelu'(x) = Φ(x) + x·φ(x) with φ(x) = exp(−x²/2)/√(2π).
// WGSL has no erf; erf32 below is accurate to about 1.5e-7 absolute (≈2 ulp near 0.84) and keeps
// its relative accuracy near 0. x, y, dy, dx are flat arrays of n values.

struct Params { n: u32 }
@group(0) @binding(0) var<uniform> p: Params;

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;      // forward, erf
@group(0) @binding(2) var<storage, read> dy: array<f32>;           // backward
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;     // backward

const INV_SQRT2: f32 = 0.70710678118654752;
const INV_SQRT_2PI: f32 = 0.39894228040143268;

// |x| < 1: the Maclaurin series erf(x) = 2/√π · Σ (−1)ⁿ x^(2n+1) / (n!·(2n+1)), 11 terms in
// Horner form in x²; the first omitted term is below 1.3e-9 there.
// |x| ≥ 1: erfc(z) = t·exp(−z² + P(t)), t = 1/(1 + z/2), Numerical Recipes' Chebyshev fit
// (fractional error < 1.2e-7), so erf = 1 − erfc loses at most 0.16·1.2e-7. The clamp at 10
// (erfc(10) ≈ 2e-45) keeps z² finite.
fn erf32(v: f32) -> f32 {
  let z = abs(v);
  if (z < 1.0) {
    let s = v * v;
    var r = 1.4807192815879218e-08;
    r = r * s - 1.6365844691234924e-07;
    r = r * s + 1.6462114365889246e-06;
    r = r * s - 1.492565035840625e-05;
    r = r * s + 1.2055332981789664e-04;
    r = r * s - 8.548327023450852e-04;
    r = r * s + 5.223977625442188e-03;
    r = r * s - 2.6866170645131252e-02;
    r = r * s + 1.1283791670955126e-01;
    r = r * s - 3.7612638903183754e-01;
    r = r * s + 1.1283791670955126;
    return v * r;
  }
  let zc = min(z, 10.0);
  let t = 1.0 / (1.0 + 0.5 * zc);
  var q = 0.17087277;
  q = q * t - 0.82215223;
  q = q * t + 1.48851587;
  q = q * t - 1.13520398;
  q = q * t + 0.27886807;
  q = q * t - 0.18628806;
  q = q * t + 0.09678418;
  q = q * t + 0.37409196;
  q = q * t + 1.00002368;
  q = q * t - 1.26551223;
  let erfc = t * exp(q - zc * zc);
  return select(1.0 - erfc, erfc - 1.0, v < 0.0);
}

fn flatIndex(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * 256u + lid;
}

@compute @workgroup_size(256)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flatIndex(wid, nwg, lid);
  if (i < p.n) {
    let v = x[i];
    y[i] = 0.5 * v * (1.0 + erf32(v * INV_SQRT2));
  }
}

@compute @workgroup_size(256)
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flatIndex(wid, nwg, lid);
  if (i < p.n) {
    let v = x[i];
    let cdf = 0.5 * (1.0 + erf32(v * INV_SQRT2));
    // min(): for |x| > 20 the density term is 0 anyway; keeps v·v finite
    let pdf = INV_SQRT_2PI * exp(-0.5 * min(v * v, 400.0));
    dx[i] = dy[i] * (cdf + v * pdf);
  }
}

// y = erf(x): exposed so tests can check erf32 itself against a float64 erf
@compute @workgroup_size(256)
fn erf(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flatIndex(wid, nwg, lid);
  if (i < p.n) { y[i] = erf32(x[i]); }
}
