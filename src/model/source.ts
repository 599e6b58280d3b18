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
import { formatName, formatValue } from '../util/format.ts';
import { MODEL_LIMITS } from './limits.ts';

export interface ModelSource {
  /** A human-readable name for messages (folder path or URL). */
  readonly name: string;
  exists(file: string): Promise<boolean>;
  /** Size in bytes; BadInputError when the file is missing. */
  size(file: string): Promise<number>;
  /** A whole (small) file as text; BadInputError past MODEL_LIMITS.jsonFileBytes. */
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
    throw new BadInputError(`${source.name}/${formatName(file)}: not valid JSON (${formatName(String((e as Error).message))})`);
  }
}

/** File names are relative paths inside the model folder; nothing may escape it. */
export function checkFileName(file: string): void {
  if (typeof file !== 'string' || file === '' || file.startsWith('/') || file.includes('\\') || file.split('/').some((p) => p === '..' || p === '.' || p === '')) {
    throw new BadInputError(`invalid model file name ${formatValue(file)} (expected a relative path inside the model folder)`);
  }
}

/** Whole-file reads (readText) are for JSON and templates: a larger file is refused, not loaded into a string. */
function checkTextSize(source: string, file: string, size: number): void {
  const max = MODEL_LIMITS.jsonFileBytes.max;
  if (!(size <= max)) throw new BadInputError(`${source}/${formatName(file)}: ${size} bytes is too large to read whole (at most ${max}); not a config or tokenizer file`);
}

/** An error from the platform (fs, fetch, File) as a BadInputError naming the file. */
function readFailure(source: string, file: string, e: unknown): BadInputError {
  if (e instanceof BadInputError) return e;
  return new BadInputError(`${source}/${formatName(file)}: cannot read (${formatName(String(e instanceof Error ? e.message : e))})`);
}

function checkRange(source: string, file: string, offset: number, length: number, size: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new BadInputError(`${source}/${formatName(file)}: invalid byte range offset=${formatValue(offset)} length=${formatValue(length)}`);
  }
  if (offset + length > size) {
    throw new BadInputError(`${source}/${formatName(file)}: byte range ${offset}..${offset + length} is past the end of the file (${size} bytes)`);
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
  const missing = (file: string): BadInputError => new BadInputError(`${root}: missing file ${formatName(file)}`);
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
      const st = await statOrUndefined(file);
      if (!st || !st.isFile()) throw missing(file);
      checkTextSize(root, file, st.size);
      try {
        return await fs.readFile(path(file), 'utf8');
      } catch (e) {
        throw readFailure(root, file, e);
      }
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
          if (bytesRead === 0) throw new BadInputError(`${root}/${formatName(file)}: unexpected end of file at byte ${offset + done}`);
          done += bytesRead;
        }
        return out;
      } catch (e) {
        throw readFailure(root, file, e);
      } finally {
        await handle.close().catch(() => undefined);
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
    if (!f) throw new BadInputError(`${label}: missing file ${formatName(file)}`);
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
      const f = get(file);
      checkTextSize(label, file, f.size);
      try {
        return await f.text();
      } catch (e) {
        throw readFailure(label, file, e);
      }
    },
    async readRange(file, offset, length) {
      const f = get(file);
      checkRange(label, file, offset, length, f.size);
      let buf: ArrayBuffer;
      try {
        buf = await f.slice(offset, offset + length).arrayBuffer();
      } catch (e) {
        throw readFailure(label, file, e);
      }
      if (buf.byteLength !== length) throw new BadInputError(`${label}/${formatName(file)}: read ${buf.byteLength} bytes of ${length}`);
      return new Uint8Array(buf);
    },
  };
}

// ------------------------------------------------------------------------------------------- HTTP

export type FetchLike = (input: string, init?: { method?: string; headers?: Record<string, string> }) => Promise<Response>;

/** `Content-Range: bytes FIRST-LAST/TOTAL` (or an unsatisfied range, "bytes *" then "/TOTAL", on a 416); numbers only when safe. */
function parseContentRange(header: string | null): { first?: number; last?: number; total?: number } | undefined {
  const m = /^\s*bytes\s+(?:(\d{1,16})-(\d{1,16})|\*)\/(\d{1,16}|\*)\s*$/i.exec(header ?? '');
  if (!m) return undefined;
  const num = (t: string | undefined): number | undefined => (t === undefined || t === '*' || !Number.isSafeInteger(Number(t)) ? undefined : Number(t));
  return { first: num(m[1]), last: num(m[2]), total: num(m[3]) };
}

/**
 * A model served over HTTP: `${baseUrl}/${file}`. Large files are read with Range requests; a
 * server that answers a range request with the whole file (status 200) is rejected with a clear
 * error rather than downloading gigabytes into memory. What the server says is checked, not
 * trusted: a file's size comes from Content-Range (or Content-Length) as a safe integer and is then
 * fixed; every ranged answer must name exactly the bytes asked for of a file of that size, and no
 * body is read past the bytes expected.
 */
