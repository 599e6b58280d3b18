// The demo page (demo/index.html) in headless Chromium on SwiftShader, with the bundled model
// (models/needle-reader, served by Vite with HTTP Range support) running in a Web Worker:
//  - bad inputs give readable errors;
//  - on a software adapter the page says so, starts on the short document with a pattern that is
//    sparse at 512 tokens, and the threshold it shows is the one it sends;
//  - a run on the long (40K-token) document, the one that used to freeze the page, leaves the page
//    responsive (a click on another control is handled within 1 s), shows an estimate measured on
//    this adapter before prefill, and Cancel stops it within 10 s;
//  - the page is usable for a second run: dense vs sparse on the short document, both answers marked
//    right against the expected value, both prefill times, the speedup and the kept density per layer;
//  - Search patterns on the short document lists every layer, ends with the mean recall and a config
//    to download (MInference's JSON, one entry per layer), which becomes the sparse choice; the
//    attention picture of layer 0 head 0 draws the dense map and the kept part, with its caption.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startE2e, type E2eEnv } from './browser.ts';
import shortMeta from '../demo/assets/short-document.json';
import longMeta from '../demo/assets/default-document.json';

let env: E2eEnv;
beforeAll(async () => {
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

function state(page: Page): Promise<string> {
  return page.$eval('#out-card', (e) => (e as HTMLElement).dataset.state ?? '');
}

async function waitState(page: Page, states: string[], timeout: number): Promise<string> {
  await page.waitForFunction((want) => want.includes(document.getElementById('out-card')!.dataset.state ?? ''), states, { timeout, polling: 100 });
  return state(page);
}

async function runAndWait(page: Page, timeout: number): Promise<string> {
  await page.click('#run');
  return waitState(page, ['done', 'error', 'cancelled'], timeout);
}

/** Report cells of a row, one per pass column. */
async function reportRow(page: Page, label: string): Promise<string[]> {
  return page.$eval(
    '#report',
    (table, want) => {
      for (const tr of Array.from((table as HTMLTableElement).querySelectorAll('tbody tr'))) {
        const cells = Array.from(tr.children);
        if (cells[0]?.textContent === want) return cells.slice(1).map((c) => c.textContent ?? '');
      }
      return [];
    },
    label,
  );
}

/** Milliseconds from a click on the model-source radio "URL" until the page shows its field (and back). */
async function controlLatency(page: Page): Promise<number> {
  const t = Date.now();
  await page.click('input[name="model-kind"][value="url"]', { timeout: 5_000 });
  await page.waitForSelector('.choice-body[data-kind="url"]:not([hidden])', { timeout: 5_000 });
  const ms = Date.now() - t;
  await page.click('input[name="model-kind"][value="default"]', { timeout: 5_000 });
  await page.waitForSelector('.choice-body[data-kind="default"]:not([hidden])', { timeout: 5_000 });
  return ms;
}

describe('demo page (chromium, SwiftShader, model in a worker)', () => {
  it('shows readable errors for an empty question and a broken model URL', async () => {
    const { page, pageErrors } = await openDemo(`?doc=short&max=2&model=${encodeURIComponent('/no-such-model')}`);
    expect(await page.inputValue('#document')).toContain('quiver');
    expect(await page.inputValue('#question')).toBe(shortMeta.question);
    // No attention picture yet: its canvases and legend wait for one.
    expect(await page.isVisible('#pictures')).toBe(false);
    expect(await page.isVisible('#picture-legend')).toBe(false);

    await page.fill('#question', '   ');
    expect(await runAndWait(page, 30_000)).toBe('error');
    expect(await page.textContent('#error')).toMatch(/BadInputError \(BAD_INPUT\).*question is empty/s);

    await page.fill('#question', 'What is the magic code for quiver?');
    expect(await runAndWait(page, 120_000)).toBe('error');
    const text = (await page.textContent('#error')) ?? '';
    expect(text).toMatch(/BAD_INPUT/);
    expect(text).toMatch(/no-such-model.*missing file config\.json/s);
    expect(await page.textContent('#progress-phase')).toBe('Failed');
    expect(pageErrors).toEqual([]);
    await page.close();
  });

  it('fits the software adapter, stays responsive on the long document, cancels it, then compares dense and sparse on the short one', async () => {
    const { page, pageErrors } = await openDemo('?max=24');
    const phases = new Set<string>();
    page.on('console', () => undefined);
    const poll = setInterval(() => {
      page.textContent('#progress-phase').then((t) => t && phases.add(t), () => undefined);
    }, 150);

    // The adapter is SwiftShader: the page says so and picks the short document, a pattern that is
    // sparse at 512 tokens and a threshold of 0, and the hint says exactly that.
    await page.waitForSelector('#out-card[data-adapter="software"]', { timeout: 60_000 });
    expect(await page.isVisible('#adapter-note')).toBe(true);
    expect(await page.textContent('#adapter-note')).toMatch(/runs WebGPU on the CPU.*short document is selected/s);
    expect(await page.inputValue('#question')).toBe(shortMeta.question);
    expect(await page.inputValue('#pattern')).toBe('vs-small');
    expect(await page.inputValue('#dense-below')).toBe('0');
    expect(await page.textContent('#attention-hint')).toBe('Runs dense, then sparse: Vertical-Slash (64, 128) at every prompt length.');
    await page.fill('#dense-below', '32768');
    expect(await page.textContent('#attention-hint')).toMatch(/for prompts of 32,768 tokens or more \(shorter prompts run dense\)/);
    await page.fill('#dense-below', '0');
    expect(await page.textContent('#expected')).toContain(shortMeta.expectedValue);

    // The long document, dense only: what used to freeze the page.
    await page.click('#doc-long');
    await page.waitForFunction((q) => (document.getElementById('question') as HTMLInputElement).value === q, longMeta.question);
    await page.selectOption('#attention', 'dense');
    await page.click('#run');
    expect(await state(page)).toBe('running');
    // Loading and compiling in the worker: the page answers clicks meanwhile.
    await page.waitForFunction(() => /Compiling kernels|Loading weights|Measuring/.test(document.getElementById('progress-phase')!.textContent ?? ''), undefined, { timeout: 120_000, polling: 100 });
    expect(await controlLatency(page)).toBeLessThan(1000);
    // The estimate (from the rate measured on this adapter) is shown before prefill starts, and warns.
    await page.waitForFunction(() => (document.getElementById('progress-phase')!.textContent ?? '').startsWith('Prefill'), undefined, { timeout: 240_000, polling: 100 });
    const estimate = (await page.textContent('#estimate')) ?? '';
    expect(estimate).toMatch(/^⚠ Long run: estimated .* for 40,9\d\d prompt tokens, measured here: a 64-token prefill took .*, a decode step .*\. The short document finishes in under a minute/);
    expect(Number(await page.$eval('#out-card', (e) => (e as HTMLElement).dataset.estimateMs))).toBeGreaterThan(60_000);
    // Prefill runs: the page is still responsive.
    const latencies = [await controlLatency(page), await controlLatency(page)];
    for (const ms of latencies) expect(ms).toBeLessThan(1000);
    // Cancel stops it within 10 s, whatever the step being computed.
    const t = Date.now();
    await page.click('#cancel');
    expect(await waitState(page, ['cancelled', 'done', 'error'], 10_000)).toBe('cancelled');
    const cancelMs = Date.now() - t;
    expect(cancelMs).toBeLessThan(10_000);
    expect(await page.textContent('#progress-phase')).toBe('Cancelled');
    expect(await page.isVisible('#error')).toBe(false);
    const loaded = (await page.textContent('#model-status')) ?? '';
    expect(loaded).toMatch(/^Loaded in .*\(read .*, upload .*, compile .*\)/);
    const cancelHow = (await page.textContent('#progress-detail')) ?? '';
    console.log(`demo e2e: model ${loaded}; control latency ${latencies.join(', ')} ms during prefill; cancel took ${cancelMs} ms (${cancelHow}); ${estimate}`);

    // A second run on the same page: dense vs sparse on the short document.
    await page.click('#doc-short');
    await page.waitForFunction((q) => (document.getElementById('question') as HTMLInputElement).value === q, shortMeta.question);
    await page.selectOption('#attention', 'compare');
    const run2 = await runAndWait(page, 560_000);
    clearInterval(poll);
    expect(run2, `second run: ${await page.textContent('#error')}`).toBe('done');
    expect([...phases].some((p) => p === 'Compiling kernels' || p === 'Prefill (dense)')).toBe(true);

    // Both answers, each marked against the expected value.
    for (const pass of ['dense', 'sparse']) {
      const box = page.locator(`.pass[data-pass="${pass}"]`);
      expect(await box.isVisible()).toBe(true);
      expect(await box.locator('.answer').textContent()).toContain(shortMeta.expectedValue);
      expect(await box.locator('.verdict').textContent()).toBe('right');
    }
    expect(await reportRow(page, 'Answer')).toEqual([`right (expected “${shortMeta.expectedValue}”)`, `right (expected “${shortMeta.expectedValue}”)`]);
    // The attention each pass used, and what sparse kept per layer.
    expect(await reportRow(page, 'Attention used')).toEqual(['dense', 'sparse: Vertical-Slash (64, 128) on all 36 heads']);
    const kept = await reportRow(page, 'Kept density');
    expect(kept[0]).toMatch(/^100%/);
    expect(kept[1]).toMatch(/^\d+\.\d% kept · per layer +(\d+% ){5}\d+%$/);
    // Both prefill times and the speedup.
    for (const v of await reportRow(page, 'Prefill time')) expect(v).toMatch(/^\d+(\.\d+)? (ms|s|min)/);
    expect(await page.textContent('#compare-summary')).toMatch(/^Sparse prefill .* against dense .*: \d+\.\d\d× the speed, computing \d+\.\d% of the causal query-key pairs; the answers (agree|differ)\.$/);
    // The load split and the model, in words for people.
    expect((await page.textContent('#report')) ?? '').toMatch(/Model load(\d+(\.\d+)? (ms|s|min)[^:]*: read .*, upload .*, compile |already loaded \(it took )/);
    expect(await page.textContent('#adapter')).toMatch(/LlamaForCausalLM: 6 layers, hidden 384, 6 heads \(2 KV\) × 64/);
    expect(await page.textContent('#adapter')).toMatch(/software \(runs on the CPU\)/);
    expect(await page.isVisible('#error')).toBe(false);
    expect(pageErrors).toEqual([]);
    console.log(`demo e2e, second run: ${await page.textContent('#estimate')} Took: ${await page.textContent('#progress-detail')}`);
    await page.close();
  }, 900_000);

  it('searches patterns on the short document, offers the config, and draws a head\'s attention', async () => {
    const { page, pageErrors } = await openDemo('?doc=short');
    await page.waitForSelector('#out-card[data-adapter="software"]', { timeout: 60_000 });
    expect(await page.textContent('#search-note')).toMatch(/samples 64 query rows per head .* a search of the short document takes about/);
    const t = Date.now();
    await page.click('#search');
    expect(await waitState(page, ['done', 'error', 'cancelled'], 300_000), `search: ${await page.textContent('#error')}`).toBe('done');
    const searchMs = Date.now() - t;
    expect(await page.textContent('#search-plan')).toMatch(/^Searching 6 layers × 6 heads on the document's \d+ tokens: .*share of softmax mass kept on the document's last rows/);
    expect(await page.locator('#search-layers li').allTextContents()).toHaveLength(6);
    const result = (await page.textContent('#search-result')) ?? '';
    expect(result).toMatch(/^Mean recall (0|1)\.\d{3} over 36 heads \(the share of softmax mass kept on the document's last rows\), searched in /);
    // The download link holds MInference's JSON: one entry per layer, one per head in each.
    const json = await page.$eval('#search-download', async (a) => (await fetch((a as HTMLAnchorElement).href)).text());
    const config = JSON.parse(json) as Record<string, unknown>[];
    expect(config).toHaveLength(6);
    for (const layer of config) expect(Object.keys(layer)).toHaveLength(6);
    // The searched config is the sparse choice of the next run.
    expect(await page.inputValue('#pattern')).toBe('searched');
    expect(await page.textContent('#attention-hint')).toMatch(/the searched config/);

    // The picture of layer 0, head 0: both canvases show mass, and the caption says how much is kept.
    await page.fill('#picture-layer', '0');
    await page.fill('#picture-head', '0');
    await page.click('#draw');
    expect(await waitState(page, ['done', 'error', 'cancelled'], 120_000), `picture: ${await page.textContent('#error')}`).toBe('done');
    const lit = await page.evaluate(() =>
      ['picture-dense', 'picture-kept'].map((id) => {
        const c = document.getElementById(id) as HTMLCanvasElement;
        const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] !== 12 || d[i + 1] !== 15 || d[i + 2] !== 26) n++;
        return n;
      }),
    );
    for (const n of lit) expect(n).toBeGreaterThan(0);
    expect(await page.isVisible('#pictures')).toBe(true);
    expect(await page.isVisible('#picture-legend')).toBe(true);
    const caption = (await page.textContent('#picture-caption')) ?? '';
    expect(caption).toMatch(/^Layer 0, head 0, .* \(the searched config\): keeps .*% of the attention mass/);
    expect(await page.isVisible('#error')).toBe(false);
    expect(pageErrors).toEqual([]);
    const headRecall = (config[0]!['0'] as unknown[])[3];
    console.log(`demo e2e, search: ${searchMs} ms from the click (${result}); picture: ${caption} (${lit.join(', ')} lit pixels; the search's recall of layer 0 head 0: ${String(headRecall)})`);
    await page.close();
  }, 420_000);
});
