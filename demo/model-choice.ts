/** Turns the page's model choice (the bundled needle-reader, a local folder, a URL) into a ModelSource. */
import { BadInputError } from '../src/gpu/errors.ts';
import { openFileListModel, openHttpModel, type ModelSource } from '../src/model/source.ts';

export type ModelChoice =
  | { kind: 'default'; url: string }
  | { kind: 'folder'; files: ArrayLike<File> }
  | { kind: 'url'; url: string };

/**
 * The bundled model, models/needle-reader/ (committed): the Vite dev server serves the repository,
 * and `vite build` copies the folder next to the page (vite.config.ts), so it is one level up from
 * this module in both (demo/ in the repository, assets/ in dist/demo/).
 */
export const DEFAULT_MODEL_URL = new URL(/* @vite-ignore */ '../models/needle-reader/', import.meta.url).href;

export function modelSourceFor(choice: ModelChoice, pageUrl: string): ModelSource {
  switch (choice.kind) {
    case 'default':
      return openHttpModel(new URL(choice.url, pageUrl).href);
    case 'folder': {
      if (choice.files.length === 0) throw new BadInputError('no model folder chosen: pick the folder that holds config.json, tokenizer.json and the .safetensors files');
      return openFileListModel(choice.files);
    }
    case 'url': {
      const raw = choice.url.trim();
      if (!raw) throw new BadInputError('no model URL given: enter the base URL under which config.json, tokenizer.json and the .safetensors files are served');
      let url: URL;
      try {
        url = new URL(raw, pageUrl);
      } catch {
        throw new BadInputError(`"${raw}" is not a valid URL`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new BadInputError(`model URL must be http(s), got ${url.protocol}`);
      return openHttpModel(url.href);
    }
  }
}

/** A one-line summary of picked folder files, e.g. "Llama-3.2-1B: 7 files, 2.3 GiB". */
export function summarizeFiles(files: ArrayLike<File>): { folder: string; count: number; bytes: number; hasConfig: boolean; hasTokenizer: boolean; safetensors: number } {
  let folder = '';
  let bytes = 0;
  let hasConfig = false;
  let hasTokenizer = false;
  let safetensors = 0;
  for (let i = 0; i < files.length; i++) {
    const f = files[i]!;
    const rel = (f as File & { webkitRelativePath?: string }).webkitRelativePath ?? '';
    folder ||= rel.split('/')[0] ?? '';
    bytes += f.size;
    if (f.name === 'config.json') hasConfig = true;
    if (f.name === 'tokenizer.json') hasTokenizer = true;
    if (f.name.endsWith('.safetensors')) safetensors++;
  }
  return { folder, count: files.length, bytes, hasConfig, hasTokenizer, safetensors };
}