export function openHttpModel(baseUrl: string, fetchImpl?: FetchLike): ModelSource {
  const base = baseUrl.replace(/\/+$/, '');
  const doFetch: FetchLike = fetchImpl ?? ((input, init) => fetch(input, init));
  const url = (file: string): string => {
    checkFileName(file);
    return `${base}/${file.split('/').map(encodeURIComponent).join('/')}`;
  };
  const where = (file: string): string => `${base}/${formatName(file)}`;
  const sizes = new Map<string, number>();
  const request = async (file: string, init: { method?: string; headers?: Record<string, string> }): Promise<Response> => {
    try {
      return await doFetch(url(file), init);
    } catch (e) {
      if (e instanceof BadInputError) throw e;
      throw new BadInputError(`${where(file)}: request failed (${formatName(String((e as Error)?.message))})`);
    }
  };
  const discard = async (res: Response): Promise<void> => {
    await res.body?.cancel().catch(() => undefined);
  };
  /** The body, refused as soon as it grows past `max` bytes (Content-Length is checked first). */
  const readBody = async (res: Response, file: string, max: number): Promise<Uint8Array> => {
    const declared = res.headers.get('content-length');
    if (declared !== null && !(Number(declared) <= max)) {
      await discard(res);
      throw new BadInputError(`${where(file)}: the server announces ${formatValue(declared)} bytes, expected at most ${max}`);
    }
    if (!res.body) return new Uint8Array(0);
    const reader = res.body.getReader();
    const chunks: Uint8Array[] = [];
    let total = 0;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.byteLength;
        if (total > max) {
          await reader.cancel().catch(() => undefined);
          throw new BadInputError(`${where(file)}: the server sent more than the ${max} bytes expected`);
        }
        chunks.push(value);
      }
    } catch (e) {
      throw readFailure(base, file, e);
    }
    if (chunks.length === 1) return chunks[0]!;
    const out = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.byteLength;
    }
    return out;
  };
  const size = async (file: string): Promise<number> => {
    const known = sizes.get(file);
    if (known !== undefined) return known;
    // A one-byte range reports the total in Content-Range, and unlike HEAD it survives servers that
    // omit Content-Length on HEAD or redirect HEAD differently.
    const res = await request(file, { headers: { Range: 'bytes=0-0' } });
    await discard(res);
    if (res.status === 404) throw new BadInputError(`${base}: missing file ${formatName(file)}`);
    let total: number | undefined;
    if (res.status === 206 || res.status === 416) {
      // 416: the file is empty (Content-Range "bytes *" + "/0").
      total = parseContentRange(res.headers.get('content-range'))?.total;
    } else if (res.ok) {
      const len = res.headers.get('content-length');
      if (len !== null && /^\s*\d{1,16}\s*$/.test(len)) total = Number(len);
    } else {
      throw new BadInputError(`${where(file)}: HTTP ${res.status} ${formatName(res.statusText)}`);
    }
    if (total === undefined || !Number.isSafeInteger(total)) {
      throw new BadInputError(`${where(file)}: the server did not report the file size as a number (Content-Range ${formatValue(res.headers.get('content-range'))}, Content-Length ${formatValue(res.headers.get('content-length'))})`);
    }
    sizes.set(file, total);
    return total;
  };
  return {
    name: base,
    async exists(file) {
      const res = await request(file, { method: 'HEAD' });
      await discard(res);
      return res.ok;
    },
    size,
    async readText(file) {
      const res = await request(file, {});
      if (res.status === 404) {
        await discard(res);
        throw new BadInputError(`${base}: missing file ${formatName(file)}`);
      }
      if (!res.ok) {
        await discard(res);
        throw new BadInputError(`${where(file)}: HTTP ${res.status} ${formatName(res.statusText)}`);
      }
      const bytes = await readBody(res, file, MODEL_LIMITS.jsonFileBytes.max);
      return new TextDecoder().decode(bytes);
    },
    async readRange(file, offset, length) {
      const total = await size(file);
      checkRange(base, file, offset, length, total);
      if (length === 0) return new Uint8Array(0);
      const last = offset + length - 1;
      const res = await request(file, { headers: { Range: `bytes=${offset}-${last}` } });
      if (res.status === 200) {
        if (!(offset === 0 && length === total)) {
          await discard(res);
          throw new BadInputError(`${where(file)}: the server ignored the HTTP Range request (answered 200 with the whole file); serve the model from a server that supports Range requests`);
        }
      } else if (res.status === 206) {
        const r = parseContentRange(res.headers.get('content-range'));
        if (!r || r.first !== offset || r.last !== last || r.total !== total) {
          await discard(res);
          throw new BadInputError(
            `${where(file)}: asked for bytes ${offset}-${last} of a ${total}-byte file, the server answered Content-Range ${formatValue(res.headers.get('content-range'))}`,
          );
        }
      } else {
        await discard(res);
        throw new BadInputError(`${where(file)}: HTTP ${res.status} ${formatName(res.statusText)} for bytes ${offset}..${offset + length}`);
      }
      const buf = await readBody(res, file, length);
      if (buf.byteLength !== length) throw new BadInputError(`${where(file)}: asked for ${length} bytes at ${offset}, got ${buf.byteLength}`);
      return buf;
    },
  };
}
