// Rotary position embedding, Hugging Face rotate-half layout over the first R = ROT_DIM elements
// of each head (element i pairs with i + R/2; R = D unless partial_rotary_factor < 1, as in
// Phi-4-mini), fused with the token-major -> head-major scatter that writes Q or the KV cache:
//   for t < T, h < heads, i < R/2, p = posOffset + t, a = p * invFreq[i]:
//     out[h, dstOffset + t, i]       = x[t, headStart + h, i] * cos(a) - x[t, headStart + h, i + R/2] * sin(a)
//     out[h, dstOffset + t, i + R/2] = x[t, headStart + h, i + R/2] * cos(a) + x[t, headStart + h, i] * sin(a)
//   and elements R..D-1 are copied unrotated.
//   ROTATE 0: a plain copy (V into the cache).
//
// Angles: cos/sin(p * f) are not evaluated from an f32 product: at p ~ 1e5 its rounding alone is
// ~4e-3 rad, and GPU sin/cos are only specified on [-pi, pi]. Instead p = hi * B + lo
// (B = 2^SHIFT, a power of two near sqrt(maxPositions)) and the host tabulates, in float64 then
// rounded to f32, cs[lo][i] = (cos, sin)(lo * f_i) for lo < B and cs[B + hi][i] = (cos, sin)(hi * B * f_i);
// the shader combines them with the angle-addition formulas (error ~ 3 f32 ulps, at any position
// the table covers; see src/kernels/rope.ts RopeTable).
//
// Bindings
//   x:      [T, Htot * D] f32 (token-major: token t, head g at x[t, g*D .. g*D + D)), read as vec2
//   cs:     [B + ceil(maxPositions / B), R/2, 2] f32 (cos, sin) table, read as vec4 (ROTATE only)
//   out:    [Hout, Scap, D] f32 (OUT_F16 0), or f16 packed two per u32 (OUT_F16 1), written
// Params: T, heads, headStart, xStride (= Htot * D), posOffset, dstOffset, Scap, split (= B), shift (= log2 B)
// Defines: HEAD_DIM (D, multiple of 4), ROT_DIM (R, multiple of 4, <= D), ROTATE (0|1), OUT_F16 (0|1),
//          WG (threads per workgroup)
// Workgroup contract: one thread per (t, h, j) with j < D/4. Thread j < R/4 owns frequencies 2j and
// 2j+1, i.e. elements 2j, 2j+1 and their partners R/2 + 2j, R/2 + 2j + 1; each thread j >= R/4 copies
// two element pairs of the unrotated tail. Every f16 output word is written by exactly one thread.
// Flat 1D grid over T * heads * D/4 threads, folded (lib/grid.wgsl).
#include "lib/grid.wgsl"

const D: u32 = HEAD_DIM;
const Q: u32 = HEAD_DIM / 4u; // threads per head row
const HALF2: u32 = HEAD_DIM / 4u; // offset of the partner half, in vec2 units (D/2 elements)
const RQ: u32 = ROT_DIM / 4u; // rotating threads per head row = vec4 (cos, sin) pairs per table row
const RHALF2: u32 = ROT_DIM / 4u; // offset of the rotary partner, in vec2 units (R/2 elements)
const PASS2: u32 = (HEAD_DIM - ROT_DIM) / 4u; // unrotated tail: vec2 pairs per copying thread's stride
const_assert ROT_DIM % 4u == 0u && ROT_DIM <= HEAD_DIM;

struct Params {
  T: u32,
  heads: u32,
  headStart: u32,
  xStride: u32,
  posOffset: u32,
  dstOffset: u32,
  Scap: u32,
  split: u32,
  shift: u32,
}

@group(0) @binding(0) var<storage, read> x: array<vec2<f32>>;
#if OUT_F16
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
#else
@group(0) @binding(1) var<storage, read_write> out: array<vec2<f32>>;
#endif
@group(0) @binding(2) var<uniform> params: Params;
#if ROTATE
@group(0) @binding(3) var<storage, read> cs: array<vec4<f32>>;
#endif

fn store(i: u32, v: vec2<f32>) {
#if OUT_F16
  out[i] = pack2x16float(v);
#else
  out[i] = v;
#endif
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = linear_workgroup(wid, nwg) * WG + lid;
  let j = idx % Q;
  let r = idx / Q;
  let h = r % params.heads;
  let t = r / params.heads;
  if (t >= params.T) { return; }

  // vec2 index of the head row's start in x and out.
  let src0 = (t * params.xStride + (params.headStart + h) * D) / 2u;
  let dst0 = ((h * params.Scap + params.dstOffset + t) * D) / 2u;
#if ROTATE
  if (j < RQ) {
    // Elements 2j (first rotary half) and R/2 + 2j (second).
    let x1 = x[src0 + j];
    let x2 = x[src0 + j + RHALF2];
    let p = params.posOffset + t;
    let lo = cs[(p & (params.split - 1u)) * RQ + j];             // (cos, sin) of lo*f for freqs 2j, 2j+1
    let hi = cs[(params.split + (p >> params.shift)) * RQ + j];  // (cos, sin) of hi*B*f
    let c = vec2<f32>(lo.x * hi.x - lo.y * hi.y, lo.z * hi.z - lo.w * hi.w);
    let s = vec2<f32>(lo.y * hi.x + lo.x * hi.y, lo.w * hi.z + lo.z * hi.w);
    store(dst0 + j, x1 * c - x2 * s);
    store(dst0 + j + RHALF2, x2 * c + x1 * s);
  } else {
    // The unrotated tail, vec2 indices R/2 .. D/2: two per thread.
    let e = ROT_DIM / 2u + (j - RQ);
    store(dst0 + e, x[src0 + e]);
    store(dst0 + e + PASS2, x[src0 + e + PASS2]);
  }
#else
  store(dst0 + j, x[src0 + j]);
  store(dst0 + j + HALF2, x[src0 + j + HALF2]);
#endif
}
