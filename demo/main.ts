/**
 * The long-document demo page: pick a model, a document and a question, and watch the model load,
 * prefill and answer, with dense and sparse attention side by side. The model runs in a Web Worker
 * (demo/worker.ts, messages in demo/protocol.ts), so the page stays responsive on any adapter, and
 * Cancel stops a run at its next step, or terminates the worker (freeing the device) if that step
 * takes too long. Below the question, "Search patterns" runs MInference's pattern search with the
 * document as calibration text (its config becomes a sparse choice), and "Draw" pictures one head's
 * attention, dense beside what its pattern keeps. One request at a time. Plain DOM; see index.html.
 *
 * URL parameters (for links and tests): ?model=URL (use that model URL), ?doc=short|long,
 * ?q=QUESTION, ?max=N (max new tokens), ?attention=compare|sparse|dense, ?pattern=vs-default|vs-small,
 * ?denseBelow=N.
 */
import type { Capabilities } from '../src/gpu/gpu.ts';
import { BadInputError } from '../src/gpu/errors.ts';
import type { Pattern } from '../src/attention/types.ts';
import { answerIsCorrect } from '../src/eval/needle.ts';
import type { RunReport } from '../src/model/report.ts';
import { formatLayerSummary } from '../src/search/search.ts';
import type { AttentionPicture } from '../src/search/picture.ts';
import longMeta from './assets/default-document.json';
import shortMeta from './assets/short-document.json';
import { DEFAULT_MODEL_URL, modelSourceFor, summarizeFiles, type ModelChoice } from './model-choice.ts';
import { countWords, describeError, formatBytes, formatCount, formatMs, formatPercent, formatRate, plural } from './format.ts';
import { describeAttention, documentFor, layerDensity, LONG_RUN_MS, patternName } from './estimate.ts';
import { pictureCaption, pictureImage, rampGradient } from './picture.ts';
import { pictureHead, SOFTWARE_SEARCH_ROWS, searchOutcomeText, searchPlanText, searchProgressText } from './search-view.ts';
import {
  errorFromInfo,
  type ModelSpec,
  type Pass,
  type PassResult,
  type PictureRequest,
  type RunEstimate,
  type RunMode,
  type RunRequest,
  type SearchOutcome,
  type SearchPlan,
  type SearchRequest,
  type SparseChoice,
  type WorkerToPage,
} from './protocol.ts';

const DOCUMENTS = {
  long: { url: new URL('./assets/default-document.txt', import.meta.url).href, meta: longMeta, label: 'long (40K tokens)' },
  short: { url: new URL('./assets/short-document.txt', import.meta.url).href, meta: shortMeta, label: 'short (512 tokens)' },
} as const;
type DocumentName = keyof typeof DOCUMENTS;

/** Patterns the page offers; a software adapter starts on the small one, which skips keys at 512 tokens. */
const PATTERNS: Record<string, Pattern> = {
  'vs-default': { type: 'vertical_and_slash', verticalSize: 1000, slashSize: 6096 },
  'vs-small': { type: 'vertical_and_slash', verticalSize: 64, slashSize: 128 },
};

/** How long Cancel waits for the worker to stop at a step before terminating it. */
const CANCEL_GRACE_MS = 3000;

/** Key bins of the attention picture: the canvases' width in pixels (fewer for shorter prompts, one key per bin). */
const PICTURE_BINS = 512;

/**
 * A pattern search of the bundled short document on a software adapter, for the page's note: 2 min
 * 37 s measured with SOFTWARE_SEARCH_ROWS on SwiftShader in headless Chromium, 2 CPU cores
 * (e2e/demo.e2e.test.ts logs it).
 */
const SOFTWARE_SHORT_SEARCH = 'about 2½ minutes';

function $<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`demo page: element #${id} is missing`);
  return e as T;
}

const ui = {
  kindRadios: Array.from(document.querySelectorAll<HTMLInputElement>('input[name="model-kind"]')),
  kindBodies: Array.from(document.querySelectorAll<HTMLElement>('.choice-body')),
  defaultUrl: $<HTMLElement>('default-url'),
  folder: $<HTMLInputElement>('model-folder'),
  folderSummary: $<HTMLElement>('folder-summary'),
  modelUrl: $<HTMLInputElement>('model-url'),
  modelStatus: $<HTMLElement>('model-status'),
  docLong: $<HTMLButtonElement>('doc-long'),
  docShort: $<HTMLButtonElement>('doc-short'),
  docFile: $<HTMLInputElement>('doc-file'),
  docStats: $<HTMLElement>('doc-stats'),
  adapterNote: $<HTMLElement>('adapter-note'),
  document: $<HTMLTextAreaElement>('document'),
  question: $<HTMLInputElement>('question'),
  maxNewTokens: $<HTMLInputElement>('max-new-tokens'),
  attention: $<HTMLSelectElement>('attention'),
  pattern: $<HTMLSelectElement>('pattern'),
  denseBelow: $<HTMLInputElement>('dense-below'),
  attentionFile: $<HTMLInputElement>('attention-file'),
  attentionHint: $<HTMLElement>('attention-hint'),
  expected: $<HTMLElement>('expected'),
  estimate: $<HTMLElement>('estimate'),
  run: $<HTMLButtonElement>('run'),
  cancel: $<HTMLButtonElement>('cancel'),
  out: $<HTMLElement>('out-card'),
  fill: $<HTMLElement>('progress-fill'),
  phase: $<HTMLElement>('progress-phase'),
  detail: $<HTMLElement>('progress-detail'),
  error: $<HTMLElement>('error'),
  passes: Array.from(document.querySelectorAll<HTMLElement>('.pass')),
  compareSummary: $<HTMLElement>('compare-summary'),
  report: $<HTMLTableElement>('report'),
  shares: $<HTMLElement>('shares'),
  adapter: $<HTMLElement>('adapter'),
  search: $<HTMLButtonElement>('search'),
  searchNote: $<HTMLElement>('search-note'),
  searchPlan: $<HTMLElement>('search-plan'),
  searchLayers: $<HTMLOListElement>('search-layers'),
  searchResult: $<HTMLElement>('search-result'),
  searchedOption: $<HTMLOptionElement>('pattern-searched'),
  pictureLayer: $<HTMLInputElement>('picture-layer'),
  pictureHead: $<HTMLInputElement>('picture-head'),
  pictureRange: $<HTMLElement>('picture-range'),
  draw: $<HTMLButtonElement>('draw'),
  pictureDense: $<HTMLCanvasElement>('picture-dense'),
  pictureKept: $<HTMLCanvasElement>('picture-kept'),
  pictureRamp: $<HTMLElement>('picture-ramp'),
  pictures: $<HTMLElement>('pictures'),
  pictureLegend: $<HTMLElement>('picture-legend'),
  pictureCaption: $<HTMLElement>('picture-caption'),
};

