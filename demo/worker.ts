/**
 * The demo's model runner, in a Web Worker (WebGPU works in workers): opens the GPU and the model,
 * measures this adapter's rate once, and answers the page's requests one at a time (demo/protocol.ts):
 * a run, pass by pass, posting progress, tokens and reports; a pattern search on the document
 * (src/search/search.ts), posting each layer as it is searched and the config at the end; a picture
 * of one head's attention (src/search/picture.ts). Nothing here blocks the page, whatever the
 * adapter; a cancel message aborts the request at its next step (one layer of one chunk, or one
 * candidate of the search).
 */
import { requestGpu } from '../src/gpu/device.ts';
import type { Gpu } from '../src/gpu/gpu.ts';
import { openFileListModel, openHttpModel, type ModelSource } from '../src/model/source.ts';
import { buildPrompt, openModel, resolveAttentionConfig, type OpenModel } from '../src/model/session.ts';
import type { Pattern } from '../src/attention/types.ts';
import { BadInputError } from '../src/gpu/errors.ts';
import type { ModelConfig } from '../src/model/config.ts';
import { DEFAULT_DENSE_BELOW } from '../src/model/executor.ts';
import { prepareSparse } from '../src/model/kernels.ts';
import { resolveSearchOptions, scoringPlan, searchPatterns } from '../src/search/search.ts';
import { paperSpaceScale, scaledPaperSpace } from '../src/search/space.ts';
import { attentionPicture } from '../src/search/picture.ts';
import { calibrate, estimateRun } from './estimate.ts';
import { SOFTWARE_SEARCH_ROWS } from './search-view.ts';
import {
  errorInfo,
  type Calibration,
  type ModelRequest,
  type PageToWorker,
  type Pass,
  type PassResult,
  type PictureRequest,
  type RunRequest,
  type SearchPlan,
  type SearchRequest,
  type SparseChoice,
  type WorkerToPage,
} from './protocol.ts';

/** The worker's global scope, as far as it is used here (the DOM lib has no worker types beside it). */
const scope = self as unknown as { postMessage(m: WorkerToPage): void; addEventListener(type: 'message', f: (ev: MessageEvent<PageToWorker>) => void): void };
const post = (m: WorkerToPage): void => scope.postMessage(m);

/** Tokens of the calibration prefill: long enough to be mostly arithmetic, short enough to take a few seconds on a CPU. */
const CALIBRATION_TOKENS = 64;
/**
 * Prefill chunk on software adapters: a step is one layer of one chunk, and Cancel and progress act
 * between steps; 512-token chunks keep a CPU step to seconds (the default, 2048, fills a GPU).
 */
const SOFTWARE_CHUNK = 512;

let gpuPromise: Promise<Gpu> | undefined;
let opened: { key: string; model: OpenModel; calibration?: Calibration } | undefined;
/** The run in progress: its id and the controller that cancels it. */
let current: { id: number; controller: AbortController } | undefined;

function getGpu(): Promise<Gpu> {
  gpuPromise ??= requestGpu({ label: 'sparse-prefill demo' });
  gpuPromise.catch(() => (gpuPromise = undefined)); // a later request retries
  return gpuPromise;
}

function sourceFor(spec: ModelRequest['model']): ModelSource {
  return spec.kind === 'url' ? openHttpModel(spec.url) : openFileListModel(spec.files, spec.folder || undefined);
}

function checkAborted(signal: AbortSignal): void {
  if (signal.aborted) throw new DOMException('cancelled', 'AbortError');
}

async function ensureModel(req: ModelRequest, gpu: Gpu, signal: AbortSignal): Promise<NonNullable<typeof opened>> {
  if (opened && opened.key === req.modelKey) {
    post({ type: 'model', id: req.id, info: { config: opened.model.config, weightBytes: opened.model.weights.bytes, load: opened.model.loadTimes }, reused: true });
    return opened;
  }
  opened?.model.close();
  opened = undefined;
  const source = sourceFor(req.model);
  post({ type: 'phase', id: req.id, phase: 'Reading the model', detail: source.name, fraction: 0 });
  const t0 = performance.now();
  const model = await openModel(gpu, source, {
    attentionConfig: 'dense',
    chunkSize: gpu.caps.software ? SOFTWARE_CHUNK : undefined,
    profile: gpu.caps.timestamps,
    onLoadProgress: (p) => {
      const f = p.totalBytes > 0 ? p.loadedBytes / p.totalBytes : 0;
      post({ type: 'phase', id: req.id, phase: 'Loading weights', detail: `${p.tensor} · ${((performance.now() - t0) / 1000).toFixed(1)} s`, fraction: f });
    },
    onCompileProgress: (done, total) => post({ type: 'compile', id: req.id, done, total }),
  });
  opened = { key: req.modelKey, model };
  post({ type: 'model', id: req.id, info: { config: model.config, weightBytes: model.weights.bytes, load: model.loadTimes }, reused: false });
  checkAborted(signal);
  return opened;
}

