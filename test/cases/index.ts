/** Every kernel case, for the three runners (vitest, deno test, Chromium). Add new case lists here. */
import type { KernelCase } from '../harness/cases.ts';
import { addCases } from './add.ts';
import { attentionCases } from './attention.ts';
import { matmulCases } from './matmul.ts';
import { rmsNormCases } from './rms_norm.ts';
import { ropeCases } from './rope.ts';

export const allCases: KernelCase[] = [...addCases, ...attentionCases, ...matmulCases, ...rmsNormCases, ...ropeCases];
