// The decoding loop: every forward pass feeds the pending token and a tree of guesses after it, and keeps
// the longest path of guesses that each equal the model's choice after their parent. Each kept token is
// what one-by-one decoding would have produced, so the output is the same, in fewer passes. The choice is
// the argmax, or a sample that depends only on the seed, the position and the tokens before it
// (native/sampler.cpp), so sampling keeps this exact too. What to guess is the drafter's business: a fixed Jacobi
// block (the CLLM paper's decoder; block 1 is plain autoregressive decoding), or the planner of
// `--decoder auto`.
import { CostModel } from './drafters/cost-model.js';
import { drawFromText, type DraftFill } from './drafters/fill.js';
import { acceptedPath, layout } from './draft-tree.js';
import { CllmError } from './errors.js';
import type { Evaluator } from './evaluator.js';
import { Planner } from './drafters/planner.js';
import { samplingSettings, type SamplingOptions } from './sampling.js';
import type { Sequence } from './sequence.js';
import { FixedBlock } from './drafters/fixed-block.js';
import type { Drafter } from './drafters/drafter.js';

export type StopReason = 'eos' | 'length' | 'context' | 'interrupted';
export type DecoderName = 'auto' | 'jacobi' | 'ar';

export interface GenerateOptions {
  /** auto (default): the planner over every draft source; jacobi: a fixed block; ar: one token per pass. */
  decoder?: DecoderName;
  /** auto: the cost of a pass. Default: calibrated on the evaluator at its first auto generation, then kept. */
  costModel?: CostModel;
  /** A drafter of your own (such as a Planner over chosen sources); it replaces `decoder`. */
  drafter?: Drafter;
  /** Jacobi: tokens scored per forward pass, the pending token plus block - 1 guesses (default 16). */
  block?: number;
  maxTokens: number;
  /** Default greedy; a temperature above 0 samples with llama.cpp's top-k, top-p and min-p unless given. */
  sampling?: Partial<SamplingOptions>;
  /** Jacobi: guesses for draft positions that have no earlier guess. Default: seeded draws from the text so far. */
  fill?: DraftFill;
  signal?: AbortSignal;
  /** complete(): called as the prompt is evaluated, with the tokens done and their total. */
  onPrefill?: (evaluated: number, total: number) => void;
  /** Ask for each token's lead over the runner-up (for --verify); costs a little time. */
  margins?: boolean;
  /** Called after every step with the tokens it accepted (already cut at EOS or maxTokens). */
  onTokens?: (tokens: number[]) => void;
  /** Called after every forward pass. A returned promise is awaited, and its time is not counted as decoding. */
  onStep?: (step: StepTrace) => void | Promise<void>;
}

/**
 * One forward pass: the main chain fed, what the model predicted there, and how many of those predictions
 * were kept (a step of auto may keep more, on a branch off the main chain, which the trace leaves out).
 */
export interface StepTrace {
  step: number;
  position: number;
  fed: number[];
  predicted: number[];
  accepted: number;
  /** Tokens scored in the pass, the tree's other branches included. */
  scored: number;
}

export interface GenerationStats {
  decoder: DecoderName;
  /** Jacobi's block size; 1 for AR; for auto, the largest pass it scored. */
  block: number;
  promptTokens: number;
  generatedTokens: number;
  steps: number;
  tokensPerStep: number;
  /** Mean tokens scored per pass (guesses included). */
  scoredPerStep: number;
  /** Generated tokens by where they came from: "model" for the token each pass adds, else the draft source. */
  sources: Record<string, number>;
  sampling: SamplingOptions;
  prefillMs: number;
  decodeMs: number;
  /** Of decodeMs, the time inside the model's forward passes; the rest is host overhead. */
  forwardMs: number;
  tokensPerSecond: number;
}

export interface GenerateResult {
  tokens: number[];
  /** margins[i]: how far tokens[i] led the runner-up when it was chosen (only with margins: true). */
  margins: number[];
  sampling: SamplingOptions;
  stopReason: StopReason;
  steps: number;
  /** Tokens scored over all passes. */
  scored: number;
  /** Largest pass. */
  largestPass: number;
  sources: Record<string, number>;
  decodeMs: number;
  forwardMs: number;
}

