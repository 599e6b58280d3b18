// Seeded fuzz of the model loaders (issue 13): a few hundred corruptions of a tiny Llama's
// safetensors header, index and data section, its config.json, pattern configs and an HTTP server's
// answers (test/fuzz/loader_cases.ts says what each family does and what every case must satisfy).
// The CPU cases run in a child process, so that a hang or a crash is caught, named and counted
// instead of stopping the run; a few cases upload to the GPU in this process and check the bytes
// on the device and the NaN/Inf report.
//
//   LOADER_FUZZ_SEED=123 npx vitest run test/loader_fuzz.test.ts      another seed ("random": a fresh one)
//   LOADER_FUZZ_CASES=2000 ...                                          more cases (default 600)
//   LOADER_FUZZ_ONLY=17,230 ...                                         only these case indexes
//   LOADER_FUZZ_VERBOSE=1 ...                                           print every case and its outcome
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { NonFiniteWeightsError } from '../src/gpu/errors.ts';
import { parseModelConfig } from '../src/model/config.ts';
import { Checkpoint, encodeSafetensors } from '../src/model/safetensors.ts';
import { loadWeights, type ModelWeights } from '../src/model/weights.ts';
import type { Tensor } from '../src/tensor.ts';
import { f32ToBf16Bits } from '../src/util/half.ts';
import { buildFuzzCase, caseRng, checkDeclared, FAMILIES, makeBase, type Base, type CaseResult } from './fuzz/loader_cases.ts';
import { testGpu } from './harness/gpu.ts';
import { memorySource, tinyModel } from './harness/loader_model.ts';

const env = process.env;
const SEED = env.LOADER_FUZZ_SEED === 'random' ? (Date.now() ^ Math.floor(Math.random() * 0x7fffffff)) >>> 0 : Number(env.LOADER_FUZZ_SEED ?? 20261213) >>> 0;
const CASES = Number(env.LOADER_FUZZ_CASES ?? 600);
const ONLY = env.LOADER_FUZZ_ONLY?.split(',').map(Number);
/** No case may take longer ("a few seconds"); a case still running after HANG_MS is a hang and its process is killed. */
const CASE_LIMIT_MS = 5000;
const HANG_MS = 15000;
/** Cases that upload to the GPU (SwiftShader makes each cost ~0.1-0.3 s). */
const GPU_CASES = Number(env.LOADER_FUZZ_GPU_CASES ?? 12);
const RERUN = `rerun with LOADER_FUZZ_SEED=${SEED}`;

type Answer = CaseResult | { crash: string } | { hang: true };

/** The child process of test/fuzz/loader_child.ts, restarted after a crash or a hang. */
class ChildRunner {
  private proc: ChildProcess | undefined;
  private waiting: ((m: Answer) => void) | undefined;
  private stderr = '';
  rssBytes = 0;

  constructor(private readonly tmp: string) {}

  private async start(): Promise<ChildProcess> {
    const entry = fileURLToPath(new URL('./fuzz/loader_child.ts', import.meta.url));
    const proc = fork(entry, [], {
      execArgv: ['--import', 'tsx', '--max-old-space-size=1024'],
      env: { ...env, LOADER_FUZZ_TMP: this.tmp },
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    // Events of a process that was killed (a hang) and replaced are ignored.
    this.proc = proc;
    this.stderr = '';
    proc.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-2000)));
    proc.on('message', (m: CaseResult | { ready: true } | { rssBytes: number }) => {
      if (this.proc !== proc) return;
      if ('rssBytes' in m) this.rssBytes = m.rssBytes;
      const w = this.waiting;
      this.waiting = undefined;
      w?.(m as CaseResult);
    });
    proc.on('exit', (code, signal) => {
      if (this.proc !== proc) return;
      this.proc = undefined;
      const w = this.waiting;
      this.waiting = undefined;
      w?.({ crash: `exit ${signal ?? code}: ${this.stderr.trim().split('\n').slice(-3).join(' | ')}` });
    });
    const ready = await new Promise<Answer | { ready: true }>((resolve) => (this.waiting = resolve as (m: Answer) => void));
    if (!('ready' in ready)) throw new Error(`the fuzz child did not start: ${JSON.stringify(ready)}`);
    return proc;
  }

  async run(seed: number, index: number): Promise<Answer> {
    const proc = this.proc ?? (await this.start());
    return new Promise<Answer>((resolve) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        this.proc = undefined;
        proc.kill('SIGKILL');
        resolve({ hang: true });
      }, HANG_MS);
      this.waiting = (m) => {
        clearTimeout(timer);
        resolve(m);
      };
      proc.send({ seed, index });
    });
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    await new Promise<void>((resolve) => {
      this.waiting = () => resolve();
      proc.send('exit');
      setTimeout(resolve, 5000);
    });
    proc.kill('SIGKILL');
  }
}

