/**
 * Messages between the demo page (demo/main.ts) and the worker that runs the model
 * (demo/worker.ts). The page never touches the GPU: it posts a request and draws what comes back,
 * so it stays responsive whatever the adapter, and Cancel is a message (or, as a last resort,
 * terminating the worker, which frees the device). Three requests use the model, one at a time: a
 * run (prefill and answer), a pattern search on the document, and a picture of one head's attention.
 */
import type { Capabilities } from '../src/gpu/gpu.ts';
import type { ModelConfig } from '../src/model/config.ts';
import type { LoadTimes } from '../src/model/session.ts';
import type { PrefillProgress, RunReport } from '../src/model/report.ts';
import type { Pattern } from '../src/attention/types.ts';
import type { LayerSearch, SearchProgress } from '../src/search/search.ts';
import type { SearchSpace } from '../src/search/space.ts';
import type { AttentionPicture } from '../src/search/picture.ts';

/** Where the model comes from: a URL (the bundled default or any server with Range support) or picked files. */
export type ModelSpec = { kind: 'url'; url: string } | { kind: 'files'; files: File[]; folder: string };

/** 'compare' runs dense, then sparse, on the same prompt. */
export type RunMode = 'compare' | 'sparse' | 'dense';

/** Which of a run's passes a message is about. */
export type Pass = 'dense' | 'sparse';

/** A sparse attention choice: one pattern for every head, or an MInference config's text (a file, or the page's search). */
export type SparseChoice = { pattern: Pattern } | { configName: string; configText: string };

/** What every request that uses the model carries. */
export interface ModelRequest {
  id: number;
  model: ModelSpec;
  /** Identity of the model choice: the worker reuses an opened model while it stays the same. */
  modelKey: string;
}

export interface RunRequest extends ModelRequest {
  type: 'run';
  document: string;
  question: string;
  maxNewTokens: number;
  mode: RunMode;
  /** The sparse pass's attention. */
  sparse: SparseChoice;
  /** Prompts shorter than this run dense even in the sparse pass (the threshold in force). */
  denseBelow: number;
}

/** MInference's pattern search with the document as calibration text (every token of it). */
export interface SearchRequest extends ModelRequest {
  type: 'search';
  document: string;
}

/** One head's attention on the document's last query block, dense and as a pattern keeps it. */
export interface PictureRequest extends ModelRequest {
  type: 'picture';
  document: string;
  layer: number;
  head: number;
  /** The mask: what this choice runs on the head. */
  sparse: SparseChoice;
  /** Key bins across the picture (the canvas's width in pixels). */
  bins: number;
}

export type PageToWorker = { type: 'adapter' } | RunRequest | SearchRequest | PictureRequest | { type: 'cancel'; id: number };

/** A typed error's fields, as structured clone keeps them (the class is lost on the way). */
export interface ErrorInfo {
  name: string;
  code?: string;
  message: string;
}

/** Measured on this adapter after the model loaded: what an estimate is made from. */
export interface Calibration {
  /** Prompt tokens of the calibration prefill. */
  tokens: number;
  prefillMs: number;
  /** Arithmetic of that prefill (estimate.ts prefillFlops) per millisecond. */
  flopsPerMs: number;
  /** One decode step. */
  decodeStepMs: number;
}

export interface ModelInfo {
  config: ModelConfig;
  weightBytes: number;
  load: LoadTimes;
}

export interface RunEstimate {
  promptTokens: number;
  /** The whole request (both passes in compare mode), prefill and decode. */
  totalMs: number;
  /** One prefill of the prompt, dense. */
  prefillMs: number;
  calibration: Calibration;
}

/** What a pass's answer carries back. */
export interface PassResult {
  pass: Pass;
  text: string;
  tokens: number[];
  stop: 'stop_token' | 'max_tokens';
  report: RunReport;
  /** The attention in force for this pass: 'dense', or the sparse patterns per layer and head. */
  patterns: Pattern[][] | 'dense';
  denseBelow: number;
}

/** A search as it starts: the calibration prompt and the paper's space fitted to it. */
export interface SearchPlan {
  promptTokens: number;
  /** The sizes' factor: promptTokens / 32768, at most 1 (paperSpaceScale). */
  scale: number;
  space: SearchSpace;
  /** The cost budget: the A-shape candidate's density. */
  budget: number;
  /** Query rows scored per head: `sampledRows` spread past the first quarter of the prompt, and the last 64, from row `firstRow` on. */
  scoredRows: number;
  sampledRows: number;
  firstRow: number;
  numLayers: number;
  numHeads: number;
}

/** A finished search (its layers came one by one as 'search-layer'). */
export interface SearchOutcome {
  promptTokens: number;
  /** Block-Sparse's top-k as scored (the budget's); the config runs the space's. */
  scoredBlockSparseTopK: number;
  meanRecall: number;
  ms: number;
  /** The config: MInference's per-layer, per-head JSON. */
  json: string;
}

export type WorkerToPage =
  | { type: 'adapter'; caps: Capabilities; defaultDenseBelow: number }
  | { type: 'phase'; id: number; phase: string; detail: string; fraction: number }
  | { type: 'compile'; id: number; done: number; total: number }
  | { type: 'model'; id: number; info: ModelInfo; reused: boolean }
  | { type: 'estimate'; id: number; estimate: RunEstimate }
  | { type: 'prefill'; id: number; pass: Pass; progress: PrefillProgress }
  | { type: 'token'; id: number; pass: Pass; tokenId: number; text: string }
  | { type: 'result'; id: number; result: PassResult }
  | { type: 'search-plan'; id: number; plan: SearchPlan }
  | { type: 'search-progress'; id: number; progress: SearchProgress }
  | { type: 'search-layer'; id: number; layer: LayerSearch }
  | { type: 'search-result'; id: number; outcome: SearchOutcome }
  | { type: 'picture'; id: number; picture: AttentionPicture }
  | { type: 'done'; id: number }
  | { type: 'cancelled'; id: number }
  | { type: 'error'; id: number | null; error: ErrorInfo };

export function errorInfo(e: unknown): ErrorInfo {
  if (e instanceof Error) {
    const code = (e as Error & { code?: unknown }).code;
    return { name: e.name, message: e.message, ...(typeof code === 'string' ? { code } : {}) };
  }
  return { name: 'Error', message: String(e) };
}

/** An Error with the fields of an ErrorInfo, for the page's error box (describeError reads name and code). */
export function errorFromInfo(info: ErrorInfo): Error {
  const e = new Error(info.message) as Error & { code?: string };
  e.name = info.name;
  if (info.code !== undefined) e.code = info.code;
  return e;
}