const DEFAULT_BLOCK = 16;
const costModels = new WeakMap<Evaluator, CostModel>();

/** The drafter that options ask for; `auto` calibrates the evaluator's cost model on first use. */
async function drafterFor(sequence: Sequence, options: GenerateOptions): Promise<Drafter> {
  if (options.drafter) return options.drafter;
  const decoder = options.decoder ?? 'auto';
  if (decoder === 'ar') return new FixedBlock(1, () => []);
  if (decoder === 'jacobi') return new FixedBlock(options.block ?? DEFAULT_BLOCK, options.fill ?? drawFromText());
  const evaluator = sequence.evaluator;
  let cost = options.costModel ?? costModels.get(evaluator);
  if (!cost) {
    cost = await CostModel.calibrate(evaluator, sequence.cached, sequence.pending);
    costModels.set(evaluator, cost);
  }
  return new Planner(cost);
}

/** Generates after the sequence's pending token, until EOS, maxTokens, a full context or the signal. */
export async function generate(sequence: Sequence, options: GenerateOptions): Promise<GenerateResult> {
  const { block = DEFAULT_BLOCK, maxTokens, signal } = options;
  if (!Number.isInteger(block) || block < 1) throw new RangeError('block must be a positive integer');
  if (sequence.tokens.length === 0) throw new CllmError('the prompt is empty: it tokenizes to no tokens');
  const evaluator = sequence.evaluator;
  const sampling = samplingSettings(options.sampling);
  const drafter = await drafterFor(sequence, options);
  const tokens: number[] = [];
  const margins: number[] = [];
  const sources: Record<string, number> = {};
  let steps = 0;
  let scored = 0;
  let largestPass = 0;
  let forwardMs = 0;
  let stopReason: StopReason | undefined;
  const t0 = performance.now();
  let observerMs = 0;

  while (!stopReason) {
    if (tokens.length >= maxTokens) stopReason = 'length';
    else if (signal?.aborted) stopReason = 'interrupted';
    else if (sequence.position >= evaluator.size) stopReason = 'context';
    if (stopReason) break;

    // 1. Feed the committed tokens the cache lacks (the pending one last), then the guesses after it.
    const uncached = sequence.uncached;
    const room = evaluator.size - sequence.cached - uncached.length;
    const pass = layout(uncached, drafter.draft(sequence.tokens, room, uncached.length));
    const start = sequence.cached;
    const passStart = performance.now();
    let result;
    try {
      result = await evaluator.decode(pass.tokens, start, { margins: options.margins, parents: pass.parents, topK: drafter.topK || undefined, sampling });
    } catch (err) {
      evaluator.rollback(start); // keep the invariant for whoever handles the error
      if (signal?.aborted) {
        stopReason = 'interrupted'; // Ctrl-C stopped the pass half way
        break;
      }
      throw err;
    }
    const passMs = performance.now() - passStart;
    forwardMs += result.decodeMs ?? passMs;
    steps++;
    scored += pass.tokens.length;
    largestPass = Math.max(largestPass, pass.tokens.length);

    // 2. chosen[i] is the model's token after pass index i. It is certain while every guess on the path to
    //    i was right: each guess equals the model's token after its parent.
    const path = acceptedPath(pass, result.chosen);
    const predicted = path.map((i) => result.chosen[i]);
    const observed = options.onStep?.({
      step: steps,
      position: sequence.position,
      fed: pass.tokens.slice(pass.root, pass.mainChain),
      predicted: Array.from(result.chosen.subarray(pass.root, pass.mainChain)),
      accepted: path.filter((i) => i < pass.mainChain).length,
      scored: pass.tokens.length,
    });
    if (observed) {
      const paused = performance.now();
      await observed;
      observerMs += performance.now() - paused;
    }

    // 3. Keep the accepted run, cut at the first end-of-generation token or at maxTokens.
    let kept = predicted;
    const eos = kept.findIndex((t) => evaluator.isEndOfGeneration(t));
    if (eos >= 0) {
      kept = kept.slice(0, eos + 1);
      stopReason = 'eos';
    }
    if (tokens.length + kept.length >= maxTokens) {
      kept = kept.slice(0, maxTokens - tokens.length);
      stopReason ??= 'length';
    }
    tokens.push(...kept);
    if (result.margins) margins.push(...path.slice(0, kept.length).map((i) => result.margins![i]));
    kept.forEach((_, k) => {
      const source = k + 1 < path.length ? pass.source[path[k + 1]] : 'model';
      sources[source] = (sources[source] ?? 0) + 1;
    });
    // The cache keeps the entries of the accepted path as far as it runs along the main chain.
    const onMainChain = path.filter((i) => i < pass.mainChain).length;
    sequence.commit(kept, start + pass.root + onMainChain);
    options.onTokens?.(kept);

    // 4. The drafter learns from the pass: its sources, the acceptance rates and the cost of a pass.
    drafter.observe({ layout: pass, start, chosen: result.chosen, topk: result.topk, path, committed: sequence.tokens }, passMs);
  }
  return { tokens, margins, sampling, stopReason, steps, scored, largestPass, sources, decodeMs: performance.now() - t0 - observerMs, forwardMs };
}

