/**
 * The long-document demo page: pick a model, load a document, ask, and watch weight loading,
 * prefill progress, the streamed answer and the run report. Plain DOM; see index.html.
 *
 * URL parameters (for links and tests): ?model=URL (use that model URL), ?doc=tiny (the tiny
 * generated document), ?q=QUESTION, ?max=N (max new tokens), ?attention=dense|sparse.
 */
import { requestGpu } from '../src/gpu/device.ts';
import type { Gpu } from '../src/gpu/gpu.ts';
import { BadInputError } from '../src/gpu/errors.ts';
import { parseModelConfig } from '../src/model/config.ts';
import { readJson, type ModelSource } from '../src/model/source.ts';
import { openModel, type OpenModel } from '../src/model/session.ts';
import type { Pattern } from '../src/attention/types.ts';
import { defaultPatterns } from '../src/attention/config.ts';
import type { PrefillProgress, RunReport } from '../src/model/report.ts';
import type { LoadProgress } from '../src/model/weights.ts';
import { makeDocument, TINY_DOCUMENT_WORDS } from '../scripts/make-document.ts';
import defaultMeta from './assets/default-document.json';
import { DEFAULT_MODEL_PATH, modelSourceFor, summarizeFiles, type ModelChoice } from './model-choice.ts';
import { countWords, describeError, formatBytes, formatCount, formatMs, formatPercent, formatRate } from './format.ts';

const DEFAULT_DOCUMENT_URL = new URL('./assets/default-document.txt', import.meta.url).href;

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
  docBundled: $<HTMLButtonElement>('doc-bundled'),
  docTiny: $<HTMLButtonElement>('doc-tiny'),
  docFile: $<HTMLInputElement>('doc-file'),
  docStats: $<HTMLElement>('doc-stats'),
  document: $<HTMLTextAreaElement>('document'),
  question: $<HTMLInputElement>('question'),
  maxNewTokens: $<HTMLInputElement>('max-new-tokens'),
  attention: $<HTMLSelectElement>('attention'),
  attentionFile: $<HTMLInputElement>('attention-file'),
  attentionHint: $<HTMLElement>('attention-hint'),
  expected: $<HTMLElement>('expected'),
  run: $<HTMLButtonElement>('run'),
  cancel: $<HTMLButtonElement>('cancel'),
  out: $<HTMLElement>('out-card'),
  fill: $<HTMLElement>('progress-fill'),
  phase: $<HTMLElement>('progress-phase'),
  detail: $<HTMLElement>('progress-detail'),
  error: $<HTMLElement>('error'),
  answer: $<HTMLElement>('answer'),
  answerMeta: $<HTMLElement>('answer-meta'),
  report: $<HTMLTableElement>('report'),
  shares: $<HTMLElement>('shares'),
  adapter: $<HTMLElement>('adapter'),
};

// ------------------------------------------------------------------------------------ model choice

let kind: ModelChoice['kind'] = 'default';
ui.defaultUrl.textContent = `${DEFAULT_MODEL_PATH}/`;

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
    `${s.folder || 'folder'}: ${s.count} files, ${formatBytes(s.bytes)}, ${s.safetensors} safetensors file${s.safetensors === 1 ? '' : 's'}` +
    (missing.length ? ` (missing ${missing.join(', ')})` : '');
});

function currentChoice(): ModelChoice {
  if (kind === 'folder') return { kind, files: ui.folder.files ?? [] };
  if (kind === 'url') return { kind, url: ui.modelUrl.value };
  return { kind: 'default', url: DEFAULT_MODEL_PATH };
}

/** Identity of a choice, to reuse an opened model across runs. */
function choiceKey(c: ModelChoice): string | FileList | ArrayLike<File> {
  return c.kind === 'folder' ? c.files : `${c.kind}:${c.url.trim()}`;
}

// ---------------------------------------------------------------------------------------- document

function showDocStats(): void {
  const text = ui.document.value;
  ui.docStats.textContent = text ? `${formatCount(countWords(text))} words, ${formatCount(text.length)} characters` : 'empty';
}
ui.document.addEventListener('input', showDocStats);

function setDocument(text: string, question?: string, expectedAnswer?: string): void {
  ui.document.value = text;
  showDocStats();
  if (question !== undefined) ui.question.value = question;
  ui.expected.textContent = expectedAnswer ? `Planted answer: “${expectedAnswer}” (a real model should find it; the random default model cannot).` : '';
}

async function loadBundled(): Promise<void> {
  ui.docStats.textContent = 'loading…';
  const res = await fetch(DEFAULT_DOCUMENT_URL);
  if (!res.ok) throw new BadInputError(`could not load the bundled document (${DEFAULT_DOCUMENT_URL}: HTTP ${res.status})`);
  setDocument(await res.text(), defaultMeta.question, defaultMeta.expectedAnswer);
}