// ------------------------------------------------------------------------------------------ worker

let worker: Worker | undefined;
let caps: Capabilities | undefined;
/** The runtime's DEFAULT_DENSE_BELOW, as the worker reports it (the page does not load the runtime). */
let defaultDenseBelow = 32768;
const listeners = new Set<(m: WorkerToPage) => void>();

function getWorker(): Worker {
  if (worker) return worker;
  const w = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
  w.addEventListener('message', (ev: MessageEvent<WorkerToPage>) => {
    for (const f of [...listeners]) f(ev.data);
  });
  w.addEventListener('error', (ev) => {
    ev.preventDefault();
    showError(new Error(`the model worker failed: ${ev.message || 'unknown error'}`));
  });
  worker = w;
  return w;
}

/** Stops the worker outright (its device goes with it); the next run starts a new one and loads the model again. */
function terminateWorker(): void {
  worker?.terminate();
  worker = undefined;
  loadedKey = undefined;
  ui.modelStatus.textContent = 'Not loaded: the worker was stopped; the model loads again on the next run.';
}

listeners.add((m) => {
  if (m.type === 'adapter') {
    caps = m.caps;
    defaultDenseBelow = m.defaultDenseBelow;
    showAdapter();
    fitToAdapter();
  } else if (m.type === 'error' && m.id === null) {
    showError(errorFromInfo(m.error), 'WebGPU found no usable adapter in this browser.');
    if (!ui.document.value) loadDocument('short').catch(showError);
  }
});

// ------------------------------------------------------------------------------------ model choice

let kind: ModelChoice['kind'] = 'default';
ui.defaultUrl.textContent = new URL(DEFAULT_MODEL_URL).pathname;
/** The model key of the model the worker holds. */
let loadedKey: string | undefined;

function setKind(k: ModelChoice['kind']): void {
  kind = k;
  for (const r of ui.kindRadios) r.checked = r.value === k;
  for (const b of ui.kindBodies) b.hidden = b.dataset.kind !== k;
}
for (const r of ui.kindRadios) r.addEventListener('change', () => setKind(r.value as ModelChoice['kind']));

ui.folder.addEventListener('change', () => {
  const files = ui.folder.files;
  if (!files || files.length === 0) {
    ui.folderSummary.textContent = 'No folder chosen.';
    return;
  }
  const s = summarizeFiles(files);
  const missing = [!s.hasConfig && 'config.json', !s.hasTokenizer && 'tokenizer.json', s.safetensors === 0 && '*.safetensors'].filter(Boolean);
  ui.folderSummary.textContent =
    `${s.folder || 'folder'}: ${plural(s.count, 'file')}, ${formatBytes(s.bytes)}, ${plural(s.safetensors, 'safetensors file')}` + (missing.length ? ` (missing ${missing.join(', ')})` : '');
});

function currentChoice(): ModelChoice {
  if (kind === 'folder') return { kind, files: ui.folder.files ?? [] };
  if (kind === 'url') return { kind, url: ui.modelUrl.value };
  return { kind: 'default', url: DEFAULT_MODEL_URL };
}

/** The worker's model spec and the key that identifies the choice. */
function modelSpec(choice: ModelChoice): { spec: ModelSpec; key: string } {
  const source = modelSourceFor(choice, location.href); // validates the choice here, with the page's messages
  if (choice.kind === 'folder') {
    const files = Array.from(choice.files);
    const s = summarizeFiles(choice.files);
    return { spec: { kind: 'files', files, folder: s.folder }, key: `folder:${s.folder}:${s.count}:${s.bytes}:${files.map((f) => f.lastModified).join(',')}` };
  }
  return { spec: { kind: 'url', url: source.name }, key: `url:${source.name}` };
}

// ---------------------------------------------------------------------------------------- document

let documentName: DocumentName | undefined;

function showDocStats(): void {
  const text = ui.document.value;
  ui.docStats.textContent = text ? `${formatCount(countWords(text))} words, ${formatCount(text.length)} characters` : 'empty';
}
ui.document.addEventListener('input', () => {
  documentName = undefined;
  showDocStats();
  ui.expected.textContent = '';
  expectedValue = undefined;
});

let expectedValue: string | undefined;

function setDocument(text: string, question?: string, expected?: string): void {
  ui.document.value = text;
  showDocStats();
  if (question !== undefined) ui.question.value = question;
  expectedValue = expected;
  ui.expected.textContent = expected ? `Expected value: “${expected}” (each answer is marked right or wrong against it).` : '';
  ui.estimate.textContent = '';
}

