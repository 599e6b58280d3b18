#!/usr/bin/env node
/**
 * Entry of the `sparse-prefill` command (bundled to dist/cli.mjs by scripts/build-cli.mjs for Node;
 * under Deno: `deno run -A src/cli/main.ts ...`).
 */
import process from 'node:process';
import { runCli } from './cli.ts';

const code = await runCli(process.argv.slice(2), {
  out: (t) => console.log(t),
  err: (t) => console.error(t),
});
// Exit explicitly: Dawn's native binding can keep Node's event loop alive after the device is gone.
process.exit(code);
