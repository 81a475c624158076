// cllm as a library: load a GGUF model, create a context, and generate with `auto`, Jacobi or plain
// autoregressive decoding, greedy or sampled, streaming tokens as they are accepted. Every decoder gives
// the autoregressive output; they differ in how many forward passes it takes.
export { buildInfo } from './engine/addon.js';
export type { BuildInfo } from './engine/addon.js';
export { Context, type ContextSettings } from './engine/context.js';
export { CostModel } from './engine/drafters/cost-model.js';
export type { Drafter } from './engine/drafters/drafter.js';
export { FixedBlock } from './engine/drafters/fixed-block.js';
export { drawFromText, type DraftFill } from './engine/drafters/fill.js';
export { Planner } from './engine/drafters/planner.js';
export { CllmError } from './engine/errors.js';
export type { DecodeOptions, DecodeResult, Evaluator } from './engine/evaluator.js';
export { complete, firstDivergence, generate, generationStats } from './engine/generate.js';
export type { DecoderName, GenerateOptions, GenerateResult, GenerationStats, StepTrace, StopReason } from './engine/generate.js';
export { Model, TextStream, type ChatMessage, type ContextOptions, type LoadOptions, type ModelInfo } from './engine/model.js';
export { describeSampling, LLAMA_CPP_SAMPLING, samplingSettings, type SamplingOptions } from './engine/sampling.js';
export { Sequence } from './engine/sequence.js';
export { JacobiTail } from './engine/sources/jacobi-tail.js';
export { NgramPool } from './engine/sources/ngram-pool.js';
export type { DraftSource, ScoredPass } from './engine/sources/source.js';
export { SuffixMatch } from './engine/sources/suffix-match.js';
export { TokenRecycling } from './engine/sources/token-recycling.js';
export { pullModel, resolveModelSpec, type PullOptions, type PullProgress, type PullResult } from './model-files/pull.js';
export { runBench, summarize, type BenchOptions, type BenchRow, type BenchRun, type BenchSummaryRow, type BenchVariant } from './tasks/bench.js';
