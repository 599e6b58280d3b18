/**
 * Messages between the demo page (demo/main.ts) and the worker that runs the model
 * (demo/worker.ts). The page never touches the GPU: it posts a request and draws what comes back,
 * so it stays responsive whatever the adapter, and Cancel is a message (or, as a last resort,
 * terminating the worker, which frees the device).
 */
import type { Capabilities } from '../src/gpu/gpu.ts';
import type { ModelConfig } from '../src/model/config.ts';
import type { LoadTimes } from '../src/model/session.ts';
import type { PrefillProgress, RunReport } from '../src/model/report.ts';
import type { Pattern } from '../src/attention/types.ts';

/** Where the model comes from: a URL (the bundled default or any server with Range support) or picked files. */
export type ModelSpec = { kind: 'url'; url: string } | { kind: 'files'; files: File[]; folder: string };

/** 'compare' runs dense, then sparse, on the same prompt. */
export type RunMode = 'compare' | 'sparse' | 'dense';

/** Which of a run's passes a message is about. */
export type Pass = 'dense' | 'sparse';

export interface RunRequest {
  type: 'run';
  id: number;
  model: ModelSpec;
  /** Identity of the model choice: the worker reuses an opened model while it stays the same. */
  modelKey: string;
  document: string;
  question: string;
  maxNewTokens: number;
  mode: RunMode;
  /** The sparse pass's attention: one pattern for every head, or an MInference config's text. */
  sparse: { pattern: Pattern } | { configName: string; configText: string };
  /** Prompts shorter than this run dense even in the sparse pass (the threshold in force). */
  denseBelow: number;
}

export type PageToWorker = { type: 'adapter' } | RunRequest | { type: 'cancel'; id: number };

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

export type WorkerToPage =
  | { type: 'adapter'; caps: Capabilities; defaultDenseBelow: number }
  | { type: 'phase'; id: number; phase: string; detail: string; fraction: number }
  | { type: 'compile'; id: number; done: number; total: number }
  | { type: 'model'; id: number; info: ModelInfo; reused: boolean }
  | { type: 'estimate'; id: number; estimate: RunEstimate }
  | { type: 'prefill'; id: number; pass: Pass; progress: PrefillProgress }
  | { type: 'token'; id: number; pass: Pass; tokenId: number; text: string }
  | { type: 'result'; id: number; result: PassResult }
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
