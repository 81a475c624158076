// What a one-shot run and a chat share: the flags of a generation, the decoder's options from them, and how
// its end and its statistics read.
import type { Context } from '../engine/context.js';
import type { DecoderName, GenerateOptions, GenerateResult, GenerationStats } from '../engine/generate.js';
import { describeSampling } from '../engine/sampling.js';
import { originShares } from './format.js';
import { samplingFrom, type ModelFlags, type SamplingFlags } from './options.js';

export interface RunFlags extends SamplingFlags, ModelFlags {
  decoder: DecoderName;
  block: number;
  maxTokens: number;
  system?: string;
  prompt?: string;
  raw?: boolean;
  verify?: boolean;
  stats?: boolean;
  json?: boolean;
  showTrajectory?: boolean;
  fastKernels?: boolean;
}

/** Tokens in a fixed Jacobi pass: the block for jacobi, 1 for ar and auto (which sizes its passes itself). */
export function blockSize(flags: Pick<RunFlags, 'decoder' | 'block'>): number {
  return flags.decoder === 'jacobi' ? flags.block : 1;
}

export function generateOptions(flags: RunFlags, extra: Partial<GenerateOptions>): GenerateOptions {
  return { decoder: flags.decoder, block: blockSize(flags), maxTokens: flags.maxTokens, sampling: samplingFrom(flags), ...extra };
}

export function statsLine(stats: GenerationStats): string {
  return (
    `${stats.generatedTokens} tokens, ${stats.steps} steps, ${stats.tokensPerStep.toFixed(2)} tokens/step, ` +
    `${stats.tokensPerSecond.toFixed(1)} tok/s (${stats.decoder}${stats.decoder === 'jacobi' ? `, block ${stats.block}` : ''}${stats.decoder === 'auto' ? `; ${originShares(stats.sources, stats.generatedTokens)}` : ''}; ${describeSampling(stats.sampling)}; prefill ${stats.promptTokens} tokens in ${stats.prefillMs.toFixed(1)} ms)`
  );
}

export function stopNotice(result: GenerateResult, context: Context): string | undefined {
  if (result.stopReason === 'context') return `the context is full (${context.size} tokens): the text so far is kept; raise --ctx for more`;
  if (result.stopReason === 'interrupted') return 'interrupted';
  return undefined;
}