async function loadDocument(name: DocumentName): Promise<void> {
  const d = DOCUMENTS[name];
  ui.docStats.textContent = 'loading…';
  const res = await fetch(d.url);
  if (!res.ok) throw new BadInputError(`could not load the bundled ${d.label} document (${d.url}: HTTP ${res.status})`);
  setDocument(await res.text(), d.meta.question, d.meta.expectedValue);
  documentName = name;
  ui.docStats.textContent = `${d.label}: ${formatCount(d.meta.promptTokens)} prompt tokens, ${ui.docStats.textContent}`;
}

ui.docLong.addEventListener('click', () => {
  loadDocument('long').catch(showError);
});
ui.docShort.addEventListener('click', () => {
  loadDocument('short').catch(showError);
});
ui.docFile.addEventListener('change', () => {
  const f = ui.docFile.files?.[0];
  if (!f) return;
  f.text()
    .then((t) => {
      documentName = undefined;
      setDocument(t, undefined, undefined);
    })
    .catch(showError);
  ui.docFile.value = '';
});

// --------------------------------------------------------------------------------------- attention

let patternFile: { name: string; text: string } | undefined;
ui.pattern.addEventListener('change', () => {
  if (ui.pattern.value === 'config') ui.attentionFile.click();
  updateAttentionHint();
});
ui.attention.addEventListener('change', updateAttentionHint);
ui.denseBelow.addEventListener('input', updateAttentionHint);
ui.attentionFile.addEventListener('change', () => {
  const f = ui.attentionFile.files?.[0];
  if (!f) return;
  f.text()
    .then((text) => {
      patternFile = { name: f.name, text };
      updateAttentionHint();
    })
    .catch(showError);
  ui.attentionFile.value = '';
});

/** The threshold the next run uses, read from the page (what the hint shows is what is sent). */
function denseBelowValue(): number {
  const n = Number(ui.denseBelow.value);
  if (!Number.isSafeInteger(n) || n < 0) throw new BadInputError(`"sparse from N tokens" must be a whole number of 0 or more, got "${ui.denseBelow.value}"`);
  return n;
}

function sparseName(): string {
  if (ui.pattern.value === 'searched') return searched ? `the searched config (${searched.name})` : 'the searched config (none yet)';
  if (ui.pattern.value === 'config') return patternFile ? `the pattern config ${patternFile.name}` : 'a pattern config (none chosen yet)';
  return ui.pattern.selectedOptions[0]?.textContent?.split(':')[0] ?? ui.pattern.value;
}

function updateAttentionHint(): void {
  const mode = ui.attention.value as RunMode;
  let threshold: string;
  try {
    const n = denseBelowValue();
    threshold = n === 0 ? 'at every prompt length' : `for prompts of ${formatCount(n)} tokens or more (shorter prompts run dense)`;
  } catch (e) {
    threshold = `(${describeError(e).detail})`;
  }
  if (mode === 'dense') ui.attentionHint.textContent = 'Dense causal attention over the whole prompt (exact; the reference for sparse attention).';
  else ui.attentionHint.textContent = `${mode === 'compare' ? 'Runs dense, then sparse: ' : 'Sparse: '}${sparseName()} ${threshold}.`;
}

function sparseRequest(): SparseChoice {
  if (ui.pattern.value === 'searched') {
    if (!searched) throw new BadInputError('the sparse pattern "searched config" is selected but no search has finished: press Search patterns first');
    return { configName: searched.name, configText: searched.json };
  }
  if (ui.pattern.value === 'config') {
    if (!patternFile) throw new BadInputError('the sparse pattern "pattern config" is selected but no config file was chosen');
    return { configName: patternFile.name, configText: patternFile.text };
  }
  const p = PATTERNS[ui.pattern.value];
  if (!p) throw new BadInputError(`unknown sparse pattern "${ui.pattern.value}"`);
  return { pattern: p };
}

/**
 * Software adapters (SwiftShader, llvmpipe) compute about a GFLOP/s: the page says so, starts on
 * the short document, and uses a sparse pattern and threshold under which 512 tokens still skip keys.
 */
function fitToAdapter(): void {
  if (!caps) return;
  const software = caps.software;
  ui.adapterNote.hidden = !software;
  if (software) {
    const a = caps.adapter;
    ui.adapterNote.textContent =
      `This adapter (${a.description || a.architecture || 'software'}) runs WebGPU on the CPU, at about a thousandth of a GPU's speed. ` +
      'The short document is selected (it finishes in under a minute here); the long one takes many minutes. ' +
      'An estimate measured on this adapter appears before each run.';
  }
  ui.searchNote.hidden = !software;
  if (software) {
    ui.searchNote.textContent =
      `On this adapter the search samples ${SOFTWARE_SEARCH_ROWS} query rows per head past the document's first quarter (besides its last 64) instead of 256, ` +
      `and a search of the short document takes ${SOFTWARE_SHORT_SEARCH}; the long one takes hours.`;
  }
  if (!params.has('pattern')) ui.pattern.value = software ? 'vs-small' : 'vs-default';
  if (!params.has('denseBelow')) ui.denseBelow.value = String(software ? 0 : defaultDenseBelow);
  updateAttentionHint();
  const doc = !params.has('doc') && documentName === undefined && !ui.document.value ? loadDocument(documentFor(software)) : Promise.resolve();
  doc.catch(showError).finally(() => (ui.out.dataset.adapter = software ? 'software' : 'hardware'));
}

// ------------------------------------------------------------------------------------------ output

