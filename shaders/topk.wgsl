// Batched top-k selection by radix select, for long rows (up to millions of values per row).
//
// For each problem p in [0, P): values[p * n + i], i in [0, n), f32. Selects the k[p] largest
// (1 <= k[p] <= n, checked on the host) and writes their indices i, ascending, to
// out[p * cap + 0 .. k[p]). Ties are broken by lower index: of the values equal to the k-th
// largest, the ones with the smallest indices are taken. NaN is not expected (by its bit pattern a
// positive NaN would order above +inf, a negative one below -inf).
//
// Method: each f32 maps to an order-preserving u32 key (flip all bits of negatives, set the sign
// bit of non-negatives). The threshold key T (the k-th largest) is found most significant byte
// first in 4 rounds of (histogram, select_digit); at the end `need` = how many values equal to T
// are taken. Then count (per chunk: #key > T, #key == T), scan (per problem, chunk prefixes) and
// compact (each value's output slot = #selected before it) write the indices in index order.
//
// Bindings (all entry points use a subset):
//   values: (P * n) f32, read
//   kvals:  (P) u32, read: k per problem
//   hist:   (P * 256) atomic u32, scratch histogram (zeroed by init and after every select_digit)
//   state:  (P * 4) u32, scratch: [prefix key, keys remaining (need after round 4), unused, unused]
//   chunks: (P * nchunks * 2) u32, scratch: per chunk (gt, eq) counts, then (gtBefore, eqBefore)
//   out:    (P * cap) u32, written: selected indices, ascending
// Params: n (values per problem), P (problems), cap (out stride), nchunks = ceil(n / CHUNK),
//   shift (byte position of this round: 24, 16, 8, 0), hmask (mask of the key bits already decided).
// Workgroup contract: WG = 256 threads. init: 1D grid over P workgroups. histogram/count/compact:
//   grid (nchunks, P), each workgroup one chunk of CHUNK = WG * ITEMS values. select_digit/scan: grid (P).

const WG: u32 = 256u;
#include "lib/radix.wgsl"
// 16 values per thread: 4096-value chunks keep the grid small at n = 512K (128 chunks per
// problem) while each workgroup still has enough work to amortise its shared histogram.
const ITEMS: u32 = 16u;
const CHUNK: u32 = WG * ITEMS;
const BINS: u32 = 256u; // one byte of the key per round

struct Params {
  n: u32,
  P: u32,
  cap: u32,
  nchunks: u32,
  shift: u32,
  hmask: u32,
}

@group(0) @binding(0) var<storage, read> values: array<f32>;
@group(0) @binding(1) var<storage, read> kvals: array<u32>;
@group(0) @binding(2) var<storage, read_write> hist: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> state: array<u32>;
@group(0) @binding(4) var<storage, read_write> chunks: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<u32>;
@group(0) @binding(6) var<uniform> params: Params;

var<workgroup> wh: array<atomic<u32>, BINS>;


fn key_at(p: u32, i: u32) -> u32 {
  return f32_key(values[p * params.n + i]);
}

@compute @workgroup_size(WG)
fn init(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let p = wid.x;
  atomicStore(&hist[p * BINS + lid], 0u);
  if (lid == 0u) {
    state[p * 4u + 0u] = 0u;
    state[p * 4u + 1u] = min(kvals[p], params.n);
  }
}

@compute @workgroup_size(WG)
fn histogram(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let p = wid.y;
  atomicStore(&wh[lid], 0u);
  workgroupBarrier();
  let prefix = state[p * 4u] & params.hmask;
  let base = wid.x * CHUNK;
  for (var u = 0u; u < ITEMS; u++) {
    let i = base + u * WG + lid; // strided: coalesced reads
    if (i < params.n) {
      let key = key_at(p, i);
      if ((key & params.hmask) == prefix) {
        atomicAdd(&wh[(key >> params.shift) & 0xffu], 1u);
      }
    }
  }
  workgroupBarrier();
  let c = atomicLoad(&wh[lid]);
  if (c != 0u) {
    atomicAdd(&hist[p * BINS + lid], c);
  }
}

@compute @workgroup_size(WG)
fn select_digit(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let p = wid.x;
  scan_a[lid] = atomicLoad(&hist[p * BINS + lid]);
  atomicStore(&hist[p * BINS + lid], 0u); // ready for the next round
  workgroupBarrier();
  if (lid == 0u) {
    // Walk digits from the largest down until the k-th largest key is reached.
    let krem = state[p * 4u + 1u];
    var above = 0u;
    var d = BINS - 1u;
    loop {
      let c = scan_a[d];
      if (above + c >= krem || d == 0u) {
        break;
      }
      above += c;
      d -= 1u;
    }
    state[p * 4u + 0u] = (state[p * 4u + 0u] & params.hmask) | (d << params.shift);
    state[p * 4u + 1u] = krem - above;
  }
}

@compute @workgroup_size(WG)
fn count(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let p = wid.y;
  let t = state[p * 4u];
  var gt = 0u;
  var eq = 0u;
  let base = wid.x * CHUNK;
  for (var u = 0u; u < ITEMS; u++) {
    let i = base + u * WG + lid;
    if (i < params.n) {
      let key = key_at(p, i);
      gt += select(0u, 1u, key > t);
      eq += select(0u, 1u, key == t);
    }
  }
  scan_a[lid] = gt;
  scan_b[lid] = eq;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      scan_a[lid] += scan_a[lid + s];
      scan_b[lid] += scan_b[lid + s];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let c = (p * params.nchunks + wid.x) * 2u;
    chunks[c] = scan_a[0];
    chunks[c + 1u] = scan_b[0];
  }
}

@compute @workgroup_size(WG)
fn scan(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let p = wid.x;
  if (lid == 0u) {
    // Exclusive prefix over chunks; nchunks is small (n / 4096), so one thread suffices.
    var gt = 0u;
    var eq = 0u;
    for (var c = 0u; c < params.nchunks; c++) {
      let o = (p * params.nchunks + c) * 2u;
      let g = chunks[o];
      let e = chunks[o + 1u];
      chunks[o] = gt;
      chunks[o + 1u] = eq;
      gt += g;
      eq += e;
    }
  }
}

@compute @workgroup_size(WG)
fn compact(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let p = wid.y;
  let t = state[p * 4u];
  let need = state[p * 4u + 1u];
  // Contiguous ITEMS values per thread, so that index order = (thread, item) order.
  let base = wid.x * CHUNK + lid * ITEMS;
  var gt = 0u;
  var eq = 0u;
  for (var u = 0u; u < ITEMS; u++) {
    let i = base + u;
    if (i < params.n) {
      let key = key_at(p, i);
      gt += select(0u, 1u, key > t);
      eq += select(0u, 1u, key == t);
    }
  }
  let pre = workgroup_exclusive_scan2(lid, gt, eq);
  let c = (p * params.nchunks + wid.x) * 2u;
  var gt_before = chunks[c] + pre.x;
  var eq_before = chunks[c + 1u] + pre.y;
  for (var u = 0u; u < ITEMS; u++) {
    let i = base + u;
    if (i < params.n) {
      let key = key_at(p, i);
      if (key > t) {
        out[p * params.cap + gt_before + min(eq_before, need)] = i;
        gt_before += 1u;
      } else if (key == t) {
        if (eq_before < need) {
          out[p * params.cap + gt_before + eq_before] = i;
        }
        eq_before += 1u;
      }
    }
  }
}
