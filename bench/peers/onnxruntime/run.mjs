#!/usr/bin/env node
// Times prefill of the peer model (build_model.py) with onnxruntime-node's WebGPU execution
// provider: one session, then per length 1 warm-up + N timed `session.run` calls, each timed
// from the feed to the last-token logits being on the host. Prints a table last and writes
// JSON rows shaped like the project's bench rows (bench/results/*.json).
//
// Exit status: 0 all lengths timed, 2 some length failed (its row holds the error), 1 no session.
//
//   node run.mjs --model DIR [--ep webgpu|cpu] [--lengths 1024,4096,8192,32768] [--runs 3]
//                [--warmup 1] [--budget-s 60] [--deadline-s 0] [--kv-location gpu-buffer|cpu]
//                [--json PATH] [--resume] [--dump PATH] [--seed 1] [--webgpu-option k=v ...]
//
// onnxruntime-node is found through $ORT_NODE_DIR (set by the kit's enter.sh) or else from
// the node_modules next to this file (`npm install` in bench/peers/onnxruntime).
import { createRequire } from 'node:module';
import { existsSync, readFileSync, statSync, writeFileSync, renameSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC_LINES = readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n');
const HELP = SRC_LINES.slice(1, SRC_LINES.findIndex((l, i) => i > 0 && !l.startsWith('//'))).map((l) => l.replace(/^\/\/ ?/, '')).join('\n');

function parseArgs(argv) {
  const o = {
    model: '', ep: 'webgpu', lengths: [1024, 4096, 8192, 32768], runs: 3, warmup: 1, budgetS: 60, deadlineS: 0,
    kvLocation: '', json: '', resume: false, dump: '', seed: 1, variant: '', webgpuOptions: {}, logLevel: 3, threads: 0,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--model': o.model = next(); break;
      case '--ep': o.ep = next(); break;
      case '--lengths': o.lengths = next().split(',').filter(Boolean).map((s) => parseLength(s)); break;
      case '--runs': o.runs = Math.max(1, parseInt(next(), 10)); break;
      case '--warmup': o.warmup = Math.max(0, parseInt(next(), 10)); break;
      case '--budget-s': o.budgetS = Number(next()); break;
      case '--deadline-s': o.deadlineS = Number(next()); break;
      case '--kv-location': o.kvLocation = next(); break;
      case '--json': o.json = next(); break;
      case '--resume': o.resume = true; break;
      case '--dump': o.dump = next(); break;
      case '--seed': o.seed = parseInt(next(), 10); break;
      case '--variant': o.variant = next(); break;
      case '--log-level': o.logLevel = parseInt(next(), 10); break;
      case '--threads': o.threads = parseInt(next(), 10); break;
      case '--webgpu-option': {
        const [k, ...v] = next().split('=');
        o.webgpuOptions[k] = v.join('=');
        break;
      }
      case '-h': case '--help': console.log(HELP); process.exit(0);
      default: throw new Error(`unknown argument ${a} (try --help)`);
    }
  }
  if (!o.model) throw new Error('--model DIR is required (a folder written by build_model.py, or its model.onnx)');
  if (!['webgpu', 'cpu'].includes(o.ep)) throw new Error(`--ep must be webgpu or cpu, not ${o.ep}`);
  if (!o.kvLocation) o.kvLocation = o.ep === 'webgpu' ? 'gpu-buffer' : 'cpu';
  if (!['gpu-buffer', 'cpu'].includes(o.kvLocation)) throw new Error('--kv-location must be gpu-buffer or cpu');
  if (o.ep === 'cpu' && o.kvLocation !== 'cpu') throw new Error('--kv-location gpu-buffer needs --ep webgpu');
  return o;
}

function parseLength(s) {
  const m = /^(\d+)([kK]?)$/.exec(s.trim());
  if (!m) throw new Error(`bad length ${s}`);
  return parseInt(m[1], 10) * (m[2] ? 1024 : 1);
}

function loadOrt() {
  const req = createRequire(import.meta.url);
  const dir = process.env.ORT_NODE_DIR;
  return dir ? req(dir) : req('onnxruntime-node');
}

// fp16 bits -> number (Node 20 has no Float16Array; onnxruntime-node returns float16 as Uint16Array)
function halfToFloat(h) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

