// Vertical-Slash sparse index from the kept columns and diagonals, with the semantics of
// MInference's convert_vertical_slash_indexes (csrc/vertical_slash_index.cu, 64 x 64 blocks).
//
// One thread per (index head hi, query block m). With end_m = 64 (m + 1) (NOT clamped to S for the
// last partial block, as in MInference: ranges may then reach past S, and the attention kernel
// ignores keys >= S and masks j > i), the kept diagonals delta < end_m are visited by decreasing
// delta (increasing range end). Each gives the key range [e - 64, e), e = max(end_m - delta, 64).
// The first opens the current range; a later one with e > end + 64 closes the current range (its
// 64-key blocks are written) and opens [e - 64, e); one with end < e <= end + 64 extends the current
// range by exactly 64; one with e <= end adds nothing. Meanwhile the kept columns are walked
// ascending: a column below the current range's start that no range covered is written to the
// column list; one inside the current range is dropped. delta = 0 is always kept (the 100 nearest
// diagonals are forced), so the last range ends at or past end_m and every column < end_m is seen;
// columns >= end_m are never listed.
//
// Bindings
//   sel:          (2 * heads * cap) u32, read: top-k output; problem hi holds the kept columns of head
//                 hi ascending, problem heads + hi its kept diagonals (delta) ascending
//   kvals:        (2 * heads) u32, read: how many each problem kept
//   block_count:  [nhTotal, nqb] u32 out      block_offset: [nhTotal, nqb, maxBlocks] u32 out
//   column_count: [nhTotal, nqb] u32 out      column_index: [nhTotal, nqb, colCap] u32 out
// Params: nqb (query blocks), heads (in this dispatch), head_base (first output head), cap,
//   maxBlocks, colCap (column_index stride, >= 1).
// Workgroup contract: 64 threads, 1D grid folded by grid.ts over ceil(heads * nqb / 64) workgroups.
#include "lib/grid.wgsl"

const WG: u32 = 64u;
const BLOCK: u32 = 64u; // MInference's BLOCK_SIZE_M = BLOCK_SIZE_N = 64

struct Params {
  nqb: u32,
  heads: u32,
  head_base: u32,
  cap: u32,
  maxBlocks: u32,
  colCap: u32,
}

@group(0) @binding(0) var<storage, read> sel: array<u32>;
@group(0) @binding(1) var<storage, read> kvals: array<u32>;
@group(0) @binding(2) var<storage, read_write> block_count: array<u32>;
@group(0) @binding(3) var<storage, read_write> block_offset: array<u32>;
@group(0) @binding(4) var<storage, read_write> column_count: array<u32>;
@group(0) @binding(5) var<storage, read_write> column_index: array<u32>;
@group(0) @binding(6) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let g = linear_workgroup(wid, nwg) * WG + lid;
  if (g >= params.heads * params.nqb) {
    return;
  }
  let hi = g / params.nqb;
  let m = g % params.nqb;
  let row = (params.head_base + hi) * params.nqb + m;
  let end_m = (m + 1u) * BLOCK;
  let cols = hi * params.cap;
  let ncols = kvals[hi];
  let diags = (params.heads + hi) * params.cap;
  let ndiags = kvals[params.heads + hi];

  // Slashes are ascending in delta; find how many are < end_m (binary search), then walk down.
  var lo = 0u;
  var hi_ = ndiags;
  while (lo < hi_) {
    let mid = (lo + hi_) / 2u;
    if (sel[diags + mid] < end_m) {
      lo = mid + 1u;
    } else {
      hi_ = mid;
    }
  }
  var s = lo; // slashes [0, s) are < end_m; the next one visited is s - 1
  var nblk = 0u;
  var ncol = 0u;
  let ob = row * params.maxBlocks;
  let oc = row * params.colCap;
  if (s == 0u) {
    // Cannot happen (delta = 0 is always kept); write an empty row rather than read out of range.
    block_count[row] = 0u;
    column_count[row] = 0u;
    return;
  }
  s -= 1u;
  var e = max(end_m - sel[diags + s], BLOCK);
  var range_start = e - BLOCK;
  var range_end = e;
  var v = 0u;
  var v_idx = end_m + BLOCK; // past every range end: "no more columns"
  if (ncols > 0u) {
    v_idx = sel[cols];
    v = 1u;
  }
  loop {
    if (v_idx < range_end) {
      if (v_idx < range_start && ncol < params.colCap) {
        column_index[oc + ncol] = v_idx;
        ncol += 1u;
      }
      if (v < ncols) {
        v_idx = sel[cols + v];
        v += 1u;
      } else {
        v_idx = end_m + BLOCK;
      }
    } else {
      var more = s > 0u;
      if (more) {
        s -= 1u;
        e = max(end_m - sel[diags + s], BLOCK);
      }
      if (!more || e > range_end + BLOCK) {
        for (var b = range_start; b < range_end && nblk < params.maxBlocks; b += BLOCK) {
          block_offset[ob + nblk] = b;
          nblk += 1u;
        }
        if (!more) {
          break;
        }
        range_start = e - BLOCK;
        range_end = e;
      } else if (e > range_end) {
        range_end += BLOCK;
      }
    }
  }
  block_count[row] = nblk;
  column_count[row] = ncol;
}
