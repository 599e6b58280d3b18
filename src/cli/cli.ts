/**
 * The sparse-prefill command line: the list of commands, help, dispatch and error reporting. Each
 * command lives in its own module (run.ts, eval.ts, attention_command.ts); what they share is in
 * common.ts.
 *
 * Exit codes: 0 success; 2 a typed error (bad usage, bad input, no WebGPU, unsupported, ...) reported
 * as one line; 1 an unexpected failure, reported with its stack.
 */
import { SparsePrefillError } from '../gpu/errors.ts';
import { commandHelp, programHelp, UsageError, type CommandSpec } from './args.ts';
import { ATTENTION_COMMAND, attentionCommand } from './attention_command.ts';
import { PROGRAM, SUMMARY, VERSION } from './common.ts';
import { EVAL_COMMAND, evalCommand } from './eval.ts';
import { RUN_COMMAND, runCommand } from './run.ts';
import { SEARCH_COMMAND, searchCommand } from './search_patterns.ts';
import type { CliIo } from './progress.ts';

export { ATTENTION_COMMAND, attentionInputs } from './attention_command.ts';
export { openGpu, PROGRAM, VERSION } from './common.ts';

export const COMMANDS: readonly CommandSpec[] = [
  RUN_COMMAND,
  EVAL_COMMAND,
  SEARCH_COMMAND,
  ATTENTION_COMMAND,
  { name: 'help', summary: 'show help for a command', usage: '[COMMAND]', options: [], positionals: { min: 0, max: 1, names: 'COMMAND' } },
  { name: 'version', summary: 'print the version', usage: '', options: [] },
];

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
      case 'eval':
        return await evalCommand(rest, io);
      case 'search-patterns':
        return await searchCommand(rest, io);
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
