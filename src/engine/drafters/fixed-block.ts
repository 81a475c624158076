// The fixed-block drafter: plain Jacobi decoding, as the CLLM paper runs it.
import { DraftTree } from '../draft-tree.js';
import { JacobiTail } from '../sources/jacobi-tail.js';
import type { ScoredPass } from '../sources/source.js';
import type { Drafter } from './drafter.js';
import type { DraftFill } from './fill.js';

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
