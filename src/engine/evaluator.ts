// The small interface the decoders run on: a real llama.cpp context, or the tests' fake model.
import type { SamplingOptions } from './sampling.js';

export interface DecodeOptions {
  /** Ask for the top-2 logit margin at every position (for --verify); costs a little time. */
  margins?: boolean;
  /**
   * Score a draft tree instead of a chain: parents[i] < i is node i's parent (-1 for node 0), and node i
   * sits at start + its depth. Nodes 0..m-1 that each follow the one before form the main chain: after the
   * pass, the cache keeps the main chain's entries until rollback, which also drops every other branch.
   */
  parents?: ArrayLike<number>;
  /** Also return the topK best tokens at every position (by logit, after the penalties). */
  topK?: number;
  /** chosen[i] becomes the token sampled after node i, a function of the seed, its position and its context. */
  sampling?: SamplingOptions;
}

export interface DecodeResult {
  /** chosen[i] is the token after node i (position start + i + 1 in a chain): greedy, or sampled. */
  chosen: Int32Array;
  /** How far chosen[i] leads the runner-up, in logits (Gumbel-perturbed when sampling), when asked for. */
  margins?: Float32Array;
  /** With topK: the topK best tokens after node i, best first, at topk[i * topK ...]. */
  topk?: Int32Array;
  /** Milliseconds inside the model's forward pass, when known (the rest of a step is host overhead). */
  decodeMs?: number;
}

/**
 * What a decoder needs from a model: score a block or a draft tree in one pass, trim the KV cache,
 * recognise the end of generation. Context implements it over llama.cpp; the tests implement it with a pure
 * TypeScript fake.
 */
export interface Evaluator {
  readonly size: number;
  decode(tokens: ArrayLike<number>, start: number, options?: DecodeOptions): Promise<DecodeResult>;
  /** Evaluates tokens into the KV cache without computing any prediction (a prompt). */
  prefill(tokens: ArrayLike<number>, start: number): Promise<void>;
  /** Forgets every cached position from `position` on, and every branch of the last draft tree. */
  rollback(position: number): void;
  isEndOfGeneration(token: number): boolean;
}
