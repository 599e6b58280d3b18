// Block-Sparse estimation and index (MInference 1.0): mean-pool q and k over 64-token blocks (the
// last block over its actual tokens), score pooled q against pooled k (scaled by 1/sqrt(D); causal at
// block level: key block kb <= query block qb), keep the top min(top_k, qb + 1) key blocks per query
// block; the index lists their starts kb * 64, ascending, and no columns. Ties go to the lower kb.
//
// Entry points
//   pool_q: grid (nqb, heads): pq[hi, b, :] = mean of q[head_ids[hi], 64 b .. min(64 b + 64, S), :]
//   pool_k: grid (nqb, Hkv):   pk[g, b, :]  = mean of k[g, ...] likewise
//   select_blocks: grid (nqb, heads): one workgroup per (index head, query block): the qb + 1 scores live in
//           registers (thread t owns candidates [t ipt, t ipt + ipt), ipt = ceil((qb + 1) / 256)), a
//           4-round radix select on their order-preserving u32 keys finds the k-th largest, and a
//           workgroup scan writes the kept blocks in ascending order.
// Bindings
//   q: [H, S, D], k: [Hkv, S, D]: f32 (DT 0) or packed f16/bf16 pairs as u32 (DT 1/2), read
//   head_ids: (heads) u32: query head of index head hi
//   pq: [heads, nqb, D] f32 scratch      pk: [Hkv, nqb, D] f32 scratch
//   block_count: [nhTotal, nqb] u32 out   block_offset: [nhTotal, nqb, maxBlocks] u32 out
//   column_count: [nhTotal, nqb] u32 out (all 0)   column_index: [nhTotal, nqb, 1] u32 out (dummy 0)
// Params: D (head dim <= 128), S, H, Hkv, nqb, topK, maxBlocks, head_base (first output head of this dispatch), scale.
// Defines: DT (dtype: 0 f32, 1 f16, 2 bf16), MAX_ITEMS (candidates per thread: nqb <= 256 * MAX_ITEMS).
// Workgroup contract: pool_*: 128 threads, thread d < D owns dim d. select: 256 threads.
#include "lib/packing.wgsl"

const BLOCK: u32 = 64u; // MInference's block_size_M = block_size_N
const POOL_WG: u32 = 128u; // >= every supported head dim
const WG: u32 = 256u;
#include "lib/radix.wgsl"
const BINS: u32 = 256u; // one key byte per radix round

struct Params {
  D: u32, // head dim (a multiple of 16 for Vertical-Slash)
  S: u32,
  H: u32,
  Hkv: u32,
  nqb: u32,
  topK: u32,
  maxBlocks: u32,
  head_base: u32,
  scale: f32,
}

#include "lib/qk_input.wgsl"
@group(0) @binding(2) var<storage, read> head_ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> pq: array<f32>;
@group(0) @binding(4) var<storage, read_write> pk: array<f32>;
@group(0) @binding(5) var<storage, read_write> block_count: array<u32>;
@group(0) @binding(6) var<storage, read_write> block_offset: array<u32>;
@group(0) @binding(7) var<storage, read_write> column_count: array<u32>;
@group(0) @binding(8) var<storage, read_write> column_index: array<u32>;
@group(0) @binding(9) var<uniform> params: Params;

var<workgroup> pq_row: array<f32, POOL_WG>;
var<workgroup> wh: array<atomic<u32>, BINS>;
var<workgroup> radix_state: array<u32, 2>; // (prefix, keys remaining)

fn block_tokens(b: u32) -> u32 {
  return min(params.S - b * BLOCK, BLOCK);
}

@compute @workgroup_size(POOL_WG)
fn pool_q(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) d: u32) {
  let b = wid.x;
  let hi = wid.y;
  if (d >= params.D) {
    return;
  }
  let h = head_ids[params.head_base + hi];
  let n = block_tokens(b);
  var s = 0.0;
  for (var t = 0u; t < n; t++) {
    s += load_q((h * params.S + b * BLOCK + t) * params.D + d);
  }
  pq[(hi * params.nqb + b) * params.D + d] = s / f32(n);
}

