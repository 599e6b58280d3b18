// The demo page (demo/index.html) in headless Chromium on SwiftShader: bad inputs give readable
// errors, and a full run on a tiny random-weight Llama (real Llama 3 tokenizer, served by Vite with
// HTTP Range support) loads weights, reports prefill progress to 100%, streams tokens and shows a
// report with numbers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { startE2e, type E2eEnv } from './browser.ts';
import { DEFAULT_MODEL_SPEC, ensureDefaultModel } from '../scripts/setup-default.ts';
import { DEFAULT_FIXTURE_DIR } from '../scripts/make-fixtures.ts';

/**
 * The default demo model cut down for SwiftShader: one layer, one head of 64 (the smallest the
 * attention kernels take), hidden 64. The vocabulary stays at Llama 3's 128256 rows because the
 * tokenizer is the real one, so the logits matmul dominates the run.
 */
const E2E_SPEC = { ...DEFAULT_MODEL_SPEC, name: 'demo-e2e-model', hiddenSize: 64, intermediateSize: 128, numLayers: 1, numHeads: 1, numKvHeads: 1, seed: 77 };
const E2E_MODEL_URL = '/.fixtures/demo-e2e-model';

let env: E2eEnv;
beforeAll(async () => {
  await ensureDefaultModel(join(DEFAULT_FIXTURE_DIR, 'demo-e2e-model'), E2E_SPEC);
  env = await startE2e();
});
afterAll(async () => {
  await env?.close();
});

async function openDemo(query: string): Promise<{ page: Page; pageErrors: string[] }> {
  const page = await env.browser.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${env.baseUrl}/${query}`);
  await page.waitForSelector('#out-card[data-ready="1"]', { timeout: 60_000 });
  return { page, pageErrors };
}

async function runAndWait(page: Page, timeout: number): Promise<string> {
  await page.click('#run');
  await page.waitForFunction(
    () => {
      const s = document.getElementById('out-card')!.dataset.state;
      return s === 'done' || s === 'error' || s === 'cancelled';
    },
    undefined,
    { timeout, polling: 250 },
  );
  return page.$eval('#out-card', (e) => (e as HTMLElement).dataset.state ?? '');
}

async function reportCell(page: Page, label: string): Promise<string> {
  return page.$eval(
    '#report',
    (table, want) => {
      for (const tr of Array.from((table as HTMLTableElement).rows)) if (tr.cells[0]?.textContent === want) return tr.cells[1]?.textContent ?? '';
      return '';
    },
    label,
  );
}

describe('demo page (chromium)', () => {
  it('shows readable errors for an empty question and a broken model URL', async () => {
    const { page, pageErrors } = await openDemo(`?doc=tiny&max=2&model=${encodeURIComponent('/.fixtures/no-such-model')}`);
    expect(await page.inputValue('#document')).toContain('Wend Valley');
    expect(await page.inputValue('#question')).toMatch(/spare key/);

    await page.fill('#question', '   ');
    expect(await runAndWait(page, 30_000)).toBe('error');
    expect(await page.isVisible('#error')).toBe(true);
    expect(await page.textContent('#error')).toMatch(/BadInputError \(BAD_INPUT\).*question is empty/s);

    await page.fill('#question', 'Where is the key?');
    expect(await runAndWait(page, 120_000)).toBe('error');
    const text = (await page.textContent('#error')) ?? '';
    expect(text).toMatch(/BAD_INPUT/);
    expect(text).toMatch(/no-such-model.*missing file config\.json/s);
    expect(await page.textContent('#progress-phase')).toBe('Failed');
    expect(pageErrors).toEqual([]);
    await page.close();
  });

  it('runs the tiny model on a tiny document: progress to 100%, streamed tokens, a report with numbers', async () => {
    const { page, pageErrors } = await openDemo(`?doc=tiny&max=2&attention=dense&model=${encodeURIComponent(E2E_MODEL_URL)}`);
    const seenPhases = new Set<string>();
    const poll = setInterval(() => {
      page.textContent('#progress-phase').then((t) => t && seenPhases.add(t), () => undefined);
    }, 200);
    // Cancel right after Run: the run stops at the next check (before the weights load) and says so.
    await page.click('#run');
    await page.click('#cancel');
    await page.waitForFunction(() => document.getElementById('out-card')!.dataset.state === 'cancelled', undefined, { timeout: 120_000, polling: 250 });
    expect(await page.textContent('#progress-phase')).toBe('Cancelled');
    expect(await page.isVisible('#error')).toBe(false);

    const state = await runAndWait(page, 560_000);
    clearInterval(poll);
    const error = await page.textContent('#error');
    expect(state, `run failed: ${error}`).toBe('done');

    // Progress: the executor's last prefill report said 100%, and the bar is full.
    expect(await page.$eval('#out-card', (e) => (e as HTMLElement).dataset.prefillFraction)).toBe('1');
    expect(await page.$eval('#progress-fill', (e) => (e as HTMLElement).style.width)).toMatch(/^100(\.0)?%$/);
    expect(seenPhases.has('Loading weights') || seenPhases.has('Prefill')).toBe(true);

    // Streaming: onToken fired once per generated token, as many as the report counts.
    const streamed = Number(await page.$eval('#out-card', (e) => (e as HTMLElement).dataset.tokens));
    expect(streamed).toBeGreaterThanOrEqual(1);
    expect(streamed).toBeLessThanOrEqual(2);
    expect(await page.textContent('#answer-meta')).toMatch(new RegExp(`^${streamed} tokens?: \\d+`));
    expect(await reportCell(page, 'Decode')).toMatch(new RegExp(`^${streamed} tokens in `));

    // Report: numbers, not placeholders.
    expect(await reportCell(page, 'Prompt')).toMatch(/^\d[\d,]* tokens, dense attention/);
    expect(await reportCell(page, 'Prefill time')).toMatch(/^\d+(\.\d+)? (ms|s|min)/);
    expect(await reportCell(page, 'Prefill speed')).toMatch(/^\d+(\.\d+)? tok\/s$/);
    expect(await reportCell(page, 'Time to first token')).toMatch(/^\d+(\.\d+)? (ms|s|min)/);
    expect(await reportCell(page, 'Peak GPU memory')).toMatch(/^\d+(\.\d+)? (KiB|MiB|GiB)/);
    expect(await reportCell(page, 'GPU time shares')).toMatch(/attention \d+\.\d%|not measured/);
    expect(await page.textContent('#adapter')).toMatch(/LlamaForCausalLM: 1 layers, hidden 64/);
    expect(await page.isVisible('#error')).toBe(false);
    expect(pageErrors).toEqual([]);
    await page.close();
  }, 600_000);
});
