/** One shared device per test process. */
import { requestGpu } from '../../src/gpu/device.ts';
import type { Gpu } from '../../src/gpu/gpu.ts';

let shared: Promise<Gpu> | undefined;
export function testGpu(): Promise<Gpu> {
  return (shared ??= requestGpu({ label: 'tests' }));
}