type PageState = 'idle' | 'running' | 'done' | 'error' | 'cancelled';
function setState(s: PageState): void {
  ui.out.dataset.state = s;
  const running = s === 'running';
  ui.run.disabled = running;
  ui.search.disabled = running;
  ui.draw.disabled = running;
  ui.cancel.disabled = !running;
  ui.run.textContent = running ? 'Running…' : 'Run';
}

function setProgress(fraction: number, phase: string, detail: string, done = false): void {
  const f = Math.max(0, Math.min(1, fraction));
  ui.fill.style.width = `${(f * 100).toFixed(1)}%`;
  ui.fill.classList.toggle('done', done);
  ui.phase.textContent = phase;
  ui.detail.textContent = detail;
}

function showError(e: unknown, hint?: string): void {
  const { title, detail } = describeError(e);
  ui.error.hidden = false;
  ui.error.replaceChildren();
  const t = document.createElement('strong');
  t.textContent = title;
  ui.error.append(t, document.createTextNode(detail + (hint ? `\n${hint}` : '')));
  console.error(e);
}
function clearError(): void {
  ui.error.hidden = true;
  ui.error.textContent = '';
}

function passBox(pass: Pass): { box: HTMLElement; answer: HTMLElement; meta: HTMLElement; verdict: HTMLElement } {
  const box = ui.passes.find((b) => b.dataset.pass === pass)!;
  return { box, answer: box.querySelector<HTMLElement>('.answer')!, meta: box.querySelector<HTMLElement>('.meta')!, verdict: box.querySelector<HTMLElement>('.verdict')! };
}

function resetPasses(mode: RunMode): void {
  for (const pass of ['dense', 'sparse'] as const) {
    const b = passBox(pass);
    b.box.hidden = !(mode === 'compare' || mode === pass);
    b.answer.textContent = '';
    b.meta.textContent = '';
    b.verdict.textContent = '';
    b.verdict.className = 'verdict';
    b.box.dataset.tokens = '0';
  }
  ui.compareSummary.textContent = '';
}

function reportPlaceholder(text: string): void {
  const tr = document.createElement('tr');
  const td = document.createElement('td');
  td.className = 'hint';
  td.textContent = text;
  tr.append(td);
  const body = document.createElement('tbody');
  body.append(tr);
  ui.report.replaceChildren(body);
}

function cell(tag: 'th' | 'td', content: string | Node): HTMLTableCellElement {
  const c = document.createElement(tag);
  c.append(content);
  return c;
}

/** Per-layer kept density as small bars with the numbers in their titles and text. */
function densityBars(report: RunReport): Node {
  const d = layerDensity(report);
  if (d.length === 0) return document.createTextNode('–');
  const wrap = document.createElement('div');
  wrap.className = 'density';
  wrap.append(`${formatPercent(report.meanDensity ?? 1)} kept · per layer `);
  for (const [l, v] of d.entries()) {
    const bar = document.createElement('span');
    bar.className = 'density-bar';
    bar.title = `layer ${l + 1}: ${formatPercent(v)} of the causal query-key pairs`;
    const fill = document.createElement('i');
    fill.style.height = `${Math.max(2, v * 100).toFixed(0)}%`;
    bar.append(fill);
    wrap.append(bar);
  }
  wrap.append(` ${d.map((v) => `${(v * 100).toFixed(0)}%`).join(' ')}`);
  return wrap;
}

function verdictText(text: string): string {
  if (expectedValue === undefined) return '';
  return answerIsCorrect(text, expectedValue) ? 'right' : 'wrong';
}

const SHARE_NAMES = { attention: 'attention', estimation: 'index estimation', matmul: 'matmuls', other: 'other' } as const;

function showReport(results: PassResult[], load: { totalMs: number; readMs: number; uploadMs: number; compileMs: number } | undefined, reused: boolean): void {
  const head = document.createElement('thead');
  const hr = document.createElement('tr');
  hr.append(cell('th', ''));
  for (const r of results) hr.append(cell('th', r.pass === 'dense' ? 'Dense' : 'Sparse'));
  head.append(hr);
  const body = document.createElement('tbody');
  const addRow = (label: string, f: (r: PassResult) => string | Node): void => {
    const tr = document.createElement('tr');
    tr.dataset.row = label;
    tr.append(cell('th', label));
    for (const r of results) tr.append(cell('td', f(r)));
    body.append(tr);
  };
  if (expectedValue !== undefined) addRow('Answer', (r) => `${verdictText(r.text)} (expected “${expectedValue}”)`);
  addRow('Attention used', (r) => describeAttention(r.patterns, r.report, r.denseBelow));
  addRow('Kept density', (r) => (r.report.attentionMode === 'sparse' ? densityBars(r.report) : '100% (every causal query-key pair)'));
  addRow('Prompt', (r) => `${plural(r.report.promptTokens, 'token')}, ${r.report.attentionCompute === 'sgmatrix' ? 'tensor cores' : 'f32'}, chunks of ${formatCount(r.report.chunkSize)}`);
  addRow('Prefill time', (r) => formatMs(r.report.prefillMs));
  addRow('Prefill speed', (r) => formatRate(r.report.prefillTokensPerSecond, 'tok/s'));
  addRow('Time to first token', (r) => formatMs(r.report.timeToFirstTokenMs));
  addRow('Decode', (r) => {
    const n = r.report.generatedTokens;
    const why = r.stop === 'stop_token' ? 'end-of-sequence token' : 'max new tokens';
    if (n <= 1) return `${plural(n, 'token')} (from the prefill logits; stopped: ${why})`;
    return `${plural(n, 'token')} in ${formatMs(r.report.decodeMs)}, ${formatRate(r.report.decodeTokensPerSecond, 'tok/s')} (stopped: ${why})`;
  });
  addRow('Peak GPU memory', (r) => `${formatBytes(r.report.peakGpuBytes)} (weights ${formatBytes(r.report.weightBytes)}, activations + KV cache ${formatBytes(r.report.peakActivationBytes)})`);
  addRow('GPU time', (r) => {
    const ms = r.report.gpuMs;
    const share = r.report.gpuShare;
    if (!ms || !share) return 'not measured (this device has no timestamp queries)';
    return (Object.keys(SHARE_NAMES) as (keyof typeof SHARE_NAMES)[]).map((k) => `${SHARE_NAMES[k]} ${formatMs(ms[k])} (${formatPercent(share[k])})`).join(', ');
  });
  if (load) {
    const tr = document.createElement('tr');
    tr.dataset.row = 'Model load';
    tr.append(cell('th', 'Model load'));
    const td = cell('td', reused ? `already loaded (it took ${formatMs(load.totalMs)})` : `${formatMs(load.totalMs)}: read ${formatMs(load.readMs)}, upload ${formatMs(load.uploadMs)}, compile ${formatMs(load.compileMs)}`);
    td.colSpan = results.length;
    tr.append(td);
    body.append(tr);
  }
  ui.report.replaceChildren(head, body);
  ui.report.dataset.ready = '1';
  ui.shares.hidden = true;
}

