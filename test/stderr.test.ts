/**
 * No noise (issue 10, item 5): a CLI run under Node (Dawn on SwiftShader) and under Deno (wgpu on
 * lavapipe) prints nothing on stderr beyond our own progress and report lines, in an environment
 * without XDG_RUNTIME_DIR (as on servers and in CI), where the Vulkan drivers' libwayland used to
 * print "error: XDG_RUNTIME_DIR is invalid or not set in the environment." twice per process. With
 * --quiet stderr is empty.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const TEXT = 'The magic number for acorn is 5938271. The river ran north past the mill. '.repeat(3);
const ARGS = ['run', '--model', 'models/needle-reader', '--text', TEXT, '--question', 'What is the magic number for acorn?', '-n', '20'];

/** Lines the CLI itself writes to stderr: progress ("[  1.23s] ..."), the answer line and the report. */
const OURS = /^(\[ *\d+\.\d\ds\] |answer: |prompt \d|time to first token |GPU time |sparse attention computed |peak GPU memory |model load |host encode time: )/;

function envWithoutXdg(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.XDG_RUNTIME_DIR;
  return env;
}

function run(cmd: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { cwd: root, env: envWithoutXdg(), encoding: 'utf8', timeout: 400_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function expectOnlyOurLines(stderr: string): void {
  const foreign = stderr.split('\n').filter((l) => l !== '' && !OURS.test(l));
  expect(foreign, 'stderr lines that are not ours').toEqual([]);
}

describe('stderr holds only our own lines', () => {
  it('node dist/cli.mjs (Dawn)', () => {
    expect(existsSync(join(root, 'dist', 'cli.mjs')), 'dist/cli.mjs (npm run build:cli)').toBe(true);
    const quiet = run(process.execPath, ['dist/cli.mjs', ...ARGS, '--quiet']);
    expect(quiet.status, quiet.stderr).toBe(0);
    expect(quiet.stdout).toContain('5938271');
    expect(quiet.stderr).toBe('');
    const loud = run(process.execPath, ['dist/cli.mjs', ...ARGS]);
    expect(loud.status, loud.stderr).toBe(0);
    expect(loud.stderr).toMatch(/compiling kernels \d+\/\d+/);
    expectOnlyOurLines(loud.stderr);
  }, 900_000);

  const noGpuDevice = !existsSync('/dev/dri') && !existsSync('/dev/nvidia0') && existsSync('/usr/lib/chromium/vk_swiftshader_icd.json');
  it.skipIf(!noGpuDevice)('node dist/cli.mjs without VK_ICD_FILENAMES on a machine with no GPU device: SwiftShader, no Dawn warnings', () => {
    const env = envWithoutXdg();
    delete env.VK_ICD_FILENAMES;
    const r = spawnSync(process.execPath, ['dist/cli.mjs', ...ARGS, '--quiet'], { cwd: root, env, encoding: 'utf8', timeout: 400_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('5938271');
    expect(r.stderr).toBe('');
  }, 600_000);

  it('deno run src/cli/main.ts (wgpu)', () => {
    const deno = join(root, 'node_modules', '.bin', 'deno');
    const quiet = run(deno, ['run', '-A', '--no-check', 'src/cli/main.ts', ...ARGS, '--quiet']);
    expect(quiet.status, quiet.stderr).toBe(0);
    expect(quiet.stdout).toContain('5938271');
    expect(quiet.stderr).toBe('');
    const loud = run(deno, ['run', '-A', '--no-check', 'src/cli/main.ts', ...ARGS]);
    expect(loud.status, loud.stderr).toBe(0);
    expectOnlyOurLines(loud.stderr);
  }, 900_000);
});
