/**
 * A dense prefill that hands chosen layers' whole-prompt q, k and v to a visitor (the pattern search
 * and its pictures), then stops: the runner calls PrefillOptions.onLayer before each layer's
 * attention; the forward pass is aborted once the last wanted layer was visited (the rest of the
 * model is not needed), and the runner's attention settings are put back whatever happens.
 */
import { AbortedError, type LayerTensors, type LlamaRunner } from '../model/executor.ts';
import type { ModelConfig } from '../model/config.ts';
import type { ModelTokenizer } from '../model/tokenizer.ts';

/** What the search needs of an opened model (OpenModel has it); a tokenizer only for text input. */
export interface SearchModel {
  config: ModelConfig;
  runner: LlamaRunner;
  tokenizer?: Pick<ModelTokenizer, 'encode'>;
}

export interface VisitOptions {
  signal?: AbortSignal;
  allowLongPrompt?: boolean;
  /** Called once as the prefill starts computing each visited layer. */
  onPrefill?: (layer: number) => void;
}

/**
 * Runs `ids` through the model with dense attention and awaits `visit` for layers first..last
 * (their tensors are reused by the next layer: finish GPU work on them inside visit).
 */
export async function visitLayers(model: SearchModel, ids: Uint32Array, first: number, last: number, visit: (lt: LayerTensors) => Promise<void>, options: VisitOptions = {}): Promise<void> {
  const runner = model.runner;
  if (options.signal?.aborted) throw new AbortedError('search');
  const saved = { patterns: runner.attentionConfig, denseBelow: runner.denseBelow };
  const stop = new AbortController();
  const forward = (): void => stop.abort();
  options.signal?.addEventListener('abort', forward);
  let visited = false;
  let announced = first - 1;
  runner.setAttention(undefined);
  try {
    await runner.prefill(ids, {
      signal: stop.signal,
      allowLongPrompt: options.allowLongPrompt,
      onLayer: async (lt) => {
        if (lt.layer < first || lt.layer > last) return;
        await visit(lt);
        if (lt.layer === last) {
          visited = true;
          stop.abort();
        }
      },
      onProgress: (p) => {
        if (p.layer >= first && p.layer <= last && p.layer > announced) {
          announced = p.layer;
          options.onPrefill?.(p.layer);
        }
      },
    });
  } catch (e) {
    // The abort that ends the forward pass after the last layer is not an error.
    if (!(e instanceof AbortedError) || !visited || options.signal?.aborted) throw e;
  } finally {
    options.signal?.removeEventListener('abort', forward);
    runner.setAttention(saved.patterns, saved.denseBelow);
  }
}