/** One short dense prefill and one decode step: this adapter's measured rate. */
async function ensureCalibration(req: RunRequest, o: NonNullable<typeof opened>, signal: AbortSignal): Promise<Calibration> {
  if (o.calibration) return o.calibration;
  post({ type: 'phase', id: req.id, phase: 'Measuring this adapter', detail: `a ${CALIBRATION_TOKENS}-token prefill and one decode step`, fraction: 0 });
  const ids = o.model.tokenizer.encode('The quick brown fox jumps over the lazy dog. '.repeat(CALIBRATION_TOKENS), { addSpecialTokens: false }).slice(0, CALIBRATION_TOKENS);
  o.model.setAttention('dense');
  const r = await o.model.runner.generate(Uint32Array.from(ids), { maxNewTokens: 2, stopTokens: [], signal });
  o.calibration = calibrate(o.model.config, ids.length, r.report.prefillMs, r.report.decodeMs);
  return o.calibration;
}

async function runPass(req: RunRequest, model: OpenModel, pass: Pass, sparse: Pattern[][] | undefined, promptTokens: number, signal: AbortSignal): Promise<void> {
  // Below the threshold the sparse pass runs dense: its kernels are not compiled for it.
  if (pass === 'dense' || !sparse || promptTokens < req.denseBelow) model.setAttention('dense');
  else model.setAttention(sparse, req.denseBelow);
  const a = await model.answer(req.document, req.question, {
    maxNewTokens: req.maxNewTokens,
    signal,
    onProgress: (progress) => post({ type: 'prefill', id: req.id, pass, progress }),
    onToken: (tokenId, text) => post({ type: 'token', id: req.id, pass, tokenId, text }),
  });
  const result: PassResult = {
    pass,
    text: a.text,
    tokens: a.tokens,
    stop: a.stop,
    report: a.report,
    patterns: pass === 'dense' || !sparse ? 'dense' : sparse,
    denseBelow: pass === 'dense' ? Number.POSITIVE_INFINITY : req.denseBelow,
  };
  post({ type: 'result', id: req.id, result });
}

/**
 * Runs one request: opens the GPU and the model (reused while the model key stays the same), then
 * `body`; it ends with 'done', 'cancelled' (after a cancel message) or 'error'.
 */
async function serve(req: ModelRequest, body: (gpu: Gpu, o: NonNullable<typeof opened>, signal: AbortSignal) => Promise<void>): Promise<void> {
  const controller = new AbortController();
  current = { id: req.id, controller };
  const signal = controller.signal;
  try {
    post({ type: 'phase', id: req.id, phase: 'Requesting GPU', detail: '', fraction: 0 });
    const gpu = await getGpu();
    checkAborted(signal);
    const o = await ensureModel(req, gpu, signal);
    await body(gpu, o, signal);
    post({ type: 'done', id: req.id });
  } catch (e) {
    if (signal.aborted) post({ type: 'cancelled', id: req.id });
    else post({ type: 'error', id: req.id, error: errorInfo(e) });
  } finally {
    if (current?.id === req.id) current = undefined;
  }
}

