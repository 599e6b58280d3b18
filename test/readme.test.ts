/**
 * The README's examples run as written (issue 10, item 7): every ```js block of README.md is saved
 * under scratch/ in the repository (so that `import ... from 'sparse-prefill'` resolves to the
 * package itself, dist/index.js) and run with Node from the repository root, on the software adapter
 * the test run uses, with the bundled model and short document. Each must exit 0 with nothing on
 * stderr; the model example must answer the short document's question right.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import shortMeta from '../demo/assets/short-document.json';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = join(root, 'scratch', 'readme-test');

/** The ```js blocks of a Markdown text, in order. */
function jsBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('README examples', () => {
  const blocks = jsBlocks(readFileSync(join(root, 'README.md'), 'utf8'));

  it('has the library examples, importing the package by its name', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    for (const b of blocks) expect(b).toMatch(/from 'sparse-prefill'/);
    expect(blocks.join('\n')).not.toMatch(/fetch\('config\.json'\)/);
  });

  it.each(blocks.map((code, i) => [i + 1, code] as const))('block %i runs as written in Node', (i, code) => {
    expect(existsSync(join(root, 'dist', 'index.js')), 'dist/index.js (npm run build:lib)').toBe(true);
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `block-${i}.mjs`);
    writeFileSync(file, code);
    const env = { ...process.env };
    delete env.XDG_RUNTIME_DIR; // the runtime must silence the Vulkan drivers by itself
    const r = spawnSync(process.execPath, [file], { cwd: root, env, encoding: 'utf8', timeout: 500_000 });
    expect(r.status, `block ${i} exited ${r.status} (${r.signal ?? ''}):\n${r.stderr}\n${r.stdout}`).toBe(0);
    expect(r.stderr).toBe('');
    if (code.includes('openModel')) {
      expect(r.stdout).toContain(shortMeta.expectedValue);
      expect(r.stdout).toMatch(/compiling kernels \d+\/\d+/);
      expect(r.stdout).toMatch(/prefill 100%/);
      expect(r.stdout).toMatch(/sparse attention computed \d+\.\d% of the causal query-key pairs/);
      expect(r.stdout).toMatch(/GPU time \(timestamp queries\): attention /);
      expect(r.stdout).toMatch(/model load .*: read .*, upload .*, compile /);
    } else {
      expect(r.stdout).toMatch(/^\d+ outputs; kept per head: (\d+% ){3}\d+%; 4 sparse indexes$/m);
    }
  }, 600_000);
});