function compareSummary(results: PassResult[]): string {
  const dense = results.find((r) => r.pass === 'dense');
  const sparse = results.find((r) => r.pass === 'sparse');
  if (!dense || !sparse) return '';
  if (sparse.report.attentionMode === 'dense') return `Both passes ran dense: ${describeAttention(sparse.patterns, sparse.report, sparse.denseBelow)}.`;
  const speedup = dense.report.prefillMs / sparse.report.prefillMs;
  const agree = dense.text === sparse.text ? 'the answers agree' : 'the answers differ';
  return `Sparse prefill ${formatMs(sparse.report.prefillMs)} against dense ${formatMs(dense.report.prefillMs)}: ${speedup.toFixed(2)}× the speed, computing ${formatPercent(sparse.report.meanDensity ?? 1)} of the causal query-key pairs; ${agree}.`;
}

function showAdapter(info?: { config: { architecture: string; numLayers: number; hiddenSize: number; numHeads: number; numKvHeads: number; headDim: number; vocabSize: number; torchDtype: string }; weightBytes: number }): void {
  if (!caps) return;
  const c = caps;
  const a = c.adapter;
  const items: [string, string][] = [
    ['Adapter', [a.description, a.vendor, a.architecture, a.device].filter(Boolean).join(' · ') || 'unnamed adapter'],
    ['Kind', c.software ? 'software (runs on the CPU)' : 'hardware GPU'],
    ['Runtime', `${c.runtime} (model in a Web Worker)`],
    ['shader-f16', c.f16 ? 'yes' : 'no'],
    ['Subgroups', c.subgroups ? `yes (${c.subgroupMinSize}–${c.subgroupMaxSize})` : 'no'],
    ['Subgroup matrices', c.subgroupMatrix ? `yes (${plural(c.subgroupMatrixConfigs.length, 'config')})` : 'no'],
    ['Timestamp queries', c.timestamps ? 'yes' : 'no'],
    ['Max storage binding', formatBytes(c.limits.maxStorageBufferBindingSize)],
    ['Max buffer', formatBytes(c.limits.maxBufferSize)],
    ['Workgroup memory', formatBytes(c.limits.maxComputeWorkgroupStorageSize)],
  ];
  if (info) {
    const m = info.config;
    items.push([
      'Model',
      `${m.architecture}: ${plural(m.numLayers, 'layer')}, hidden ${formatCount(m.hiddenSize)}, ${plural(m.numHeads, 'head')} (${m.numKvHeads} KV) × ${m.headDim}, vocabulary ${formatCount(m.vocabSize)}, ${m.torchDtype}, weights ${formatBytes(info.weightBytes)}`,
    ]);
  }
  const out: HTMLElement[] = [];
  for (const [k, v] of items) {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v;
    out.push(dt, dd);
  }
  ui.adapter.replaceChildren(...out);
}

/** What to do about a run estimated at more than a minute. */
function longRunAdvice(mode: RunMode): string {
  const fewer = mode === 'compare' ? 'Dense only or Sparse only runs one pass of the two; ' : '';
  if (caps?.software && documentName !== 'short') return `The short document finishes in under a minute on this adapter; ${fewer}Cancel stops this run.`;
  return `${fewer}Cancel stops this run.`;
}

function showEstimate(e: RunEstimate, mode: RunMode): void {
  const cal = e.calibration;
  const rate = `measured here: a ${cal.tokens}-token prefill took ${formatMs(cal.prefillMs)}, a decode step ${formatMs(cal.decodeStepMs)}`;
  const passes = mode === 'compare' ? ' (dense and sparse passes)' : '';
  const long = e.totalMs > LONG_RUN_MS;
  ui.estimate.textContent =
    `${long ? '⚠ Long run: ' : ''}estimated ${formatMs(e.totalMs)} for ${plural(e.promptTokens, 'prompt token')}${passes}, ${rate}.` +
    (long ? ` ${longRunAdvice(mode)}` : '');
  ui.estimate.classList.toggle('warn', long);
  ui.out.dataset.estimateMs = String(Math.round(e.totalMs));
}

// --------------------------------------------------------------------------------------------- run

