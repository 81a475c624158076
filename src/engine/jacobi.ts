// The Jacobi decoder of the CLLM paper, exact with respect to greedy decoding. With block = 1 it is the
// plain autoregressive decoder: the same loop, one token per forward pass.
import { drawFromText, type DraftFill } from './draft.js';
import { CllmError } from './errors.js';
import type { Sequence } from './sequence.js';

export type StopReason = 'eos' | 'length' | 'context' | 'interrupted';

export interface GenerateOptions {
  /** Tokens scored per forward pass: the pending token plus block - 1 guesses. 1 = autoregressive. */
  block: number;
  maxTokens: number;
  /** Guesses for draft positions that have no earlier guess. Default: seeded draws from the text so far. */
  fill?: DraftFill;
  signal?: AbortSignal;
  /** Ask for the top-2 logit margin at every position (for --verify); costs a little time. */
  margins?: boolean;
  /** Called after every step with the tokens it accepted (already cut at EOS or maxTokens). */
  onTokens?: (tokens: number[]) => void;
  /** Called after every forward pass. A returned promise is awaited, and its time is not counted as decoding. */
  onStep?: (step: StepTrace) => void | Promise<void>;
}

/** One forward pass: what was fed, what the model predicted, and how much of it reached its fixed point. */
export interface StepTrace {
  step: number;
  position: number;
  fed: number[];
  predicted: number[];
  accepted: number;
}

export interface GenerationStats {
  decoder: 'jacobi' | 'ar';
  block: number;
  promptTokens: number;
  generatedTokens: number;
  steps: number;
  tokensPerStep: number;
  prefillMs: number;
  decodeMs: number;
  tokensPerSecond: number;
}

export interface GenerateResult {
  tokens: number[];
  /** margins[i]: the top-1 minus top-2 logit when tokens[i] was predicted (only with margins: true). */
  margins: number[];
  stopReason: StopReason;
  steps: number;
  decodeMs: number;
}

/** Generates after the sequence's pending token, until EOS, maxTokens, a full context or the signal. */
export async function generate(sequence: Sequence, options: GenerateOptions): Promise<GenerateResult> {
  const { block, maxTokens, signal } = options;
  if (!Number.isInteger(block) || block < 1) throw new RangeError('block must be a positive integer');
  if (sequence.tokens.length === 0) throw new CllmError('the prompt is empty: it tokenizes to no tokens');
  const fill = options.fill ?? drawFromText();
  const evaluator = sequence.evaluator;
  const tokens: number[] = [];
  const margins: number[] = [];
  let draft: number[] = [];
  let steps = 0;
  let stopReason: StopReason | undefined;
  const t0 = performance.now();
  let observerMs = 0;

  while (!stopReason) {
    if (tokens.length >= maxTokens) stopReason = 'length';
    else if (signal?.aborted) stopReason = 'interrupted';
    else if (sequence.position >= evaluator.size) stopReason = 'context';
    if (stopReason) break;

    // 1. Feed [pending, d1..d(n-1)] at positions P..P+n-1; n shrinks only at the end of the context.
    const n = Math.min(block, evaluator.size - sequence.position);
    draft.push(...fill(sequence.tokens, Math.max(0, n - 1 - draft.length)));
    const fed = [sequence.pending, ...draft.slice(0, n - 1)];
    let result;
    try {
      result = await evaluator.decode(fed, sequence.position, { margins: options.margins });
    } catch (err) {
      evaluator.rollback(sequence.position); // keep the invariant for whoever handles the error
      throw err;
    }
    const predicted = Array.from(result.argmax);
    steps++;

    // 2. predicted[j] is the greedy token for position P+j+1. It is certain while every guess before it
    //    was right: fed[i] === predicted[i-1] for all i <= j.
    let accepted = 1;
    while (accepted < n && fed[accepted] === predicted[accepted - 1]) accepted++;
    const observed = options.onStep?.({ step: steps, position: sequence.position, fed, predicted, accepted });
    if (observed) {
      const paused = performance.now();
      await observed;
      observerMs += performance.now() - paused;
    }

    // 3. Keep the accepted run, cut at the first end-of-generation token or at maxTokens.
    let kept = predicted.slice(0, accepted);
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
    if (result.margins) margins.push(...Array.from(result.margins.subarray(0, kept.length)));
    // The cache keeps the entries of committed tokens (P..P+k-1) and drops the rest of the block.
    sequence.commit(kept);
    options.onTokens?.(kept);

    // 4. The unverified predictions become the next draft; fill tops it up on the next step.
    draft = predicted.slice(accepted);
  }
  return { tokens, margins, stopReason, steps, decodeMs: performance.now() - t0 - observerMs };
}

export function generationStats(result: GenerateResult, run: { block: number; promptTokens: number; prefillMs: number }): GenerationStats {
  const generatedTokens = result.tokens.length;
  return {
    decoder: run.block === 1 ? 'ar' : 'jacobi',
    block: run.block,
    promptTokens: run.promptTokens,
    generatedTokens,
    steps: result.steps,
    tokensPerStep: result.steps ? generatedTokens / result.steps : 0,
    prefillMs: run.prefillMs,
    decodeMs: result.decodeMs,
    tokensPerSecond: result.decodeMs > 0 ? (generatedTokens * 1000) / result.decodeMs : 0,
  };
}

export interface Divergence {
  /** Index in the generated tokens of the first difference. */
  index: number;
  expected: number | undefined;
  got: number | undefined;
  /** The greedy decoder's top-2 logit margin there: a tiny margin means a near-tie that rounding can flip. */
  margin: number | undefined;
}

/** Compares an output with greedy autoregressive output (decoded with margins); undefined if identical. */
export function firstDivergence(greedy: GenerateResult, other: readonly number[]): Divergence | undefined {
  const length = Math.max(greedy.tokens.length, other.length);
  for (let i = 0; i < length; i++) {
    if (greedy.tokens[i] !== other[i]) return { index: i, expected: greedy.tokens[i], got: other[i], margin: greedy.margins[i] };
  }
  return undefined;
}

/** Appends a prompt to the sequence and generates after it: one turn, with its statistics. */
export async function complete(sequence: Sequence, prompt: readonly number[], options: GenerateOptions): Promise<{ result: GenerateResult; stats: GenerationStats }> {
  const prefillMs = await sequence.append(prompt);
  const result = await generate(sequence, options);
  return { result, stats: generationStats(result, { block: options.block, promptTokens: prompt.length, prefillMs }) };
}
