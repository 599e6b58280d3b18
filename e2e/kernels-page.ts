// Runs the kernel cases in the browser and publishes the results on window for e2e/kernels.e2e.test.ts.
import { allCases } from '../test/cases/index.ts';
import { hasCapability, runCase } from '../test/harness/cases.ts';
import { testGpu } from '../test/harness/gpu.ts';

export interface BrowserCaseResult {
  name: string;
  status: 'passed' | 'failed' | 'skipped';
  error?: string;
}

const log = document.getElementById('log')!;
const results: BrowserCaseResult[] = [];
const w = window as unknown as { __kernelResults?: BrowserCaseResult[]; __kernelError?: string };
const params = new URLSearchParams(location.search);
const all = params.get('all') === '1';

try {
  const gpu = await testGpu();
  log.textContent = `adapter: ${gpu.caps.adapter.description || gpu.caps.adapter.vendor}\n`;
  for (const c of allCases) {
    if (!all && !c.quick) continue;
    if (!hasCapability(gpu, c.needs)) {
      results.push({ name: c.name, status: 'skipped' });
      continue;
    }
    try {
      await runCase(gpu, c);
      results.push({ name: c.name, status: 'passed' });
    } catch (e) {
      results.push({ name: c.name, status: 'failed', error: (e as Error).message });
    }
    log.textContent += `${results.at(-1)!.status} ${c.name}\n`;
  }
  w.__kernelResults = results;
} catch (e) {
  w.__kernelError = String((e as Error).stack ?? e);
}
