// Jacobi's own guesses: the predictions a pass made past its accepted prefix, conditioned on guesses that
// turned out wrong. Fed again, they move towards the fixed point; on a CLLM they get there in few passes.
import type { DraftFill } from '../draft.js';
import { DraftTree } from '../draft-tree.js';
import type { Drafter, DraftSource, Rate, ScoredPass } from './source.js';

export class JacobiTail implements DraftSource {
  readonly name = 'jacobi';
  /** The unverified predictions of the last pass, for the positions after its last accepted token. */
  tail: number[] = [];

  propose(tree: DraftTree, _committed: readonly number[], rate: Rate, limit: number): void {
    tree.addChain(0, this.tail.slice(0, limit), () => rate('jacobi'), 'jacobi', this.name);
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
  private readonly tail = new JacobiTail();

  constructor(
    readonly block: number,
    private readonly fill: DraftFill,
  ) {}

  draft(committed: readonly number[], room: number): DraftTree {
    const guesses = Math.min(this.block - 1, room);
    const chain = this.tail.tail.slice(0, guesses);
    chain.push(...this.fill(committed, Math.max(0, guesses - chain.length)));
    const tree = new DraftTree(committed[committed.length - 1]);
    tree.addChain(0, chain, () => 1, 'jacobi', 'jacobi');
    return tree;
  }

  observe(pass: ScoredPass): void {
    this.tail.observe(pass);
  }
}
