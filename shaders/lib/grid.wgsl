// Workgroup indexing over a 2D dispatch grid. WebGPU allows at most 65535 workgroups per grid
// dimension, so long 1D launches are folded into (x, y) by src/kernels/grid.ts and unfolded here.
fn linear_workgroup(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.x + wid.y * nwg.x;
}
