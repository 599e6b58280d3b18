/**
 * The loader fuzz's child process (started by test/loader_fuzz.test.ts with `node --import tsx`):
 * builds the base model once, then runs each case index it is sent and answers with its result.
 * A hang or a crash here ends only this process; the parent names the case and starts another.
 */
import process from 'node:process';
import { makeBase, runFuzzCase } from './loader_cases.ts';

const tmp = process.env.LOADER_FUZZ_TMP;
if (!tmp || !process.send) throw new Error('loader_child.ts runs under test/loader_fuzz.test.ts (needs LOADER_FUZZ_TMP and an IPC channel)');
const base = await makeBase(tmp);
process.on('message', (msg: { seed: number; index: number } | 'exit') => {
  if (msg === 'exit') {
    process.send!({ rssBytes: process.memoryUsage().rss }, () => process.exit(0));
    return;
  }
  void runFuzzCase(base, msg.seed, msg.index).then((r) => process.send!(r));
});
process.send({ ready: true });