export function generationStats(result: GenerateResult, run: { decoder?: DecoderName; block?: number; promptTokens: number; prefillMs: number }): GenerationStats {
  const generatedTokens = result.tokens.length;
  const block = run.decoder === 'ar' ? 1 : (run.block ?? DEFAULT_BLOCK);
  const decoder = run.decoder === 'auto' || run.decoder === undefined ? 'auto' : block === 1 ? 'ar' : 'jacobi';
  return {
    decoder,
    block: decoder === 'auto' ? result.largestPass : block,
    promptTokens: run.promptTokens,
    generatedTokens,
    steps: result.steps,
    tokensPerStep: result.steps ? generatedTokens / result.steps : 0,
    scoredPerStep: result.steps ? result.scored / result.steps : 0,
    sources: result.sources,
    sampling: result.sampling,
    prefillMs: run.prefillMs,
    decodeMs: result.decodeMs,
    forwardMs: result.forwardMs,
    tokensPerSecond: result.decodeMs > 0 ? (generatedTokens * 1000) / result.decodeMs : 0,
  };
}

export interface Divergence {
  /** Index in the generated tokens of the first difference. */
  index: number;
  expected: number | undefined;
  got: number | undefined;
  /** The autoregressive token's lead over the runner-up there: a tiny one is a near-tie that rounding can flip. */
  margin: number | undefined;
}

/** Compares an output with autoregressive output (decoded with margins); undefined if identical. */
export function firstDivergence(reference: Pick<GenerateResult, 'tokens' | 'margins'>, other: readonly number[]): Divergence | undefined {
  const length = Math.max(reference.tokens.length, other.length);
  for (let i = 0; i < length; i++) {
    if (reference.tokens[i] !== other[i]) return { index: i, expected: reference.tokens[i], got: other[i], margin: reference.margins[i] };
  }
  return undefined;
}

function interruptedBeforeStart(options: GenerateOptions): GenerateResult {
  return { tokens: [], margins: [], sampling: samplingSettings(options.sampling), stopReason: 'interrupted', steps: 0, scored: 0, largestPass: 0, sources: {}, decodeMs: 0, forwardMs: 0 };
}

/** Appends a prompt to the sequence and generates after it: one turn, with its statistics. */
export async function complete(sequence: Sequence, prompt: readonly number[], options: GenerateOptions): Promise<{ result: GenerateResult; stats: GenerationStats }> {
  // Ctrl-C during the prompt: nothing is generated, and the sequence is as it was.
  const prefillMs = await sequence.append(prompt, options.onPrefill).catch((err: unknown) => {
    if (options.signal?.aborted) return undefined;
    throw err;
  });
  const result = prefillMs === undefined ? interruptedBeforeStart(options) : await generate(sequence, options);
  return { result, stats: generationStats(result, { decoder: options.decoder, block: options.block, promptTokens: prompt.length, prefillMs: prefillMs ?? 0 }) };
}
