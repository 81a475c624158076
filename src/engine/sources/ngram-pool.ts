// Lookahead decoding's n-gram pool (Fu et al. 2024): as Jacobi iterations refine a guess position by
// position, each iteration's prediction follows the previous iteration's token one position back. Read
// across iterations, these diagonals are n-grams the model generated itself, kept for when their first
// token comes up again.
import type { DraftTree } from '../draft-tree.js';
import type { DraftSource, Rate, ScoredPass } from './source.js';

export class NgramPool implements DraftSource {
  readonly name = 'ngram-pool';
  /** Continuations after each first token, newest first. */
  private readonly pool = new Map<number, number[][]>();
  /** The last pass's main chain: position -> the n-gram that ends with its prediction there. */
  private diagonals = new Map<number, number[]>();

  constructor(
    private readonly width = 4,
    private readonly length = 4,
  ) {}

  propose(tree: DraftTree, committed: readonly number[], rate: Rate, limit: number): void {
    for (const continuation of this.pool.get(committed[committed.length - 1]) ?? []) {
      tree.addChain(0, continuation.slice(0, limit), () => 'pool', rate, this.name);
    }
  }

  observe({ layout, chosen, path, start }: ScoredPass): void {
    const accepted = path[path.length - 1];
    const diagonals = new Map<number, number[]>();
    for (let i = accepted + 1; i < layout.mainChain; i++) {
      const position = start + i;
      const before = this.diagonals.get(position - 1);
      const gram = before && before[before.length - 1] === layout.tokens[i] ? [...before, chosen[i]] : [layout.tokens[i], chosen[i]];
      diagonals.set(position, gram.slice(-this.length));
      if (gram.length >= 3) this.remember(gram.slice(-this.length));
    }
    this.diagonals = diagonals;
  }

  private remember(gram: number[]): void {
    const [first, ...continuation] = gram;
    const same = (c: number[]) => c.length === continuation.length && c.every((t, i) => t === continuation[i]);
    const list = (this.pool.get(first) ?? []).filter((c) => !same(c));
    this.pool.set(first, [continuation, ...list].slice(0, this.width));
  }
}
