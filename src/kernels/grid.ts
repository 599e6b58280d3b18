/**
 * Folds a 1D workgroup count into a 2D grid: WebGPU allows at most
 * maxComputeWorkgroupsPerDimension (65535 by default) workgroups per dimension. The shader side is
 * shaders/lib/grid.wgsl (linear_workgroup); extra workgroups from rounding must bounds-check.
 */
export function foldGrid(workgroups: number, maxPerDim: number): [number, number] {
  if (workgroups <= maxPerDim) return [workgroups, 1];
  const y = Math.ceil(workgroups / maxPerDim);
  const x = Math.ceil(workgroups / y);
  if (y > maxPerDim) throw new RangeError(`${workgroups} workgroups do not fit a ${maxPerDim}x${maxPerDim} grid`);
  return [x, y];
}

export function ceilDiv(a: number, b: number): number {
  return Math.floor((a + b - 1) / b);
}
