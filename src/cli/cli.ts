/**
 * The sparse-prefill command line: subcommands, help, progress, and error reporting.
 *
 * Exit codes: 0 success; 2 a typed error (bad usage, bad input, no WebGPU, unsupported, ...) reported
 * as one line; 1 an unexpected failure, reported with its stack.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import process from 'node:process';
import { requestGpu } from '../gpu/device.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { BadInputError, NoWebGpuError, ShapeError, SparsePrefillError } from '../gpu/errors.ts';
import { detectRuntime } from '../gpu/runtime.ts';
import { decodeSafetensors, encodeSafetensors, type DecodedTensor, type SafetensorsData } from '../io/safetensors_write.ts';
import { commandHelp, parseArgs, programHelp, UsageError, type CommandSpec } from './args.ts';
import { RUN_COMMAND, runCommand } from './run.ts';
import { runAttention, type AttentionInputs } from './attention_run.ts';
import { parsePattern, patternText } from './pattern.ts';
import { formatBytes, Progress, type CliIo } from './progress.ts';

export const PROGRAM = 'sparse-prefill';
const SUMMARY = 'Long-context LLM prefill on WebGPU with MInference dynamic sparse attention.';

/** Replaced at bundle time (scripts/build-cli.mjs) with the package version. */
declare const __SP_VERSION__: string | undefined;
export const VERSION = typeof __SP_VERSION__ === 'string' ? __SP_VERSION__ : 'dev';

/** Head dimensions the attention kernels support (src/attention/types.ts). */
const HEAD_DIMS = [64, 96, 128];
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

const GPU_OPTIONS = [
  { name: 'experimental', kind: 'flag', help: "request Dawn's experimental features (shader-f16, subgroup matrices on NVIDIA; Node only)" },
  { name: 'quiet', short: 'q', kind: 'flag', help: 'no progress lines on stderr' },
] as const satisfies CommandSpec['options'];

export const ATTENTION_COMMAND: CommandSpec = {
  name: 'attention',
  summary: 'Run causal attention (dense or an MInference sparse pattern) on tensors from a safetensors file.',
  usage: '--in PATH --pattern PATTERN --out PATH [--indexes]',
  options: [
    { name: 'in', short: 'i', kind: 'string', value: 'PATH', required: true, help: 'input safetensors with q [H,S,D], k and v [Hkv,S,D] (f32; f16/bf16 are converted)' },
    { name: 'pattern', short: 'p', kind: 'string', value: 'PATTERN', required: true, help: 'dense, or MInference JSON (see below)' },
    { name: 'out', short: 'o', kind: 'string', value: 'PATH', required: true, help: 'output safetensors: o [H,S,D] f32' },
    { name: 'indexes', kind: 'flag', help: 'also write the sparse index (block_count, block_offset, column_count, column_index; u32)' },
    ...GPU_OPTIONS,
  ],
  details: [
    'patterns:',
    '  dense',
    '  \'["vertical_and_slash", 1000, 6096]\'   top vertical columns and slash diagonals, estimated from the last 64 queries',
    '  \'["stream_llm", 128, 4096]\'            A-shape: the first n_init keys and a local window of n_local',
    '  \'["block_sparse", 100]\'                top-k 64x64 blocks per query block',
    '',
    `H must be a multiple of Hkv; D one of ${HEAD_DIMS.join(', ')}; scale 1/sqrt(D); causal.`,
  ].join('\n'),
};

export const COMMANDS: readonly CommandSpec[] = [
  RUN_COMMAND,
  ATTENTION_COMMAND,
  { name: 'help', summary: 'show help for a command', usage: '[COMMAND]', options: [], positionals: { min: 0, max: 1, names: 'COMMAND' } },
  { name: 'version', summary: 'print the version', usage: '', options: [] },
];

// ------------------------------------------------------------------ device

