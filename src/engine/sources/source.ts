// The interface every draft source implements, and what a decoder learns from each forward pass.
import type { DraftTree, Layout } from '../draft-tree.js';

/** One scored forward pass, after its accepted tokens were committed. */
export interface ScoredPass {
  layout: Layout;
  /** The position of pass index 0. */
  start: number;
  /** argmax[i]: the model's greedy choice after pass index i. */
  argmax: Int32Array;
  /** The drafter's topK best choices after each pass index, best first, topK a position (when asked for). */
  topk?: Int32Array;
  /** Pass indices of the accepted path, from the root. */
  path: number[];
  /** Every committed token, the ones this pass accepted included. */
  committed: readonly number[];
}

/** Estimated probability that a guess of this kind (a rate key such as "ngram3") is the greedy choice. */
export type Rate = (key: string) => number;

/** A source of free guesses: cheap to compute, verified by the model like any other draft. */
export interface DraftSource {
  readonly name: string;
  /** Adds this source's guesses below the tree's root (the pending token), no path longer than `limit`: the planner picks which to score. */
  propose(tree: DraftTree, committed: readonly number[], rate: Rate, limit: number): void;
  /** Learns from a forward pass. */
  observe(pass: ScoredPass): void;
}

/** How a decoder picks each pass's guesses: a fixed Jacobi block, or the cost-driven planner. */
export interface Drafter {
  /** Candidates per position the drafter wants from the model (0: none). */
  readonly topK: number;
  /**
   * The guesses to score after the pending token: at most `room` nodes. The pass also re-feeds the
   * `uncached` committed tokens the cache lacks (the pending one included), which costs time.
   */
  draft(committed: readonly number[], room: number, uncached: number): DraftTree;
  /** Learns from a pass that took `ms` milliseconds. */
  observe(pass: ScoredPass, ms: number): void;
}
