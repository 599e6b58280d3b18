/**
 * Every CLI message a user meets before a run starts (issue 10, item 6): errors name the CLI's
 * flags (never the library's options), end with exit code 2 and one line on stderr, write nothing to
 * stdout or to output files, and come before the weights load (no "loading the model" line) — most
 * before the GPU opens. Numbers read as typed or with thousands separators; the help text has no
 * --[no-]no-chat, no -Q beside -q, and says what --profile prints.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commandHelp } from '../src/cli/args.ts';
import { PROGRAM, runCli } from '../src/cli/cli.ts';
import { RUN_COMMAND } from '../src/cli/run.ts';
import { EVAL_COMMAND } from '../src/cli/eval.ts';
import { buildPrompt } from '../src/model/session.ts';
import { openLocalModel } from '../src/model/source.ts';
import { loadTokenizer } from '../src/model/tokenizer.ts';
import { BadInputError } from '../src/gpu/errors.ts';

const MODEL = resolve('models/needle-reader');
let dir: string;
/** needle-reader's files with max_position_embeddings 64. */
let shortModel: string;
let emptyDoc: string;
let doc: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sp-cli-messages-'));
  shortModel = join(dir, 'short-model');
  mkdirSync(shortModel);
  for (const f of ['model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) symlinkSync(join(MODEL, f), join(shortModel, f));
  const config = JSON.parse(readFileSync(join(MODEL, 'config.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(shortModel, 'config.json'), JSON.stringify({ ...config, max_position_embeddings: 64 }));
  emptyDoc = join(dir, 'empty.txt');
  writeFileSync(emptyDoc, ' \n\t\n');
  doc = join(dir, 'doc.txt');
  writeFileSync(doc, 'The magic number for acorn is 5938271. '.repeat(20));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function cli(argv: string[]): Promise<{ code: number; out: string[]; err: string[]; ms: number }> {
  const out: string[] = [];
  const err: string[] = [];
  const t = performance.now();
  const code = await runCli(argv, { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out, err, ms: performance.now() - t };
}

/** The run failed with exit 2, wrote nothing to stdout, and its last stderr line is the message. */
async function refused(argv: string[]): Promise<{ message: string; err: string[] }> {
  const r = await cli(argv);
  expect(r.code, `${argv.join(' ')}\n${r.err.join('\n')}`).toBe(2);
  expect(r.out).toEqual([]);
  // Nothing was loaded: no weights, no kernels.
  expect(r.err.join('\n')).not.toMatch(/loading the model|weights \d+%|compiling kernels/);
  const message = r.err[r.err.length - 1]!;
  expect(message.startsWith(`${PROGRAM}: `)).toBe(true);
  expect(message).not.toMatch(/allowLongPrompt|denseBelow|matmulVariant|maxNewTokens|checkFinite/); // library option names
  return { message, err: r.err };
}

const Q = ['--question', 'What is the magic number for acorn?'];

describe('run: checks before loading, in CLI words', () => {
  it('an empty --document file, --text or --question', async () => {
    expect((await refused(['run', '-m', MODEL, '-d', emptyDoc, ...Q])).message).toBe(
      `${PROGRAM}: the document ${emptyDoc} is empty: --document needs a file with text (see "${PROGRAM} run --help")`,
    );
    expect((await refused(['run', '-m', MODEL, '--text', '  ', ...Q])).message).toBe(`${PROGRAM}: --text is empty: give the document's text (see "${PROGRAM} run --help")`);
    expect((await refused(['run', '-m', MODEL, '-d', doc, '--question', ' '])).message).toBe(`${PROGRAM}: --question is empty: give the question to ask about the document (see "${PROGRAM} run --help")`);
  });

  it('a prompt longer than max_position_embeddings names --allow-long, right after tokenizing', async () => {
    const { message, err } = await refused(['run', '-m', shortModel, '-d', doc, ...Q]);
    expect(message).toMatch(/^sparse-prefill: the prompt has \d+ tokens, more than the model's max_position_embeddings \(64\); pass --allow-long to run it anyway/);
    expect(err.join('\n')).not.toMatch(/opening the GPU/);
    // A prompt that fits but leaves no room for the answer.
    const fits = await refused(['run', '-m', shortModel, '--text', 'acorn 5938271', ...Q, '-n', '60']);
    expect(fits.message).toMatch(/^sparse-prefill: the prompt \(\d+ tokens\) \+ --max-new-tokens \(60\) reach \d+ positions, more than the model's max_position_embeddings \(64\); pass --allow-long/);
  });

  it('--matmul gemv is no choice; an unavailable --matmul path is named before the weights load', async () => {
    expect((await refused(['run', '-m', MODEL, '-d', doc, ...Q, '--matmul', 'gemv'])).message).toMatch(/--matmul gemv is not a prefill path: it serves at most 8 rows, and --matmul auto already uses it for decode/);
    expect((await refused(['run', '-m', MODEL, '-d', doc, ...Q, '--matmul', 'fast'])).message).toMatch(/--matmul must be auto, f32, f16, sgmatrix, got "fast"/);
  });

  it('numbers are quoted as typed and ranges read with separators', async () => {
    expect((await refused(['run', '-m', MODEL, '-d', doc, ...Q, '-n', '1152921504606846976'])).message).toBe(
      `${PROGRAM}: --max-new-tokens must be a whole number from 1 to 268,435,456, got "1152921504606846976" (see "${PROGRAM} run --help")`,
    );
    expect((await refused(['run', '-m', MODEL, '-d', doc, ...Q, '--chunk', '0'])).message).toMatch(/--chunk must be a whole number from 1 to 268,435,456, got "0"/);
    expect((await refused(['run', '-m', MODEL, '-d', doc, ...Q, '--dense-below', '1e3'])).message).toMatch(/--dense-below must be a whole number from 0 to 268,435,456, got "1e3"/);
  });

  it('pattern numbers are named by their place and range: -1 is below 0, 0 is below TOP_K\'s 1', async () => {
    expect((await refused(['run', '-m', MODEL, '-d', doc, ...Q, '--pattern', '["vertical_and_slash", -1, 128]'])).message).toBe(
      `${PROGRAM}: error [BAD_INPUT]: pattern ["vertical_and_slash", -1, 128]: V (vertical_size) must be a whole number from 0 to 268,435,456, got -1`,
    );
    expect((await refused(['run', '-m', MODEL, '-d', doc, ...Q, '--pattern', '["block_sparse", 0]'])).message).toBe(
      `${PROGRAM}: error [BAD_INPUT]: pattern ["block_sparse", 0]: TOP_K must be a whole number from 1 to 268,435,456, got 0`,
    );
  });
});

describe('run: the attention config against the model, before loading', () => {
  it('a pattern config for another model shape is refused before the GPU opens', async () => {
    const config = join(dir, 'three-layers.json');
    writeFileSync(config, JSON.stringify([0, 1, 2].map(() => Object.fromEntries([0, 1, 2, 3, 4, 5].map((h) => [String(h), ['vertical_and_slash', 64, 128, 0.9]])))));
    const { message, err } = await refused(['run', '-m', MODEL, '-d', doc, ...Q, '--pattern-config', config]);
    expect(message).toBe(`${PROGRAM}: error [BAD_INPUT]: pattern config has 3 layers, the model has 6`);
    expect(err.join('\n')).not.toMatch(/opening the GPU/);
  });
});

describe('eval: checks before loading', () => {
  it('lengths past the model, --needles past 16, nothing written to --json', async () => {
    const json = join(dir, 'niah.json');
    expect((await refused(['eval', 'niah', '-m', shortModel, '--lengths', '1k', '--json', json])).message).toMatch(
      /--lengths 1K \(\+ --max-new-tokens 32\) is longer than the model's max_position_embeddings \(64\)/,
    );
    expect((await refused(['eval', 'niah', '-m', MODEL, '--needles', '17', '--json', json])).message).toMatch(/--needles must be a whole number from 1 to 16, got "17"/);
    expect(existsSync(json)).toBe(false);
  });
});

describe('help text', () => {
  it('says --[no-]chat once, has no -Q beside -q, and --profile promises what the report prints', () => {
    const run = commandHelp(PROGRAM, RUN_COMMAND);
    expect(run).toContain('--[no-]chat');
    expect(run).not.toContain('no-]no-');
    expect(run).not.toMatch(/-Q\b/);
    expect(run).toMatch(/-q, --quiet /);
    expect(run).toMatch(/--profile +GPU time per kind of work in the report \(attention, index estimation, matmuls, other: milliseconds and shares\)/);
    expect(run).not.toMatch(/--\[no-\](quiet|compare|profile|allow-long|experimental)/);
    expect(run).not.toMatch(/\bgemv\b.*\|/);
    expect(run).toContain('--[no-]bounds-checks');
    expect(commandHelp(PROGRAM, EVAL_COMMAND).match(/\[no-\][\w-]+/g)).toEqual(['[no-]bounds-checks']);
  });
});

describe('library: an empty document is refused, in the library\'s words', () => {
  it('buildPrompt (what answer() sends) refuses a blank document or question', async () => {
    const tok = await loadTokenizer(await openLocalModel(MODEL));
    expect(() => buildPrompt(tok, '', 'What?')).toThrow(BadInputError);
    expect(() => buildPrompt(tok, ' \n', 'What?')).toThrow(/the document is empty/);
    expect(() => buildPrompt(tok, 'text', '  ')).toThrow(/the question is empty/);
    expect(buildPrompt(tok, 'text', 'What?').length).toBeGreaterThan(2);
  });
});
