// The embeddable ES module as a consumer sees it: dist/index.js (built by `npm run build:lib`,
// which `npm ci` runs through prepare) with declarations in dist/types, no static Node imports.
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';

describe('package build', () => {
  it('dist/index.js exists, is ESM and has no static node: imports (it must load in browsers)', () => {
    expect(existsSync('dist/index.js')).toBe(true);
    const code = readFileSync('dist/index.js', 'utf8');
    expect(code).not.toMatch(/^import .* from ["']node:/m);
    expect(code).toMatch(/export \{/);
  });
  it('declarations import .js siblings that exist', () => {
    const index = readFileSync('dist/types/index.d.ts', 'utf8');
    const specs = [...index.matchAll(/from '(\.\/[^']+)'/g)].map((m) => m[1]!);
    expect(specs.length).toBeGreaterThan(10);
    for (const s of specs) expect(existsSync(`dist/types/${s.slice(2).replace(/\.js$/, '.d.ts')}`), s).toBe(true);
  });
  it('the built module runs the public API under Node', async () => {
    const mod = (await import('../dist/index.js' as string)) as Record<string, unknown>;
    for (const name of ['requestGpu', 'attention', 'openModel', 'LlamaRunner', 'MatmulKernel', 'parseModelConfig', 'loadPatternConfig', 'NoWebGpuError']) {
      expect(typeof mod[name], name).toBe('function');
    }
  });
});
