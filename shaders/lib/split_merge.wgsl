// Merging the partial softmax states of a key split (flash-decoding), for the `combine` entries of
// attention.wgsl and attention_decode.wgsl. Split z of a row left, at slot z * stride + row,
// part_ml = (running max, running sum) in log2 units and part_o = its unnormalised output, HEAD_DIM / 4
// vec4 per slot. A split that saw no key has sum 0 and output 0: its weight does not matter.
//
// Needs from the includer: module-scope `part_o: array<vec4<f32>>`, `part_ml: array<vec2<f32>>`,
// the constants D4 (HEAD_DIM / 4) and NEG (finite stand-in for -inf). No bindings of its own.

// Column c (a vec4) of the row's normalised output (0 where no split saw a key).
fn merge_splits(row: u32, stride: u32, n_split: u32, c: u32) -> vec4<f32> {
  var mx = NEG;
  for (var z = 0u; z < n_split; z++) { mx = max(mx, part_ml[z * stride + row].x); }
  var l = 0.0;
  var o = vec4<f32>(0.0);
  for (var z = 0u; z < n_split; z++) {
    let ml = part_ml[z * stride + row];
    let w = exp2(ml.x - mx);
    l += ml.y * w;
    o += part_o[(z * stride + row) * D4 + c] * w;
  }
  return o * select(0.0, 1.0 / l, l > 0.0);
}
