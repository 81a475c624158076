// Token Recycling (Luo et al. 2024): every pass computes the model's top-k choices at every position it
// scores, and all but the chosen token are usually thrown away. Kept in a table keyed by the token they follow,
// they grow a tree of guesses after any token seen before.
import type { DraftTree } from '../draft-tree.js';
import type { DraftSource, Rate, ScoredPass } from './source.js';

export class TokenRecycling implements DraftSource {
  readonly name = 'token-recycling';
  /** The top-k choices after each token, from the latest pass that scored it, best first. */
  private readonly next = new Map<number, Int32Array>();

  constructor(
    readonly k = 8,
    private readonly largestTree = 48,
    private readonly deepest = 8,
  ) {}

  /** Grows the tree best first: the likeliest unexpanded node gets its candidates next. */
  propose(tree: DraftTree, _committed: readonly number[], rate: Rate, limit: number): void {
    const frontier = [{ node: 0, p: 1, depth: 0 }];
    let added = 0;
    const budget = Math.min(limit, this.largestTree);
    while (frontier.length && added < budget) {
      let best = 0;
      frontier.forEach((f, i) => f.p > frontier[best].p && (best = i));
      const { node, p, depth } = frontier.splice(best, 1)[0];
      const candidates = this.next.get(tree.nodes[node].token);
      if (!candidates) continue;
      for (let rank = 0; rank < candidates.length && added < budget; rank++) {
        const key = `recycle${rank}`;
        const before = tree.size;
        const child = tree.add(node, candidates[rank], rate(key), key, this.name);
        if (tree.size > before) added++;
        if (depth + 1 < this.deepest) frontier.push({ node: child, p: p * rate(key), depth: depth + 1 });
      }
    }
  }

  observe({ layout, topk }: ScoredPass): void {
    if (!topk?.length) return;
    const k = topk.length / layout.tokens.length;
    layout.tokens.forEach((token, i) => this.next.set(token, topk.slice(i * k, (i + 1) * k)));
  }
}
