/** Progress lines for the CLI: `[  1.23s] message` on stderr, silent with --quiet. */

export interface CliIo {
  /** Results and help (stdout). */
  out(text: string): void;
  /** Errors and progress (stderr). */
  err(text: string): void;
}

export class Progress {
  private readonly t0 = performance.now();
  constructor(
    private readonly io: CliIo,
    private readonly enabled: boolean,
  ) {}

  step(message: string): void {
    if (!this.enabled) return;
    const s = (performance.now() - this.t0) / 1000;
    this.io.err(`[${s.toFixed(2).padStart(7)}s] ${message}`);
  }

  /** Runs fn, then reports how long it took. */
  async timed<T>(message: string, fn: () => Promise<T>): Promise<T> {
    const t = performance.now();
    this.step(`${message} ...`);
    const v = await fn();
    this.step(`${message}: done in ${((performance.now() - t) / 1000).toFixed(2)} s`);
    return v;
  }
}

export { formatBytes } from '../util/numbers.ts';
