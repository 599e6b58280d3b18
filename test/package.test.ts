// The embeddable ES module as a consumer sees it: dist/index.js (built by `npm run build:lib`,
// which `npm ci` runs through prepare) with declarations in dist/types, no static Node imports.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

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

describe('installing the package into another project', () => {
  it('the packed package.json has no install-time scripts (npm 11 warns about each one not covered by allowScripts)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sp-pack-'));
    try {
      copyFileSync('package.json', join(dir, 'package.json'));
      const original = readFileSync(join(dir, 'package.json'), 'utf8');
      const script = resolve('scripts/pack-manifest.mjs');
      const scripts = (): Record<string, string> => (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
      const pkg = JSON.parse(original) as { scripts: Record<string, string> };
      // npm pack runs prepack (strip) before it packs and postpack (restore) after.
      expect(pkg.scripts.prepack).toBe('node scripts/pack-manifest.mjs strip');
      expect(pkg.scripts.postpack).toBe('node scripts/pack-manifest.mjs restore');
      execFileSync(process.execPath, [script, 'strip'], { cwd: dir });
      for (const s of ['preinstall', 'install', 'postinstall', 'prepare']) expect(scripts()[s], s).toBeUndefined();
      execFileSync(process.execPath, [script, 'restore'], { cwd: dir });
      expect(readFileSync(join(dir, 'package.json'), 'utf8')).toBe(original);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
