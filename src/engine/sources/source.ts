// The interface every draft source implements, and what sources and drafters learn from each forward pass.
import type { DraftTree, Layout } from '../draft-tree.js';

/** One scored forward pass, after its accepted tokens were committed. */
export interface ScoredPass {
  layout: Layout;
  /** The position of pass index 0. */
  start: number;
  /** chosen[i]: the model's token after pass index i (its argmax, or its sample). */
  chosen: Int32Array;
  /** The drafter's topK best choices after each pass index, best first, topK a position (when asked for). */
  topk?: Int32Array;
  /** Pass indices of the accepted path, from the root. */
  path: number[];
  /** Every committed token, the ones this pass accepted included. */
  committed: readonly number[];
}

/** Estimated probability that a guess of this kind (a rate key such as "suffix4-7") is the model's token. */
export type Rate = (key: string) => number;

/** A source of free guesses: cheap to compute, verified by the model like any other draft. */
export interface DraftSource {
  readonly name: string;
  /** Adds this source's guesses below the tree's root (the pending token), no path longer than `limit`: the planner picks which to score. */
  propose(tree: DraftTree, committed: readonly number[], rate: Rate, limit: number): void;
  /** Learns from a forward pass. */
  observe(pass: ScoredPass): void;
}
