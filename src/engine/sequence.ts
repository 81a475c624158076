import { CllmError } from './errors.js';
import type { Evaluator } from './evaluator.js';

/**
 * One token sequence and its KV cache. Invariant: the cache holds every committed token except the last,
 * the *pending* token, which the next forward pass feeds first. Multi-turn chat appends to it, so earlier
 * turns are never evaluated again.
 */
export class Sequence {
  private committed: number[] = [];

  constructor(readonly evaluator: Evaluator) {}

  get tokens(): readonly number[] {
    return this.committed;
  }

  /** Position of the pending token: the number of tokens in the KV cache. */
  get position(): number {
    return Math.max(0, this.committed.length - 1);
  }

  get pending(): number {
    return this.committed[this.committed.length - 1];
  }

  /** Appends prompt tokens, evaluating all but the new pending token. Returns milliseconds spent. */
  async append(tokens: readonly number[]): Promise<number> {
    const t0 = performance.now();
    if (tokens.length === 0) return 0;
    const toEvaluate = this.committed.length ? [this.pending, ...tokens.slice(0, -1)] : tokens.slice(0, -1);
    const start = this.position;
    if (start + toEvaluate.length + 1 > this.evaluator.size) {
      throw new CllmError(`the prompt needs ${start + toEvaluate.length + 1} tokens of context, more than the ${this.evaluator.size} available (raise --ctx)`);
    }
    try {
      if (toEvaluate.length) await this.evaluator.prefill(toEvaluate, start);
    } catch (err) {
      this.evaluator.rollback(start); // a failed pass may have cached part of the prompt
      throw err;
    }
    this.committed.push(...tokens);
    return performance.now() - t0;
  }

  /** Commits generated tokens whose KV entries (all but the last) the caller has kept in the cache. */
  commit(tokens: readonly number[]): void {
    this.committed.push(...tokens);
    this.evaluator.rollback(this.position);
  }

  reset(): void {
    this.committed = [];
    this.evaluator.rollback(0);
  }
}
