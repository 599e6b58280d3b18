/**
 * Where a model's files come from. A ModelSource answers for files by their name inside the model
 * folder ("config.json", "model-00001-of-00004.safetensors") and reads byte ranges, so multi-GB
 * checkpoints are streamed slice by slice and never held whole in one ArrayBuffer.
 *
 * This is the only module that knows how bytes are fetched:
 *   openLocalModel(dir)        Node and Deno, through node:fs/promises file handles;
 *   openFileListModel(files)   browser <input type="file" webkitdirectory> (File.slice);
 *   openHttpModel(baseUrl)     any HTTP server that honours Range requests (e.g. the Hugging Face hub
 *                              "resolve/main" URLs).
 */
import { BadInputError } from '../gpu/errors.ts';

export interface ModelSource {
  /** A human-readable name for messages (folder path or URL). */
  readonly name: string;
  exists(file: string): Promise<boolean>;
  /** Size in bytes; BadInputError when the file is missing. */
  size(file: string): Promise<number>;
  readText(file: string): Promise<string>;
  /** Exactly `length` bytes from `offset`; BadInputError when the range is outside the file. */
  readRange(file: string, offset: number, length: number): Promise<Uint8Array>;
}

/** Reads and parses a JSON file of a model, naming the file in errors. */
export async function readJson(source: ModelSource, file: string): Promise<unknown> {
  const text = await source.readText(file);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new BadInputError(`${source.name}/${file}: not valid JSON (${(e as Error).message})`);
  }
}

/** File names are relative paths inside the model folder; nothing may escape it. */
export function checkFileName(file: string): void {
  if (typeof file !== 'string' || file === '' || file.startsWith('/') || file.includes('\\') || file.split('/').some((p) => p === '..' || p === '.' || p === '')) {
    throw new BadInputError(`invalid model file name ${JSON.stringify(file)} (expected a relative path inside the model folder)`);
  }
}

function checkRange(source: string, file: string, offset: number, length: number, size: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new BadInputError(`${source}/${file}: invalid byte range offset=${offset} length=${length}`);
  }
  if (offset + length > size) {
    throw new BadInputError(`${source}/${file}: byte range ${offset}..${offset + length} is past the end of the file (${size} bytes)`);
  }
}

// ------------------------------------------------------------------------------------ local files

interface FsFileHandle {
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  stat(): Promise<{ size: number; isFile(): boolean }>;
  close(): Promise<void>;
}
interface FsPromises {
  open(path: string, flags: string): Promise<FsFileHandle>;
  stat(path: string): Promise<{ size: number; isFile(): boolean }>;
  readFile(path: string, encoding: 'utf8'): Promise<string>;
}

async function loadFs(): Promise<FsPromises> {
  // A variable specifier keeps browser bundlers from trying to resolve a Node built-in.
  const specifier = 'node:fs/promises';
  try {
    return (await import(/* @vite-ignore */ specifier)) as FsPromises;
  } catch {
    throw new BadInputError('openLocalModel needs node:fs (Node or Deno); in a browser use openFileListModel or openHttpModel');
  }
}

/** A model folder on the local file system (Node, Deno). */
export async function openLocalModel(dir: string): Promise<ModelSource> {
  const fs = await loadFs();
  const root = dir.replace(/[\\/]+$/, '');
  try {
    const st = await fs.stat(root);
    if (st.isFile()) throw new BadInputError(`${root} is a file; openLocalModel expects the model folder`);
  } catch (e) {
    if (e instanceof BadInputError) throw e;
    throw new BadInputError(`model folder ${root} does not exist or cannot be read`);
  }
  const path = (file: string): string => {
    checkFileName(file);
    return `${root}/${file}`;
  };
  const statOrUndefined = async (file: string): Promise<{ size: number; isFile(): boolean } | undefined> => {
    try {
      return await fs.stat(path(file));
    } catch (e) {
      if (e instanceof BadInputError) throw e;
      return undefined;
    }
  };
  const missing = (file: string): BadInputError => new BadInputError(`${root}: missing file ${file}`);
  const exists = async (file: string): Promise<boolean> => {
    const st = await statOrUndefined(file);
    return st !== undefined && st.isFile();
  };
  return {
    name: root,
    exists,
    async size(file) {
      const st = await statOrUndefined(file);
      if (!st || !st.isFile()) throw missing(file);
      return st.size;
    },
    async readText(file) {
      if (!(await exists(file))) throw missing(file);
      return fs.readFile(path(file), 'utf8');
    },
    async readRange(file, offset, length) {
      let handle: FsFileHandle;
      try {
        handle = await fs.open(path(file), 'r');
      } catch (e) {
        if (e instanceof BadInputError) throw e;
        throw missing(file);
      }
      try {
        const { size } = await handle.stat();
        checkRange(root, file, offset, length, size);
        const out = new Uint8Array(length);
        let done = 0;
        while (done < length) {
          const { bytesRead } = await handle.read(out, done, length - done, offset + done);
          if (bytesRead === 0) throw new BadInputError(`${root}/${file}: unexpected end of file at byte ${offset + done}`);
          done += bytesRead;
        }
        return out;
      } finally {
        await handle.close();
      }
    },
  };
}

// ------------------------------------------------------------------------------- browser File list

