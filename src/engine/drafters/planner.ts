// The cost-driven planner behind `--decoder auto`. Each step every draft source adds its guesses to one
// candidate tree; each guess's chance of being accepted is its source's measured rate, times its parent's.
// Scoring the k likeliest guesses is expected to yield 1 + (the sum of their chances) tokens, for the
// cost of a pass of 1 + k tokens: the planner picks the k with the most tokens per millisecond. When no
// guess pays for itself, k is 0 and the step is plain one-token decoding.
import { AcceptanceRates } from './acceptance.js';
import type { CostModel } from './cost-model.js';
import { drawFromText } from './fill.js';
import { DraftTree } from '../draft-tree.js';
import { JacobiTail } from '../sources/jacobi-tail.js';
import { NgramPool } from '../sources/ngram-pool.js';
import type { DraftSource, ScoredPass } from '../sources/source.js';
import type { Drafter } from './drafter.js';
import { SuffixMatch } from '../sources/suffix-match.js';
import { TokenRecycling } from '../sources/token-recycling.js';

/** The most guesses one pass scores: a tree needs one sequence per leaf, and the addon allows 64. */
export const LARGEST_DRAFT = 63;
/** Guesses must promise this much more than plain decoding: estimates are noisy, and a wrong bet costs. */
const MARGIN = 1.1;

export class Planner implements Drafter {
  readonly topK: number;
  readonly rates = new AcceptanceRates();
  /**
   * Accepted over expected guesses in the passes so far that scored guesses (with a prior of 4 to 4).
   * The rates treat guesses as independent, which they are not, and the planner picks guesses where the
   * rates look best: this corrects the estimates that result, whichever way they are off.
   */
  private expectedGuesses = 4;
  private acceptedGuesses = 4;
  private lastExpected = 0;
  /** Smoothed milliseconds that building and choosing candidates takes: a step that drafts pays it. */
  private draftingMs = 0;
  /**
   * When a step finds no guess worth scoring, the next few steps skip drafting altogether, as many as keep
   * drafting's time within 2% of plain decoding's: a model on which drafts do not pay then decodes at the
   * speed of plain decoding, and one with a pass much dearer than drafting never skips.
   */
  private paused = 0;
  /**
   * What steps really yield, with and without guesses: tokens and milliseconds from draft() to observe(),
   * host time included, over about the last 50 steps of each kind. Where steps with guesses yield fewer tokens a
   * millisecond than steps without, the planner trusts its estimates that much less, whatever they miss.
   */
  private readonly realized = { guessed: { tokens: 0, ms: 0 }, plain: { tokens: 0, ms: 0 } };
  private stepBegan = 0;
  private guessed = false;

  constructor(
    readonly cost: CostModel,
    readonly sources: DraftSource[] = [new JacobiTail(drawFromText(), 16), new SuffixMatch(), new NgramPool(), new TokenRecycling()],
    private readonly largestDraft = LARGEST_DRAFT,
  ) {
    this.topK = Math.max(0, ...sources.map((s) => (s instanceof TokenRecycling ? s.k : 0)));
  }

  draft(committed: readonly number[], room: number, uncached: number): DraftTree {
    const pending = committed[committed.length - 1];
    const began = (this.stepBegan = performance.now());
    this.guessed = false;
    this.lastExpected = 0;
    if (this.paused > 0) {
      this.paused--;
      return new DraftTree(pending);
    }
    const limit = Math.min(room, this.largestDraft);
    const candidates = new DraftTree(pending);
    const rate = (key: string) => this.rates.rate(key);
    if (limit > 0) for (const source of this.sources) source.propose(candidates, committed, rate, limit);
    this.rates.watch(candidates, committed.length - 1);
    const chosen = this.choose(candidates, limit, uncached);
    const ms = performance.now() - began;
    this.draftingMs = this.draftingMs ? this.draftingMs + 0.1 * (ms - this.draftingMs) : ms;
    if (chosen.size === 1) this.paused = Math.min(16, Math.floor(this.draftingMs / (0.02 * this.cost.time(uncached))));
    this.guessed = chosen.size > 1;
    return chosen;
  }

  /** The k likeliest guesses, for the k that maximizes expected tokens per millisecond. */
  choose(candidates: DraftTree, limit: number, uncached: number): DraftTree {
    const correction = Math.min(1.5, Math.max(0.25, this.acceptedGuesses / this.expectedGuesses));
    const reach = candidates.pathProbabilities().map((p) => p * correction);
    // A child is never likelier than its parent, and ties keep index order, so every prefix is a tree.
    const order = reach.map((_, i) => i).slice(1).sort((a, b) => reach[b] - reach[a] || a - b);
    const trust = this.trust();
    let best = 0;
    let bestRate = MARGIN / this.cost.time(uncached);
    let expected = 1;
    for (let k = 1; k <= Math.min(order.length, limit); k++) {
      expected += reach[order[k - 1]];
      const tokensPerMs = (trust * expected) / (this.cost.time(uncached + k) + this.draftingMs);
      if (tokensPerMs > bestRate) [best, bestRate] = [k, tokensPerMs];
    }
    this.lastExpected = order.slice(0, best).reduce((sum, i) => sum + reach[i], 0) / correction;
    return candidates.subtree(order.slice(0, best));
  }

  /** Tokens a millisecond of steps with guesses over steps without (at most 1; 1 until both are known). */
  private trust(): number {
    const { guessed, plain } = this.realized;
    const enough = 20 * this.cost.time(1);
    if (guessed.ms < enough || plain.ms < enough) return 1;
    return Math.min(1, guessed.tokens / guessed.ms / (plain.tokens / plain.ms));
  }

  observe(pass: ScoredPass, ms: number): void {
    // Each kind keeps its own last 50 or so steps: the evidence against guessing must not fade while the
    // planner, convinced by it, does not guess.
    const step = this.guessed ? this.realized.guessed : this.realized.plain;
    step.tokens = 0.98 * step.tokens + pass.path.length;
    step.ms = 0.98 * step.ms + performance.now() - this.stepBegan;
    if (this.lastExpected > 0) {
      this.expectedGuesses += this.lastExpected;
      this.acceptedGuesses += pass.path.length - 1;
    }
    this.cost.observe(pass.layout.tokens.length, ms);
    this.rates.resolve(pass.committed);
    for (const source of this.sources) source.observe(pass);
  }
}
