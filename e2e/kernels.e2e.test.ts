// The kernel cases in headless Chromium (the page is served by Vite).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startE2e, type E2eEnv } from './browser.ts';
import type { BrowserCaseResult } from './kernels-page.ts';

let env: E2eEnv;
beforeAll(async () => {
  env = await startE2e();
});
afterAll(async () => {
  await env?.close();
});

describe('kernels (chromium)', () => {
  it('every quick kernel case passes in the browser', async () => {
    const page = await env.browser.newPage();
    const consoleErrors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    await page.goto(`${env.baseUrl}/e2e/kernels.html`);
    await page.waitForFunction(() => {
      const w = window as unknown as { __kernelResults?: unknown; __kernelError?: unknown };
      return w.__kernelResults !== undefined || w.__kernelError !== undefined;
    }, undefined, { timeout: 240_000 });
    const { results, error } = await page.evaluate(() => {
      const w = window as unknown as { __kernelResults?: BrowserCaseResult[]; __kernelError?: string };
      return { results: w.__kernelResults, error: w.__kernelError };
    });
    expect(error, `page failed: ${error}\n${consoleErrors.join('\n')}`).toBeUndefined();
    const failed = results!.filter((r) => r.status === 'failed');
    expect(failed.map((f) => `${f.name}: ${f.error}`)).toEqual([]);
    expect(results!.filter((r) => r.status === 'passed').length).toBeGreaterThan(0);
  });
});