/**
 * Files picked in a browser (an <input webkitdirectory> FileList or a drop). Files are found by
 * their path inside the picked folder (webkitRelativePath without the first component) or, failing
 * that, by their plain name.
 */
export function openFileListModel(files: ArrayLike<File>, name?: string): ModelSource {
  const byName = new Map<string, File>();
  let folder = '';
  for (let i = 0; i < files.length; i++) {
    const f = files[i]!;
    const rel = (f as File & { webkitRelativePath?: string }).webkitRelativePath ?? '';
    const parts = rel.split('/').filter((p) => p !== '');
    if (parts.length > 1) {
      folder ||= parts[0]!;
      byName.set(parts.slice(1).join('/'), f);
    }
    if (!byName.has(f.name)) byName.set(f.name, f);
  }
  const label = name ?? (folder || 'selected files');
  const get = (file: string): File => {
    checkFileName(file);
    const f = byName.get(file);
    if (!f) throw new BadInputError(`${label}: missing file ${file}`);
    return f;
  };
  return {
    name: label,
    async exists(file) {
      checkFileName(file);
      return byName.has(file);
    },
    async size(file) {
      return get(file).size;
    },
    async readText(file) {
      return get(file).text();
    },
    async readRange(file, offset, length) {
      const f = get(file);
      checkRange(label, file, offset, length, f.size);
      const buf = await f.slice(offset, offset + length).arrayBuffer();
      if (buf.byteLength !== length) throw new BadInputError(`${label}/${file}: read ${buf.byteLength} bytes of ${length}`);
      return new Uint8Array(buf);
    },
  };
}

// ------------------------------------------------------------------------------------------- HTTP

export type FetchLike = (input: string, init?: { method?: string; headers?: Record<string, string> }) => Promise<Response>;

/**
 * A model served over HTTP: `${baseUrl}/${file}`. Large files are read with Range requests; a
 * server that answers a range request with the whole file (status 200) is rejected with a clear
 * error rather than downloading gigabytes into memory.
 */
export function openHttpModel(baseUrl: string, fetchImpl?: FetchLike): ModelSource {
  const base = baseUrl.replace(/\/+$/, '');
  const doFetch: FetchLike = fetchImpl ?? ((input, init) => fetch(input, init));
  const url = (file: string): string => {
    checkFileName(file);
    return `${base}/${file.split('/').map(encodeURIComponent).join('/')}`;
  };
  const sizes = new Map<string, number>();
  const request = async (file: string, init: { method?: string; headers?: Record<string, string> }): Promise<Response> => {
    try {
      return await doFetch(url(file), init);
    } catch (e) {
      if (e instanceof BadInputError) throw e;
      throw new BadInputError(`${base}/${file}: request failed (${(e as Error).message})`);
    }
  };
  const size = async (file: string): Promise<number> => {
    const known = sizes.get(file);
    if (known !== undefined) return known;
    // A one-byte range reports the total in Content-Range, and unlike HEAD it survives servers that
    // omit Content-Length on HEAD or redirect HEAD differently.
    const res = await request(file, { headers: { Range: 'bytes=0-0' } });
    if (res.status === 404) throw new BadInputError(`${base}: missing file ${file}`);
    let total: number | undefined;
    if (res.status === 206) {
      const m = /\/(\d+)\s*$/.exec(res.headers.get('content-range') ?? '');
      if (m) total = Number(m[1]);
    } else if (res.ok) {
      const len = res.headers.get('content-length');
      if (len !== null) total = Number(len);
    } else {
      throw new BadInputError(`${base}/${file}: HTTP ${res.status} ${res.statusText}`);
    }
    await res.body?.cancel().catch(() => undefined);
    if (total === undefined || !Number.isSafeInteger(total)) throw new BadInputError(`${base}/${file}: the server did not report the file size (Content-Range or Content-Length)`);
    sizes.set(file, total);
    return total;
  };
  return {
    name: base,
    async exists(file) {
      const res = await request(file, { method: 'HEAD' });
      await res.body?.cancel().catch(() => undefined);
      return res.ok;
    },
    size,
    async readText(file) {
      const res = await request(file, {});
      if (res.status === 404) throw new BadInputError(`${base}: missing file ${file}`);
      if (!res.ok) throw new BadInputError(`${base}/${file}: HTTP ${res.status} ${res.statusText}`);
      return res.text();
    },
    async readRange(file, offset, length) {
      const total = await size(file);
      checkRange(base, file, offset, length, total);
      if (length === 0) return new Uint8Array(0);
      const res = await request(file, { headers: { Range: `bytes=${offset}-${offset + length - 1}` } });
      if (res.status === 200 && !(offset === 0 && length === total)) {
        await res.body?.cancel().catch(() => undefined);
        throw new BadInputError(`${base}/${file}: the server ignored the HTTP Range request (answered 200 with the whole file); serve the model from a server that supports Range requests`);
      }
      if (res.status !== 206 && res.status !== 200) throw new BadInputError(`${base}/${file}: HTTP ${res.status} ${res.statusText} for bytes ${offset}..${offset + length}`);
      const buf = new Uint8Array(await res.arrayBuffer());
      if (buf.byteLength !== length) throw new BadInputError(`${base}/${file}: asked for ${length} bytes at ${offset}, got ${buf.byteLength}`);
      return buf;
    },
  };
}
