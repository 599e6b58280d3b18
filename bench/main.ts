/**
 * Benchmark entry (bundled to dist/gpu/bench.mjs by scripts/build-bench.mjs; runs under Node with
 * Dawn and under Deno from the same bundle):
 *
 *   node dist/gpu/bench.mjs [--suite a,b] [--json PATH] [--quick] [--sizes x,y] [--no-experimental]
 *
 * Prints adapter info, the measured limits, and a table last; writes the results JSON
 * (schema: bench/harness.ts BenchResults).
 */
import process from 'node:process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { requestGpu } from '../src/gpu/device.ts';
import type { Gpu } from '../src/gpu/gpu.ts';
import { SparsePrefillError } from '../src/gpu/errors.ts';
import { BENCH_DAWN_FLAGS, benchRuntime, deviceName, finishResults, formatTable, makeContext, type BenchResults, type BenchRow, type Logger } from './harness.ts';
import { measureCopy } from './limits.ts';
import { suites } from './suites/index.ts';

/** Replaced at bundle time (esbuild --define) with `git rev-parse --short HEAD`. */
declare const __BENCH_COMMIT__: string | undefined;

interface BenchArgs {
  suites?: string[];
  json?: string;
  quick: boolean;
  experimental: boolean;
  /** false: Dawn without bounds checks (disable_robustness, disable_workgroup_init); browsers keep them. */
  robustness: boolean;
  sizes?: string[];
  list: boolean;
  help: boolean;
}

class BenchArgError extends Error {}

const USAGE = `usage: bench [options]
  --suite a,b         run only these suites (default: all)
  --json PATH         write the results JSON to PATH
  --quick             small sizes and fewer repetitions (CPU adapters, smoke tests)
  --sizes x,y         run only these sizes (labels or numbers, suite-defined)
  --experimental      request Dawn's experimental features (default on)
  --no-experimental   do not
  --no-robustness     Dawn without bounds checks and workgroup-memory zeroing (browsers keep both:
                      run once with and once without to report both numbers)
  --list              list the suites and exit
  --help              this text`;

function parseBenchArgs(argv: readonly string[]): BenchArgs {
  const args: BenchArgs = { quick: false, experimental: true, robustness: true, list: false, help: false };
  const list = (s: string): string[] => s.split(',').map((x) => x.trim()).filter(Boolean);
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    const eq = raw.indexOf('=');
    const name = raw.startsWith('--') && eq > 0 ? raw.slice(0, eq) : raw;
    const inline = raw.startsWith('--') && eq > 0 ? raw.slice(eq + 1) : undefined;
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new BenchArgError(`${name} needs a value`);
      return v;
    };
    switch (name) {
      case '--suite':
      case '--suites':
        args.suites = list(value());
        break;
      case '--json':
        args.json = value();
        break;
      case '--sizes':
        args.sizes = list(value());
        break;
      case '--quick':
        args.quick = true;
        break;
      case '--experimental':
        args.experimental = true;
        break;
      case '--no-experimental':
        args.experimental = false;
        break;
      case '--no-robustness':
        args.robustness = false;
        break;
      case '--list':
        args.list = true;
        break;
      case '--help':
      case '-h':
        args.help = true;
        break;
      default:
        throw new BenchArgError(`unknown argument ${raw}`);
    }
  }
  return args;
}

function commitId(): string {
  return typeof __BENCH_COMMIT__ === 'string' && __BENCH_COMMIT__ ? __BENCH_COMMIT__ : 'unknown';
}

function describeGpu(gpu: Gpu): string {
  const c = gpu.caps;
  const l = c.limits;
  const sm = c.subgroupMatrixConfigs.map((m) => `${m.componentType}->${m.resultComponentType} ${m.M}x${m.N}x${m.K}`).join(', ');
  return [
    `adapter: ${deviceName(gpu)} (${c.runtime})`,
    `features: f16=${c.f16} subgroups=${c.subgroups}${c.subgroups ? ` (${c.subgroupMinSize}-${c.subgroupMaxSize})` : ''} timestamps=${c.timestamps} subgroupMatrix=${c.subgroupMatrix}${sm ? ` [${sm}]` : ''}`,
    `limits: maxStorageBufferBinding=${l.maxStorageBufferBindingSize} maxBuffer=${l.maxBufferSize} workgroupStorage=${l.maxComputeWorkgroupStorageSize} invocations=${l.maxComputeInvocationsPerWorkgroup}`,
  ].join('\n');
}

