// Jacobi's own guesses: the predictions a pass made past its accepted prefix, conditioned on guesses that
// turned out wrong. Fed again, they move towards the fixed point; on a CLLM they get there in few passes.
import type { DraftFill } from '../draft.js';
import { DraftTree } from '../draft-tree.js';
import type { Drafter, DraftSource, Rate, ScoredPass } from './source.js';

export class JacobiTail implements DraftSource {
  readonly name = 'jacobi';
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

  observe({ layout, argmax, path }: ScoredPass): void {
    const last = path[path.length - 1];
    this.tail = last < layout.mainChain ? Array.from(argmax.subarray(last + 1, layout.mainChain)) : [];
  }
}

/**
 * The Jacobi decoder of the CLLM paper: every pass scores a block of `block` tokens, the pending one and
 * the last pass's tail, topped up by `fill`. With block 1 it is plain autoregressive decoding.
 */
export class FixedBlock implements Drafter {
  readonly topK = 0;
  private readonly tail: JacobiTail;

  constructor(
    readonly block: number,
    fill: DraftFill,
  ) {
    this.tail = new JacobiTail(fill, block - 1);
  }

  draft(committed: readonly number[], room: number): DraftTree {
    const tree = new DraftTree(committed[committed.length - 1]);
    this.tail.propose(tree, committed, () => 1, Math.min(this.block - 1, room));
    return tree;
  }

  observe(pass: ScoredPass): void {
    this.tail.observe(pass);
  }
}