function run(req: RunRequest): Promise<void> {
  return serve(req, async (gpu, o, signal) => {
    const model = o.model;
    // Checked before anything runs: the prompt (empty document or question) and the sparse config.
    const ids = buildPrompt(model.tokenizer, req.document, req.question);
    const c = model.config;
    const sparse = 'pattern' in req.sparse ? resolveAttentionConfig(req.sparse.pattern, c) : resolveAttentionConfig(req.sparse.configText, c);
    // The sparse kernels compile before the estimate (on a CPU adapter they take seconds), so that it covers the run alone.
    if (req.mode !== 'dense' && sparse && ids.length >= req.denseBelow) {
      post({ type: 'phase', id: req.id, phase: 'Compiling the sparse kernels', detail: 'index estimation and sparse attention', fraction: 0 });
      await prepareSparse(gpu, c.headDim, model.runner.attentionCompute, sparse);
      checkAborted(signal);
    }
    const calibration = await ensureCalibration(req, o, signal);
    post({ type: 'estimate', id: req.id, estimate: estimateRun(calibration, c, ids.length, req.maxNewTokens, req.mode) });
    checkAborted(signal);
    const passes: Pass[] = req.mode === 'compare' ? ['dense', 'sparse'] : [req.mode];
    for (const pass of passes) await runPass(req, model, pass, sparse, ids.length, signal);
  });
}

/** The document's token ids, as the search and the picture read it (every token, as calibrationIds tokenizes). */
function documentIds(model: OpenModel, document: string): Uint32Array {
  if (!document.trim()) throw new BadInputError('the document is empty: paste one, or load the long or the short document');
  return Uint32Array.from(model.tokenizer.encode(document));
}

/** MInference's search with the document as calibration text, in the paper's space fitted to its length. */
function search(req: SearchRequest): Promise<void> {
  return serve(req, async (gpu, o, signal) => {
    const c = o.model.config;
    const ids = documentIds(o.model, req.document);
    const scale = paperSpaceScale(ids.length);
    const space = scaledPaperSpace(scale);
    // A CPU adapter scores fewer rows per head (see SOFTWARE_SEARCH_ROWS).
    const rows = gpu.caps.software ? SOFTWARE_SEARCH_ROWS : undefined;
    const options = resolveSearchOptions({ space, rows });
    const scoring = scoringPlan(ids.length, options); // also rejects a document too short to search
    const plan: SearchPlan = {
      promptTokens: ids.length,
      scale,
      space,
      budget: scoring.budget,
      scoredRows: scoring.rows.length,
      sampledRows: options.rows,
      firstRow: scoring.rows[0]!,
      numLayers: c.numLayers,
      numHeads: c.numHeads,
    };
    post({ type: 'search-plan', id: req.id, plan });
    const result = await searchPatterns(gpu, o.model, ids, {
      space,
      rows,
      signal,
      onProgress: (progress) => post({ type: 'search-progress', id: req.id, progress }),
      onLayer: (layer) => post({ type: 'search-layer', id: req.id, layer }),
    });
    post({ type: 'search-result', id: req.id, outcome: { promptTokens: result.promptTokens, scoredBlockSparseTopK: result.scoredBlockSparseTopK, meanRecall: result.meanRecall, ms: result.ms, json: result.json } });
  });
}

/** The pattern a sparse choice runs on one head (a dense config entry, or no config: dense). */
function headPattern(sparse: SparseChoice, c: ModelConfig, layer: number, head: number): Pattern {
  const table = resolveAttentionConfig('pattern' in sparse ? sparse.pattern : sparse.configText, c);
  return table?.[layer]?.[head] ?? { type: 'dense' };
}

function picture(req: PictureRequest): Promise<void> {
  return serve(req, async (gpu, o, signal) => {
    const c = o.model.config;
    const ids = documentIds(o.model, req.document);
    const pattern = headPattern(req.sparse, c, req.layer, req.head);
    post({ type: 'phase', id: req.id, phase: 'Attention picture', detail: `dense prefill up to layer ${req.layer + 1}/${c.numLayers}, then head ${req.head}'s last query block`, fraction: 0 });
    const pic = await attentionPicture(gpu, o.model, ids, { layer: req.layer, head: req.head, pattern, bins: req.bins, signal });
    post({ type: 'picture', id: req.id, picture: pic });
  });
}

scope.addEventListener('message', (ev: MessageEvent<PageToWorker>) => {
  const m = ev.data;
  if (m.type === 'adapter') {
    getGpu().then(
      (gpu) => post({ type: 'adapter', caps: gpu.caps, defaultDenseBelow: DEFAULT_DENSE_BELOW }),
      (e: unknown) => post({ type: 'error', id: null, error: errorInfo(e) }),
    );
  } else if (m.type === 'cancel') {
    if (current?.id === m.id) current.controller.abort();
  } else if (m.type === 'run') {
    void run(m);
  } else if (m.type === 'search') {
    void search(m);
  } else if (m.type === 'picture') {
    void picture(m);
  }
});