function toNumbers(tensor) {
  const d = tensor.data;
  if (tensor.type === 'float16' && d instanceof Uint16Array) return Array.from(d, halfToFloat);
  return Array.from(d, Number);
}

// small seeded PRNG for the token ids: mulberry32, as src/util/prng.ts (restated: the kit runs on
// the GPU machine from kit/ alone, without the project's TypeScript sources or a build step)
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function tokenIds(n, vocab, seed) {
  const r = rng(seed * 1000003 + n);
  const ids = new BigInt64Array(n);
  for (let i = 0; i < n; i++) ids[i] = BigInt(Math.floor(r() * vocab));
  return ids;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function readConfig(modelPath) {
  const dir = statSync(modelPath).isDirectory() ? modelPath : dirname(modelPath);
  const file = statSync(modelPath).isDirectory() ? join(modelPath, 'model.onnx') : modelPath;
  const cfgPath = join(dir, 'config.json');
  const cfg = existsSync(cfgPath) ? JSON.parse(readFileSync(cfgPath, 'utf8')) : {};
  return { file, cfg };
}

function writeJson(path, doc) {
  if (!path) return;
  writeFileSync(path + '.tmp', JSON.stringify(doc, null, 1) + '\n');
  renameSync(path + '.tmp', path);
}

function table(rows) {
  const head = ['variant', 'tokens', 'median ms', 'min ms', 'tok/s', 'runs', 'finite', 'note'];
  const body = rows.map((r) => [
    r.variant, String(r.shape.tokens), r.median_ms == null ? '-' : r.median_ms.toFixed(1),
    r.min_ms == null ? '-' : r.min_ms.toFixed(1), r.tok_per_s == null ? '-' : Math.round(r.tok_per_s).toString(),
    String(r.reps ?? 0), r.logits_finite == null ? '-' : String(r.logits_finite), r.error ? `ERROR: ${r.error}`.slice(0, 160) : '',
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(w[i]))).join('  ').trimEnd();
  return [line(head), line(w.map((n) => '-'.repeat(n))), ...body.map(line)].join('\n');
}

async function main() {
  const opt = parseArgs(process.argv.slice(2));
  const t00 = performance.now();
  const ort = loadOrt();
  const ortVersion = ort.env?.versions?.node ?? ort.env?.versions?.common ?? 'unknown';
  const backends = typeof ort.listSupportedBackends === 'function' ? ort.listSupportedBackends() : [];
  console.error(`onnxruntime-node ${ortVersion}; backends: ${backends.map((b) => b.name + (b.bundled ? '' : '(not bundled)')).join(', ')}`);
  if (opt.ep === 'webgpu' && backends.length && !backends.some((b) => b.name === 'webgpu')) {
    throw new Error('this onnxruntime-node build has no WebGPU execution provider');
  }
  const { file, cfg } = readConfig(opt.model);

  const ep = opt.ep === 'webgpu' ? { name: 'webgpu', ...opt.webgpuOptions } : 'cpu';
  // What transformers.js sets for a decoder on WebGPU: present.* outputs stay on the GPU
  // (preferredOutputLocation 'gpu-buffer'), logits come back to the host.
  const sessionOptions = { executionProviders: [ep], graphOptimizationLevel: 'all', logSeverityLevel: opt.logLevel };
  if (opt.threads > 0) sessionOptions.intraOpNumThreads = opt.threads;
  // preferredOutputLocation is keyed by output name: present.{i}.key/value for the layers in
  // config.json (build_model.py writes it next to model.onnx)
  if (opt.kvLocation === 'gpu-buffer') {
    if (!cfg.layers) throw new Error(`no config.json with "layers" next to ${file}; needed for --kv-location gpu-buffer`);
    const where = {};
    for (let i = 0; i < cfg.layers; i++) for (const kv of ['key', 'value']) where[`present.${i}.${kv}`] = 'gpu-buffer';
    sessionOptions.preferredOutputLocation = where;
  }
  const tc = performance.now();
  const session = await ort.InferenceSession.create(file, sessionOptions);
  const sessionCreateMs = performance.now() - tc;

  const meta = Object.fromEntries((session.inputMetadata ?? []).map((m) => [m.name, m]));
  const pastNames = session.inputNames.filter((n) => n.startsWith('past_key_values.'));
  const pastMeta = meta[pastNames[0]] ?? {};
  const dtype = pastMeta.type ?? (cfg.dtype === 'fp32' ? 'float32' : 'float16');
  const kvHeads = typeof pastMeta.shape?.[1] === 'number' ? pastMeta.shape[1] : cfg.kv_heads;
  const headDim = typeof pastMeta.shape?.[3] === 'number' ? pastMeta.shape[3] : cfg.head_dim;
  const vocab = cfg.vocab ?? 128256;
  const dtypeTag = dtype === 'float16' ? 'fp16' : 'fp32';
  const variant = opt.variant || `onnxruntime-${opt.ep}-${dtypeTag}`;
  const modelName = cfg.hidden === 2048 && cfg.layers === 16 && cfg.vocab === 128256 ? 'llama-3.2-1b' : `peer-h${cfg.hidden}-l${cfg.layers}`;
  console.error(`session (${opt.ep}) created in ${sessionCreateMs.toFixed(0)} ms; ${session.inputNames.length} inputs, ${session.outputNames.length} outputs; kv ${dtype} [1,${kvHeads},S,${headDim}] -> ${opt.kvLocation}`);

  const emptyPast = () => new ort.Tensor(dtype, dtype === 'float16' ? new Uint16Array(0) : new Float32Array(0), [1, kvHeads, 0, headDim]);
  const notes = [
    `random weights (seeded), ${modelName === 'llama-3.2-1b' ? 'Llama-3.2-1B shape' : `shape ${JSON.stringify({ layers: cfg.layers, hidden: cfg.hidden, heads: cfg.heads, kv_heads: cfg.kv_heads })}`}${cfg.tied === false ? '' : ', tied embeddings'}; fused com.microsoft ops: SimplifiedLayerNormalization/SkipSimplifiedLayerNormalization, GroupQueryAttention (${cfg.qkv === 'separate' ? 'separate Q/K/V' : 'packed QKV'}, do_rotary=1)`,
    `prefill from empty past (past_key_values.* fed as [1,${kvHeads},0,${headDim}]), present K/V are graph outputs kept on ${opt.kvLocation === 'gpu-buffer' ? 'the GPU (preferredOutputLocation gpu-buffer, not copied back)' : 'the host (copied back, inside the timed run)'}`,
    'lm_head on the last position only; timed: session.run wall time until the logits are on the host',
  ].join('; ');

  const doc = {
    runtime: 'node + onnxruntime-node',
    device: process.env.GPU_NAME || undefined,
    date: new Date().toISOString(),
    ort_version: ortVersion,
    ep: opt.ep,
    model_config: cfg,
    tiny_check: process.env.PEER_TINY_CHECK || undefined,
    rows: [],
  };
  if (opt.resume && opt.json && existsSync(opt.json)) {
    try {
      const old = JSON.parse(readFileSync(opt.json, 'utf8'));
      doc.rows = (old.rows ?? []).filter((r) => r.variant === variant);
      console.error(`resume: ${doc.rows.length} row(s) already in ${opt.json}: ${doc.rows.map((r) => r.shape.tokens).join(', ')}`);
    } catch (e) {
      console.error(`resume: could not read ${opt.json}: ${e.message}`);
    }
  }
  const dump = { config: cfg, ep: opt.ep, dtype, runs: [] };

  for (const n of opt.lengths) {
    if (doc.rows.some((r) => r.shape.tokens === n)) {
      console.error(`[${n}] already recorded, skipped`);
      continue;
    }
    const base = {
      kernel: 'prefill', variant, shape: { model: modelName, tokens: n }, median_ms: null, min_ms: null, times_ms: [],
      ort_version: ortVersion, ep: opt.ep, dtype: dtypeTag, kv_location: opt.kvLocation,
      session_create_ms: Math.round(sessionCreateMs), device: process.env.GPU_NAME || undefined, notes,
    };
    if (opt.deadlineS > 0 && (performance.now() - t00) / 1000 > opt.deadlineS) {
      doc.rows.push({ ...base, error: `skipped: past --deadline-s ${opt.deadlineS}` });
      writeJson(opt.json, doc);
      console.error(`[${n}] skipped (deadline)`);
      continue;
    }
    if (cfg.max_seq && n > cfg.max_seq) {
      doc.rows.push({ ...base, error: `longer than the model's cos/sin cache (${cfg.max_seq})` });
      writeJson(opt.json, doc);
      continue;
    }
    // placeholder first: if the process dies in this length (device lost, OOM kill), --resume skips it
    doc.rows.push({ ...base, error: 'process died during this length (crash, device lost or out of memory)' });
    writeJson(opt.json, doc);
    const row = doc.rows[doc.rows.length - 1];
    const feeds = {
      input_ids: new ort.Tensor('int64', tokenIds(n, vocab, opt.seed), [1, n]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]),
    };
    for (const p of pastNames) feeds[p] = emptyPast();
    const once = async () => {
      const t0 = performance.now();
      const out = await session.run(feeds);
      const logits = out.logits;
      const host = logits.data; // on the host already (cpu location); touching it forces nothing more
      const ms = performance.now() - t0;
      const vals = toNumbers({ type: logits.type, data: host });
      for (const v of Object.values(out)) if (v.location === 'gpu-buffer' && typeof v.dispose === 'function') v.dispose();
      return { ms, vals, dims: logits.dims };
    };
    try {
      let last;
      const warm = [];
      for (let i = 0; i < opt.warmup; i++) {
        last = await once();
        warm.push(last.ms);
        console.error(`[${n}] warm-up ${i + 1}: ${last.ms.toFixed(1)} ms`);
      }
      let runs = opt.runs;
      const est = warm.length ? Math.min(...warm) : 0;
      if (opt.budgetS > 0 && est > 0) runs = Math.max(1, Math.min(runs, Math.floor((opt.budgetS * 1000) / est)));
      const times = [];
      for (let i = 0; i < runs; i++) {
        last = await once();
        times.push(last.ms);
        console.error(`[${n}] run ${i + 1}/${runs}: ${last.ms.toFixed(1)} ms`);
      }
      const finite = last.vals.every(Number.isFinite);
      let amax = 0, arg = -1, absmax = 0;
      for (let i = 0; i < last.vals.length; i++) {
        const v = last.vals[i];
        if (arg < 0 || v > amax) { amax = v; arg = i; }
        if (Math.abs(v) > absmax) absmax = Math.abs(v);
      }
      const med = median(times);
      Object.assign(row, {
        median_ms: med, min_ms: Math.min(...times), times_ms: times, warmup_ms: warm, reps: times.length,
        tok_per_s: n / (med / 1000), logits_finite: finite, logits_shape: last.dims, logits_argmax: arg,
        logits_absmax: absmax,
      });
      delete row.error;
      if (runs < opt.runs) row.notes += `; ${runs} timed run(s) instead of ${opt.runs} (--budget-s ${opt.budgetS})`;
      if (!finite) row.error = 'non-finite logits';
      if (opt.dump) dump.runs.push({ tokens: n, ids: Array.from(feeds.input_ids.data, Number), logits: last.vals });
    } catch (e) {
      const msg = String(e?.message ?? e).split('\n')[0];
      row.error = msg;
      if (opt.dump) dump.runs.push({ tokens: n, error: msg });
      console.error(`[${n}] FAILED: ${msg} -- going on with the next length`);
    }
    writeJson(opt.json, doc);
  }
  if (opt.dump) writeFileSync(opt.dump, JSON.stringify(dump));
  await session.release?.();
  console.log(`onnxruntime-node ${ortVersion}, ep ${opt.ep}${opt.ep === 'webgpu' ? ' (Dawn)' : ''}, model ${file}, session create ${sessionCreateMs.toFixed(0)} ms`);
  console.log(table(doc.rows));
  if (opt.json) console.log(`wrote ${opt.json}`);
  // exit 2: every length has a row, but some hold an error (gpu-run.sh tells this from a crash)
  if (doc.rows.some((r) => r.error)) process.exitCode = 2;
}

main().catch((e) => {
  console.error(`run.mjs: ${e?.stack ?? e}`);
  process.exit(1);
});
