// How often each kind of guess is right, measured on the text being generated. Every step's candidate
// tree is checked against the tokens that decoding then commits, whether or not the tree was scored: the
// output is the same either way, so a source that the planner leaves unused still gets measured.
import type { DraftTree } from '../draft-tree.js';

interface Watched {
  tree: DraftTree;
  /** The node whose children are checked next, and the index in the committed tokens of its token. */
  node: number;
  index: number;
}

export class AcceptanceRates {
  private readonly counts = new Map<string, { offered: number; accepted: number }>();
  private watched: Watched[] = [];

  /**
   * A guess of a kind never checked yet counts as right once in `priorOffered` tries: guesses must earn
   * their place before they are scored, except where a pass is nearly free.
   */
  constructor(
    private readonly priorAccepted = 1,
    private readonly priorOffered = 3,
    private readonly maxWatched = 32,
  ) {}

  /** The estimated probability that a guess of this kind is the model's token, given that its parent is. */
  rate(key: string): number {
    const c = this.counts.get(key);
    return ((c?.accepted ?? 0) + this.priorAccepted) / ((c?.offered ?? 0) + this.priorOffered);
  }

  /** Remembers a candidate tree whose root is committed[index]. */
  watch(tree: DraftTree, index: number): void {
    if (tree.size > 1) this.watched.push({ tree, node: 0, index });
    if (this.watched.length > this.maxWatched) this.watched.shift();
  }

  /** Checks every watched tree as deep as the committed tokens now reach. */
  resolve(committed: readonly number[]): void {
    this.watched = this.watched.filter((w) => {
      while (w.index + 1 < committed.length) {
        const next = committed[w.index + 1];
        let match: number | undefined;
        for (const child of w.tree.childrenOf(w.node)) {
          const right = w.tree.nodes[child].token === next;
          if (right) match = child;
          for (const key of w.tree.nodes[child].keys) this.count(key, right);
        }
        if (match === undefined) return false;
        w.node = match;
        w.index++;
      }
      return true;
    });
  }

  /** Offered and accepted counts per kind: what the planner has learnt, for tests and debugging. */
  summary(): Record<string, { offered: number; accepted: number }> {
    return Object.fromEntries(this.counts);
  }

  private count(key: string, right: boolean): void {
    let c = this.counts.get(key);
    if (!c) this.counts.set(key, (c = { offered: 0, accepted: 0 }));
    c.offered++;
    if (right) c.accepted++;
  }
}
