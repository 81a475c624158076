// What a decoder asks of its drafter: the guesses for each pass, and the pass to learn from.
import type { DraftTree } from '../draft-tree.js';
import type { ScoredPass } from '../sources/source.js';

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