async function runBench(args: BenchArgs, log: Logger): Promise<BenchResults> {
  const chosen = args.suites ? args.suites.map((n) => {
    const s = suites.find((x) => x.name === n);
    if (!s) throw new BenchArgError(`unknown suite "${n}" (have: ${suites.map((x) => x.name).join(', ')})`);
    return s;
  }) : suites;

  const gpu = await requestGpu({ experimental: args.experimental, robustness: args.robustness, dawnFlags: BENCH_DAWN_FLAGS, label: 'bench' });
  try {
    log.info(describeGpu(gpu));
    const copy = await measureCopy(gpu, { quick: args.quick, log });
    for (const r of copy.rates) {
      log.info(`limit: copy ${r.method} ${(r.bytes / 2 ** 20).toFixed(0)} MiB: ${r.timing.median_ms.toFixed(3)} ms (${r.timing.source}) -> ${r.gbps.toFixed(1)} GB/s (read + write)`);
    }

    let bestTflops: number | undefined;
    const ctx = makeContext(gpu, { quick: args.quick, sizes: args.sizes }, log, (t) => {
      bestTflops = Math.max(bestTflops ?? 0, t);
    });
    const rows: BenchRow[] = [];
    const failed: string[] = [];
    for (const suite of chosen) {
      const t0 = performance.now();
      log.info(`suite ${suite.name} ...`);
      try {
        const got = await suite.run(ctx);
        rows.push(...got);
        log.info(`suite ${suite.name}: ${got.length} rows in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      } catch (e) {
        // One failing suite must not lose the others' results; the failure is reported and counted.
        failed.push(suite.name);
        log.warn(`suite ${suite.name} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
        if (gpu.lost) throw e;
      }
      gpu.pool.trim();
    }
    const results = finishResults(
      {
        device: deviceName(gpu),
        runtime: benchRuntime(gpu.caps.runtime),
        robustness: gpu.caps.robustness,
        date: new Date().toISOString(),
        commit: commitId(),
        rows,
        limits: { copy_gbps: copy.gbps, copy_method: copy.best.method },
      },
      bestTflops,
    );
    if (failed.length) (results as BenchResults & { failed_suites?: string[] }).failed_suites = failed;
    return results;
  } finally {
    gpu.destroy();
  }
}

async function main(): Promise<number> {
  const log: Logger = { info: (m) => console.log(m), warn: (m) => console.warn(`warning: ${m}`) };
  let args: BenchArgs;
  try {
    args = parseBenchArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`bench: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  if (args.list) {
    for (const s of suites) console.log(`${s.name}${s.description ? `: ${s.description}` : ''}`);
    return 0;
  }
  let results: BenchResults;
  try {
    results = await runBench(args, log);
  } catch (e) {
    if (e instanceof BenchArgError || e instanceof SparsePrefillError) {
      console.error(`bench: ${e.message}`);
      return 2;
    }
    throw e;
  }
  if (args.json) {
    await mkdir(dirname(args.json), { recursive: true });
    await writeFile(args.json, JSON.stringify(results, null, 2) + '\n');
    log.info(`wrote ${args.json}`);
  }
  const l = results.limits;
  console.log(`\n${results.device} | ${results.runtime}${results.robustness === false ? ' (no bounds checks)' : ''} | commit ${results.commit} | copy limit ${l.copy_gbps.toFixed(1)} GB/s${l.best_tflops ? ` | best ${l.best_tflops.toFixed(2)} TFLOP/s` : ''}`);
  console.log(formatTable(results.rows));
  const failed = (results as BenchResults & { failed_suites?: string[] }).failed_suites;
  if (failed?.length) {
    console.log(`FAILED suites: ${failed.join(', ')}`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(1);
  },
);
