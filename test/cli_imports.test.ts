/**
 * Every CLI module can be the first one imported (no import cycle makes one of them see another
 * half-initialised): each is imported first in a fresh process.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const modules = readdirSync('src/cli').filter((f) => f.endsWith('.ts') && f !== 'main.ts');

describe('CLI modules', () => {
  it.each(modules)('src/cli/%s imports first without error', (file) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', `const m = await import('./src/cli/${file}'); if (Object.keys(m).length === 0) throw new Error('no exports');`], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