@compute @workgroup_size(POOL_WG)
fn pool_k(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) d: u32) {
  let b = wid.x;
  let g = wid.y;
  if (d >= params.D) {
    return;
  }
  let n = block_tokens(b);
  var s = 0.0;
  for (var t = 0u; t < n; t++) {
    s += load_k((g * params.S + b * BLOCK + t) * params.D + d);
  }
  pk[(g * params.nqb + b) * params.D + d] = s / f32(n);
}


@compute @workgroup_size(WG)
fn select_blocks(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let qb = wid.x;
  let hi = wid.y;
  let h = head_ids[params.head_base + hi];
  let g = (h * params.Hkv) / params.H;
  let row = (params.head_base + hi) * params.nqb + qb;
  let n = qb + 1u; // causal candidates
  let kk = min(params.topK, n);
  if (lid < params.D) {
    pq_row[lid] = pq[(hi * params.nqb + qb) * params.D + lid];
  }
  workgroupBarrier();
  let ipt = (n + WG - 1u) / WG;
  let first = lid * ipt;
  var keys: array<u32, MAX_ITEMS>;
  for (var u = 0u; u < ipt; u++) {
    let kb = first + u;
    if (kb < n) {
      var s = 0.0;
      let o = (g * params.nqb + kb) * params.D;
      for (var d = 0u; d < params.D; d++) {
        s += pq_row[d] * pk[o + d];
      }
      keys[u] = f32_key(s * params.scale);
    }
  }
  var prefix = 0u;
  var need = kk;
  if (kk < n) {
    var hmask = 0u;
    for (var shift = 24i; shift >= 0i; shift -= 8i) {
      let sh = u32(shift);
      atomicStore(&wh[lid], 0u);
      workgroupBarrier();
      for (var u = 0u; u < ipt; u++) {
        if (first + u < n && (keys[u] & hmask) == prefix) {
          atomicAdd(&wh[(keys[u] >> sh) & 0xffu], 1u);
        }
      }
      workgroupBarrier();
      if (lid == 0u) {
        var above = 0u;
        var d = BINS - 1u;
        loop {
          let c = atomicLoad(&wh[d]);
          if (above + c >= need || d == 0u) {
            break;
          }
          above += c;
          d -= 1u;
        }
        radix_state[0] = prefix | (d << sh);
        radix_state[1] = need - above;
      }
      prefix = workgroupUniformLoad(&radix_state[0]);
      need = workgroupUniformLoad(&radix_state[1]);
      hmask |= 0xffu << sh;
    }
  } else {
    // Every candidate is kept: threshold = the smallest key, all of its ties taken.
    prefix = 0u;
    need = n;
  }
  var gt = 0u;
  var eq = 0u;
  for (var u = 0u; u < ipt; u++) {
    if (first + u < n) {
      gt += select(0u, 1u, keys[u] > prefix);
      eq += select(0u, 1u, keys[u] == prefix);
    }
  }
  let pre = workgroup_exclusive_scan2(lid, gt, eq);
  var gt_before = pre.x;
  var eq_before = pre.y;
  let ob = row * params.maxBlocks;
  for (var u = 0u; u < ipt; u++) {
    let kb = first + u;
    if (kb < n) {
      if (keys[u] > prefix) {
        let pos = gt_before + min(eq_before, need);
        if (pos < params.maxBlocks) {
          block_offset[ob + pos] = kb * BLOCK;
        }
        gt_before += 1u;
      } else if (keys[u] == prefix) {
        let pos = gt_before + eq_before;
        if (eq_before < need && pos < params.maxBlocks) {
          block_offset[ob + pos] = kb * BLOCK;
        }
        eq_before += 1u;
      }
    }
  }
  if (lid == 0u) {
    block_count[row] = min(kk, params.maxBlocks);
    column_count[row] = 0u;
    column_index[row] = 0u;
  }
}