let nextId = 1;
/** The request in progress (one at a time): a run, a search or a picture. */
let running: { id: number; what: 'run' | 'search' | 'picture'; cancelTimer?: ReturnType<typeof setTimeout>; finish: (state: PageState) => void } | undefined;
/** The opened model's shape (from the worker's 'model' message): bounds the picture's layer and head. */
let modelShape: { numLayers: number; numHeads: number } | undefined;

/**
 * Makes request `id` the one in progress: its messages go to `onMessage` until `finish` is called,
 * and the page is busy (Run, Search and Draw disabled, Cancel enabled) meanwhile.
 */
function track(id: number, what: NonNullable<typeof running>['what'], onMessage: (m: WorkerToPage) => void): (state: PageState) => void {
  const handler = (m: WorkerToPage): void => {
    if ('id' in m && m.id === id) onMessage(m);
  };
  const finish = (state: PageState): void => {
    if (running?.id !== id) return;
    if (running.cancelTimer) clearTimeout(running.cancelTimer);
    running = undefined;
    listeners.delete(handler);
    setState(state);
  };
  running = { id, what, finish };
  listeners.add(handler);
  setState('running');
  return finish;
}

/**
 * The end of a request: 'done' (with `doneDetail` before the total time), 'cancelled' and 'error'
 * update the progress line and finish it, after the request's own `cancelled` / `error` touches;
 * true if `m` was one of them.
 */
function endMessage(
  m: WorkerToPage,
  finish: (state: PageState) => void,
  t0: number,
  doneDetail: string,
  on: { cancelled?: () => void; error?: () => void } = {},
): boolean {
  switch (m.type) {
    case 'done':
      setProgress(1, 'Done', `${doneDetail} · ${formatMs(performance.now() - t0)} in all`, true);
      finish('done');
      return true;
    case 'cancelled':
      setProgress(0, 'Cancelled', `stopped at the next step after ${formatMs(performance.now() - t0)}`);
      on.cancelled?.();
      finish('cancelled');
      return true;
    case 'error':
      on.error?.();
      requestFailed(m.error);
      finish('error');
      return true;
    default:
      return false;
  }
}

/** The messages every request gets while the model opens; true if `m` was one of them. */
function modelMessage(m: WorkerToPage, modelKey: string, t0: number): boolean {
  switch (m.type) {
    case 'phase':
      setProgress(m.fraction, m.phase, m.detail);
      return true;
    case 'compile':
      setProgress(m.done / m.total, 'Compiling kernels', `${m.done}/${m.total} · ${formatMs(performance.now() - t0)}`);
      return true;
    case 'model': {
      loadedKey = modelKey;
      const c = m.info.config;
      modelShape = { numLayers: c.numLayers, numHeads: c.numHeads };
      ui.pictureLayer.max = String(c.numLayers - 1);
      ui.pictureHead.max = String(c.numHeads - 1);
      ui.pictureRange.textContent = `layers 0–${c.numLayers - 1}, heads 0–${c.numHeads - 1} (0-based, as in the config)`;
      showAdapter(m.info);
      ui.modelStatus.textContent = `Loaded in ${formatMs(m.info.load.totalMs)} (read ${formatMs(m.info.load.readMs)}, upload ${formatMs(m.info.load.uploadMs)}, compile ${formatMs(m.info.load.compileMs)}); kept for the next runs.`;
      return true;
    }
    default:
      return false;
  }
}

/** A request's error, shown; the bundled model's absence gets a hint. */
function requestFailed(error: Extract<WorkerToPage, { type: 'error' }>['error']): void {
  setProgress(0, 'Failed', '');
  showError(errorFromInfo(error), kind === 'default' && /missing file config\.json/.test(error.message) ? 'The bundled model is not where the page expects it (models/needle-reader/ next to the page).' : undefined);
}

function readInputs(): { documentText: string; question: string; maxNewTokens: number; mode: RunMode; denseBelow: number; sparse: SparseChoice } {
  const documentText = ui.document.value;
  const question = ui.question.value.trim();
  if (!documentText.trim()) throw new BadInputError('the document is empty: paste one, or load the long or the short document');
  if (!question) throw new BadInputError('the question is empty: type a question about the document');
  const maxNewTokens = Number(ui.maxNewTokens.value);
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1 || maxNewTokens > 512) {
    throw new BadInputError(`max new tokens must be a whole number from 1 to 512, got "${ui.maxNewTokens.value}"`);
  }
  const mode = ui.attention.value as RunMode;
  // Dense alone needs no sparse pattern: the default stands in, unused.
  const sparse: SparseChoice = mode === 'dense' ? { pattern: PATTERNS['vs-default']! } : sparseRequest();
  return { documentText, question, maxNewTokens, mode, denseBelow: denseBelowValue(), sparse };
}

