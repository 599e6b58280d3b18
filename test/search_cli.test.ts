/**
 * `sparse-prefill search-patterns` (src/cli/search_patterns.ts): usage errors before any GPU work,
 * then on a tiny fixture model (scripts/make-fixtures.ts, real Llama 3 tokenizer) over held-out
 * text: the config and the per-layer summaries, resuming from OUT.search.json (partial: the missing
 * layers are searched; complete: the config is written again without the GPU), refusing a state of
 * another search, and the written config read as `run` / `eval --pattern-config` read it.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/cli.ts';
import { parseTokenCount, promptHash, type SearchState } from '../src/cli/search_patterns.ts';
import { UsageError } from '../src/cli/args.ts';
import { loadPatternConfig } from '../src/attention/config.ts';
import { ensureFixture } from '../scripts/make-fixtures.ts';
import { parseModelConfig } from '../src/model/config.ts';
import { resolveAttentionConfig } from '../src/model/session.ts';

function capture(): { io: { out(t: string): void; err(t: string): void }; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (t) => out.push(t), err: (t) => err.push(t) }, out, err };
}

const HELDOUT = 'demo/assets/brown-heldout.txt';

describe('search-patterns arguments', () => {
  it('parses token counts', () => {
    expect(parseTokenCount('32k', 'length', 'x')).toBe(32768);
    expect(parseTokenCount('1536', 'length', 'x')).toBe(1536);
    expect(parseTokenCount('0.5k', 'length', 'x')).toBe(512);
    for (const bad of ['', '0', '-3', '12q', '1.3', '0.0001k']) expect(() => parseTokenCount(bad, 'length', 'x'), bad).toThrow(UsageError);
  });

  it('hashes prompts apart', () => {
    expect(promptHash(Uint32Array.of(1, 2, 3))).toMatch(/^[0-9a-f]{8}$/);
    expect(promptHash(Uint32Array.of(1, 2, 3))).not.toBe(promptHash(Uint32Array.of(1, 2, 4)));
  });

  it('reports bad input as one line with exit code 2, before opening the model', async () => {
    const cases: [string[], RegExp][] = [
      [['search-patterns', '--model', 'm', '--out', 'o.json'], /needs --file PATH/],
      [['search-patterns', '--model', 'm', '--file', HELDOUT, '--out', 'o.json', '--length', '12q'], /--length: "12q" is not a token count/],
      [['search-patterns', '--model', 'm', '--file', HELDOUT, '--out', 'o.json', '--space-scale', '0'], /--space-scale must be a positive number/],
      [['search-patterns', '--model', 'm', '--file', HELDOUT, '--out', 'o.json', '--rows', '0'], /--rows must be a whole number from 1 to [\d,]+, got "0"/],
      [['search-patterns', '--model', 'm', '--file', '/nonexistent/cal.txt', '--out', 'o.json'], /error \[BAD_INPUT\]: cannot read calibration text \/nonexistent\/cal.txt/],
      [['search-patterns', '--model', 'm', '--file', HELDOUT, '--out', 'o.json', '--pattern', 'dense'], /unknown option --pattern/],
    ];
    for (const [argv, re] of cases) {
      const c = capture();
      expect(await runCli(argv, c.io), argv.join(' ')).toBe(2);
      expect(c.err, argv.join(' ')).toHaveLength(1);
      expect(c.err[0]).toMatch(re);
    }
  });
});

describe('search-patterns on a fixture model (SwiftShader)', () => {
  let model = '';
  let dir = '';
  const base = (out: string): string[] => ['search-patterns', '--model', model, '--file', HELDOUT, '--out', out, '--length', '1k', '--space-scale', '0.03125', '--rows', '32', '--matmul', 'f32'];

  beforeAll(async () => {
    model = await ensureFixture('llama-untied-bf16');
    dir = mkdtempSync(join(tmpdir(), 'sp-search-'));
    return () => rmSync(dir, { recursive: true, force: true });
  });

  it('writes the config, a summary per layer and the state; resumes; refuses another search; run reads the config', async () => {
    const out = join(dir, 'config.json');
    const c = capture();
    expect(await runCli(base(out), c.io), c.err.join('\n')).toBe(0);
    const summaries = c.err.filter((l) => /\] layer \d\/2: /.test(l));
    expect(summaries, c.err.join('\n')).toHaveLength(2);
    expect(summaries[0]).toMatch(/mean recall 0\.\d{3}, density/);
    expect(c.out.join('\n')).toMatch(/wrote .*config\.json: 2 layers x 2 heads .* mean recall .* on 1024 tokens/);
    const text = readFileSync(out, 'utf8');
    const patterns = loadPatternConfig(text, { layers: 2, heads: 2 });
    const state = JSON.parse(readFileSync(`${out}.search.json`, 'utf8')) as SearchState;
    expect(state.layers.map((l) => l.heads.map((h) => h.pattern))).toEqual(patterns);
    expect(state.prompt.tokens).toBe(1024);

    // Interrupted after layer 1: the next run searches layer 2 only and writes the same config.
    writeFileSync(`${out}.search.json`, JSON.stringify({ ...state, layers: state.layers.slice(0, 1) }));
    rmSync(out);
    const r = capture();
    expect(await runCli(base(out), r.io), r.err.join('\n')).toBe(0);
    expect(r.err.some((l) => l.includes('1 of 2 layers done')), r.err.join('\n')).toBe(true);
    expect(r.err.filter((l) => /\] layer \d\/2: /.test(l)).map((l) => l.replace(/^.*\] /, '').slice(0, 9))).toEqual(['layer 2/2']);
    expect(loadPatternConfig(readFileSync(out, 'utf8'), { layers: 2, heads: 2 })).toEqual(patterns);

    // Finished: the config is written again from the state, without opening the GPU.
    rmSync(out);
    const f = capture();
    expect(await runCli(base(out), f.io), f.err.join('\n')).toBe(0);
    expect(f.err.some((l) => l.includes('opening the GPU'))).toBe(false);
    expect(readFileSync(out, 'utf8')).toBe(text);

    // A state of another search is refused (exit 2, before the GPU), unless --restart.
    const e = capture();
    const other = base(out);
    other[other.indexOf('--rows') + 1] = '48';
    expect(await runCli(other, e.io)).toBe(2);
    expect(e.err.at(-1)).toMatch(/holds a search of another --rows \(32\); pass --restart/);
    expect(e.err.some((l) => l.includes('opening the GPU'))).toBe(false);

    // What run / eval do with --pattern-config (openModel's attentionConfig text) gives the same patterns.
    const config = parseModelConfig(JSON.parse(readFileSync(join(model, 'config.json'), 'utf8')));
    expect(resolveAttentionConfig(text, config)).toEqual(patterns);
  }, 600_000);
});