/**
 * requestGpu with the advice this host needs. Under Node, Dawn reads VK_ICD_FILENAMES once when it
 * loads, so a process cannot switch to SwiftShader by itself: the user has to set it.
 */
export async function openGpu(opts: { experimental: boolean }): Promise<Gpu> {
  try {
    return await requestGpu({ experimental: opts.experimental, label: PROGRAM });
  } catch (e) {
    if (e instanceof NoWebGpuError && detectRuntime() === 'node-dawn' && !process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) {
      throw new NoWebGpuError(
        `no GPU adapter found. SwiftShader (a CPU Vulkan driver) is installed here; run again with ` +
          `VK_ICD_FILENAMES=${SWIFTSHADER_ICD} set in the environment (Dawn reads it once at startup, so it cannot be switched from inside the process).`,
      );
    }
    throw e;
  }
}

// ------------------------------------------------------------------ attention

function describe(t: DecodedTensor): string {
  return `${t.dtype}[${t.shape.join(', ')}]`;
}

/** Checks the q, k, v tensors of an attention case and returns its dimensions. */
export function attentionInputs(tensors: Map<string, DecodedTensor>, file: string): AttentionInputs {
  const get = (name: string): DecodedTensor => {
    const t = tensors.get(name);
    if (!t) throw new BadInputError(`${file}: no tensor "${name}" (has: ${[...tensors.keys()].join(', ') || 'none'})`);
    if (!['F32', 'F16', 'BF16'].includes(t.dtype)) throw new BadInputError(`${file}: tensor "${name}" is ${t.dtype}; expected F32 (or F16/BF16)`);
    if (t.shape.length !== 3) throw new ShapeError(`${file}: tensor "${name}" is ${describe(t)}; expected 3 dimensions`);
    return t;
  };
  const q = get('q');
  const k = get('k');
  const v = get('v');
  const [H, S, D] = q.shape as [number, number, number];
  const [Hkv, Sk, Dk] = k.shape as [number, number, number];
  if (k.shape.join() !== v.shape.join()) throw new ShapeError(`${file}: k ${describe(k)} and v ${describe(v)} differ in shape`);
  if (Sk !== S || Dk !== D) throw new ShapeError(`${file}: q ${describe(q)} and k ${describe(k)} must agree in S and D`);
  if (H === 0 || S === 0 || Hkv === 0) throw new ShapeError(`${file}: q ${describe(q)}, k ${describe(k)}: H, S and Hkv must be positive`);
  if (H % Hkv !== 0) throw new ShapeError(`${file}: ${H} query heads are not a multiple of ${Hkv} kv heads`);
  if (!HEAD_DIMS.includes(D)) throw new ShapeError(`${file}: head dimension ${D} is not supported (${HEAD_DIMS.join(', ')})`);
  const f32 = (t: DecodedTensor): Float32Array => (t.data instanceof Float32Array ? t.data : Float32Array.from(t.data));
  return { H, Hkv, S, D, q: f32(q), k: f32(k), v: f32(v) };
}