function run(): void {
  if (running) return;
  clearError();
  reportPlaceholder('Running…');
  ui.report.dataset.ready = '';
  ui.out.dataset.tokens = '0';
  ui.out.dataset.prefillFraction = '';
  setProgress(0, 'Starting', '');
  let inputs: ReturnType<typeof readInputs>;
  let model: ReturnType<typeof modelSpec>;
  try {
    inputs = readInputs();
    model = modelSpec(currentChoice());
  } catch (e) {
    setProgress(0, 'Failed', '');
    reportPlaceholder('No report: the run did not start (see the error above).');
    showError(e);
    setState('error');
    return;
  }
  resetPasses(inputs.mode);
  const id = nextId++;
  const results: PassResult[] = [];
  let load: PassResult['report']['load'];
  let reused = false;
  const t0 = performance.now();

  const finish = track(id, 'run', (m: WorkerToPage): void => {
    if (m.type === 'model') {
      load = m.info.load;
      reused = m.reused;
    }
    if (modelMessage(m, model.key, t0)) return;
    switch (m.type) {
      case 'estimate':
        showEstimate(m.estimate, inputs.mode);
        break;
      case 'prefill': {
        const p = m.progress;
        ui.out.dataset.prefillFraction = String(p.fraction);
        const layer = p.layer < p.numLayers ? `layer ${p.layer + 1}/${p.numLayers}` : 'final norm + logits';
        const left = p.fraction > 0.02 && p.fraction < 1 ? ` · about ${formatMs((p.elapsedMs / p.fraction) * (1 - p.fraction))} left` : '';
        setProgress(p.fraction, `Prefill (${m.pass})`, `${formatCount(p.tokensDone)} / ${formatCount(p.totalTokens)} tokens · ${layer} · ${formatMs(p.elapsedMs)}${left}`, p.fraction >= 1);
        break;
      }
      case 'token': {
        const b = passBox(m.pass);
        b.answer.textContent += m.text;
        const n = Number(b.box.dataset.tokens ?? '0') + 1;
        b.box.dataset.tokens = String(n);
        ui.out.dataset.tokens = String(Number(ui.out.dataset.tokens ?? '0') + 1);
        b.meta.textContent = `${plural(n, 'token')} so far`;
        setProgress(1, `Generating (${m.pass})`, `${n} / ${inputs.maxNewTokens} tokens`, true);
        break;
      }
      case 'result': {
        results.push(m.result);
        const b = passBox(m.result.pass);
        if (!b.answer.textContent) b.answer.textContent = m.result.text;
        const r = m.result.report;
        b.meta.textContent = `${plural(r.generatedTokens, 'token')} · prefill ${formatMs(r.prefillMs)} · ${describeAttention(m.result.patterns, r, m.result.denseBelow)}`;
        const v = verdictText(m.result.text);
        b.verdict.textContent = v;
        b.verdict.className = `verdict ${v}`;
        showReport(results, load, reused);
        ui.compareSummary.textContent = compareSummary(results);
        break;
      }
      default:
        endMessage(m, finish, t0, plural(results[0]?.report.promptTokens ?? 0, 'prompt token'), {
          cancelled: () => {
            if (results.length === 0) reportPlaceholder('No report: the run was cancelled.');
          },
          error: () => {
            if (results.length === 0) reportPlaceholder('No report: the run failed (see the error above).');
          },
        });
    }
  });
  const req: RunRequest = { type: 'run', id, model: model.spec, modelKey: model.key, document: inputs.documentText, question: inputs.question, maxNewTokens: inputs.maxNewTokens, mode: inputs.mode, sparse: inputs.sparse, denseBelow: inputs.denseBelow };
  getWorker().postMessage(req);
}

function cancel(): void {
  const r = running;
  if (!r) return;
  worker?.postMessage({ type: 'cancel', id: r.id });
  ui.phase.textContent = `${ui.phase.textContent} (cancelling…)`;
  // A step that outlasts the grace period (a long compile, a huge chunk on a CPU adapter) is not
  // waited for: the worker is terminated, which frees its device.
  r.cancelTimer ??= setTimeout(() => {
    if (running?.id !== r.id) return;
    terminateWorker();
    setProgress(0, 'Cancelled', `the worker was stopped after ${formatMs(CANCEL_GRACE_MS)} without reaching a step boundary; the model loads again on the next run`);
    if (r.what === 'run') reportPlaceholder('No report: the run was cancelled.');
    r.finish('cancelled');
  }, CANCEL_GRACE_MS);
}

// ---------------------------------------------------------------------------- search and picture

/** The last finished search: its config is the sparse choice "searched" and the picture's patterns. */
let searched: { name: string; json: string; outcome: SearchOutcome } | undefined;
let downloadUrl: string | undefined;

function documentValue(): string {
  const text = ui.document.value;
  if (!text.trim()) throw new BadInputError('the document is empty: paste one, or load the long or the short document');
  return text;
}

/** A request that could not start: the error, and the page idle again. */
function notStarted(e: unknown): void {
  setProgress(0, 'Failed', '');
  showError(e);
  setState('error');
}

function showSearchResult(o: SearchOutcome, heads: number): void {
  searched = { name: 'searched-patterns.json', json: o.json, outcome: o };
  if (downloadUrl) URL.revokeObjectURL(downloadUrl);
  downloadUrl = URL.createObjectURL(new Blob([o.json], { type: 'application/json' }));
  const link = document.createElement('a');
  link.id = 'search-download';
  link.href = downloadUrl;
  link.download = searched.name;
  link.textContent = 'download config';
  ui.searchResult.replaceChildren(
    `${searchOutcomeText(o, heads)} It is selected as the sparse pattern for the next Run, and the picture below shows its patterns. `,
    link,
    " (MInference's per-layer, per-head JSON; the CLI's run --pattern-config and MInference load it).",
  );
  ui.searchedOption.disabled = false;
  ui.searchedOption.textContent = `Searched for this document: mean recall ${o.meanRecall.toFixed(3)}`;
  ui.pattern.value = 'searched';
  updateAttentionHint();
}

