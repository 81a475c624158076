// The cost-driven planner behind `--decoder auto`. Each step every draft source adds its guesses to one
// candidate tree; each guess's chance of being accepted is its source's measured rate, times its parent's.
// Scoring the k likeliest guesses is expected to yield 1 + (the sum of their chances) tokens, for the
// cost of a pass of 1 + k tokens: the planner picks the k with the most tokens per millisecond. When no
// guess pays for itself, k is 0 and the step is plain one-token decoding.
import { AcceptanceRates } from './acceptance.js';
import type { CostModel } from './cost-model.js';
import { drawFromText } from './draft.js';
import { DraftTree } from './draft-tree.js';
import { JacobiTail } from './sources/jacobi-tail.js';
import { NgramPool } from './sources/ngram-pool.js';
import { PromptLookup } from './sources/prompt-lookup.js';
import type { Drafter, DraftSource, ScoredPass } from './sources/source.js';
import { TokenRecycling } from './sources/token-recycling.js';

/** The most guesses one pass scores: a tree needs one sequence per leaf, and the addon allows 64. */
export const LARGEST_DRAFT = 63;

export class Planner implements Drafter {
  readonly topK: number;
  readonly rates = new AcceptanceRates();

  constructor(
    readonly cost: CostModel,
    readonly sources: DraftSource[] = [new JacobiTail(drawFromText(), 16), new PromptLookup(), new NgramPool(), new TokenRecycling()],
    private readonly largestDraft = LARGEST_DRAFT,
  ) {
    this.topK = Math.max(0, ...sources.map((s) => (s instanceof TokenRecycling ? s.k : 0)));
  }

  draft(committed: readonly number[], room: number, uncached: number): DraftTree {
    const limit = Math.min(room, this.largestDraft);
    const candidates = new DraftTree(committed[committed.length - 1]);
    const rate = (key: string) => this.rates.rate(key);
    if (limit > 0) for (const source of this.sources) source.propose(candidates, committed, rate, limit);
    this.rates.watch(candidates, committed.length - 1);
    return this.choose(candidates, limit, uncached);
  }

  /** The k likeliest guesses, for the k that maximizes expected tokens per millisecond. */
  choose(candidates: DraftTree, limit: number, uncached: number): DraftTree {
    const reach = candidates.pathProbabilities();
    // A child is never likelier than its parent, and ties keep index order, so every prefix is a tree.
    const order = reach.map((_, i) => i).slice(1).sort((a, b) => reach[b] - reach[a] || a - b);
    let best = 0;
    let bestRate = 1 / this.cost.time(uncached);
    let expected = 1;
    for (let k = 1; k <= Math.min(order.length, limit); k++) {
      expected += reach[order[k - 1]];
      const tokensPerMs = expected / this.cost.time(uncached + k);
      if (tokensPerMs > bestRate) [best, bestRate] = [k, tokensPerMs];
    }
    return candidates.subtree(order.slice(0, best));
  }

  observe(pass: ScoredPass, ms: number): void {
    this.cost.observe(pass.layout.tokens.length, ms);
    this.rates.resolve(pass.committed);
    for (const source of this.sources) source.observe(pass);
  }
}