async function readInput(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new BadInputError(`cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
}

async function writeOutput(path: string, bytes: Uint8Array): Promise<void> {
  try {
    const dir = dirname(path);
    if (dir && dir !== '.') await mkdir(dir, { recursive: true });
    await writeFile(path, bytes);
  } catch (e) {
    throw new BadInputError(`cannot write ${path}: ${(e as Error).message}`);
  }
}

async function attentionCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const a = parseArgs(argv, ATTENTION_COMMAND);
  if (a.flags.help) {
    io.out(commandHelp(PROGRAM, ATTENTION_COMMAND));
    return 0;
  }
  const progress = new Progress(io, !a.flags.quiet);
  const inPath = a.strings.in!;
  const outPath = a.strings.out!;
  // Everything that can be checked without a GPU is checked first.
  const pattern = parsePattern(a.strings.pattern!);
  const bytes = await readInput(inPath);
  const file = decodeSafetensors(bytes, inPath);
  const x = attentionInputs(file.tensors, inPath);
  progress.step(`read ${inPath} (${formatBytes(bytes.byteLength)}): q [${x.H}, ${x.S}, ${x.D}], k/v [${x.Hkv}, ${x.S}, ${x.D}], pattern ${patternText(pattern)}`);

  const gpu = await progress.timed('opening the GPU', () => openGpu({ experimental: a.flags.experimental === true }));
  try {
    const a0 = gpu.caps.adapter;
    progress.step(`adapter: ${a0.description || a0.device || a0.vendor || 'unknown'} (${gpu.caps.runtime})`);
    const r = await progress.timed(`attention ${patternText(pattern)}`, () => runAttention(gpu, x, pattern, { indexes: a.flags.indexes === true, progress }));
    const tensors: Record<string, { shape: number[]; data: SafetensorsData }> = { o: { shape: [x.H, x.S, x.D], data: r.o } };
    if (a.flags.indexes) {
      if (r.index) {
        const ix = r.index;
        tensors.block_count = { shape: [ix.heads, ix.queryBlocks], data: ix.blockCount };
        tensors.block_offset = { shape: [ix.heads, ix.queryBlocks, ix.maxBlocks], data: ix.blockOffset };
        tensors.column_count = { shape: [ix.heads, ix.queryBlocks], data: ix.columnCount };
        tensors.column_index = { shape: [ix.heads, ix.queryBlocks, Math.max(ix.maxColumns, 1)], data: ix.columnIndex };
      } else {
        io.err(`${PROGRAM}: note: pattern ${patternText(pattern)} builds no sparse index; --indexes wrote none`);
      }
    }
    const meta = { format: 'pt', pattern: patternText(pattern), density: JSON.stringify(r.density), producer: `${PROGRAM} ${VERSION}` };
    const out = encodeSafetensors(tensors, meta);
    await writeOutput(outPath, out);
    progress.step(`wrote ${outPath} (${formatBytes(out.byteLength)}: ${Object.keys(tensors).join(', ')})`);
  } finally {
    gpu.destroy();
  }
  return 0;
}

// ------------------------------------------------------------------ entry

/** Runs the CLI; returns the exit code. Never throws. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const [cmd, ...rest] = argv;
    if (cmd === undefined || cmd === '--help' || cmd === '-h') {
      io.out(programHelp(PROGRAM, SUMMARY, COMMANDS));
      return cmd === undefined ? 2 : 0;
    }
    if (cmd === '--version' || cmd === 'version') {
      io.out(`${PROGRAM} ${VERSION}`);
      return 0;
    }
    if (cmd === 'help') {
      const topic = rest[0];
      const spec = topic && COMMANDS.find((c) => c.name === topic);
      if (topic && !spec) throw new UsageError(`unknown command "${topic}" (commands: ${COMMANDS.map((c) => c.name).join(', ')})`);
      io.out(spec ? commandHelp(PROGRAM, spec) : programHelp(PROGRAM, SUMMARY, COMMANDS));
      return 0;
    }
    switch (cmd) {
      case 'run':
        return await runCommand(rest, io);
      case 'attention':
        return await attentionCommand(rest, io);
      default:
        throw new UsageError(`unknown command "${cmd}" (commands: ${COMMANDS.map((c) => c.name).join(', ')})`);
    }
  } catch (e) {
    return reportError(e, io);
  }
}

export function reportError(e: unknown, io: CliIo): number {
  if (e instanceof UsageError) {
    io.err(`${PROGRAM}: ${e.message} (see "${PROGRAM} ${e.command ? `${e.command} ` : ''}--help")`);
    return 2;
  }
  if (e instanceof SparsePrefillError) {
    io.err(`${PROGRAM}: error [${e.code}]: ${e.message}`);
    return 2;
  }
  io.err(`${PROGRAM}: unexpected error:\n${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  return 1;
}