function searchDocument(): void {
  if (running) return;
  clearError();
  let documentText: string;
  let model: ReturnType<typeof modelSpec>;
  try {
    documentText = documentValue();
    model = modelSpec(currentChoice());
  } catch (e) {
    notStarted(e);
    return;
  }
  const id = nextId++;
  const t0 = performance.now();
  let plan: SearchPlan | undefined;
  ui.searchPlan.textContent = '';
  ui.searchLayers.replaceChildren();
  ui.searchResult.textContent = '';
  setProgress(0, 'Starting', '');
  const finish = track(id, 'search', (m) => {
    if (modelMessage(m, model.key, t0)) return;
    switch (m.type) {
      case 'search-plan':
        plan = m.plan;
        ui.searchPlan.textContent = searchPlanText(m.plan);
        break;
      case 'search-progress': {
        const t = searchProgressText(m.progress);
        setProgress(m.progress.fraction, t.phase, t.detail);
        break;
      }
      case 'search-layer': {
        const li = document.createElement('li');
        li.textContent = formatLayerSummary(m.layer, plan?.numLayers ?? modelShape?.numLayers ?? 0);
        ui.searchLayers.append(li);
        break;
      }
      case 'search-result':
        showSearchResult(m.outcome, plan ? plan.numLayers * plan.numHeads : 0);
        break;
      default:
        endMessage(m, finish, t0, 'pattern search', {
          cancelled: () => (ui.searchResult.textContent = 'The search was cancelled: no config (the layers listed above were searched).'),
        });
    }
  });
  const req: SearchRequest = { type: 'search', id, model: model.spec, modelKey: model.key, document: documentText };
  getWorker().postMessage(req);
}

function drawMap(canvas: HTMLCanvasElement, map: Float32Array, p: AttentionPicture): void {
  canvas.width = p.bins;
  canvas.height = p.rows;
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new Error('this browser gives no 2D canvas context');
  ctx.putImageData(new ImageData(new Uint8ClampedArray(pictureImage(map, p.rows, p.bins)), p.bins, p.rows), 0, 0);
}

function showPicture(p: AttentionPicture, source: string): void {
  drawMap(ui.pictureDense, p.dense, p);
  drawMap(ui.pictureKept, p.keptMass, p);
  ui.pictures.hidden = false;
  ui.pictureLegend.hidden = false;
  const keys = p.binKeys === 1 ? 'one key per pixel column' : `${formatCount(p.binKeys)} keys per pixel column`;
  ui.pictureCaption.textContent =
    `Layer ${p.layer}, head ${p.head}, ${patternName(p.pattern)} (${source}): ${pictureCaption(p)} ` +
    `of the last query block (rows ${formatCount(p.rowStart)}–${formatCount(p.promptTokens - 1)} of ${formatCount(p.promptTokens)} tokens; ${keys}).`;
  ui.pictureCaption.dataset.ready = '1';
}

function drawPicture(): void {
  if (running) return;
  clearError();
  let req: PictureRequest;
  let source: string;
  let model: ReturnType<typeof modelSpec>;
  try {
    const documentText = documentValue();
    const { layer, head } = pictureHead(ui.pictureLayer.value, ui.pictureHead.value, modelShape?.numLayers, modelShape?.numHeads);
    // The searched config's pattern for the head if there is one, else the page's sparse choice.
    const sparse: SparseChoice = searched ? { configName: searched.name, configText: searched.json } : sparseRequest();
    source = searched ? 'the searched config' : sparseName();
    model = modelSpec(currentChoice());
    req = { type: 'picture', id: nextId++, model: model.spec, modelKey: model.key, document: documentText, layer, head, sparse, bins: PICTURE_BINS };
  } catch (e) {
    notStarted(e);
    return;
  }
  const t0 = performance.now();
  ui.pictureCaption.dataset.ready = '';
  ui.pictureCaption.textContent = 'Drawing…';
  setProgress(0, 'Starting', '');
  const finish = track(req.id, 'picture', (m) => {
    if (modelMessage(m, model.key, t0)) return;
    switch (m.type) {
      case 'picture':
        showPicture(m.picture, source);
        break;
      default:
        endMessage(m, finish, t0, 'attention picture', {
          cancelled: () => (ui.pictureCaption.textContent = 'Cancelled.'),
          error: () => (ui.pictureCaption.textContent = ''),
        });
    }
  });
  getWorker().postMessage(req);
}

ui.pictureRamp.style.background = rampGradient();
ui.search.addEventListener('click', searchDocument);
ui.draw.addEventListener('click', drawPicture);
ui.run.addEventListener('click', run);
ui.cancel.addEventListener('click', cancel);
ui.question.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ui.run.disabled) run();
});

// ------------------------------------------------------------------------------------------- start

const params = new URLSearchParams(location.search);
const modelParam = params.get('model');
if (modelParam) {
  ui.modelUrl.value = modelParam;
  setKind('url');
} else {
  setKind('default');
}
if (params.get('max')) ui.maxNewTokens.value = params.get('max')!;
const attentionParam = params.get('attention');
if (attentionParam === 'dense' || attentionParam === 'sparse' || attentionParam === 'compare') ui.attention.value = attentionParam;
const patternParam = params.get('pattern');
if (patternParam && patternParam in PATTERNS) ui.pattern.value = patternParam;
if (params.get('denseBelow')) ui.denseBelow.value = params.get('denseBelow')!;
updateAttentionHint();
setState('idle');
if (!('gpu' in navigator)) {
  showError(new Error('this browser has no WebGPU (navigator.gpu is missing): use a recent Chrome or Edge, or Firefox/Safari with WebGPU enabled'));
}
try {
  const doc = params.get('doc');
  if (doc === 'short' || doc === 'long') await loadDocument(doc);
} catch (e) {
  showError(e);
}
if (params.has('q')) ui.question.value = params.get('q')!;
// The worker opens the GPU now (no model yet): the adapter's kind picks the document and pattern.
if ('gpu' in navigator) getWorker().postMessage({ type: 'adapter' });
ui.out.dataset.ready = '1';
