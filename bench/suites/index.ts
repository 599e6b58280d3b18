/** Every benchmark suite. Add yours here: one import and one entry (re-read this file before editing). */
import type { BenchSuite } from '../harness.ts';
import { attentionSuite } from './attention.ts';
import { copySuite } from './copy.ts';
import { decodeSuite } from './decode.ts';
import { estimateSuite } from './estimate.ts';
import { matmulSuite } from './matmul.ts';
import { mmaSuite } from './mma.ts';
import { niahSuite } from './niah.ts';
import { prefillSuite } from './prefill.ts';
import { rescaleSuite } from './rescale.ts';
import { searchSuite } from './search.ts';

export const suites: BenchSuite[] = [copySuite, attentionSuite, matmulSuite, mmaSuite, estimateSuite, prefillSuite, niahSuite, decodeSuite, searchSuite, rescaleSuite];