function loadTiny(): void {
  const d = makeDocument({ words: TINY_DOCUMENT_WORDS, seed: 1, needleDepth: 0.5 });
  setDocument(d.text, d.question, d.expectedAnswer);
}

ui.docBundled.addEventListener('click', () => {
  loadBundled().catch(showError);
});
ui.docTiny.addEventListener('click', loadTiny);
ui.docFile.addEventListener('change', () => {
  const f = ui.docFile.files?.[0];
  if (!f) return;
  f.text()
    .then((t) => setDocument(t, undefined, undefined))
    .catch(showError);
  ui.docFile.value = '';
});

// --------------------------------------------------------------------------------------- attention

let patternFile: { name: string; text: string } | undefined;
ui.attention.addEventListener('change', () => {
  if (ui.attention.value === 'config') ui.attentionFile.click();
  updateAttentionHint();
});
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
function updateAttentionHint(): void {
  const mode = ui.attention.value;
  if (mode === 'dense') ui.attentionHint.textContent = 'Dense causal attention over the whole prompt (exact; the reference for the sparse modes).';
  else if (mode === 'config') ui.attentionHint.textContent = patternFile ? `Pattern config: ${patternFile.name}. Prompts under 8,192 tokens still run dense.` : 'Choose an MInference *_best_pattern.json file.';
  else ui.attentionHint.textContent = 'Prompts under 8,192 tokens always run dense attention (index estimation costs about what it saves there).';
}

/** The runner's attentionConfig for the chosen mode, for a model of this shape. */
function attentionConfigFor(mode: string, layers: number, heads: number): Pattern[][] | string | undefined {
  if (mode === 'dense') return undefined;
  if (mode === 'config') {
    if (!patternFile) throw new BadInputError('attention mode "pattern config" is selected but no config file was chosen');
    return patternFile.text;
  }
  return defaultPatterns({ layers, heads });
}

// ------------------------------------------------------------------------------------------ output

