// Pieces shared by the radix selects (topk.wgsl, estimate_block_sparse.wgsl): the order-preserving
// f32 -> u32 key, and a two-value exclusive workgroup scan. The includer defines WG (its workgroup
// size, a power of two); the scan's workgroup arrays scan_a and scan_b are declared here and may
// also be used directly by the includer.

var<workgroup> scan_a: array<u32, WG>;
var<workgroup> scan_b: array<u32, WG>;

// Order-preserving map f32 -> u32: a < b as floats iff key(a) < key(b) as unsigned (flip every bit
// of a negative, set the sign bit of a positive).
fn f32_key(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

// Exclusive Hillis-Steele scan of (a, b) over the workgroup; returns this thread's prefixes. Every
// thread of the workgroup must call it (it has barriers).
fn workgroup_exclusive_scan2(lid: u32, a: u32, b: u32) -> vec2<u32> {
  scan_a[lid] = a;
  scan_b[lid] = b;
  workgroupBarrier();
  for (var s = 1u; s < WG; s <<= 1u) {
    var xa = 0u;
    var xb = 0u;
    if (lid >= s) {
      xa = scan_a[lid - s];
      xb = scan_b[lid - s];
    }
    workgroupBarrier();
    scan_a[lid] += xa;
    scan_b[lid] += xb;
    workgroupBarrier();
  }
  return vec2<u32>(scan_a[lid] - a, scan_b[lid] - b);
}
