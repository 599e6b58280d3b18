/**
 * `sparse-prefill attention`: the conformance entry. Reads q, k, v from a safetensors file, runs one
 * pattern (dense or MInference sparse) through the attention API and writes o (and optionally the
 * sparse index) to another safetensors file.
 */
import { BadInputError, ShapeError } from '../gpu/errors.ts';
import { decodeSafetensors, encodeSafetensors, type DecodedTensor, type SafetensorsData } from '../io/safetensors_write.ts';
import { commandHelp, parseArgs, type CommandSpec } from './args.ts';
import { runAttention, type AttentionInputs } from './attention_run.ts';
import { GPU_OPTIONS, openGpu, PROGRAM, readInput, VERSION, writeOutput } from './common.ts';
import { parsePattern, patternText } from './pattern.ts';
import { formatBytes, Progress, type CliIo } from './progress.ts';

/** Head dimensions the attention kernels support (src/attention/types.ts). */
const HEAD_DIMS = [64, 96, 128];

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

export async function attentionCommand(argv: readonly string[], io: CliIo): Promise<number> {
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

  const gpu = await progress.timed('opening the GPU', () => openGpu({ experimental: a.flags.experimental === true, boundsChecks: a.flags['bounds-checks'] !== false, note: (m) => progress.step(m) }));
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

