// Jacobi's own guesses: the predictions a pass made past its accepted prefix, conditioned on guesses that
// turned out wrong. Fed again, they move towards the fixed point; on a CLLM they get there in few passes.
import type { DraftFill } from '../drafters/fill.js';
import { DraftTree } from '../draft-tree.js';
import type { DraftSource, Rate, ScoredPass } from './source.js';

export class JacobiTail implements DraftSource {
  readonly name = 'jacobi-tail';
  /** The unverified predictions of the last pass, for the positions after its last accepted token. */
  private tail: number[] = [];

  /** `fill` tops the tail up to `length` guesses: where a block has no earlier guess, Jacobi starts anyway. */
  constructor(
    private readonly fill?: DraftFill,
    private readonly length = 0,
  ) {}

  propose(tree: DraftTree, committed: readonly number[], rate: Rate, limit: number): void {
    const guesses = Math.min(limit, Math.max(this.length, this.tail.length));
    const tail = this.tail.slice(0, guesses);
    const end = tree.addChain(0, tail, () => 'jacobi', rate, this.name);
    if (this.fill && tail.length < guesses) tree.addChain(end, this.fill(committed, guesses - tail.length), () => 'fill', rate, this.name);
  }

  observe({ layout, chosen, path }: ScoredPass): void {
    const last = path[path.length - 1];
    this.tail = last < layout.mainChain ? Array.from(chosen.subarray(last + 1, layout.mainChain)) : [];
  }
}