function describeCase(r: CaseResult): string {
  const o = r.outcome;
  const what = o.kind === 'loaded' ? 'loaded' : o.kind === 'typed' ? `${o.code}: ${o.message}` : `${o.kind.toUpperCase()}: ${o.message}`;
  return `#${r.index} ${r.family} [${r.mutation}] ${r.ms.toFixed(0)} ms -> ${what.slice(0, 240)}`;
}

describe(`loader fuzz (seed ${SEED})`, () => {
  const tmpRoot = mkdtemp(join(tmpdir(), 'loader-fuzz-'));
  afterAll(async () => {
    await rm(await tmpRoot, { recursive: true, force: true });
  });

  it(`${ONLY ? ONLY.length : CASES} cases over header, index, data, config.json, pattern configs and HTTP answers: only typed errors, no hang, no crash, nothing loads other than it declares`, async () => {
    const runner = new ChildRunner(await tmpRoot);
    const t0 = performance.now();
    const results: CaseResult[] = [];
    const failures: string[] = [];
    const counts = { typed: 0, loaded: 0, untyped: 0, violation: 0, hang: 0, crash: 0, slow: 0 };
    const byFamily = new Map<string, number>();
    let base: Base | undefined;
    try {
      for (const index of ONLY ?? Array.from({ length: CASES }, (_, i) => i)) {
        const a = await runner.run(SEED, index);
        if ('hang' in a || 'crash' in a) {
          // The child never said which case it was: build it here to name it.
          base ??= await makeBase(await tmpRoot);
          const c = buildFuzzCase(base, SEED, index);
          const kind = 'hang' in a ? 'hang' : 'crash';
          counts[kind]++;
          failures.push(`#${index} ${c.family} [${c.mutation}] ${kind.toUpperCase()}${'crash' in a ? `: ${a.crash}` : ` (no answer in ${HANG_MS} ms)`}`);
          continue;
        }
        results.push(a);
        if (env.LOADER_FUZZ_VERBOSE) console.log(describeCase(a));
        byFamily.set(a.family, (byFamily.get(a.family) ?? 0) + 1);
        counts[a.outcome.kind]++;
        if (a.outcome.kind === 'untyped' || a.outcome.kind === 'violation') failures.push(describeCase(a));
        if (a.ms > CASE_LIMIT_MS) {
          counts.slow++;
          failures.push(`${describeCase(a)} (slower than ${CASE_LIMIT_MS} ms)`);
        }
      }
    } finally {
      await runner.stop();
    }
    const seconds = (performance.now() - t0) / 1000;
    const slowest = results.reduce((m, r) => (r.ms > m.ms ? r : m), results[0]!);
    console.log(
      `loader fuzz, seed ${SEED}: ${results.length + counts.hang + counts.crash} cases in ${seconds.toFixed(1)} s ` +
        `(${[...byFamily].map(([f, n]) => `${f} ${n}`).join(', ')}); typed errors ${counts.typed}, loaded ${counts.loaded}, ` +
        `untyped ${counts.untyped}, violations ${counts.violation}, hangs ${counts.hang}, crashes ${counts.crash}, slower than ${CASE_LIMIT_MS} ms ${counts.slow}; ` +
        `slowest ${slowest ? describeCase(slowest).slice(0, 120) : '-'}; child RSS at the end ${(runner.rssBytes / 2 ** 20).toFixed(0)} MiB`,
    );
    expect(failures, `${failures.length} failing cases (${RERUN}, LOADER_FUZZ_ONLY=<index> for one):\n${failures.join('\n')}`).toEqual([]);
    if (!ONLY) for (const f of FAMILIES) expect(byFamily.get(f) ?? 0, `family ${f} got no cases`).toBeGreaterThan(0);
  }, 300_000);

  it(`${GPU_CASES} cases that upload: the GPU holds exactly the declared bytes, NaN/Inf is reported per tensor; native memory stays flat`, async () => {
    const gpu = await testGpu();
    const base = tinyModel();
    const config = parseModelConfig(base.config);
    const allTensors = (w: ModelWeights): Tensor[] => [w.embed, w.finalNorm, w.lmHead, ...w.layers.flatMap((l) => Object.values(l) as Tensor[])];
    /** Loads `file`; returns a description of what happened, failing on anything but the declared bytes or the exact NaN/Inf report. */
    const uploadCase = async (file: Uint8Array, checkFinite: boolean): Promise<string> => {
      const ckpt = await Checkpoint.open(memorySource({ 'model.safetensors': file }));
      await checkDeclared(ckpt, 'model.safetensors', file);
      // Which tensors hold NaN/Inf, decoded on the CPU.
      const bad = new Map<string, { count: number; first: number }>();
      for (const name of ckpt.names()) {
        const v = await ckpt.readFloat32(name);
        let count = 0;
        let first = -1;
        v.forEach((x, i) => {
          if (!Number.isFinite(x)) {
            count++;
            if (first < 0) first = i;
          }
        });
        if (count) bad.set(name, { count, first });
      }
      let w: ModelWeights;
      try {
        w = await loadWeights(gpu, ckpt, config, { checkFinite });
      } catch (e) {
        if (!(e instanceof NonFiniteWeightsError) || !checkFinite) throw e;
        const got = e.tensors.map((t) => `${t.name}:${t.count}@${t.firstIndex}`).sort();
        expect(got).toEqual([...bad].map(([n, b]) => `${n}:${b.count}@${b.first}`).sort());
        return `NaN/Inf in ${got.length} tensors`;
      }
      try {
        if (checkFinite) expect([...bad.keys()], 'NaN/Inf weights loaded').toEqual([]);
        for (const t of allTensors(w)) {
          const want = await ckpt.read(t.label);
          const got = new Uint8Array(await gpu.readBytes(t.buffer, t.byteOffset, t.byteLength)).subarray(0, want.byteLength);
          expect(got.every((b, i) => b === want[i]), `${t.label} on the GPU differs from its declared bytes`).toBe(true);
        }
      } finally {
        w.destroy();
      }
      return 'loaded';
    };
    await uploadCase(base.file, true); // warm-up: pipelines, pools
    /** Memory outside the JS heap and its array buffers: Dawn's and SwiftShader's, the allocator's. */
    const native = (): number => {
      const m = process.memoryUsage();
      return m.rss - m.heapTotal - m.external;
    };
    const rssBefore = process.memoryUsage().rss;
    const nativeBefore = native();
    const log: string[] = [];
    for (let i = 0; i < GPU_CASES; i++) {
      const rng = caseRng(SEED, 1_000_000 + i);
      const tensors = base.tensors.map((t) => ({ ...t, data: t.data.slice() }));
      const kind = i % 4;
      if (kind === 0 || kind === 3) {
        // Random bit flips in the data: may or may not make NaN/Inf; checkFinite off for kind 3.
        for (let k = rng.int(1, 64); k > 0; k--) {
          const t = tensors[rng.int(0, tensors.length)]!;
          t.data[rng.int(0, t.data.byteLength)] ^= 1 << rng.int(0, 8);
        }
      } else if (kind === 1) {
        // NaN / Inf planted in 1 to 3 tensors.
        for (let k = rng.int(1, 4); k > 0; k--) {
          const t = tensors[rng.int(0, tensors.length)]!;
          new Uint16Array(t.data.buffer)[rng.int(0, t.data.byteLength / 2)] = f32ToBf16Bits([Number.NaN, Infinity, -Infinity][rng.int(0, 3)]!);
        }
      } else {
        // Two same-size tensors swap their bytes: a valid file that must load as declared.
        const a = rng.int(1, tensors.length);
        const b = tensors.findIndex((t, j) => j !== a && t.data.byteLength === tensors[a]!.data.byteLength);
        if (b >= 0) [tensors[a]!.data, tensors[b]!.data] = [tensors[b]!.data, tensors[a]!.data];
      }
      const t0 = performance.now();
      const what = await uploadCase(encodeSafetensors(tensors), kind !== 3);
      const ms = performance.now() - t0;
      log.push(`${['flips', 'planted NaN/Inf', 'swap', 'flips, checkFinite off'][kind]}: ${what} (${ms.toFixed(0)} ms)`);
      expect(ms, `GPU case ${i} (${RERUN})`).toBeLessThan(CASE_LIMIT_MS);
    }
    const growth = (native() - nativeBefore) / 2 ** 20;
    console.log(
      `loader fuzz GPU cases, seed ${SEED}: ${log.join('; ')}; native memory growth ${growth.toFixed(1)} MiB (RSS ${((process.memoryUsage().rss - rssBefore) / 2 ** 20).toFixed(1)} MiB)`,
    );
    expect(growth, `native memory growth over ${GPU_CASES} GPU cases`).toBeLessThan(100);
  }, 120_000);
});