type PageState = 'idle' | 'running' | 'done' | 'error' | 'cancelled';
function setState(s: PageState): void {
  ui.out.dataset.state = s;
  const running = s === 'running';
  ui.run.disabled = running;
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

function row(label: string, value: string): HTMLTableRowElement {
  const tr = document.createElement('tr');
  const th = document.createElement('th');
  th.textContent = label;
  const td = document.createElement('td');
  td.textContent = value;
  tr.append(th, td);
  return tr;
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

const SHARE_COLOURS: Record<string, string> = { attention: '#2f6fde', estimation: '#e39b2d', matmul: '#2e9e5b', other: '#9aa3b2' };
const SHARE_NAMES: Record<string, string> = { attention: 'attention', estimation: 'index estimation', matmul: 'matmuls', other: 'other' };

function showReport(r: RunReport, extra: { loadMs?: number; stop: string; model: OpenModel }): void {
  const body = document.createElement('tbody');
  body.append(
    row('Prompt', `${formatCount(r.promptTokens)} tokens, ${r.attentionMode} attention (${r.attentionCompute === 'sgmatrix' ? 'tensor cores' : 'f32'}), chunks of ${formatCount(r.chunkSize)}`),
    row('Prefill time', formatMs(r.prefillMs)),
    row('Prefill speed', formatRate(r.prefillTokensPerSecond, 'tok/s')),
    row('Time to first token', formatMs(r.timeToFirstTokenMs)),
    row('Decode', `${formatCount(r.generatedTokens)} tokens in ${formatMs(r.decodeMs)}, ${formatRate(r.decodeTokensPerSecond, 'tok/s')} (stopped: ${extra.stop === 'stop_token' ? 'end-of-sequence token' : 'max new tokens'})`),
    row('Peak GPU memory', `${formatBytes(r.peakGpuBytes)} (weights ${formatBytes(r.weightBytes)}, activations + KV cache ${formatBytes(r.peakActivationBytes)})`),
  );
  if (extra.loadMs !== undefined) body.append(row('Model load', formatMs(extra.loadMs)));
  if (r.gpuShare && r.gpuMs) {
    const s = r.gpuShare;
    body.append(row('GPU time shares', `attention ${formatPercent(s.attention)}, index estimation ${formatPercent(s.estimation)}, matmuls ${formatPercent(s.matmul)}, other ${formatPercent(s.other)}`));
    const bar = document.createElement('div');
    bar.className = 'shares';
    const legend = document.createElement('div');
    legend.className = 'legend';
    for (const k of ['attention', 'estimation', 'matmul', 'other'] as const) {
      const seg = document.createElement('div');
      seg.style.width = `${(s[k] * 100).toFixed(2)}%`;
      seg.style.background = SHARE_COLOURS[k]!;
      seg.title = `${SHARE_NAMES[k]}: ${formatPercent(s[k])} (${formatMs(r.gpuMs[k])})`;
      bar.append(seg);
      const item = document.createElement('span');
      const dot = document.createElement('i');
      dot.style.background = SHARE_COLOURS[k]!;
      item.append(dot, `${SHARE_NAMES[k]} ${formatPercent(s[k])}`);
      legend.append(item);
    }
    ui.shares.replaceChildren(bar, legend);
    ui.shares.hidden = false;
  } else {
    body.append(row('GPU time shares', 'not measured (this device has no timestamp queries)'));
    ui.shares.hidden = true;
  }
  ui.report.replaceChildren(body);
  ui.report.dataset.ready = '1';
}

function dlItems(items: [string, string][]): HTMLElement[] {
  const out: HTMLElement[] = [];
  for (const [k, v] of items) {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v;
    out.push(dt, dd);
  }
  return out;
}

function showAdapter(gpu: Gpu, model?: OpenModel): void {
  const c = gpu.caps;
  const a = c.adapter;
  const items: [string, string][] = [
    ['Adapter', [a.description, a.vendor, a.architecture, a.device].filter(Boolean).join(' · ') || 'unnamed adapter'],
    ['Runtime', c.runtime],
    ['shader-f16', c.f16 ? 'yes' : 'no'],
    ['Subgroups', c.subgroups ? `yes (${c.subgroupMinSize}–${c.subgroupMaxSize})` : 'no'],
    ['Subgroup matrices', c.subgroupMatrix ? `yes (${c.subgroupMatrixConfigs.length} configs)` : 'no'],
    ['Timestamp queries', c.timestamps ? 'yes' : 'no'],
    ['Max storage binding', formatBytes(c.limits.maxStorageBufferBindingSize)],
    ['Max buffer', formatBytes(c.limits.maxBufferSize)],
    ['Workgroup memory', formatBytes(c.limits.maxComputeWorkgroupStorageSize)],
  ];
  if (model) {
    const m = model.config;
    items.push([
      'Model',
      `${m.architecture}: ${m.numLayers} layers, hidden ${m.hiddenSize}, ${m.numHeads} heads (${m.numKvHeads} KV) × ${m.headDim}, vocab ${formatCount(m.vocabSize)}, ${m.torchDtype}, weights ${formatBytes(model.weights.bytes)}`,
    ]);
  }
  ui.adapter.replaceChildren(...dlItems(items));
}

// --------------------------------------------------------------------------------------------- run

/** "3 tokens: 271 271 13" (ids shown because a random-weight model's text is often just whitespace). */
function tokenSummary(ids: readonly number[]): string {
  const shown = ids.slice(0, 24).join(' ');
  return `${ids.length} token${ids.length === 1 ? '' : 's'}: ${shown}${ids.length > 24 ? ' …' : ''}`;
}

let gpuPromise: Promise<Gpu> | undefined;
let opened: { key: ReturnType<typeof choiceKey>; attention: string; model: OpenModel } | undefined;
let controller: AbortController | undefined;

function getGpu(): Promise<Gpu> {
  gpuPromise ??= requestGpu({ label: 'sparse-prefill demo' });
  gpuPromise.catch(() => (gpuPromise = undefined)); // let a later run retry
  return gpuPromise;
}

function readInputs(): { documentText: string; question: string; maxNewTokens: number } {
  const documentText = ui.document.value;
  const question = ui.question.value.trim();
  if (!documentText.trim()) throw new BadInputError('the document is empty: paste one, or load the bundled or tiny document');
  if (!question) throw new BadInputError('the question is empty: type a question about the document');
  const maxNewTokens = Number(ui.maxNewTokens.value);
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1 || maxNewTokens > 512) {
    throw new BadInputError(`max new tokens must be a whole number from 1 to 512, got "${ui.maxNewTokens.value}"`);
  }
  return { documentText, question, maxNewTokens };
}

async function ensureModel(gpu: Gpu, source: ModelSource, key: ReturnType<typeof choiceKey>, signal: AbortSignal): Promise<{ model: OpenModel; loadMs?: number }> {
  const attention = ui.attention.value === 'config' ? `config:${patternFile?.name ?? ''}:${patternFile?.text.length ?? 0}` : ui.attention.value;
  if (opened && opened.key === key && opened.attention === attention) return { model: opened.model };
  opened?.model.close();
  opened = undefined;
  setProgress(0, 'Reading model config', source.name);
  const config = parseModelConfig(await readJson(source, 'config.json'));
  const attentionConfig = attentionConfigFor(ui.attention.value, config.numLayers, config.numHeads);
  if (signal.aborted) throw new DOMException('cancelled', 'AbortError');
  const t0 = performance.now();
  const model = await openModel(gpu, source, {
    attentionConfig,
    profile: gpu.caps.timestamps,
    onLoadProgress: (p: LoadProgress) => {
      const f = p.totalBytes > 0 ? p.loadedBytes / p.totalBytes : 0;
      setProgress(f, signal.aborted ? 'Loading weights (cancels when loaded)' : 'Loading weights', `${formatBytes(p.loadedBytes)} / ${formatBytes(p.totalBytes)} · ${p.tensor} · ${formatMs(performance.now() - t0)}`);
    },
  });
  const loadMs = performance.now() - t0;
  opened = { key, attention, model };
  return { model, loadMs };
}

async function run(): Promise<void> {
  clearError();
  ui.answer.textContent = '';
  ui.answerMeta.textContent = '';
  reportPlaceholder('Running…');
  ui.shares.hidden = true;
  ui.report.dataset.ready = '';
  ui.out.dataset.tokens = '0';
  ui.out.dataset.prefillFraction = '';
  setProgress(0, 'Starting', '');
  controller = new AbortController();
  const signal = controller.signal;
  setState('running');
  try {
    const { documentText, question, maxNewTokens } = readInputs();
    const choice = currentChoice();
    const source = modelSourceFor(choice, location.href);
    setProgress(0, 'Requesting GPU', '');
    const gpu = await getGpu();
    showAdapter(gpu);
    const { model, loadMs } = await ensureModel(gpu, source, choiceKey(choice), signal);
    showAdapter(gpu, model);
    if (signal.aborted) throw new DOMException('cancelled', 'AbortError');

    let streamed = 0;
    const ids: number[] = [];
    let lastPrefill: PrefillProgress | undefined;
    setProgress(0, 'Tokenizing', '');
    const answer = await model.answer(documentText, question, {
      maxNewTokens,
      signal,
      onProgress: (p) => {
        lastPrefill = p;
        ui.out.dataset.prefillFraction = String(p.fraction);
        const layer = p.layer < p.numLayers ? `layer ${p.layer + 1}/${p.numLayers}` : 'final norm + logits';
        setProgress(p.fraction, 'Prefill', `${formatCount(p.tokensDone)} / ${formatCount(p.totalTokens)} tokens · ${layer} · ${formatMs(p.elapsedMs)}`, p.fraction >= 1);
      },
      onToken: (id, text) => {
        streamed++;
        ids.push(id);
        ui.answerMeta.textContent = tokenSummary(ids);
        ui.out.dataset.tokens = String(streamed);
        ui.answer.textContent += text;
        setProgress(1, 'Generating', `${streamed} / ${maxNewTokens} tokens`, true);
      },
    });
    const prefillDone = lastPrefill ? formatPercent(lastPrefill.fraction) : 'no progress reported';
    setProgress(1, 'Done', `prefill ${prefillDone} · ${formatCount(answer.promptTokens)} prompt tokens · ${answer.tokens.length} new tokens`, true);
    if (!ui.answer.textContent) ui.answer.textContent = answer.text;
    showReport(answer.report, { loadMs, stop: answer.stop, model });
    setState('done');
  } catch (e) {
    if (signal.aborted) {
      setProgress(0, 'Cancelled', describeError(e).detail);
      reportPlaceholder('No report: the run was cancelled.');
      setState('cancelled');
    } else {
      setProgress(0, 'Failed', '');
      reportPlaceholder('No report: the run failed (see the error above).');
      const missingDefault = kind === 'default' && /missing file config\.json/.test(describeError(e).detail);
      showError(e, missingDefault ? 'The default model is not set up: run `npx tsx scripts/setup-default.ts` and reload.' : undefined);
      setState('error');
    }
  } finally {
    controller = undefined;
  }
}

ui.run.addEventListener('click', () => void run());
ui.cancel.addEventListener('click', () => {
  controller?.abort();
  ui.phase.textContent = `${ui.phase.textContent} (cancelling…)`;
});
ui.question.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ui.run.disabled) void run();
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
if (attentionParam === 'dense' || attentionParam === 'sparse') ui.attention.value = attentionParam;
updateAttentionHint();
setState('idle');
if (!('gpu' in navigator)) {
  showError(new Error('this browser has no WebGPU (navigator.gpu is missing): use a recent Chrome or Edge, or Firefox/Safari with WebGPU enabled'));
}
try {
  if (params.get('doc') === 'tiny') loadTiny();
  else await loadBundled();
} catch (e) {
  showError(e);
}
if (params.has('q')) ui.question.value = params.get('q')!;
ui.out.dataset.ready = '1';
