/** Every kernel case, for the three runners (vitest, deno test, Chromium). Add new case lists here. */
import type { KernelCase } from '../harness/cases.ts';
import { addCases } from './add.ts';
import { attentionCases } from './attention.ts';
import { matmulCases } from './matmul.ts';
import { rmsNormCases } from './rms_norm.ts';
import { ropeCases } from './rope.ts';
import { siluMulCases } from './silu_mul.ts';
import { embeddingCases } from './embedding.ts';
import { softmaxCases } from './softmax.ts';
import { headsToTokensCases } from './heads_to_tokens.ts';
import { argmaxCases } from './argmax.ts';
import { estimateCases } from './estimate.ts';
import { fillRandomCases } from './fill_random.ts';
import { benchCopyCases } from './bench_copy.ts';
import { benchMmaCases } from './bench_mma.ts';
import { countNonFiniteCases } from './count_nonfinite.ts';
import { patternRecallCases } from './pattern_recall.ts';

export const allCases: KernelCase[] = [...addCases, ...attentionCases, ...matmulCases, ...rmsNormCases, ...ropeCases, ...siluMulCases, ...embeddingCases, ...softmaxCases, ...headsToTokensCases, ...argmaxCases, ...estimateCases, ...fillRandomCases, ...benchCopyCases, ...benchMmaCases, ...countNonFiniteCases, ...patternRecallCases];
